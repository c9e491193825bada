package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

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
	return func(ctx context.Context, res *patrol.Result) {
		// The dialer runs on gRPC's goroutines: it fills a result of its own, merged
		// into res once the call has returned. The TLS handshake is done here too, so
		// the chain is inspected and verified like every other TLS probe's.
		var (
			mu      sync.Mutex
			dialed  bool
			dialRes patrol.Result
			dialErr error
		)
		dialer := func(dctx context.Context, _ string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if dialed {
				return nil, errors.New("one connection per probe")
			}
			dialed = true
			dialRes.Class = patrol.ClassOK
			dctx, cancel := context.WithCancel(dctx)
			defer cancel()
			defer context.AfterFunc(ctx, cancel)()
			conn := dial(dctx, env, "tcp", t, &dialRes)
			if conn == nil {
				dialErr = errors.New(dialRes.Error)
				return nil, dialErr
			}
			if tlsCfg != nil {
				tc := handshake(dctx, conn, tlsCfg, tlsSkipVerify(c.TLSConfig), env, &dialRes)
				if tc == nil || dialRes.Class != patrol.ClassOK {
					conn.Close()
					dialErr = errors.New(dialRes.Error)
					return nil, dialErr
				}
				conn = tc
			}
			return conn, nil
		}
		cc, err := grpc.NewClient("passthrough:///"+t.Addr(),
			grpc.WithContextDialer(dialer),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithAuthority(t.Addr()),
		)
		if err != nil {
			res.Fail(patrol.ClassError, "grpc client: %v", err)
			return
		}
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: c.Service})
		cc.Close()
		mu.Lock()
		defer mu.Unlock()
		res.RemoteAddr = dialRes.RemoteAddr
		res.Phases = append(res.Phases, dialRes.Phases...)
		res.TLS = dialRes.TLS
		if dialErr != nil || dialRes.Class != patrol.ClassOK && dialRes.Class != "" {
			res.Class, res.Error = dialRes.Class, dialRes.Error
			return
		}
		if err != nil {
			grpcFail(res, err, c.Service, dialed)
			return
		}
		st := resp.GetStatus()
		res.SetDetail("status", st.String())
		switch st {
		case healthpb.HealthCheckResponse_SERVING:
		case healthpb.HealthCheckResponse_NOT_SERVING:
			res.Fail(patrol.ClassProtocol, "health check of %s: NOT_SERVING", grpcServiceName(c.Service))
		default:
			res.Fail(patrol.ClassProtocol, "health check of %s: status %s, want SERVING", grpcServiceName(c.Service), st)
		}
	}, nil
}

func grpcServiceName(s string) string {
	if s == "" {
		return "the server"
	}
	return fmt.Sprintf("service %q", s)
}

// grpcFail classifies a failed Health/Check call.
func grpcFail(res *patrol.Result, err error, service string, dialed bool) {
	st, _ := status.FromError(err)
	msg := truncate(st.Message(), 200)
	switch st.Code() {
	case codes.DeadlineExceeded:
		res.Fail(patrol.ClassTimeout, "health check: timed out")
	case codes.Canceled:
		res.Fail(patrol.ClassError, "health check: canceled")
	case codes.NotFound:
		res.Fail(patrol.ClassProtocol, "health check: %s is unknown to the health server", grpcServiceName(service))
	case codes.Unimplemented:
		res.Fail(patrol.ClassProtocol, "health service not implemented (register grpc.health.v1.Health on the server)")
	case codes.ResourceExhausted:
		res.Fail(patrol.ClassOverloaded, "health check: resource exhausted: %s", msg)
	case codes.Unauthenticated, codes.PermissionDenied:
		res.Fail(patrol.ClassAuth, "health check: %s: %s", st.Code(), msg)
	case codes.Unavailable:
		if !dialed {
			res.Fail(patrol.ClassTimeout, "health check: no connection before the deadline")
			return
		}
		res.Fail(patrol.ClassProtocol, "not a working gRPC (HTTP/2) endpoint: %s", msg)
	default:
		res.Fail(patrol.ClassProtocol, "health check: %s: %s", st.Code(), msg)
	}
}
