package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/intrusion"
)

// banWorld serves the API's bans over a real banner in dry run, with
// 198.51.100.0/24 allowlisted.
type banWorld struct{ b *intrusion.Banner }

func (w banWorld) ListBans(ctx context.Context) ([]api.Ban, error) {
	bs, err := w.b.List(ctx)
	var out []api.Ban
	for _, b := range bs {
		ab := api.Ban{Addr: b.Addr, Active: b.Active(time.Now()), DryRun: b.DryRun, Kind: b.Kind, Reason: b.Reason, Actor: b.Actor,
			Created: b.Created, Expires: b.Expires, Duration: b.Duration.String(), Count: b.Count, LiftedBy: b.LiftedBy}
		if !b.Lifted.IsZero() {
			l := b.Lifted
			ab.Lifted = &l
		}
		out = append(out, ab)
	}
	return out, err
}

func (w banWorld) AddBan(ctx context.Context, a netip.Addr, d time.Duration, reason, by string) (api.Ban, error) {
	b, err := w.b.Ban(ctx, intrusion.BanRequest{Addr: a, Duration: d, Reason: reason, Actor: by})
	var ae *intrusion.AllowlistedError
	if errors.As(err, &ae) {
		return api.Ban{}, fmt.Errorf("%w: %w", api.ErrConflict, err)
	}
	return api.Ban{Addr: b.Addr, DryRun: b.DryRun, Kind: b.Kind, Reason: b.Reason, Actor: b.Actor, Created: b.Created,
		Expires: b.Expires, Duration: b.Duration.String(), Count: b.Count}, err
}

func (w banWorld) RemoveBan(ctx context.Context, a netip.Addr, reason, by string) error {
	return w.b.Unban(ctx, a, by, reason)
}

func TestBansCommands(t *testing.T) {
	allow := intrusion.NewAllowlist(nil, []intrusion.AllowRule{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Rule: "intrusion.allowlist[0] 198.51.100.0/24 at pp.yaml:9"}})
	w := banWorld{intrusion.NewBanner(intrusion.BannerConfig{Allowlist: allow})}
	srv := httptest.NewServer(api.New(api.Config{Bans: w, Tokens: api.StaticTokens{
		{ID: "t1", Name: "grafana", Role: api.RoleViewer, Secret: viewerToken},
		{ID: "t2", Name: "alice", Role: api.RoleOperator, Secret: operatorToken},
	}}))
	t.Cleanup(srv.Close)
	url := srv.URL
	out, errOut, code := runAPICmd(t, "bans", "ls", "--server", url, "--token", viewerToken)
	if code != 0 || strings.TrimSpace(out) != "No bans in force." {
		t.Fatalf("empty ls: exit %d, %q %q", code, out, errOut)
	}
	if _, errOut, code = runAPICmd(t, "bans", "add", "203.0.113.7", "-m", "scan", "--server", url, "--token", viewerToken); code == 0 || !strings.Contains(errOut, "operator") {
		t.Errorf("add as viewer: exit %d, %q", code, errOut)
	}
	if _, errOut, code = runAPICmd(t, "bans", "add", "203.0.113.300", "-m", "scan", "--server", url, "--token", operatorToken); code != exitUnknown || !strings.Contains(errOut, "not an IP address") {
		t.Errorf("bad address: exit %d, %q", code, errOut)
	}
	if _, errOut, code = runAPICmd(t, "bans", "add", "198.51.100.4", "-m", "test", "--server", url, "--token", operatorToken); code == 0 || !strings.Contains(errOut, "allowlisted by intrusion.allowlist[0] 198.51.100.0/24 at pp.yaml:9") {
		t.Errorf("allowlisted: exit %d, %q", code, errOut)
	}
	out, errOut, code = runAPICmd(t, "bans", "add", "203.0.113.7", "--for", "24h", "-m", "scanned every port", "--server", url, "--token", operatorToken)
	if code != 0 || !strings.Contains(out, "Dry run: would ban 203.0.113.7 for 24h0m0s") {
		t.Fatalf("add: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runAPICmd(t, "bans", "ls", "--all", "--server", url, "--token", viewerToken)
	if code != 0 || !strings.Contains(out, "203.0.113.7") || !strings.Contains(out, "dry run") || !strings.Contains(out, "scanned every port") {
		t.Fatalf("ls --all: exit %d, %q", code, out)
	}
	out, errOut, code = runAPICmd(t, "bans", "rm", "203.0.113.7", "-m", "false positive", "--server", url, "--token", operatorToken)
	if code != 0 || !strings.Contains(out, "Lifted the ban of 203.0.113.7.") {
		t.Fatalf("rm: exit %d, %q %q", code, out, errOut)
	}
	out, _, _ = runAPICmd(t, "bans", "ls", "--all", "--server", url, "--token", viewerToken)
	if !strings.Contains(out, "lifted by alice") {
		t.Fatalf("ls after rm: %q", out)
	}
}
