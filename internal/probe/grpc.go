package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// GRPCModule configures the grpc prober. The zero value asks, in plain text, about
// the whole server.
type GRPCModule struct {
	// Service is the name asked of grpc.health.v1.Health/Check; empty asks about the
	// server as a whole.
	Service   string    `yaml:"service"`
	TLS       bool      `yaml:"tls"`
	TLSConfig TLSConfig `yaml:"tls_config"`
	// IPProtocol is ip4 or ip6; empty takes the first address of either family.
	IPProtocol         string `yaml:"preferred_ip_protocol"`
	IPProtocolFallback *bool  `yaml:"ip_protocol_fallback"`
	// Metadata is blackbox's gRPC client metadata; not sent yet (see Unhonoured).
	Metadata map[string][]string `yaml:"metadata"`
}

// newGRPC builds the grpc prober: grpc://host:port[/service]. Query options: service,
// tls, insecure, servername.
func newGRPC(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.GRPC
	if s := strings.TrimPrefix(q.path(), "/"); s != "" {
		c.Service = s
	}
	if v, ok := q.string("service"); ok {
		c.Service = v
	}
	if v, ok := q.bool("tls"); ok {
		c.TLS = v
	}
	if v, ok := q.bool("insecure"); ok {
		c.TLSConfig.InsecureSkipVerify = v
	}
	if v, ok := q.string("servername"); ok {
		c.TLSConfig.ServerName = v
	}
	var tlsCfg *tls.Config
	if c.TLS {
		cfg, err := buildTLSConfig(c.TLSConfig, t.Host, env)
		if err != nil {
			return nil, err
		}
		cfg.NextProtos = []string{"h2"} // gRPC servers insist on ALPN
		tlsCfg = cfg
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	endpoint := scheme + "://" + t.Addr() + "/grpc.health.v1.Health/Check"
	body := grpcHealthRequest(c.Service)
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, ipNet("tcp", c.IPProtocol), t, res)
		if conn == nil {
			return
		}
		defer conn.Close()
		stop := stopOnCancel(ctx, conn)
		defer stop()
		if tlsCfg != nil {
			tc := handshake(ctx, conn, tlsCfg, tlsSkipVerify(c.TLSConfig), env, res)
			if tc == nil || res.Class != patrol.ClassOK {
				return
			}
			conn = tc
		}
		// One unary call over HTTP/2 (h2c without TLS), written out by hand: linking
		// grpc-go for it cost every portpatrol command gRPC's package initialisation.
		timedOut := func(err error) bool {
			return ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)
		}
		cc, err := (&http2.Transport{AllowHTTP: true}).NewClientConn(conn)
		if err != nil {
			if timedOut(err) {
				res.Fail(patrol.ClassTimeout, "health check: timed out")
				return
			}
			res.Fail(patrol.ClassProtocol, "not a working gRPC (HTTP/2) endpoint: %s", truncate(err.Error(), 200))
			return
		}
		defer cc.Close()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			res.Fail(patrol.ClassError, "grpc request: %v", err)
			return
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		req.Header.Set("User-Agent", "portpatrol")
		if d, ok := ctx.Deadline(); ok {
			// At most 8 digits, says the gRPC HTTP/2 protocol.
			ms := min(max(time.Until(d).Milliseconds(), 1), 99999999)
			req.Header.Set("Grpc-Timeout", strconv.FormatInt(ms, 10)+"m")
		}
		resp, err := cc.RoundTrip(req)
		if err != nil {
			if timedOut(err) {
				res.Fail(patrol.ClassTimeout, "health check: timed out")
				return
			}
			res.Fail(patrol.ClassProtocol, "not a working gRPC (HTTP/2) endpoint: %s", truncate(err.Error(), 200))
			return
		}
		defer resp.Body.Close()
		msg, err := io.ReadAll(io.LimitReader(resp.Body, grpcMaxReply+1))
		if err != nil {
			if timedOut(err) {
				res.Fail(patrol.ClassTimeout, "health check: timed out")
				return
			}
			res.Fail(patrol.ClassProtocol, "health check reply: %s", truncate(err.Error(), 200))
			return
		}
		// A call that fails at once answers with its status in the headers alone.
		code := resp.Trailer.Get("Grpc-Status")
		gmsg := resp.Trailer.Get("Grpc-Message")
		if code == "" {
			code, gmsg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
		}
		if code == "" {
			if resp.StatusCode != http.StatusOK {
				res.Fail(patrol.ClassProtocol, "not a working gRPC endpoint: HTTP status %d", resp.StatusCode)
				return
			}
			res.Fail(patrol.ClassProtocol, "not a working gRPC endpoint: no grpc-status")
			return
		}
		n, err := strconv.Atoi(code)
		if err != nil {
			res.Fail(patrol.ClassProtocol, "not a working gRPC endpoint: grpc-status %q", truncate(code, 20))
			return
		}
		if n != 0 {
			grpcFail(res, n, grpcUnescape(gmsg), c.Service)
			return
		}
		st, err := grpcHealthStatus(msg)
		if err != nil {
			res.Fail(patrol.ClassProtocol, "health check reply: %v", err)
			return
		}
		name := grpcServingStatus(st)
		res.SetDetail("status", name)
		switch st {
		case grpcServing:
		case grpcNotServing:
			res.Fail(patrol.ClassProtocol, "health check of %s: NOT_SERVING", grpcServiceName(c.Service))
		default:
			res.Fail(patrol.ClassProtocol, "health check of %s: status %s, want SERVING", grpcServiceName(c.Service), name)
		}
	}, nil
}

// grpcMaxReply bounds the health reply read: a status enum takes a few bytes.
const grpcMaxReply = 4 << 10

// grpc.health.v1.HealthCheckResponse.ServingStatus values.
const (
	grpcServing    = 1
	grpcNotServing = 2
)

// grpcServingStatus names a ServingStatus as protobuf does: unknown values by number.
func grpcServingStatus(v uint64) string {
	switch v {
	case 0:
		return "UNKNOWN"
	case grpcServing:
		return "SERVING"
	case grpcNotServing:
		return "NOT_SERVING"
	case 3:
		return "SERVICE_UNKNOWN"
	}
	return strconv.FormatUint(v, 10)
}

// grpcHealthRequest is a gRPC message (uncompressed flag, 4-byte length) holding a
// HealthCheckRequest: field 1, the service name, left out when empty as proto3 does.
func grpcHealthRequest(service string) []byte {
	var m []byte
	if service != "" {
		m = append(m, 0x0a) // field 1, length-delimited
		m = binary.AppendUvarint(m, uint64(len(service)))
		m = append(m, service...)
	}
	b := make([]byte, 5, 5+len(m))
	binary.BigEndian.PutUint32(b[1:], uint32(len(m)))
	return append(b, m...)
}

// grpcHealthStatus reads the status (field 1, a varint; 0 when absent) of the one
// HealthCheckResponse message in a reply body.
func grpcHealthStatus(b []byte) (uint64, error) {
	if len(b) < 5 {
		return 0, fmt.Errorf("%d bytes, want a message", len(b))
	}
	if b[0] != 0 {
		return 0, errors.New("compressed message, not asked for")
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if uint64(n) != uint64(len(b)-5) {
		return 0, fmt.Errorf("message of %d bytes in %d", n, len(b)-5)
	}
	m := b[5:]
	var st uint64
	for len(m) > 0 {
		key, k := binary.Uvarint(m)
		if k <= 0 {
			return 0, errors.New("bad field key")
		}
		m = m[k:]
		switch key & 7 {
		case 0: // varint
			v, k := binary.Uvarint(m)
			if k <= 0 {
				return 0, errors.New("bad varint")
			}
			m = m[k:]
			if key>>3 == 1 {
				st = v
			}
		case 1: // 64-bit
			if len(m) < 8 {
				return 0, errors.New("short field")
			}
			m = m[8:]
		case 2: // length-delimited
			l, k := binary.Uvarint(m)
			if k <= 0 || l > uint64(len(m)-k) {
				return 0, errors.New("bad length")
			}
			m = m[k+int(l):]
		case 5: // 32-bit
			if len(m) < 4 {
				return 0, errors.New("short field")
			}
			m = m[4:]
		default:
			return 0, fmt.Errorf("wire type %d", key&7)
		}
	}
	return st, nil
}

// grpcUnescape decodes a grpc-message, percent-encoded on the wire.
func grpcUnescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func grpcServiceName(s string) string {
	if s == "" {
		return "the server"
	}
	return fmt.Sprintf("service %q", s)
}

// gRPC status codes (google.golang.org/grpc/codes).
const (
	grpcCanceled          = 1
	grpcDeadlineExceeded  = 4
	grpcNotFound          = 5
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

var grpcCodeNames = [...]string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
	"NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
	"Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

func grpcCodeName(c int) string {
	if c >= 0 && c < len(grpcCodeNames) {
		return grpcCodeNames[c]
	}
	return "Code(" + strconv.Itoa(c) + ")"
}

// grpcFail classifies a Health/Check call that ended with status code and message msg.
func grpcFail(res *patrol.Result, code int, msg, service string) {
	msg = truncate(msg, 200)
	switch code {
	case grpcDeadlineExceeded:
		res.Fail(patrol.ClassTimeout, "health check: timed out")
	case grpcCanceled:
		res.Fail(patrol.ClassError, "health check: canceled")
	case grpcNotFound:
		res.Fail(patrol.ClassProtocol, "health check: %s is unknown to the health server", grpcServiceName(service))
	case grpcUnimplemented:
		res.Fail(patrol.ClassProtocol, "health service not implemented (register grpc.health.v1.Health on the server)")
	case grpcResourceExhausted:
		res.Fail(patrol.ClassOverloaded, "health check: resource exhausted: %s", msg)
	case grpcUnauthenticated, grpcPermissionDenied:
		res.Fail(patrol.ClassAuth, "health check: %s: %s", grpcCodeName(code), msg)
	case grpcUnavailable:
		res.Fail(patrol.ClassProtocol, "not a working gRPC (HTTP/2) endpoint: %s", msg)
	default:
		res.Fail(patrol.ClassProtocol, "health check: %s: %s", grpcCodeName(code), msg)
	}
}
