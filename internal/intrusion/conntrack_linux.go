//go:build linux

package intrusion

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// ErrNoConntrack reports that conntrack events cannot be read here: no
// nf_conntrack_netlink in the kernel, or no CAP_NET_ADMIN.
var ErrNoConntrack = errors.New("conntrack events unavailable")

// SourceConfig configures a Source. The zero value reads this process's network
// namespace with the defaults.
type SourceConfig struct {
	// NetNS is the path of the network namespace whose flows are read
	// ("/run/netns/NAME", "/proc/PID/ns/net"); empty means this process's.
	NetNS string
	// ReadBuffer is the socket's receive buffer in bytes; default 8 MiB. A bigger
	// buffer rides out longer bursts before the kernel drops events (ENOBUFS).
	ReadBuffer int
	// Now is the clock events are stamped with; default time.Now.
	Now func() time.Time
}

// Source reads conntrack events over netlink and hands them over as Events. Its
// counters are safe to read concurrently with Run.
type Source struct {
	cfg       SourceConfig
	listening chan struct{}
	once      sync.Once
	events    atomic.Uint64
	overruns  atomic.Uint64
	resynced  atomic.Uint64
}

// NewSource returns a source; Run starts reading.
func NewSource(cfg SourceConfig) *Source {
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = 8 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Source{cfg: cfg, listening: make(chan struct{})}
}

// Listening is closed once Run has subscribed to the kernel's events.
func (s *Source) Listening() <-chan struct{} { return s.listening }

// Events returns the events read so far.
func (s *Source) Events() uint64 { return s.events.Load() }

// Lost returns how many times the kernel dropped events because the socket's
// buffer was full (ENOBUFS). Each overrun lost at least one event; the kernel does
// not say how many.
func (s *Source) Lost() uint64 { return s.overruns.Load() }

// Resynced returns the flows fed again from a dump after overruns.
func (s *Source) Resynced() uint64 { return s.resynced.Load() }

// open dials a conntrack netlink socket in the configured namespace.
func (s *Source) open() (*conntrack.Conn, error) {
	cfg := &netlink.Config{}
	if s.cfg.NetNS != "" {
		f, err := os.Open(s.cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("network namespace: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoConntrack, err)
	}
	return c, nil
}

func (s *Source) dial() (*conntrack.Conn, chan conntrack.Event, chan error, error) {
	c, err := s.open()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrNoConntrack, err)
	}
	// Best effort: without CAP_NET_ADMIN the kernel caps it at net.core.rmem_max.
	_ = c.SetReadBuffer(s.cfg.ReadBuffer)
	evs := make(chan conntrack.Event, 4096)
	errs, err := c.Listen(evs, 1, []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTUpdate, netfilter.GroupCTDestroy})
	if err != nil {
		c.Close()
		return nil, nil, nil, fmt.Errorf("%w: join conntrack event groups: %v", ErrNoConntrack, err)
	}
	return c, evs, errs, nil
}

// Probe checks that conntrack events can be read, without reading any.
func (s *Source) Probe() error {
	c, _, _, err := s.dial()
	if err != nil {
		return err
	}
	return c.Close()
}

// Run reads events until ctx ends, calling handle for each from this goroutine.
// After an overrun it reconnects and feeds the flows of a fresh dump as new flows,
// so that sources in mid-scan are not forgotten. It returns ErrNoConntrack (wrapped)
// when events cannot be read at all, and nil when ctx ends.
func (s *Source) Run(ctx context.Context, handle func(at time.Time, e *Event)) error {
	c, evs, errs, err := s.dial()
	if err != nil {
		return err
	}
	defer func() { closeDrained(c, evs, errs) }()
	s.once.Do(func() { close(s.listening) })
	var e Event
	feed := func(ev conntrack.Event) {
		if ev.Flow == nil || !fromFlow(&e, ev.Flow) {
			return
		}
		switch ev.Type {
		case conntrack.EventNew:
			e.Type = EventNew
		case conntrack.EventUpdate:
			e.Type = EventUpdate
		case conntrack.EventDestroy:
			e.Type = EventDestroy
		default:
			return
		}
		s.events.Add(1)
		handle(s.cfg.Now(), &e)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-evs:
			feed(ev)
		case rerr := <-errs:
			if !errors.Is(rerr, unix.ENOBUFS) {
				return fmt.Errorf("read conntrack events: %w", rerr)
			}
			s.overruns.Add(1)
			// The worker has stopped: what it decoded before the overrun is still
			// worth reading.
			for drained := false; !drained; {
				select {
				case ev := <-evs:
					feed(ev)
				default:
					drained = true
				}
			}
			closeDrained(c, evs, errs)
			if c, evs, errs, err = s.dial(); err != nil {
				return err
			}
			if err := s.resync(handle); err != nil {
				return err
			}
		}
	}
}

// closeDrained closes c while discarding what its worker still tries to hand over:
// Close waits for the worker, which may be blocked sending an event or an error.
func closeDrained(c *conntrack.Conn, evs chan conntrack.Event, errs chan error) {
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-evs:
		case <-errs:
		}
	}
}

// resync feeds the flows the kernel tracks now, listening first so that nothing
// falls between the dump and the events.
func (s *Source) resync(handle func(at time.Time, e *Event)) error {
	dc, err := s.open()
	if err != nil {
		return err
	}
	defer dc.Close()
	flows, err := dc.Dump(nil)
	if err != nil {
		return fmt.Errorf("dump conntrack: %w", err)
	}
	var e Event
	for i := range flows {
		if !fromFlow(&e, &flows[i]) {
			continue
		}
		e.Type = EventNew
		at := s.cfg.Now()
		handle(at, &e)
		if e.Proto == ProtoTCP && e.TCPState >= TCPFinWait {
			e.Type = EventUpdate
			handle(at, &e)
		}
		s.resynced.Add(1)
	}
	return nil
}

func fromFlow(e *Event, f *conntrack.Flow) bool {
	o := f.TupleOrig
	if !o.IP.SourceAddress.IsValid() {
		return false
	}
	*e = Event{
		Proto:   o.Proto.Protocol,
		Src:     o.IP.SourceAddress,
		Dst:     o.IP.DestinationAddress,
		SrcPort: o.Proto.SourcePort,
		DstPort: o.Proto.DestinationPort,
		Assured: f.Status.Assured(),
	}
	if f.ProtoInfo.TCP != nil {
		e.TCPState = f.ProtoInfo.TCP.State
	}
	if !f.Timestamp.Start.IsZero() {
		e.Start = f.Timestamp.Start
	}
	return true
}
