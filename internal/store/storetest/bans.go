package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/store"
)

// RunBans is the suite every store.BanStore must pass. open makes a fresh, empty
// store for each subtest.
func RunBans(t *testing.T, open func(t *testing.T) store.BanStore) {
	t.Run("RoundTripAndReplace", func(t *testing.T) {
		db := open(t)
		ctx := t.Context()
		b1 := store.Ban{Addr: "203.0.113.7", Reason: "fast scan", Kind: "fast_scan", Actor: "portpatrol",
			Created: base, Expires: base.Add(10 * time.Minute), Duration: 10 * time.Minute, Count: 1,
			Evidence: json.RawMessage(`{"ports":[22,80]}`)}
		b2 := store.Ban{Addr: "2001:db8::1", Reason: "by hand", Kind: "manual", Actor: "alice",
			Created: base, Expires: base.Add(time.Hour), Duration: time.Hour, Count: 1, DryRun: true}
		for _, b := range []store.Ban{b1, b2} {
			if err := db.PutBan(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.ListBans(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.Ban{b2, b1}, got, cmpTime); diff != "" {
			t.Fatalf("bans (-want +got):\n%s", diff)
		}
		b1.Count, b1.Lifted, b1.LiftedBy = 2, base.Add(time.Minute), "bob"
		if err := db.PutBan(ctx, b1); err != nil {
			t.Fatal(err)
		}
		if got, _ = db.ListBans(ctx); len(got) != 2 || got[1].Count != 2 || got[1].LiftedBy != "bob" {
			t.Fatalf("after replace: got %+v", got)
		}
		// b1 ended (lifted) at base+1m, b2 expires at base+1h.
		n, err := db.DeleteBans(ctx, base.Add(30*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("delete: got %d, %v; want 1", n, err)
		}
		if got, _ = db.ListBans(ctx); len(got) != 1 || got[0].Addr != b2.Addr {
			t.Fatalf("after delete: got %+v", got)
		}
		if err := db.PutBan(ctx, store.Ban{}); err == nil {
			t.Fatal("a ban without an address was stored")
		}
	})
}

var cmpTime = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
