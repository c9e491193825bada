package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/web"
)

// fleet is cluster mode of the browser tests' world as one member sees it. It
// implements api.Cluster and is safe for concurrent use.
type fleet struct {
	mu sync.Mutex
	st api.ClusterStatus
}

func (f *fleet) ClusterStatus(context.Context) api.ClusterStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Members = append([]api.ClusterMember(nil), f.st.Members...)
	return st
}

func (f *fleet) change(fn func(*api.ClusterStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

// newFleet is 12 members in 3 locations sharing 30,000 targets: 4 serve members in
// eu-1 (s2 leads with token 41), 4 agents in us-1 and 4 in ap-1, answered by s1.
func newFleet() *fleet {
	now := time.Now()
	st := api.ClusterStatus{Self: "s1", Location: "eu-1", Connected: true, Leader: "s2", Token: 41, Epoch: 17,
		Lag: 12, Published: 1_284_551, Fenced: 3, Targets: 30_000, Locations: []string{"ap-1", "eu-1", "us-1"}}
	owned := []int{7_512, 7_488, 7_530, 7_470}
	for i := range 4 {
		st.Members = append(st.Members, api.ClusterMember{ID: fmt.Sprintf("s%d", i+1), Location: "eu-1", Role: "serve", Version: "v1.4.0",
			Started: now.Add(-time.Duration(26-i) * time.Hour), Owned: owned[i], Leader: i == 1})
	}
	for _, loc := range []string{"us-1", "ap-1"} {
		for i := range 4 {
			v := "v1.4.0"
			if loc == "ap-1" && i == 3 {
				v = "v1.3.2" // an agent not yet upgraded
			}
			st.Members = append(st.Members, api.ClusterMember{ID: fmt.Sprintf("%s-agent-%d", loc, i+1), Location: loc, Role: "agent", Version: v,
				Capacity: 20_000, Started: now.Add(-time.Duration(90+i*7) * time.Minute), Owned: owned[i]})
		}
	}
	return &fleet{st: st}
}

// serveCluster runs the API with f as its cluster (nil: cluster mode off), and the dashboard, over w.
func serveCluster(t *testing.T, w *world, f *fleet) string {
	t.Helper()
	b := api.NewBroker(api.BrokerConfig{})
	cfg := api.Config{Targets: w, History: w, Alerts: w, AlertActions: w, Silences: w, Windows: w, Deliveries: w, Audits: w,
		StatusNotes: w, Learned: w, Tokens: tokens, Broker: b, AnonymousRead: true, Heartbeat: 5 * time.Second}
	if f != nil {
		cfg.Cluster = f
	}
	mux := http.NewServeMux()
	mux.Handle(api.Prefix, api.New(cfg))
	mux.Handle("/", web.New(web.Config{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { b.Close(); srv.Close() })
	return srv.URL
}

func TestClusterPage(t *testing.T) {
	ctx := newBrowser(t)
	count := func(sel string) int {
		t.Helper()
		return get(t, ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	}
	text := func(sel string) string {
		t.Helper()
		return get(t, ctx, chromedp.Text(css(sel)))
	}
	contains := func(what, got string, want ...string) {
		t.Helper()
		for _, s := range want {
			if !strings.Contains(got, s) {
				t.Errorf("%s %q does not show %q", what, got, s)
			}
		}
	}

	t.Run("members by location, the leader with its token", func(t *testing.T) {
		f := newFleet()
		url := serveCluster(t, smallWorld(), f)
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/#/cluster"),
			chromedp.WaitVisible(css(`#cl-state[data-state="on"]`)),
			chromedp.WaitVisible(css(`#cl-members[data-rendered="12"]`)),
		)
		contains("state", text(`#cl-state`), "12 members (4 serve, 8 agents) in 3 locations", "this member s1 in eu-1", "connected",
			"leader s2", "token 41", "30,000 targets known", "epoch 17", "1,284,551 published", "12 lag", "0 buffered", "0 dropped", "3 fenced off")
		if n := count(`#cl-members tr[data-member]`); n != 12 {
			t.Errorf("got %d member rows, want 12", n)
		}
		var locs []string
		for _, loc := range []string{"ap-1", "eu-1", "us-1"} {
			locs = append(locs, text(fmt.Sprintf(`#cl-members h3[data-location=%q]`, loc)))
		}
		contains("locations", strings.Join(locs, " | "), "ap-1 4 members, 30,000 targets owned", "eu-1 4 members, 30,000 targets owned", "us-1 4 members")
		// The leader is marked, with its fencing token, and listed first in its location.
		contains("leader row", text(`#cl-members tr[data-member="s2"]`), "s2", "leader · token 41", "serve", "7,488", "v1.4.0", "h")
		if got := text(`#cl-members h3[data-location="eu-1"] + .table-wrap tbody tr:first-child`); !strings.HasPrefix(got, "s2") {
			t.Errorf("first eu-1 row %q, want the leader s2", got)
		}
		if n := count(`#cl-members .badge.leader`); n != 1 {
			t.Errorf("%d members marked leader, want 1", n)
		}
		contains("self row", text(`#cl-members tr[data-member="s1"]`), "(this member)", "1d 2h")
		contains("agent row", text(`#cl-members tr[data-member="ap-1-agent-4"]`), "agent", "v1.3.2", "20,000", "1h")
		if n := count(`#cl-members p.warn, #cl-disconnected`); n != 0 {
			t.Errorf("%d warnings on a healthy cluster, want none", n)
		}
		if takeShots() {
			run(t, ctx, 20*time.Second, chromedp.EmulateViewport(1280, 800), chromedp.Reload(), chromedp.WaitVisible(css(`#cl-members[data-rendered="12"]`)))
			screenshot(t, ctx, "cluster")
			run(t, ctx, 5*time.Second, chromedp.EmulateViewport(1280, 900))
		}
	})

	t.Run("a lost link, no leader, dropped results and an empty location are said", func(t *testing.T) {
		f := newFleet()
		url := serveCluster(t, smallWorld(), f)
		run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/#/cluster"), chromedp.WaitVisible(css(`#cl-members[data-rendered="12"]`)))
		// ap-1's agents are gone and so is the leader; this member lost NATS and drops what overflows.
		f.change(func(st *api.ClusterStatus) {
			var keep []api.ClusterMember
			for _, m := range st.Members {
				if m.Location != "ap-1" && m.ID != "s2" {
					keep = append(keep, m)
				}
			}
			st.Members, st.Leader, st.Token, st.Connected, st.Buffered, st.Dropped = keep, "", 0, false, 10_000, 517
		})
		// The page refreshes itself every 5s.
		run(t, ctx, 20*time.Second, chromedp.WaitVisible(css(`#cl-state[data-state="disconnected"]`)), chromedp.WaitVisible(css(`#cl-members[data-rendered="7"]`)))
		contains("state", text(`#cl-state`), "disconnected", "no leader", "10,000 buffered", "517 dropped")
		contains("link", text(`#cl-disconnected`), "cannot reach NATS", "buffers the results")
		contains("empty location", text(`#cl-members p[data-empty="ap-1"]`), "No live member in ap-1")
		if n := count(`#cl-members .badge.leader`); n != 0 {
			t.Errorf("%d members marked leader, want none", n)
		}
		if n := count(`#cl-state .stat.bad`); n != 2 {
			t.Errorf("%d figures marked bad, want 2 (no leader, dropped)", n)
		}
		// Connected again with a new leader: the page says so.
		f.change(func(st *api.ClusterStatus) {
			st.Connected, st.Leader, st.Token, st.Buffered = true, "s3", 42, 0
			for i := range st.Members {
				st.Members[i].Leader = st.Members[i].ID == "s3"
			}
		})
		run(t, ctx, 20*time.Second, chromedp.WaitVisible(css(`#cl-state[data-state="on"]`)))
		contains("state", text(`#cl-state`), "leader s3", "token 42")
		contains("leader row", text(`#cl-members tr[data-member="s3"]`), "leader · token 42")
	})

	t.Run("cluster mode off says how to turn it on", func(t *testing.T) {
		url := serveCluster(t, smallWorld(), nil)
		run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/#/cluster"), chromedp.WaitVisible(css(`#cl-state[data-state="off"]`)))
		contains("off state", text(`#cl-state`), "Cluster mode is off", "portpatrol serve --cluster", "cluster.url", "portpatrol agent", "docs/scale-out.md")
		if get(t, ctx, chromedp.Evaluate[bool](`!document.querySelector('#cl-members-panel').hidden`)) {
			t.Error("the members panel is shown with cluster mode off")
		}
		if got := text(`nav a.active`); got != "Cluster" {
			t.Errorf("active nav %q, want Cluster", got)
		}
	})
}
