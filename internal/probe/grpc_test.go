package probe

import (
	"crypto/tls"
	"net"
	"testing"

	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// grpcServe starts an in-process gRPC server, with the health service when hs is set.
func grpcServe(t *testing.T, hs *health.Server, opts ...grpc.ServerOption) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	if hs != nil {
		healthpb.RegisterHealthServer(s, hs)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func TestGRPCHealth(t *testing.T) {
	hs := health.NewServer()
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("billing", healthpb.HealthCheckResponse_NOT_SERVING)
	addr := grpcServe(t, hs)
	bare := grpcServe(t, nil)
	for _, tc := range []struct {
		target string
		class  patrol.Class
		want   string
	}{
		{"grpc://" + addr, patrol.ClassOK, ""},
		{"grpc://" + addr + "/orders", patrol.ClassOK, ""},
		{"grpc://" + addr + "?service=orders", patrol.ClassOK, ""},
		{"grpc://" + addr + "/billing", patrol.ClassProtocol, "NOT_SERVING"},
		{"grpc://" + addr + "/nosuch", patrol.ClassProtocol, `service "nosuch" is unknown`},
		{"grpc://" + bare, patrol.ClassProtocol, "health service not implemented"},
		{"grpc://" + addr + "?tls=true&insecure=true", patrol.ClassTLS, "does not look like a TLS handshake"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			res := protoRun(t, tc.target, Module{})
			protoWant(t, res, tc.class, tc.want)
			if tc.class == patrol.ClassOK && res.Details["status"] != "SERVING" {
				t.Errorf("got status %q, want SERVING", res.Details["status"])
			}
		})
	}
}

func TestGRPCRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	protoWant(t, protoRun(t, "grpc://"+addr, Module{}), patrol.ClassRefused, "connection refused")
}

// TestGRPCHealthTLS asks a grpc-go server over TLS (ALPN h2): the chain is verified
// like every TLS probe's, and the call goes through.
func TestGRPCHealthTLS(t *testing.T) {
	ca := newCA(t, "Patrol Test CA")
	creds := grpccreds.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.validCert(t)}})
	hs := health.NewServer()
	hs.SetServingStatus("billing", healthpb.HealthCheckResponse_NOT_SERVING)
	addr := grpcServe(t, hs, grpc.Creds(creds))
	m := Module{GRPC: GRPCModule{TLS: true, TLSConfig: TLSConfig{CAFile: ca.pemFile}}}
	for _, tc := range []struct {
		target string
		class  patrol.Class
		status string
	}{
		{"grpc://" + addr, patrol.ClassOK, "SERVING"},
		{"grpc://" + addr + "/billing", patrol.ClassProtocol, "NOT_SERVING"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			res := protoRun(t, tc.target, m)
			protoWant(t, res, tc.class, "")
			if res.Details["status"] != tc.status {
				t.Errorf("got status %q, want %s", res.Details["status"], tc.status)
			}
			if res.TLS == nil || !res.TLS.Verified {
				t.Errorf("got TLS %+v, want a verified chain", res.TLS)
			}
		})
	}
	res := protoRun(t, "grpc://"+addr, Module{GRPC: GRPCModule{TLS: true}})
	protoWant(t, res, patrol.ClassTLS, "")
}

func TestGRPCHealthMessages(t *testing.T) {
	for _, tc := range []struct {
		service string
		req     []byte
	}{
		{"", []byte{0, 0, 0, 0, 0}},
		{"orders", []byte{0, 0, 0, 0, 8, 0x0a, 6, 'o', 'r', 'd', 'e', 'r', 's'}},
	} {
		if got := grpcHealthRequest(tc.service); string(got) != string(tc.req) {
			t.Errorf("request for %q: got % x, want % x", tc.service, got, tc.req)
		}
	}
	for _, tc := range []struct {
		reply   []byte
		want    uint64
		wantErr bool
	}{
		{[]byte{0, 0, 0, 0, 2, 0x08, 1}, 1, false},
		{[]byte{0, 0, 0, 0, 0}, 0, false},                             // UNKNOWN, left out
		{[]byte{0, 0, 0, 0, 6, 0x12, 2, 'h', 'i', 0x08, 2}, 2, false}, // an unknown field first
		{[]byte{1, 0, 0, 0, 2, 0x08, 1}, 0, true},                     // compressed
		{[]byte{0, 0, 0, 0, 9, 0x08, 1}, 0, true},                     // length beyond the body
		{[]byte{0, 0, 0, 0, 3, 0x12, 0x7f, 0}, 0, true},               // field beyond the message
		{[]byte{0, 0, 0}, 0, true},                                    // no prefix
	} {
		got, err := grpcHealthStatus(tc.reply)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("% x: got %d, %v; want %d, error %v", tc.reply, got, err, tc.want, tc.wantErr)
		}
	}
}
