package probe

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// protoRun builds and runs the probe for target with module m.
func protoRun(t *testing.T, target string, m Module) patrol.Result {
	t.Helper()
	tg, err := patrol.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(tg, m, nil)
	if err != nil {
		t.Fatalf("New(%s): %v", target, err)
	}
	res := p.Run(context.Background())
	t.Logf("%s details=%v capacity=%+v", res.String(), res.Details, res.Capacity)
	return res
}

// protoWant checks a result's class and that its error mentions want (when set), and
// that no password leaked into it.
func protoWant(t *testing.T, res patrol.Result, class patrol.Class, want string, secrets ...string) {
	t.Helper()
	if res.Class != class {
		t.Errorf("%s: got class %s (%q), want %s", res.Target, res.Class, res.Error, class)
	}
	if want != "" && !strings.Contains(res.Error+" "+res.Details["note"], want) {
		t.Errorf("%s: got error %q, note %q; want one mentioning %q", res.Target, res.Error, res.Details["note"], want)
	}
	for _, s := range secrets {
		all := res.Error + res.Target
		for k, v := range res.Details {
			all += k + v
		}
		if strings.Contains(all, s) {
			t.Errorf("%s: password %q leaked into the result: %q %v", res.Target, s, res.Error, res.Details)
		}
	}
}

func TestRedisLocal(t *testing.T) {
	addr := testsvc.Local(t, "Redis", "127.0.0.1:6379")
	res := protoRun(t, "redis://"+addr, Module{})
	protoWant(t, res, patrol.ClassOK, "")
	if res.Details["version"] == "" {
		t.Errorf("no version in details %v", res.Details)
	}
	if res.Capacity == nil || res.Capacity.What != "clients" || res.Capacity.Limit <= 0 || res.Capacity.Used < 1 {
		t.Errorf("got capacity %+v, want clients used>=1 of limit>0", res.Capacity)
	}
}

func TestRedisStates(t *testing.T) {
	t.Run("maxclients exhausted", func(t *testing.T) {
		s := testsvc.Redis(t, "--maxclients", "1")
		testsvc.HoldTCP(t, s.Addr, 1)
		time.Sleep(50 * time.Millisecond) // let the server accept the held connection
		res := protoRun(t, "redis://"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassOverloaded, "maxclients")
	})
	t.Run("requirepass", func(t *testing.T) {
		s := testsvc.Redis(t, "--requirepass", "s3cret-pw")
		res := protoRun(t, "redis://"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassOK, "authentication required")
		res = protoRun(t, "redis://:wrong-pw@"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassAuth, "credentials rejected", "wrong-pw")
		res = protoRun(t, "redis://:s3cret-pw@"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassOK, "", "s3cret-pw")
		if res.Capacity == nil || res.Capacity.Limit == 0 {
			t.Errorf("logged in, got capacity %+v, want a reading", res.Capacity)
		}
		res = protoRun(t, "redis://"+s.Addr, Module{Redis: RedisModule{Password: "s3cret-pw"}})
		protoWant(t, res, patrol.ClassOK, "", "s3cret-pw")
	})
	t.Run("role", func(t *testing.T) {
		s := testsvc.Redis(t)
		protoWant(t, protoRun(t, "redis://"+s.Addr+"?role=master", Module{}), patrol.ClassOK, "")
		protoWant(t, protoRun(t, "redis://"+s.Addr+"?role=replica", Module{}), patrol.ClassProtocol, "role is master, want replica")

		// A second server replicating from the first reports role replica (Redis's
		// INFO says "slave").
		r := testsvc.Redis(t, "--replicaof", "127.0.0.1", s.Addr[strings.LastIndex(s.Addr, ":")+1:])
		protoWant(t, protoRun(t, "redis://"+r.Addr+"?role=replica", Module{}), patrol.ClassOK, "")
		protoWant(t, protoRun(t, "redis://"+r.Addr+"?role=master", Module{}), patrol.ClassProtocol, "want master")
	})
}

func TestRedisBadRole(t *testing.T) {
	tg, _ := patrol.ParseTarget("redis://127.0.0.1:6379?role=leader")
	if _, err := New(tg, Module{}, nil); err == nil {
		t.Errorf("role=leader: got no error, want one")
	}
}

func TestReadRESP(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // describe() of the value, or "error"
	}{
		{"+PONG\r\n", `+"PONG"`},
		{"-ERR max number of clients reached\r\n", "error ERR max number of clients reached"},
		{":42\r\n", "integer 42"},
		{"$5\r\nhello\r\n", `bulk "hello"`},
		{"$-1\r\n", "null"},
		{"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", "array of 2"},
		{"$5\r\nhel", "error"},
		{"$99999999999\r\n", "error"},
		{"*99999\r\n", "error"},
		{"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "error"},
		{"HTTP/1.1 400 Bad Request\r\n", "error"},
		{"+" + strings.Repeat("x", respMaxLine+10) + "\r\n", "error"},
	} {
		v, err := readRESP(bufio.NewReader(strings.NewReader(tc.in)))
		got := v.describe()
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("readRESP(%.30q): got %s (err %v), want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzRESP(f *testing.F) {
	for _, s := range []string{"+PONG\r\n", "-NOAUTH Authentication required.\r\n", "$3\r\nabc\r\n",
		"*2\r\n$1\r\na\r\n:1\r\n", "*-1\r\n", "$-1\r\n", ":x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 8 {
			if _, err := readRESP(r); err != nil {
				return
			}
		}
	})
}
