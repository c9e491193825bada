package hostwatch

import (
	"context"
	"slices"
	"testing"
	"time"
)

// learnRedis learns a redis-server (pid 100) on 127.0.0.1:6379 in h, and returns the
// identity of its process.
func learnRedis(h *harness) ProcID {
	id := ProcID{Exe: "/usr/bin/redis-server", Comm: "redis-server", Cgroup: "/system.slice/redis.service", Start: h.now}
	h.procs.set(100, id)
	h.src.set(sock("127.0.0.1:6379", 10, "redis-server", 100))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	h.wantEvents("learning")
	return id
}

func listed(t *testing.T, w *Watch, bind string) Listener {
	t.Helper()
	for _, l := range w.List() {
		if l.Bind.String() == bind {
			return l
		}
	}
	t.Fatalf("%s not listed: %+v", bind, w.List())
	return Listener{}
}

func TestGoneListenerOfExitedProcessIsRetiredWithOnePage(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, Config{Store: st})
	learnRedis(h)
	const target = "tcp://127.0.0.1:6379"

	h.src.set()
	h.procs.exit(100)
	h.step(2)
	h.wantEvents("vanished", is("unreachable", "", target, true))
	l := listed(t, h.w, "127.0.0.1:6379")
	if l.State != StateGone || l.Fate != FateExited || !l.ForgetAt.Equal(l.GoneSince.Add(24*time.Hour)) || !l.GoneSince.Equal(h.now.Add(-h.w.cfg.Interval)) {
		t.Fatalf("gone listener: got %+v, want gone since the first dump it missed, exited, retired a day after it went", l)
	}

	// A day of dumps (at detail-dump pace): no further event until it is retired.
	for range 24 * 12 {
		h.now = h.now.Add(5 * time.Minute)
		h.step(1)
	}
	h.wantEvents("a day gone", is("unreachable", "", target, false))
	if l := listed(t, h.w, "127.0.0.1:6379"); l.State != StateRetired {
		t.Fatalf("after a day: got %+v, want retired", l)
	}
	if got := targetsOf(h.w); len(got) != 0 {
		t.Errorf("retired listener still a target: %v", got)
	}

	// After a restart it stays retired and silent.
	h.flush()
	h2 := newHarness(t, Config{Store: st})
	h2.step(20)
	h2.wantEvents("after a restart")
	if l := listed(t, h2.w, "127.0.0.1:6379"); l.State != StateRetired {
		t.Errorf("after a restart: got %+v, want retired", l)
	}
	if got := h2.w.Targets(); len(got) != 0 {
		t.Errorf("targets after a restart: %+v", got)
	}

	// Forgetting it removes it for good.
	got, err := h2.w.ForgetGone(context.Background())
	if err != nil || !slices.Equal(got, []string{target}) {
		t.Fatalf("ForgetGone: got %v, %v; want [%s]", got, err, target)
	}
	if ls := h2.w.List(); len(ls) != 0 {
		t.Errorf("listed after forget: %+v", ls)
	}
	h2.wantEvents("forgetting a retired listener")

	// Back on the same port: learned afresh.
	h2.src.set(sock("127.0.0.1:6379", 11, "redis-server", 101))
	h2.step(1)
	if l := listed(t, h2.w, "127.0.0.1:6379"); l.State != StateLearning {
		t.Errorf("back after forget: got %+v, want learning", l)
	}
}

func TestCrashRestartingProcessIsNotRetired(t *testing.T) {
	h := newHarness(t, Config{})
	id := learnRedis(h)
	h.src.set()
	h.procs.exit(100)
	// systemd starts it again; it crashes before it listens, again and again.
	id.Start = h.now.Add(h.w.cfg.Interval)
	h.procs.set(101, id)
	h.step(2)
	h.wantEvents("vanished", is("unreachable", "", "tcp://127.0.0.1:6379", true))
	l := listed(t, h.w, "127.0.0.1:6379")
	if l.State != StateGone || l.Fate != FateRestarting || !l.ForgetAt.IsZero() {
		t.Fatalf("got %+v, want gone, restarting, no retirement", l)
	}
	h.now = h.now.Add(48 * time.Hour)
	h.step(1)
	if l := listed(t, h.w, "127.0.0.1:6379"); l.State != StateGone {
		t.Fatalf("after two days of restarts: got %+v, want still gone", l)
	}
	h.wantEvents("while restarting")

	// It gives up: now it has exited, and is retired a day later.
	h.procs.exit(101)
	h.now = h.now.Add(5 * time.Second)
	h.step(1)
	if l := listed(t, h.w, "127.0.0.1:6379"); l.Fate != FateExited || !l.ForgetAt.Equal(h.now.Add(24*time.Hour)) {
		t.Fatalf("after the restarts stopped: got %+v", l)
	}
}

func TestOtherProcessOfSameProgramIsNotARestart(t *testing.T) {
	h := newHarness(t, Config{})
	id := learnRedis(h)
	h.procs.set(90, id) // started before the listener went: another instance
	h.src.set()
	h.procs.exit(100)
	h.step(2)
	if l := listed(t, h.w, "127.0.0.1:6379"); l.Fate != FateExited {
		t.Fatalf("got %+v, want exited", l)
	}
}

func TestRunningProcessWithoutItsListenerIsNotRetired(t *testing.T) {
	h := newHarness(t, Config{})
	learnRedis(h)
	h.src.set()
	h.step(2)
	h.now = h.now.Add(48 * time.Hour)
	h.step(1)
	if l := listed(t, h.w, "127.0.0.1:6379"); l.State != StateGone || l.Fate != FateRunning {
		t.Fatalf("got %+v, want gone with its process running", l)
	}
}

func TestHandResolveOfGoneListenerSticks(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, Config{Store: st})
	learnRedis(h)
	const target = "tcp://127.0.0.1:6379"
	h.src.set()
	h.step(2)
	h.wantEvents("vanished", is("unreachable", "", target, true))
	<-h.w.Changes()

	muted := h.w.Resolved(context.Background(), target)
	if len(muted) != 1 || !muted[0].Muted {
		t.Fatalf("Resolved: got %+v, want the listener muted", muted)
	}
	if got := h.w.Targets(); len(got) != 0 {
		t.Errorf("a muted gone listener is still probed: %+v", got)
	}
	h.step(100)
	h.wantEvents("after the hand resolve")

	h.flush()
	h2 := newHarness(t, Config{Store: st})
	h2.step(20)
	h2.wantEvents("after a restart")
	if got := h2.w.Targets(); len(got) != 0 {
		t.Errorf("a muted gone listener is probed after a restart: %+v", got)
	}
	// Back: watched and probed again, and its next loss pages.
	h2.src.set(sock("127.0.0.1:6379", 12, "redis-server", 102))
	h2.step(1)
	h2.wantEvents("back after the hand resolve")
	if got := targetsOf(h2.w); !slices.Equal(got, []string{target}) {
		t.Errorf("targets when back: %v", got)
	}
	h2.src.set()
	h2.step(2)
	h2.wantEvents("gone again", is("unreachable", "", target, true))
}

func TestIgnoredListenersAreNeverLearned(t *testing.T) {
	var ig Ignore
	for _, p := range []string{"9222", "20000-20010"} {
		r, err := ParsePortRange(p)
		if err != nil {
			t.Fatal(err)
		}
		ig.Ports = append(ig.Ports, r)
	}
	ig.Processes = []string{"chrome"}
	ig.Cgroups = []string{"/user.slice/*/app-*.scope"}
	ig.Ephemeral, ig.EphemeralAfter = PortRange{40000, 50000}, time.Hour
	h := newHarness(t, Config{Ignore: ig})
	app := sock("127.0.0.1:7000", 5, "app", 500)
	app.Owner.Cgroup = "/user.slice/user-1000.slice/app-code-1234.scope/sub"
	h.src.set(
		sock("127.0.0.1:9222", 1, "node", 100),
		sock("127.0.0.1:20005", 2, "server", 200),
		sock("127.0.0.1:8080", 3, "chrome", 300),
		sock("127.0.0.1:45000", 4, "pytest", 400),
		app,
		sock("127.0.0.1:6379", 6, "redis-server", 600),
	)
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	var got []string
	for _, l := range h.w.List() {
		got = append(got, l.Bind.String()+" "+string(l.State))
	}
	want := []string{"127.0.0.1:6379 learned", "127.0.0.1:45000 learning"}
	if !slices.Equal(got, want) {
		t.Errorf("listed: got %q, want %q", got, want)
	}
	if l := listed(t, h.w, "127.0.0.1:45000"); l.LearnAt.Sub(l.FirstSeen) != time.Hour {
		t.Errorf("an ephemeral port is learned after %s, want 1h", l.LearnAt.Sub(l.FirstSeen))
	}
	h.src.set()
	h.step(4)
	h.wantEvents("ignored listeners gone", is("unreachable", "", "tcp://127.0.0.1:6379", true))
}

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want PortRange
		ok   bool
	}{
		{"9222", PortRange{9222, 9222}, true},
		{"20000-20999", PortRange{20000, 20999}, true},
		{" 1 - 2 ", PortRange{1, 2}, true},
		{"0", PortRange{}, false},
		{"70000", PortRange{}, false},
		{"20-10", PortRange{}, false},
		{"ssh", PortRange{}, false},
	} {
		got, err := ParsePortRange(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
