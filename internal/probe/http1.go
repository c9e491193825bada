package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/net/idna"
)

// leanTransport is the http prober's RoundTripper for HTTP/1.1 (plain or over TLS),
// the common case: it dials a new connection for each request, writes the request
// with Request.Write through a pooled bufio.Writer and reads the answer with
// http.ReadResponse from a pooled bufio.Reader, all on the caller's goroutine.
// net/http's Transport, with keep-alives off, spent a connection pool entry, a read
// and a write goroutine (and their stacks' growth), a cancellation timer and
// ClientTrace callbacks on every probe for the same exchange. What reaches the server
// and what comes back are the same: the bytes Transport writes for a request
// (Request.write, "Connection: close" as with DisableKeepAlives), the header limit of
// MaxResponseHeaderBytes, 1xx answers skipped, the body left undecoded, the errors
// worded as Transport words them. http.Client still follows redirects around it.
// HTTP/2 goes through Transport (httpProbe.transport). One leanTransport serves one
// run; it is not for concurrent use.
type leanTransport struct {
	p   *httpProbe
	ctx context.Context
	env *Env
	run *httpRun
}

var _ http.RoundTripper = (*leanTransport)(nil)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// errReadOnClosedBody is Transport's answer to a read after Close.
var errReadOnClosedBody = errors.New("http: read on closed response body")

// max1xx is how many informational answers are skipped before the final one, as
// Transport does.
const max1xx = 5

// RoundTrip sends req on a new connection and returns the response, whose body
// closes the connection.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil && req.Body != nil {
		req.Body.Close()
	}
	return resp, err
}

func (t *leanTransport) roundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL
	if u == nil {
		return nil, errors.New("http: nil Request.URL")
	}
	var useTLS bool
	switch u.Scheme {
	case "http":
	case "https":
		useTLS = true
	default:
		return nil, fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("http: no Host in request URL")
	}
	conn, err := t.p.dial(t.ctx, t.env, t.run, canonicalAddr(u.Hostname(), u.Port(), useTLS), useTLS)
	if err != nil {
		return nil, err
	}
	// The connection carries the run's deadline; a cancelled run (the daemon
	// stopping) ends it at once as well, as Transport closes its connection then.
	stop := context.AfterFunc(t.ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	resp, br, err := t.exchange(conn, req)
	if err != nil {
		stop()
		conn.Close()
		if br != nil {
			readers.Put(br)
		}
		return nil, runErr(t.ctx, err)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		resp.TLS = &st
	}
	resp.Body = &leanBody{body: resp.Body, conn: conn, br: br, stop: stop, ctx: t.ctx}
	return resp, nil
}

// exchange writes req on conn and reads the final answer. It returns the reader it
// used, if any, for the caller to recycle on failure.
func (t *leanTransport) exchange(conn net.Conn, req *http.Request) (*http.Response, *bufio.Reader, error) {
	// The request as Transport writes it with DisableKeepAlives: Connection: close.
	out := *req
	out.Close = true
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(conn)
	err := out.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		return nil, nil, fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err)
	}
	t.run.wroteRequest()

	lr := &headerLimit{r: conn, n: maxResponseHeader}
	br := readers.Get().(*bufio.Reader)
	br.Reset(lr)
	if _, err := br.Peek(1); err != nil {
		return nil, br, readFromServerError{err}
	}
	t.run.gotFirstByte()
	for n1xx := 0; ; n1xx++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if lr.n <= 0 {
				err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxResponseHeader)
			}
			return nil, br, fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != http.StatusSwitchingProtocols {
			if n1xx >= max1xx {
				return nil, br, fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", errors.New("too many 1xx informational responses"))
			}
			continue
		}
		lr.n = -1 // no limit for the body
		return resp, br, nil
	}
}

// runErr is err, or the run's own end when that is what cut the exchange short, as
// Transport reports it. The connection's deadline is the run's, met a moment before
// the context notices: a deadline error on it is the run's deadline, and so is a
// failure once the deadline has passed (a header line cut off by it reads as
// malformed).
func runErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if d, ok := ctx.Deadline(); errors.Is(err, os.ErrDeadlineExceeded) || (ok && !time.Now().Before(d)) {
		return context.DeadlineExceeded
	}
	return err
}

// canonicalAddr is host:port with the scheme's default port and the host in ASCII, as
// Transport dials it.
func canonicalAddr(host, port string, useTLS bool) string {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			if v, err := idna.Lookup.ToASCII(host); err == nil {
				host = v
			}
			break
		}
	}
	if port == "" {
		port = "80"
		if useTLS {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// headerLimit lets n bytes be read while the response header is read, as
// Transport's read limit does; a negative n means no limit (the body).
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, fmt.Errorf("read limit of %d bytes exhausted", maxResponseHeader)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// readFromServerError is a failure to read the first byte of the answer, worded as
// Transport words it.
type readFromServerError struct{ err error }

func (e readFromServerError) Error() string {
	return "net/http: Transport failed to read from server: " + e.err.Error()
}

func (e readFromServerError) Unwrap() error { return e.err }

// leanBody is a response body that closes its connection when closed, without
// reading the rest: the connection is never reused.
type leanBody struct {
	body   io.ReadCloser
	conn   net.Conn
	br     *bufio.Reader
	stop   func() bool
	ctx    context.Context
	closed bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errReadOnClosedBody
	}
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = runErr(b.ctx, err)
	}
	return n, err
}

func (b *leanBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.stop()
	err := b.conn.Close()
	b.br.Reset(nil)
	readers.Put(b.br)
	return err
}
