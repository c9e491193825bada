package alert_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// TestInhibitionIncremental: alerts open, change labels, severity and summary, fire,
// flap and resolve at random, under the default inhibitions and one of labels. After
// every Tick, which works out muting only for what changed, the alerts are muted as
// when muting is worked out for every alert (a new silence makes the next Tick do
// that).
func TestInhibitionIncremental(t *testing.T) {
	ctx := context.Background()
	now := t0
	cfg := alert.Config{
		Inhibit: append(append([]alert.InhibitRule(nil), alert.DefaultInhibitRules...),
			alert.InhibitRule{Source: []string{"role=db"}, Target: []string{"role=app"}, Equal: []string{"zone"}}),
		Grouping: alert.Grouping{GroupWait: time.Second, GroupInterval: 5 * time.Second},
	}
	sk := alert.SinkFunc(func(context.Context, []patrol.Notification) error { return nil })
	e, err := alert.New(ctx, cfg, alert.Deps{Sink: sk, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		State   patrol.AlertState
		MutedBy string
	}
	rows := func() map[string]row {
		out := map[string]row{}
		for _, a := range e.List(alert.Filter{}) {
			out[a.ID] = row{a.State, a.MutedBy}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	roles, zones := []string{"db", "app", "web"}, []string{"a", "b"}
	muted, checks := 0, 0
	for step := range 3000 {
		host := fmt.Sprintf("10.0.0.%d", 1+rng.IntN(3))
		sig := portSig(host, 1000+rng.IntN(8), "role="+roles[rng.IntN(len(roles))], "zone="+zones[rng.IntN(len(zones))])
		sig.At = now
		switch rng.IntN(6) {
		case 0:
			sig.Status, sig.Result.Class, sig.Result.Error = patrol.StatusUp, patrol.ClassOK, ""
		case 1:
			sig.Status, sig.Result.Class, sig.Result.Error = patrol.StatusUp, patrol.ClassSlow, ""
		case 2:
			sig.Result.Class, sig.Result.Error = patrol.ClassTimeout, "i/o timeout"
		case 3:
			sig.Flapping = rng.IntN(2) == 0
		}
		if err := e.Observe(ctx, sig); err != nil {
			t.Fatal(err)
		}
		if step%7 != 6 {
			continue
		}
		now = now.Add(time.Second)
		if err := e.Tick(ctx, now); err != nil {
			t.Fatal(err)
		}
		if step%21 != 20 {
			continue
		}
		got := rows()
		s, err := e.CreateSilence(ctx, patrol.Silence{Matchers: mustMatchers(t, "target=none"), Author: "test", EndsAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Tick(ctx, now); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rows(), got); diff != "" {
			t.Fatalf("step %d: muting worked out for what changed differs from muting worked out for every alert (-every +changed):\n%s", step, diff)
		}
		if err := e.ExpireSilence(ctx, s.ID, "test"); err != nil {
			t.Fatal(err)
		}
		checks++
		for _, r := range got {
			if r.MutedBy != "" {
				muted++
			}
		}
	}
	if muted == 0 {
		t.Fatal("no alert was ever inhibited: the test exercises nothing")
	}
	t.Logf("%d checks; %d muted alerts seen at them", checks, muted)
}
