package daemon

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotifier tells systemd (a Type=notify unit) how the daemon is doing, by the
// sd_notify protocol: datagrams such as "READY=1" to the unix socket named in
// $NOTIFY_SOCKET. The zero value (no socket: not started by systemd) sends nothing.
type sdNotifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // $WATCHDOG_USEC; 0 when the unit sets no WatchdogSec
}

// sdNotifierFromEnv reads the variables systemd sets for the service's main process.
func sdNotifierFromEnv() sdNotifier {
	var n sdNotifier
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return n
	}
	if name[0] == '@' { // an abstract socket
		name = "\x00" + name[1:]
	}
	n.addr = &net.UnixAddr{Name: name, Net: "unixgram"}
	// WATCHDOG_PID names the process the watchdog is meant for; a child that
	// inherited the variables is not it.
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n
	}
	if us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		n.watchdog = time.Duration(us) * time.Microsecond
	}
	return n
}

// send writes one notification; errors are returned for the caller to log.
func (n sdNotifier) send(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// notifyReady tells systemd the daemon serves, then, when the unit has a watchdog,
// pings it at half its period for as long as the daemon is healthy: ready, and its
// lock not held by a stuck reload. It returns the function to call on shutdown.
func (d *Daemon) notifyReady(ctx context.Context) (stopping func()) {
	n := sdNotifierFromEnv()
	if n.addr == nil {
		return func() {}
	}
	if err := n.send("READY=1\nSTATUS=serving"); err != nil {
		d.logger.Warn("sd_notify", "err", err)
	}
	if n.watchdog > 0 {
		d.every(ctx, n.watchdog/2, "sd_notify watchdog", func(time.Time) error {
			d.mu.Lock() // a reload stuck holding it stops the pings
			d.mu.Unlock()
			if !d.ready.Load() {
				return nil
			}
			return n.send("WATCHDOG=1")
		})
	}
	return func() {
		if err := n.send("STOPPING=1"); err != nil {
			d.logger.Warn("sd_notify", "err", err)
		}
	}
}
