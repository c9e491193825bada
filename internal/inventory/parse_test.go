package inventory

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got, rendered as indented JSON, with testdata/name.golden.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(b)); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", p, d)
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseProcNetGolden(t *testing.T) {
	for _, tc := range []struct {
		file  string
		proto Proto
	}{
		{"proc_net_tcp", TCP}, {"proc_net_tcp6", TCP}, {"proc_net_udp", UDP}, {"proc_net_udp6", UDP},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := ParseProcNet(readTestdata(t, tc.file), tc.proto)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, got)
		})
	}
}

func TestParseProcNetErrors(t *testing.T) {
	hdr := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	for _, tc := range []struct{ name, line string }{
		{"short", "0: 0100007F:1F90 00000000:0000 0A\n"},
		{"bad address", "0: 0100007:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n"},
		{"bad port", "0: 0100007F:XY 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n"},
		{"bad queues", "0: 0100007F:1F90 00000000:0000 0A 00000000 00:00000000 00000000 0 0 1\n"},
		{"bad inode", "0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseProcNet([]byte(hdr+tc.line), TCP); err == nil {
				t.Errorf("got no error for %q", tc.line)
			}
		})
	}
}

func TestParseNetstatGolden(t *testing.T) {
	m, err := ParseNetstat(readTestdata(t, "proc_net_netstat"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m["TcpExt"]["ListenOverflows"]; !ok {
		t.Errorf("TcpExt.ListenOverflows missing from %v", m["TcpExt"])
	}
	golden(t, "proc_net_netstat", m)
}

func TestParseDiagGolden(t *testing.T) {
	for _, name := range []string{"diag_tcp4_listen.bin", "diag_tcp6_listen.bin", "diag_tcp4_estab_info.bin"} {
		t.Run(name, func(t *testing.T) {
			b := readTestdata(t, name)
			var got []Socket
			done, err := ParseDiag(b, 1, TCP, func(s *Socket) { got = append(got, *s) })
			if err != nil {
				t.Fatal(err)
			}
			if !done {
				t.Errorf("got done=false, want the dump to end with NLMSG_DONE")
			}
			golden(t, name, got)
		})
	}
}

// TestParseDiagErrors feeds the parser an NLMSG_ERROR and truncated messages.
func TestParseDiagErrors(t *testing.T) {
	msg := func(typ uint16, seq uint32, body []byte) []byte {
		b := make([]byte, 16+len(body))
		putNative32(b[0:], uint32(len(b)))
		b[4], b[5] = byte(typ), byte(typ>>8)
		putNative32(b[8:], seq)
		copy(b[16:], body)
		return b
	}
	errBody := make([]byte, 20)
	putNative32(errBody, uint32(0xffffffff-uint32(syscall.EINVAL)+1))
	done, err := ParseDiag(msg(nlmsgError, 7, errBody), 7, TCP, func(*Socket) {})
	var ne *NetlinkError
	if !done || !errors.As(err, &ne) || ne.Errno != syscall.EINVAL {
		t.Errorf("got done=%v err=%v, want done with EINVAL", done, err)
	}
	if done, err := ParseDiag(msg(nlmsgDone, 8, make([]byte, 4)), 7, TCP, func(*Socket) {}); done || err != nil {
		t.Errorf("other sequence: got done=%v err=%v, want it skipped", done, err)
	}
	if _, err := ParseDiag(msg(sockDiagByFamily, 7, make([]byte, 10)), 7, TCP, func(*Socket) {}); err == nil {
		t.Error("short inet_diag_msg: got no error")
	}
	b := msg(nlmsgDone, 7, nil)
	putNative32(b, 200)
	if _, err := ParseDiag(b, 7, TCP, func(*Socket) {}); err == nil {
		t.Error("length beyond the buffer: got no error")
	}
}

func TestDiagRequest(t *testing.T) {
	b := diagRequest(9, afInet6, ipprotoUDP, StatesOf(StateClose), true)
	want := []byte{72, 0, 0, 0, 20, 0, 1, 3, 9, 0, 0, 0, 0, 0, 0, 0, 10, 17, 2, 0, 0x80, 0, 0, 0}
	if !bytes.Equal(b[:len(want)], want) {
		t.Errorf("got % x, want % x", b[:len(want)], want)
	}
	if len(b) != 72 {
		t.Errorf("got %d bytes, want 72", len(b))
	}
}

func TestTCPDiagRequest(t *testing.T) {
	b := tcpDiagRequest(5, StatesOf(StateListen), true)
	want := []byte{76, 0, 0, 0, 18, 0, 1, 3, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
	if !bytes.Equal(b[:len(want)], want) {
		t.Errorf("header: got % x, want % x", b[:len(want)], want)
	}
	if len(b) != 76 {
		t.Errorf("got %d bytes, want 76", len(b))
	}
	if got := binary.NativeEndian.Uint32(b[16+52:]); got != 1<<StateListen {
		t.Errorf("states: got %#x, want %#x", got, 1<<StateListen)
	}
}

func TestParseStat(t *testing.T) {
	st, err := parseStat(readTestdata(t, "pid_stat"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "pid_stat", st)
	st, err = parseStat([]byte("42 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Comm != "a) b (c)" || st.UTime != 11 || st.STime != 12 || st.StartTime != 19 || st.RSSPages != 21 {
		t.Errorf("got %+v, want comm %q utime 11 stime 12 start 19 rss 21", st, "a) b (c)")
	}
	if _, err := parseStat([]byte("42 (x) R 1")); err == nil {
		t.Error("short stat: got no error")
	}
}

func TestParseLimits(t *testing.T) {
	soft, hard, err := parseLimits(readTestdata(t, "pid_limits"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "pid_limits", map[string]int64{"soft": soft, "hard": hard})
	soft, hard, err = parseLimits([]byte("Limit Soft Hard Units\nMax open files unlimited unlimited files\n"))
	if err != nil || soft != Unlimited || hard != Unlimited {
		t.Errorf("got %d %d %v, want unlimited twice", soft, hard, err)
	}
}

func TestParseCgroup(t *testing.T) {
	id := "3f4e1b6a9c2d8e7f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071"
	for _, tc := range []struct {
		name, in, path, container string
	}{
		{"host", "0::/system.slice/redis-server.service\n", "/system.slice/redis-server.service", ""},
		{"docker", "0::/system.slice/docker-" + id + ".scope\n", "/system.slice/docker-" + id + ".scope", id},
		{"cgroup v1", "12:pids:/docker/" + id + "\n1:name=systemd:/docker/" + id + "\n", "/docker/" + id, id},
		{"kubernetes", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-" + id + ".scope\n",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-" + id + ".scope", id},
		{"65 digits is no id", "0::/x-" + id + "0\n", "/x-" + id + "0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c := parseCgroup([]byte(tc.in))
			if p != tc.path || c != tc.container {
				t.Errorf("got %q %q, want %q %q", p, c, tc.path, tc.container)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	for in, want := range map[string]State{"listen": StateListen, "ESTAB": StateEstablished, "established": StateEstablished,
		"time_wait": StateTimeWait, "unconn": StateClose, "syn-recv": StateSynRecv} {
		if got, err := ParseState(in); err != nil || got != want {
			t.Errorf("ParseState(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseState("bogus"); err == nil {
		t.Error("ParseState(bogus): got no error")
	}
}

func FuzzParseProcNet(f *testing.F) {
	for _, n := range []string{"proc_net_tcp", "proc_net_tcp6", "proc_net_udp"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		socks, err := ParseProcNet(b, TCP)
		if err == nil {
			for _, s := range socks {
				_ = s.Local.String() + s.State.String()
			}
		}
	})
}

func FuzzParseDiag(f *testing.F) {
	for _, n := range []string{"diag_tcp4_listen.bin", "diag_tcp6_listen.bin", "diag_tcp4_estab_info.bin"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseDiag(b, 0, TCP, func(s *Socket) { _ = s.Local.String() })
	})
}

func FuzzParseNetstat(f *testing.F) {
	f.Add(readTestdata(f, "proc_net_netstat"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseNetstat(b) })
}

func FuzzParseStat(f *testing.F) {
	f.Add(readTestdata(f, "pid_stat"))
	f.Add(readTestdata(f, "pid_limits"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStat(b)
		_, _, _ = parseLimits(b)
		_, _ = parseCgroup(b)
		_, _ = parseStatusUID(b)
	})
}

func putNative32(b []byte, v uint32) { binary.NativeEndian.PutUint32(b, v) }

func TestExposed(t *testing.T) {
	pub := func(port uint16, comm string) *Socket {
		s := &Socket{Proto: TCP, State: StateListen, Local: netip.AddrPortFrom(netip.IPv4Unspecified(), port)}
		if comm != "" {
			s.Owner = &Owner{Command: comm}
		}
		return s
	}
	for _, tc := range []struct {
		name string
		s    *Socket
		want string
	}{
		{"redis by port", pub(6379, ""), "Redis"},
		{"mariadb by name on another port", pub(3307, "mariadbd"), "MySQL/MariaDB"},
		{"nginx on 80", pub(80, "nginx"), ""},
		{"redis on loopback", &Socket{Proto: TCP, State: StateListen, Local: netip.MustParseAddrPort("127.0.0.1:6379")}, ""},
		{"postgres on ::", &Socket{Proto: TCP, IPv6: true, State: StateListen, Local: netip.MustParseAddrPort("[::]:5432")}, "PostgreSQL"},
		{"clickhouse by name on 9000", pub(9000, "clickhouse-serv"), "ClickHouse"},
		{"php-fpm by port 9000", pub(9000, ""), "PHP-FPM (FastCGI)"},
		{"sentinel by port", pub(26379, ""), "Redis Sentinel"},
		{"cluster bus by port", pub(16379, ""), "Redis cluster bus"},
		{"memcached over udp", &Socket{Proto: UDP, State: StateClose, Local: netip.MustParseAddrPort("0.0.0.0:11211")}, "memcached"},
		{"udp on a tcp-only internal port", &Socket{Proto: UDP, State: StateClose, Local: netip.MustParseAddrPort("0.0.0.0:6379")}, ""},
		{"established is no listener", &Socket{Proto: TCP, State: StateEstablished, Local: netip.MustParseAddrPort("0.0.0.0:6379")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Exposed(tc.s)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("got %q %v, want %q", got, ok, tc.want)
			}
		})
	}
}
