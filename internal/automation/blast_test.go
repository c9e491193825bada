package automation

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// blastWorld is an R1 auto playbook whose step calls a real webhook for each target of
// pool "web" (poolSize targets), and a probe whose answers the test sets per target.
type blastWorld struct {
	e     *Engine
	rec   *memRecorder
	clk   *fakeClock
	mu    sync.Mutex
	sick  map[string]bool
	calls map[string]int
	n     int
}

func newBlastWorld(t *testing.T, poolSize int, br BlastRadius) *blastWorld {
	t.Helper()
	w := &blastWorld{rec: &memRecorder{}, clk: newFakeClock(), sick: map[string]bool{}, calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.calls[r.URL.Query().Get("t")]++
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	cfg := Config{Mode: ModeOn, BlastRadius: br, Fleet: Fleet{MaxActions: 1000}, Playbooks: []Playbook{{Name: "restart-web", Mode: PlaybookAuto,
		Trigger: Trigger{Labels: []string{"pool=web"}},
		Steps: []Step{{Name: "restart", Action: "http", Risk: R1, Params: Params{URL: srv.URL + "/?t={host}"},
			Verify: Verify{Window: time.Second, Interval: 100 * time.Millisecond}}}}}}
	var err error
	w.e, err = New(cfg, Deps{Recorder: w.rec, Clock: w.clk,
		Probe: func(_ context.Context, a patrol.Alert) (bool, string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.sick[a.Target] {
				return false, "refused"
			}
			return true, "connect ok"
		},
		PoolSize: func(label, value string) int {
			if label == "pool" && value == "web" {
				return poolSize
			}
			return 0
		}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *blastWorld) fail(host string) patrol.Alert {
	w.n++ // a new alert each time
	a := alertFor(fmt.Sprintf("a%d-%s", w.n, host), "tcp://"+host+":80", patrol.P0, map[string]string{"pool": "web"})
	w.e.HandleAlert(context.Background(), a)
	return a
}

func (w *blastWorld) called(host string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[host]
}

// In a pool of 8, one step acts on at most 25 % (2 targets) within the window; the third
// is refused as a recorded decision and escalates; after the window it may act again.
func TestBlastRadiusLimitsShareOfPool(t *testing.T) {
	w := newBlastWorld(t, 8, BlastRadius{})
	w.fail("web-1")
	w.fail("web-2")
	w.fail("web-3")
	if w.called("web-1") != 1 || w.called("web-2") != 1 || w.called("web-3") != 0 {
		t.Fatalf("calls %v: want web-1 and web-2 once, web-3 never", w.calls)
	}
	refused := w.rec.find(auditlog.KindDecision, "did nothing")
	if len(refused) == 1 {
		t.Logf("recorded: %s", refused[0].Reasons[0])
	}
	if len(refused) != 1 || refused[0].Target != "tcp://web-3:80" ||
		!strings.Contains(refused[0].Reasons[0], "did nothing: blast radius: step restart of playbook restart-web already acted on 2 target(s) of 8 in pool pool=web within 10m0s (the limit is 2, 25 % of the pool") {
		t.Fatalf("refusal: %+v\n%s", refused, w.rec.dump())
	}
	if esc := w.rec.find(auditlog.KindDecision, "escalated"); len(esc) != 1 || !strings.Contains(strings.Join(esc[0].Reasons, " "), "blast radius") {
		t.Errorf("the refused alert does not escalate with the reason: %+v", esc)
	}
	// The same target again is not a new target: the breaker governs it, not the pool.
	w.clk.Advance(time.Minute)
	w.fail("web-1")
	if w.called("web-1") != 2 {
		t.Errorf("web-1 again: %d calls, want 2", w.called("web-1"))
	}
	w.clk.Advance(10 * time.Minute)
	w.fail("web-3")
	if w.called("web-3") != 1 {
		t.Errorf("after the window web-3 got %d calls, want 1", w.called("web-3"))
	}
}

// Without a known pool size, and in a pool too small for 25 % to be one, a step acts on
// one target; targets without a pool or service label are not limited by it.
func TestBlastRadiusAtLeastOneAndUnpooled(t *testing.T) {
	for _, size := range []int{0, 3} {
		t.Run(fmt.Sprint("size ", size), func(t *testing.T) {
			w := newBlastWorld(t, size, BlastRadius{})
			w.fail("web-1")
			w.fail("web-2")
			if w.called("web-1") != 1 || w.called("web-2") != 0 {
				t.Errorf("calls %v: want only web-1", w.calls)
			}
		})
	}
	w := newBlastWorld(t, 0, BlastRadius{MaxPoolPercent: 100})
	w.fail("web-1")
	w.fail("web-2")
	if w.called("web-2") != 0 {
		t.Errorf("an unknown pool size allows one target even at 100 %%: %v", w.calls)
	}
}

// Between batches the targets acted on earlier must be healthy: while web-1 (restarted
// first) probes unhealthy again, web-2 waits; once web-1 is healthy, web-2 goes.
func TestBlastRadiusHealthCheckBetweenBatches(t *testing.T) {
	w := newBlastWorld(t, 40, BlastRadius{})
	w.fail("web-1")
	if w.called("web-1") != 1 {
		t.Fatalf("web-1 not restarted: %s", w.rec.dump())
	}
	w.mu.Lock()
	w.sick["tcp://web-1:80"] = true
	w.mu.Unlock()
	w.fail("web-2")
	if w.called("web-2") != 0 {
		t.Fatal("web-2 was acted on while web-1 of the same pool is unhealthy")
	}
	refused := w.rec.find(auditlog.KindDecision, "did nothing")
	if len(refused) != 1 || !strings.Contains(refused[0].Reasons[0], "blast radius: tcp://web-1:80, acted on earlier by step restart in pool pool=web, is not healthy (refused); the next target waits until it is") {
		t.Fatalf("refusal: %+v", refused)
	}
	w.mu.Lock()
	w.sick["tcp://web-1:80"] = false
	w.mu.Unlock()
	w.fail("web-2")
	if w.called("web-2") != 1 {
		t.Errorf("web-2 after web-1 is healthy: %d calls, want 1\n%s", w.called("web-2"), w.rec.dump())
	}
}
