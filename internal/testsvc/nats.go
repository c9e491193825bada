package testsvc

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is an in-process NATS server with JetStream on a loopback port, its store
// in a temporary directory. Stop and Start take it down and bring it back on the same
// port and store, as a restart would.
type NATSServer struct {
	opts *server.Options
	srv  *server.Server
}

// URL is the server's client URL.
func (s *NATSServer) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Start starts the server (again).
func (s *NATSServer) Start(t testing.TB) {
	t.Helper()
	o := *s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats server %s not ready", s.URL())
	}
	s.srv = srv
}

// Stop shuts the server down; it is safe to call when it is down.
func (s *NATSServer) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Server is the running server, nil while stopped.
func (s *NATSServer) Server() *server.Server { return s.srv }

// NATS starts one JetStream server on a free loopback port, stopped at cleanup.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	s := &NATSServer{opts: &server.Options{ServerName: "solo", Host: "127.0.0.1", Port: FreePort(t),
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// NATSCluster starts a real JetStream cluster of n servers routed to each other on
// loopback ports, and waits for its meta leader.
func NATSCluster(t testing.TB, n int) []*NATSServer {
	t.Helper()
	return NATSClusterOn(t, n, "127.0.0.1")
}

// NATSClusterOn is NATSCluster with the servers' client ports on host, an address of
// this machine (a veth end the test made, so a namespace the test made reaches them);
// the routes stay on loopback.
func NATSClusterOn(t testing.TB, n int, host string) []*NATSServer {
	t.Helper()
	routes := make([]int, n)
	for i := range routes {
		routes[i] = FreePort(t)
	}
	all := make([]*NATSServer, 0, n)
	for i := range n {
		var rs []*url.URL
		for j, p := range routes {
			if j != i {
				rs = append(rs, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
		all = append(all, &NATSServer{opts: &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: host, Port: FreePort(t),
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "portpatrol-test", Host: "127.0.0.1", Port: routes[i]},
			Routes:  rs,
		}})
	}
	for _, s := range all {
		s.Start(t)
		t.Cleanup(s.Stop)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader, current := false, true
		for _, s := range all {
			leader = leader || s.srv.JetStreamIsLeader()
			current = current && s.srv.JetStreamIsCurrent()
		}
		if leader && current {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatal("the NATS cluster elected no JetStream meta leader within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NATSURLs joins the servers' URLs as a client's server list.
func NATSURLs(ss []*NATSServer) string {
	u := make([]string, len(ss))
	for i, s := range ss {
		u[i] = s.URL()
	}
	return strings.Join(u, ",")
}
