package probe

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// grpcServe starts an in-process gRPC server, with the health service when hs is set.
func grpcServe(t *testing.T, hs *health.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
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
