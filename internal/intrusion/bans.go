package intrusion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/store"
)

// Enforcer puts bans in the kernel; *Table is the one portpatrol uses.
type Enforcer interface {
	Ban(addr netip.Addr, d time.Duration, comment string) error
	Unban(addr netip.Addr) error
	List() ([]KernelBan, error)
}

// BannerConfig configures a Banner. The zero value decides bans in dry run only,
// with the default times, and keeps them nowhere.
type BannerConfig struct {
	// Enforce puts bans in the kernel through Enforcer; false is dry run: bans are
	// decided, recorded and shown, never enforced.
	Enforce  bool
	Enforcer Enforcer
	// BanTime is the first ban's length; each recurrence doubles the last one, up to
	// MaxBanTime. Defaults 10 min and 7 days.
	BanTime    time.Duration
	MaxBanTime time.Duration
	// RecidiveWindow: a ban that starts within this long after the address's last
	// ban ended doubles it; later, it starts again at BanTime. Default 7 days.
	RecidiveWindow time.Duration
	// MaxPerMinute is the breaker: automatic bans beyond it within a minute are
	// refused (bans by hand are not counted). Default 30.
	MaxPerMinute int
	// Allowlist addresses are never banned, by hand or not.
	Allowlist *Allowlist
	// Store keeps bans across restarts; nil keeps them in memory only.
	Store store.BanStore
	// Recorder receives every ban and unban decision, refusals included; nil records
	// nothing.
	Recorder auditlog.Recorder
	Now      func() time.Time
	Logger   *slog.Logger
}

// AllowlistedError refuses a ban of an allowlisted address and names the rule.
type AllowlistedError struct {
	Addr netip.Addr
	Rule string
}

func (e *AllowlistedError) Error() string {
	return fmt.Sprintf("%s is allowlisted by %s: never banned", e.Addr, e.Rule)
}

// ErrBreakerOpen refuses an automatic ban beyond the bans-per-minute breaker.
var ErrBreakerOpen = errors.New("ban breaker open: too many bans in the last minute")

// BanRequest asks for a ban.
type BanRequest struct {
	Addr netip.Addr
	// Actor is "portpatrol" for a detector's ban or the user's name.
	Actor  string
	Reason string
	Kind   string
	// Duration overrides the escalation when positive (bans by hand).
	Duration time.Duration
	// Finding is the evidence, when a detector asked.
	Finding *Finding
}

// Banner decides bans: allowlist, escalation, breaker, dry run; it enforces them
// through the Enforcer, keeps them in the Store and records each decision. Safe for
// concurrent use.
type Banner struct {
	cfg    BannerConfig
	mu     sync.Mutex
	mem    map[string]store.Ban // when Store is nil
	recent []time.Time          // automatic bans in the last minute
	// dryRun and allow mirror cfg for readers that do not take mu.
	dryRun atomic.Bool
	allow  atomic.Pointer[Allowlist]
}

// NewBanner returns a Banner with cfg's defaults filled in.
func NewBanner(cfg BannerConfig) *Banner {
	b := &Banner{cfg: cfg.withDefaults(), mem: map[string]store.Ban{}}
	b.dryRun.Store(!b.cfg.Enforce)
	b.allow.Store(b.cfg.Allowlist)
	return b
}

// Reconfigure applies the settings of cfg a running Banner may change — Enforce,
// BanTime, MaxBanTime, RecidiveWindow, MaxPerMinute and Allowlist, defaults filled
// in — to the bans decided from now on; the Enforcer, Store, Recorder, clock and
// logger stay. Bans already in the kernel stay there until they expire or are
// lifted, whatever the new settings. Enforce without an Enforcer stays dry run.
func (b *Banner) Reconfigure(cfg BannerConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg.Enforcer, cfg.Store, cfg.Recorder, cfg.Now, cfg.Logger = b.cfg.Enforcer, b.cfg.Store, b.cfg.Recorder, b.cfg.Now, b.cfg.Logger
	b.cfg = cfg.withDefaults()
	b.dryRun.Store(!b.cfg.Enforce)
	b.allow.Store(b.cfg.Allowlist)
}

func (cfg BannerConfig) withDefaults() BannerConfig {
	if cfg.BanTime <= 0 {
		cfg.BanTime = 10 * time.Minute
	}
	if cfg.MaxBanTime <= 0 {
		cfg.MaxBanTime = 7 * 24 * time.Hour
	}
	if cfg.MaxBanTime < cfg.BanTime {
		cfg.MaxBanTime = cfg.BanTime
	}
	if cfg.RecidiveWindow <= 0 {
		cfg.RecidiveWindow = 7 * 24 * time.Hour
	}
	if cfg.MaxPerMinute <= 0 {
		cfg.MaxPerMinute = 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Enforcer == nil {
		cfg.Enforce = false
	}
	return cfg
}

// Allowlisted returns the rule that protects addr, if any.
func (b *Banner) Allowlisted(addr netip.Addr) (string, bool) { return b.allow.Load().Match(addr) }

// Allowlist returns the allowlist in force.
func (b *Banner) Allowlist() *Allowlist { return b.allow.Load() }

// DryRun reports whether bans are only decided, not enforced.
func (b *Banner) DryRun() bool { return b.dryRun.Load() }

func (b *Banner) record(ctx context.Context, r auditlog.Record) {
	if b.cfg.Recorder == nil {
		return
	}
	if _, err := b.cfg.Recorder.Append(ctx, r); err != nil {
		b.cfg.Logger.Error("audit record of a ban decision failed", "kind", r.Kind, "target", r.Target, "err", err)
	}
}

func (b *Banner) get(ctx context.Context, addr string) (store.Ban, bool, error) {
	if b.cfg.Store == nil {
		v, ok := b.mem[addr]
		return v, ok, nil
	}
	all, err := b.cfg.Store.ListBans(ctx)
	if err != nil {
		return store.Ban{}, false, err
	}
	for _, v := range all {
		if v.Addr == addr {
			return v, true, nil
		}
	}
	return store.Ban{}, false, nil
}

func (b *Banner) put(ctx context.Context, v store.Ban) error {
	if b.cfg.Store == nil {
		b.mem[v.Addr] = v
		return nil
	}
	return b.cfg.Store.PutBan(ctx, v)
}

// Ban bans req.Addr, or refuses with an *AllowlistedError or ErrBreakerOpen. An
// address already banned by a detector keeps its ban (a finding repeated during the
// ban does not escalate it); a ban by hand replaces it.
func (b *Banner) Ban(ctx context.Context, req BanRequest) (store.Ban, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	addr := req.Addr.Unmap()
	auto := req.Actor == "" || req.Actor == "portpatrol"
	if req.Actor == "" {
		req.Actor = "portpatrol"
	}
	if req.Kind == "" {
		req.Kind = "manual"
	}
	var evidence json.RawMessage
	if req.Finding != nil {
		evidence, _ = json.Marshal(req.Finding)
	}
	rec := auditlog.Record{Kind: auditlog.KindBan, Actor: req.Actor, Target: addr.String(),
		Reasons: []string{req.Reason}, Evidence: evidence}
	if !addr.IsValid() {
		return store.Ban{}, errors.New("ban: invalid address")
	}
	if rule, ok := b.cfg.Allowlist.Match(addr); ok {
		err := &AllowlistedError{Addr: addr, Rule: rule}
		rec.Outcome = "refused: " + err.Error()
		b.record(ctx, rec)
		return store.Ban{}, err
	}
	prev, had, err := b.get(ctx, addr.String())
	if err != nil {
		return store.Ban{}, fmt.Errorf("ban %s: %w", addr, err)
	}
	if auto && had && prev.Active(now) {
		return prev, nil
	}
	if auto {
		cut := now.Add(-time.Minute)
		b.recent = slices.DeleteFunc(b.recent, func(t time.Time) bool { return t.Before(cut) })
		if len(b.recent) >= b.cfg.MaxPerMinute {
			rec.Outcome = "refused: " + ErrBreakerOpen.Error()
			b.record(ctx, rec)
			return store.Ban{}, fmt.Errorf("ban %s: %w (%d per minute)", addr, ErrBreakerOpen, b.cfg.MaxPerMinute)
		}
	}
	d, count := b.cfg.BanTime, 1
	if had && !prev.DryRun {
		ended := prev.Expires
		if !prev.Lifted.IsZero() && prev.Lifted.Before(ended) {
			ended = prev.Lifted
		}
		if now.Sub(ended) < b.cfg.RecidiveWindow {
			d, count = min(prev.Duration*2, b.cfg.MaxBanTime), prev.Count+1
			rec.Reasons = append(rec.Reasons, fmt.Sprintf("recurrence %d: the last ban of %s doubled, capped at %s", count, prev.Duration, b.cfg.MaxBanTime))
		}
	}
	if req.Duration > 0 {
		d = req.Duration
	}
	v := store.Ban{Addr: addr.String(), Reason: req.Reason, Kind: req.Kind, Actor: req.Actor,
		Created: now, Expires: now.Add(d), Duration: d, Count: count, DryRun: !b.cfg.Enforce, Evidence: evidence}
	if b.cfg.Enforce {
		if err := b.cfg.Enforcer.Ban(addr, d, fmt.Sprintf("%s: %s", req.Kind, req.Reason)); err != nil {
			rec.Outcome = "failed: " + err.Error()
			b.record(ctx, rec)
			return store.Ban{}, err
		}
		rec.Outcome = fmt.Sprintf("banned for %s", d)
	} else {
		rec.Outcome = fmt.Sprintf("dry run: would ban for %s", d)
	}
	if auto {
		b.recent = append(b.recent, now)
	}
	if err := b.put(ctx, v); err != nil {
		b.cfg.Logger.Error("storing a ban failed; the kernel still lifts it on time", "addr", addr, "err", err)
	}
	b.record(ctx, rec)
	b.cfg.Logger.Info("ban", "addr", addr, "for", d, "count", count, "dry_run", v.DryRun, "actor", req.Actor, "reason", req.Reason)
	return v, nil
}

// Unban lifts the ban of addr by hand.
func (b *Banner) Unban(ctx context.Context, addr netip.Addr, actor, reason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	addr = addr.Unmap()
	now := b.cfg.Now()
	rec := auditlog.Record{Kind: auditlog.KindUnban, Actor: actor, Target: addr.String(), Reasons: []string{reason}}
	prev, had, err := b.get(ctx, addr.String())
	if err != nil {
		return fmt.Errorf("unban %s: %w", addr, err)
	}
	if b.cfg.Enforce {
		if err := b.cfg.Enforcer.Unban(addr); err != nil {
			rec.Outcome = "failed: " + err.Error()
			b.record(ctx, rec)
			return err
		}
	}
	if had && prev.Lifted.IsZero() {
		prev.Lifted, prev.LiftedBy = now, actor
		if err := b.put(ctx, prev); err != nil {
			return fmt.Errorf("unban %s: %w", addr, err)
		}
	}
	rec.Outcome = "lifted"
	if !had || !prev.Active(now) && !prev.DryRun {
		rec.Outcome = "lifted (was not banned)"
	}
	b.record(ctx, rec)
	return nil
}

// List returns every ban kept, active or ended, ordered by address.
func (b *Banner) List(ctx context.Context) ([]store.Ban, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.Store != nil {
		return b.cfg.Store.ListBans(ctx)
	}
	out := make([]store.Ban, 0, len(b.mem))
	for _, v := range b.mem {
		out = append(out, v)
	}
	slices.SortFunc(out, func(x, y store.Ban) int { return cmpAddr(x.Addr, y.Addr) })
	return out, nil
}

func cmpAddr(a, b string) int {
	x, ex := netip.ParseAddr(a)
	y, ey := netip.ParseAddr(b)
	if ex != nil || ey != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}

// Active returns how many bans are enforced now (dry-run ones are not).
func (b *Banner) Active(ctx context.Context) (int, error) {
	all, err := b.List(ctx)
	if err != nil {
		return 0, err
	}
	b.mu.Lock() // Reconfigure replaces cfg
	now := b.cfg.Now()
	b.mu.Unlock()
	n := 0
	for _, v := range all {
		if v.Active(now) {
			n++
		}
	}
	return n, nil
}

// Reconcile makes the kernel's sets agree with the store: every active ban kept is
// put in the kernel for the time it has left, and every element the store does not
// know is removed. Bans seen to have expired are marked so and their unban
// recorded. It returns how many bans it re-applied and removed.
func (b *Banner) Reconcile(ctx context.Context) (applied, removed int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	var all []store.Ban
	if b.cfg.Store != nil {
		if all, err = b.cfg.Store.ListBans(ctx); err != nil {
			return 0, 0, fmt.Errorf("reconcile bans: %w", err)
		}
	} else {
		for _, v := range b.mem {
			all = append(all, v)
		}
	}
	want := map[netip.Addr]store.Ban{}
	for _, v := range all {
		if v.Active(now) {
			if a, err := netip.ParseAddr(v.Addr); err == nil {
				want[a] = v
			}
			continue
		}
		if !v.DryRun && v.Lifted.IsZero() {
			v.Lifted, v.LiftedBy = v.Expires, "expired"
			if err := b.put(ctx, v); err != nil {
				return 0, 0, fmt.Errorf("reconcile bans: %w", err)
			}
			b.record(ctx, auditlog.Record{Kind: auditlog.KindUnban, Actor: "portpatrol", Target: v.Addr,
				Reasons: []string{fmt.Sprintf("the ban of %s ended at %s", v.Duration, v.Expires.UTC().Format(time.RFC3339))}, Outcome: "expired"})
		}
	}
	if !b.cfg.Enforce {
		return 0, 0, nil
	}
	have, err := b.cfg.Enforcer.List()
	if err != nil {
		return 0, 0, fmt.Errorf("reconcile bans: %w", err)
	}
	inKernel := map[netip.Addr]bool{}
	for _, k := range have {
		a := k.Addr.Unmap()
		inKernel[a] = true
		if _, ok := want[a]; !ok {
			if err := b.cfg.Enforcer.Unban(a); err != nil {
				return applied, removed, fmt.Errorf("reconcile bans: %w", err)
			}
			removed++
		}
	}
	for a, v := range want {
		if inKernel[a] {
			continue
		}
		if err := b.cfg.Enforcer.Ban(a, v.Expires.Sub(now), fmt.Sprintf("%s: %s", v.Kind, v.Reason)); err != nil {
			return applied, removed, fmt.Errorf("reconcile bans: %w", err)
		}
		applied++
	}
	return applied, removed, nil
}
