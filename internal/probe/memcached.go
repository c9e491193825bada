package probe

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// memcached text-protocol limits: a hostile server cannot make the prober read more.
const (
	mcMaxLine  = 4096
	mcMaxStats = 1024 // STAT lines in one reply; memcached 1.6 sends about 90
)

// newMemcached builds the memcached prober (memcached://host[:11211]): the text
// protocol's "stats", whose STAT lines give the version and the capacity reading
// curr_connections of max_connections. It takes no options.
func newMemcached(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer conn.Close()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		r := bufio.NewReaderSize(conn, 4096)
		if memcachedSession(conn, r, res) {
			// quit is a courtesy: the server closes its side without a reply.
			if _, err := io.WriteString(conn, "quit\r\n"); err == nil {
				_ = conn.SetDeadline(time.Now().Add(50 * time.Millisecond))
				_, _ = r.ReadByte()
			}
		}
	}, nil
}

// memcachedSession sends stats and classifies the reply into res. It returns whether
// the session ended in a state where quit makes sense.
func memcachedSession(conn net.Conn, r *bufio.Reader, res *patrol.Result) bool {
	t0 := time.Now()
	if _, err := io.WriteString(conn, "stats\r\n"); err != nil {
		failIO(res, err, "stats")
		return false
	}
	stats, err := readMemcachedStats(r, func() { res.AddPhase("first_byte", time.Since(t0)) })
	if err != nil {
		var se *mcServerError
		if errors.As(err, &se) {
			memcachedFail(res, se.line)
			return false
		}
		failIO(res, err, "stats")
		return false
	}
	if v := stats["version"]; v != "" {
		res.SetDetail("version", truncate(v, 60))
	}
	used, err1 := strconv.ParseInt(stats["curr_connections"], 10, 64)
	limit, err2 := strconv.ParseInt(stats["max_connections"], 10, 64)
	if err1 == nil && err2 == nil && limit > 0 {
		res.Capacity = &patrol.Capacity{What: "connections", Used: used, Limit: limit}
	}
	if stats["pid"] == "" && stats["version"] == "" {
		res.Fail(patrol.ClassProtocol, "stats: the reply has neither pid nor version: not memcached")
		return false
	}
	return true
}

// mcServerError is an ERROR, CLIENT_ERROR or SERVER_ERROR line instead of stats.
type mcServerError struct{ line string }

func (e *mcServerError) Error() string { return e.line }

// readMemcachedStats reads "STAT name value" lines up to "END". first is called when
// the first line has arrived. Anything that is not a stats reply is malformed, except
// the protocol's error lines, returned as *mcServerError.
func readMemcachedStats(r *bufio.Reader, first func()) (map[string]string, error) {
	stats := make(map[string]string, 96)
	for n := 0; ; n++ {
		b, err := readCRLF(r, mcMaxLine)
		if n == 0 && first != nil && (err == nil || len(b) > 0) {
			first()
		}
		if err != nil {
			if n > 0 {
				return nil, midMessage(err)
			}
			return nil, err
		}
		line := string(b)
		switch {
		case line == "END":
			if n == 0 {
				return nil, malformed("empty stats reply")
			}
			return stats, nil
		case n == 0 && (line == "ERROR" || strings.HasPrefix(line, "ERROR ") ||
			strings.HasPrefix(line, "CLIENT_ERROR") || strings.HasPrefix(line, "SERVER_ERROR")):
			return nil, &mcServerError{line: line}
		case !strings.HasPrefix(line, "STAT "):
			return nil, malformed("not a memcached stats line: %q", truncate(line, 60))
		}
		if n >= mcMaxStats {
			return nil, malformed("more than %d STAT lines", mcMaxStats)
		}
		name, value, _ := strings.Cut(line[len("STAT "):], " ")
		stats[name] = value
	}
}

// memcachedFail classifies an error line memcached sent instead of stats.
func memcachedFail(res *patrol.Result, line string) {
	line = truncate(line, 200)
	upper := strings.ToUpper(line)
	switch {
	case strings.Contains(upper, "TOO MANY OPEN CONNECTIONS"):
		res.Fail(patrol.ClassOverloaded, "stats: server is full: %s (raise memcached -c or find the client leaking connections)", line)
	case strings.Contains(upper, "UNAUTHENTICATED"), strings.Contains(upper, "AUTHENTICATION"):
		res.Fail(patrol.ClassAuth, "stats: %s", line)
	default:
		res.Fail(patrol.ClassProtocol, "stats: server replied with error: %s", line)
	}
}
