package config

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/hostwatch"
)

func TestHostWatchSettings(t *testing.T) {
	c, err := Parse([]byte(`host_name: web-1
host_watch:
  forget_after: 2h
  ignore:
    ports: [8000, "20000-20999"]
    processes: [jupyter-lab]
    cgroups: [/user.slice/*/app-*.scope]
    ephemeral_after: -1s
`), "pp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.HostName != "web-1" || c.HostWatch.ForgetAfter != 2*time.Hour {
		t.Errorf("host_name %q, forget_after %s; want web-1, 2h", c.HostName, c.HostWatch.ForgetAfter)
	}
	ig := c.HostWatchIgnore
	want := []hostwatch.PortRange{{Lo: 9222, Hi: 9222}, {Lo: 9229, Hi: 9229}, {Lo: 8000, Hi: 8000}, {Lo: 20000, Hi: 20999}}
	if !slices.Equal(ig.Ports, want) {
		t.Errorf("ports: got %v, want %v (defaults first)", ig.Ports, want)
	}
	if !slices.Contains(ig.Processes, "chromium") || !slices.Contains(ig.Processes, "jupyter-lab") {
		t.Errorf("processes: got %v, want the defaults and jupyter-lab", ig.Processes)
	}
	if ig.EphemeralAfter != -time.Second || !slices.Equal(ig.Cgroups, []string{"/user.slice/*/app-*.scope"}) {
		t.Errorf("got %+v", ig)
	}

	d := Default()
	if d.HostWatch.ForgetAfter != DefaultForgetAfter || d.HostWatchIgnore.EphemeralAfter != DefaultEphemeralAfter || len(d.HostWatchIgnore.Ports) != 2 {
		t.Errorf("defaults: forget_after %s, ignore %+v", d.HostWatch.ForgetAfter, d.HostWatchIgnore)
	}
	if name, _ := os.Hostname(); d.HostName != name {
		t.Errorf("default host_name: got %q, want the hostname %q", d.HostName, name)
	}
	n, err := Parse([]byte("host_watch: {ignore: {no_defaults: true}}\n"), "pp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(n.HostWatchIgnore.Ports)+len(n.HostWatchIgnore.Processes) != 0 {
		t.Errorf("no_defaults kept %+v", n.HostWatchIgnore)
	}
}

func TestHostWatchSettingsErrors(t *testing.T) {
	_, err := Parse([]byte(`host_name: "web 1"
host_watch:
  forget_after: -1h
  ignore:
    ports: [0, "20-10", ssh]
    processes: [/usr/bin/chrome]
    cgroups: [user.slice, "/a/[b"]
`), "bad.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`bad.yaml:1:12: host_name: "web 1": must not hold spaces`,
		`bad.yaml:3:17: host_watch.forget_after: must not be negative, got -1h0m0s`,
		`bad.yaml:5:13: host_watch.ignore.ports[0]: port "0": want a port 1-65535`,
		`bad.yaml:5:16: host_watch.ignore.ports[1]: port range "20-10"`,
		`bad.yaml:5:25: host_watch.ignore.ports[2]: port "ssh"`,
		`bad.yaml:6:17: host_watch.ignore.processes[0]: "/usr/bin/chrome": want a command name`,
		`bad.yaml:7:15: host_watch.ignore.cgroups[0]: "user.slice": want a cgroup path`,
		`bad.yaml:7:27: host_watch.ignore.cgroups[1]: "/a/[b": syntax error in pattern`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestHostLabel(t *testing.T) {
	c, err := Parse([]byte("host_name: web-1\n"), "pp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	own, _ := os.Hostname()
	var iface string
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
				iface = p.Addr().String()
				break
			}
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1", "web-1"}, {"127.0.0.53", "web-1"}, {"::1", "web-1"}, {"[::1]", "web-1"},
		{"0.0.0.0", "web-1"}, {"localhost", "web-1"}, {"local", "web-1"}, {"LOCALHOST.", "web-1"},
		{own, "web-1"}, {"web-1", "web-1"}, {"::ffff:127.0.0.1", "web-1"},
		{"db-2", "db-2"}, {"192.0.2.10", "192.0.2.10"}, {"", ""},
	} {
		if got := c.HostLabel(tc.in); got != tc.want {
			t.Errorf("HostLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if iface != "" {
		if got := c.HostLabel(iface); got != "web-1" {
			t.Errorf("HostLabel(%q), an address of this host's interfaces = %q, want web-1", iface, got)
		}
	}
}
