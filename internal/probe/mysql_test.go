package probe

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestMySQLLocal(t *testing.T) {
	addr := testsvc.Local(t, "MariaDB", "127.0.0.1:3306")
	res := protoRun(t, "mysql://"+addr, Module{})
	protoWant(t, res, patrol.ClassOK, "")
	if res.Details["version"] == "" || res.Details["connection_id"] == "" {
		t.Errorf("got details %v, want version and connection_id", res.Details)
	}
	res = protoRun(t, "mysql://root@"+addr, Module{})
	protoWant(t, res, patrol.ClassOK, "")
	if res.Capacity == nil || res.Capacity.What != "connections" || res.Capacity.Used < 1 || res.Capacity.Limit < 1 {
		t.Errorf("got capacity %+v, want connections used>=1 of limit>=1", res.Capacity)
	}
	res = protoRun(t, "mysql://root:not-the-pw@"+addr, Module{})
	protoWant(t, res, patrol.ClassAuth, "Access denied", "not-the-pw")
}

func TestMySQLStates(t *testing.T) {
	t.Run("max_connections exhausted", func(t *testing.T) {
		// MariaDB's smallest max_connections is 10. It admits max_connections+1
		// connections (the extra one for SUPER) and refuses the next with 1040 in
		// place of its handshake; connections still waiting to log in count. Hold
		// plain TCP connections until the server answers one with an error packet
		// instead of a greeting: from then on it is full, however loaded the machine.
		s := testsvc.MariaDB(t, "max_connections=10\nconnect_timeout=60")
		full := false
		for i := 0; i < 20 && !full; i++ {
			c := testsvc.HoldTCP(t, s.Addr, 1)[0]
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			head := make([]byte, 5)
			if _, err := io.ReadFull(c, head); err != nil {
				t.Fatalf("held connection %d got no first packet: %v", i, err)
			}
			full = head[4] == 0xff // an ERR packet, not a protocol-10 greeting
		}
		if !full {
			t.Fatal("the server still greeted new connections after 20 held ones")
		}
		res := protoRun(t, "mysql://"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassOverloaded, "max_connections")
		res = protoRun(t, "mysql://root@"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassOverloaded, "too many connections")
	})
	t.Run("login", func(t *testing.T) {
		s := testsvc.MariaDB(t, "")
		res := protoRun(t, "mysql://root@"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassOK, "")
		if res.Capacity == nil || res.Capacity.Limit != 151 {
			t.Errorf("got capacity %+v, want limit 151 (the default max_connections)", res.Capacity)
		}
		res = protoRun(t, "mysql://root:wrong-pw@"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassAuth, "Access denied", "wrong-pw")
		res = protoRun(t, "mysql://root@"+s.Addr+"/nosuchdb", Module{})
		protoWant(t, res, patrol.ClassProtocol, "nosuchdb")
	})
}

func TestParseMySQLGreeting(t *testing.T) {
	hs, merr, err := parseMySQLGreeting(mysqlGreetingForTest("10.11.6-MariaDB", 42, "mysql_native_password"))
	if err != nil || merr != nil {
		t.Fatalf("got error %v / %v", err, merr)
	}
	if hs.ServerVersion != "10.11.6-MariaDB" || hs.ConnectionID != 42 || hs.AuthPlugin != "mysql_native_password" || len(hs.AuthData) != 20 {
		t.Errorf("got %+v", hs)
	}
	// The ERR packet a full server sends instead of its greeting: no SQLSTATE marker.
	_, merr, err = parseMySQLGreeting(append([]byte{0xff, 0x10, 0x04}, "Too many connections"...))
	if err != nil || merr == nil || merr.Code != 1040 || merr.Message != "Too many connections" {
		t.Errorf("got %+v, %v; want error 1040", merr, err)
	}
	_, merr, _ = parseMySQLGreeting(append([]byte{0xff, 0x15, 0x04}, "#28000Access denied"...))
	if merr == nil || merr.Code != 1045 || merr.State != "28000" || merr.Message != "Access denied" {
		t.Errorf("got %+v; want 1045 28000", merr)
	}
	for _, bad := range [][]byte{nil, {10}, {9, 'x', 0}, {0xff}, {10, '5', 0, 1, 2}} {
		if _, merr, err := parseMySQLGreeting(bad); err == nil && merr == nil {
			t.Errorf("parseMySQLGreeting(%q): got no error", bad)
		}
	}
}

// mysqlGreetingForTest builds a protocol-10 greeting as MariaDB sends it.
func mysqlGreetingForTest(version string, id uint32, plugin string) []byte {
	p := append([]byte{10}, version...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint32(p, id)
	p = append(p, "abcdefgh"...)
	p = append(p, 0)
	caps := uint32(mysqlProtocol41 | mysqlSecureConnection | mysqlPluginAuth | mysqlLongPassword)
	p = binary.LittleEndian.AppendUint16(p, uint16(caps))
	p = append(p, 45, 2, 0)
	p = binary.LittleEndian.AppendUint16(p, uint16(caps>>16))
	p = append(p, 21)
	p = append(p, make([]byte, 10)...)
	p = append(p, "ijklmnopqrst"...)
	p = append(p, 0)
	p = append(p, plugin...)
	return append(p, 0)
}

func FuzzMySQLGreeting(f *testing.F) {
	f.Add(mysqlGreetingForTest("8.0.36", 7, "caching_sha2_password"))
	f.Add(append([]byte{0xff, 0x10, 0x04}, "Too many connections"...))
	f.Add(append([]byte{0xff, 0x15, 0x04}, "#28000Access denied"...))
	f.Add([]byte{1, 0xfc, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		_, _, _ = parseMySQLGreeting(p)
		_, _ = parseMySQLRow(p, 3)
		_, _, _ = mysqlLenEnc(p)
		// The same bytes as a packet stream.
		r := bytes.NewReader(p)
		for range 4 {
			if _, _, err := readMySQLPacket(r); err != nil {
				break
			}
		}
	})
}
