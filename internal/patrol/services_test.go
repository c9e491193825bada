package patrol

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestDefaultPort pins every scheme's default port: a new scheme must be added here,
// and a change of the services table that moves a default shows up.
func TestDefaultPort(t *testing.T) {
	want := map[string]int{
		"tcp": 0, "tls": 0, "udp": 0, "grpc": 0, "icmp": 0,
		"http": 80, "https": 443, "dns": 53, "redis": 6379, "mysql": 3306, "postgres": 5432,
		"ssh": 22, "smtp": 25, "nats": 4222, "amqp": 5672, "mqtt": 1883,
		"prometheus": 0, "memcached": 11211,
	}
	for _, name := range SchemeNames() {
		if _, ok := want[name]; !ok {
			t.Errorf("scheme %q has no expected default port in this test", name)
		}
	}
	for scheme, port := range want {
		t.Run(scheme, func(t *testing.T) {
			if got := DefaultPort(scheme); got != port {
				t.Errorf("DefaultPort(%q) = %d, want %d", scheme, got, port)
			}
		})
	}
	for _, tc := range []struct {
		scheme string
		want   int
	}{{"postgresql", 5432}, {"mariadb", 3306}, {"REDIS", 6379}, {"domain", 0}, {"gopher", 0}, {"", 0}} {
		if got := DefaultPort(tc.scheme); got != tc.want {
			t.Errorf("DefaultPort(%q) = %d, want %d", tc.scheme, got, tc.want)
		}
	}
}

func TestServiceByPort(t *testing.T) {
	tests := []struct {
		proto    string
		port     uint16
		name     string // empty: not in the table
		desc     string
		internal bool
		scheme   string
	}{
		{"tcp", 6379, "redis", "Redis", true, "redis"},
		{"TCP", 6379, "redis", "Redis", true, "redis"},
		{"tcp", 16379, "redis-cluster-bus", "Redis cluster bus", true, ""},
		{"tcp", 26379, "redis-sentinel", "Redis Sentinel", true, "redis"},
		{"tcp", 9000, "php-fpm", "PHP-FPM (FastCGI)", true, ""},
		{"tcp", 8123, "clickhouse-http", "ClickHouse", true, ""},
		{"tcp", 5432, "postgresql", "PostgreSQL", true, "postgres"},
		{"tcp", 26257, "cockroachdb", "CockroachDB", true, "postgres"},
		{"tcp", 22, "ssh", "ssh", false, "ssh"},
		{"tcp", 443, "https", "https", false, "https"},
		{"tcp", 465, "smtps", "smtps", false, "tls"},
		{"tcp", 9100, "jetdirect", "jetdirect", false, "http"},
		{"udp", 53, "domain", "domain", false, "dns"},
		{"udp", 11211, "memcache", "memcached", true, ""},
		{"udp", 8125, "statsd", "StatsD", true, ""},
		{"udp", 6379, "", "", false, ""},
		{"tcp", 40000, "", "", false, ""},
		{"sctp", 22, "", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.proto, tt.port), func(t *testing.T) {
			s, ok := ServiceByPort(tt.proto, tt.port)
			if ok != (tt.name != "") {
				t.Fatalf("ServiceByPort(%q, %d) found %v (%+v), want %v", tt.proto, tt.port, ok, s, tt.name != "")
			}
			if !ok {
				return
			}
			if s.Name != tt.name || s.Desc != tt.desc || s.Internal != tt.internal || s.Scheme != tt.scheme {
				t.Errorf("got %q %q internal=%v scheme %q, want %q %q internal=%v scheme %q",
					s.Name, s.Desc, s.Internal, s.Scheme, tt.name, tt.desc, tt.internal, tt.scheme)
			}
			if s.Port != tt.port || s.Proto != strings.ToLower(tt.proto) {
				t.Errorf("got %s/%d, want %s/%d", s.Proto, s.Port, strings.ToLower(tt.proto), tt.port)
			}
		})
	}
}

func TestServiceByNameAndCommand(t *testing.T) {
	for _, tt := range []struct {
		name string
		port uint16 // 0: not found
	}{
		{"redis", 6379}, {"postgres", 5432}, {"PostgreSQL", 5432}, {"mariadb", 3306}, {"mongo", 27017},
		{"memcached", 11211}, {"rabbitmq", 5672}, {"etcd", 2379}, {"cockroach", 26257}, {"clickhouse", 8123},
		{"dns", 53}, {"domain", 53}, {"redis-sentinel", 26379}, {"nosuch", 0}, {"", 0},
	} {
		s, ok := ServiceByName(tt.name)
		if ok != (tt.port != 0) || s.Port != tt.port || (ok && s.Proto != "tcp") {
			t.Errorf("ServiceByName(%q) = %s/%d %v, want tcp/%d", tt.name, s.Proto, s.Port, ok, tt.port)
		}
	}
	for _, tt := range []struct {
		comm string
		port uint16
	}{
		{"redis-server", 6379}, {"keydb-server", 6379}, {"mariadbd", 3306}, {"postmaster", 5432},
		{"clickhouse-serv", 8123}, {"epmd", 4369}, {"nginx", 0}, {"", 0},
	} {
		s, ok := ServiceByCommand(tt.comm)
		if ok != (tt.port != 0) || s.Port != tt.port {
			t.Errorf("ServiceByCommand(%q) = %d %v, want %d", tt.comm, s.Port, ok, tt.port)
		}
	}
}

// TestServicesTable checks the table's invariants: one entry per port and protocol,
// one service per name, known schemes, and commands that name one service.
func TestServicesTable(t *testing.T) {
	all := Services()
	if len(all) < 700 {
		t.Fatalf("the table has %d entries, want at least 700", len(all))
	}
	ports := map[string]bool{}
	names := map[string]uint16{}
	commands := map[string]uint16{}
	for _, s := range all {
		key := fmt.Sprintf("%s/%d", s.Proto, s.Port)
		if ports[key] {
			t.Errorf("%s is listed twice", key)
		}
		ports[key] = true
		if s.Port == 0 || (s.Proto != "tcp" && s.Proto != "udp") {
			t.Errorf("%s %q: want a port and tcp or udp", key, s.Name)
		}
		if s.Name == "" || s.Name != strings.ToLower(s.Name) || s.Desc == "" {
			t.Errorf("%s: name %q, desc %q: want a lower-case name and a description", key, s.Name, s.Desc)
		}
		if s.Internal && s.Desc == s.Name && s.Name != "kubelet" {
			t.Errorf("%s %q is internal but has no human description for messages", key, s.Name)
		}
		for _, n := range append([]string{s.Name}, s.Aliases...) {
			n = s.Proto + "/" + strings.ToLower(n)
			if p, dup := names[n]; dup {
				t.Errorf("name %s names both port %d and %d", n, p, s.Port)
			}
			names[n] = s.Port
		}
		if _, ok := Schemes[s.Scheme]; s.Scheme != "" && !ok {
			t.Errorf("%s %q: scheme %q is not a known scheme", key, s.Name, s.Scheme)
		}
		for _, c := range s.Commands {
			if p, dup := commands[c]; dup {
				t.Errorf("command %q names both port %d and %d", c, p, s.Port)
			}
			commands[c] = s.Port
			if !s.Internal {
				t.Errorf("%s: commands only serve the exposure judgement, but %q is not internal", key, s.Name)
			}
		}
	}
	for _, p := range []uint16{6379, 16379, 26379, 3306, 5432, 11211, 27017, 9200, 2379} {
		if s, ok := ServiceByPort("tcp", p); !ok || !s.Internal {
			t.Errorf("tcp/%d: got %+v %v, want an internal service", p, s, ok)
		}
	}
}

func TestServiceCopies(t *testing.T) {
	s, _ := ServiceByPort("tcp", 6379)
	s.Commands[0] = "changed"
	s.Internal = false
	again, _ := ServiceByPort("tcp", 6379)
	if again.Commands[0] != "redis-server" || !again.Internal {
		t.Errorf("got %v internal=%v after changing a copy, want the table unchanged", again.Commands, again.Internal)
	}
	if !slices.Equal(again.Commands, []string{"redis-server", "keydb-server", "dragonfly"}) {
		t.Errorf("got commands %v", again.Commands)
	}
}
