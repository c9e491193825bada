package automation

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// 1,000 randomized decisions under fuzzed approvals (the requester, portpatrol itself,
// repeats, people with and without the service-owner role, expiry, denial,
// acknowledgement and resolution in between) never execute an R2 or R3 step without its
// approvals. The steps are real webhook calls to a receiver that logs them.
func TestNoRiskyStepRunsWithoutItsApprovals(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{} // alert target -> calls received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls[string(b)]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	tiers := []Tier{R0, R1, R2, R3}
	var cfg Config
	cfg.Mode = ModeOn
	cfg.ServiceOwners = []string{"carol"}
	cfg.Breaker.Attempts = 1000
	cfg.Fleet.MaxActions = 100000
	for _, mode := range []string{PlaybookSuggest, PlaybookAuto} {
		for _, tier := range tiers {
			cfg.Playbooks = append(cfg.Playbooks, Playbook{Name: fmt.Sprintf("%s-%s", mode, tier), Mode: mode,
				Trigger: Trigger{Labels: []string{"pb=" + mode + "-" + string(tier)}},
				Steps: []Step{{Name: "call", Action: "http", Risk: tier, Params: Params{URL: srv.URL, Body: "{target}"},
					Verify: Verify{Window: time.Second, Interval: time.Second}}}})
		}
	}
	clk := newFakeClock()
	rec := &memRecorder{}
	e, err := New(cfg, Deps{Recorder: rec, Clock: clk, Probe: func(context.Context, patrol.Alert) (bool, string) { return true, "ok" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(16, 2026))
	people := []string{"alice", "bob", "carol", "dave", Actor, ""}
	tierOf := map[string]Tier{}
	seen := map[string]Request{}
	refused := 0
	for i := range 1000 {
		mode := []string{PlaybookSuggest, PlaybookAuto}[rng.IntN(2)]
		tier := tiers[rng.IntN(4)]
		target := fmt.Sprintf("tcp://10.0.%d.%d:80", i/250, i%250)
		tierOf[target] = tier
		a := alertFor(fmt.Sprint("a", i), target, patrol.P0, map[string]string{"pb": mode + "-" + string(tier)})
		var reqID string
		if rng.IntN(2) == 0 {
			e.HandleAlert(ctx, a)
		} else if r, err := e.RequestRun(ctx, a, mode+"-"+string(tier), 0, people[rng.IntN(4)]); err == nil {
			reqID = r.ID
		}
		if reqID == "" {
			for _, r := range e.Requests() {
				if r.AlertID == a.ID {
					reqID = r.ID
				}
			}
		}
		for range rng.IntN(5) {
			switch rng.IntN(10) {
			case 0:
				clk.Advance(time.Duration(rng.IntN(20)) * time.Minute)
			case 1:
				_, _ = e.Deny(ctx, reqID, Approver{Name: people[rng.IntN(4)]}, "no")
			case 2:
				b := a
				b.State, b.AckedBy = patrol.AlertAcknowledged, "erin"
				e.HandleAlert(ctx, b)
			case 3:
				b := a
				b.State = patrol.AlertResolved
				e.HandleAlert(ctx, b)
			default:
				var roles []string
				if rng.IntN(3) == 0 {
					roles = []string{RoleServiceOwner}
				}
				if _, err := e.Approve(ctx, reqID, Approver{Name: people[rng.IntN(len(people))], Roles: roles}, ""); err != nil {
					refused++
				}
			}
			e.Wait()
		}
		// Decided requests are forgotten a day after their expiry; keep every one seen.
		for _, r := range e.Requests() {
			seen[r.ID] = r
		}
	}
	e.Wait()
	for _, r := range e.Requests() {
		seen[r.ID] = r
	}

	byTarget := map[string][]Request{}
	for _, r := range seen {
		byTarget[r.Plan.Target] = append(byTarget[r.Plan.Target], r)
	}
	ran := map[Tier]int{}
	mu.Lock()
	defer mu.Unlock()
	for target, n := range calls {
		tier := tierOf[target]
		ran[tier] += n
		if tier != R2 && tier != R3 {
			continue
		}
		ok := false
		for _, r := range byTarget[target] {
			if r.State == StateApproved && quorum(t, r, cfg.ServiceOwners) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s step on %s ran %d time(s) without an approved request meeting its quorum: %+v", tier, target, n, byTarget[target])
		}
	}
	t.Logf("steps run by tier: %v; approvals refused: %d", ran, refused)
	if ran[R2] == 0 || ran[R3] == 0 || refused == 0 {
		t.Errorf("the randomized run did not exercise both approved and refused paths: ran %v, refused %d", ran, refused)
	}
}

// quorum checks a request's approvals from scratch.
func quorum(t *testing.T, r Request, owners []string) bool {
	seen := map[string]bool{}
	owner := false
	for _, a := range r.Approvals {
		if a.By == "" || a.By == r.RequestedBy || a.By == Actor || seen[a.By] || a.BreakGlass {
			t.Errorf("request %s has an invalid approval %+v (requested by %s)", r.ID, a, r.RequestedBy)
			return false
		}
		seen[a.By] = true
		if strings.Contains(strings.Join(a.Roles, ","), RoleServiceOwner) || contains(owners, a.By) {
			owner = true
		}
	}
	if r.Plan.Tier == R3 {
		return len(seen) >= 2 && owner
	}
	return len(seen) >= 1
}
