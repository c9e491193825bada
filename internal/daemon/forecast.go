package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/anomaly"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/store"
)

// Capacity forecasts: every used/limit pair a probe reads (Redis clients of maxclients,
// MySQL and PostgreSQL connections of their maximum) is a trend of its own
// (anomaly.Trend, one point per 5-minute window), and a target whose trend reaches its
// limit soon has one alert, rule "anomaly:forecast": P2 under forecastPage, P3 under
// forecastWarn, with the forecast in words.
const (
	forecastMetric = "forecast"
	forecastPage   = 30 * time.Minute
	forecastWarn   = 24 * time.Hour
	// An open forecast alert goes back from P2 to P3 over forecastCalm, and clears when
	// no forecast is under forecastClear: a forecast that wavers around a threshold
	// does not open and close an alert every window.
	forecastCalm  = 45 * time.Minute
	forecastClear = 36 * time.Hour
	// forecastPrefix starts the store key of a trend: "trend:<what> <target>".
	forecastPrefix = "trend:"
)

// forecast is a target's capacity trend and the severity of the alert it raised.
type forecast struct {
	trend anomaly.Trend
	what  string
	last  anomaly.Forecast
	at    int64 // unix nanoseconds of the latest point
	sent  string
	dirty bool
}

// forecastPoint adds a window's mean capacity used and its limit to the target's trend.
// The caller holds t.mu.
func (t *anomTarget) forecastPoint(name string, end time.Time, used, limit float64) {
	if t.fc == nil || t.fc.what != name {
		sent := ""
		if t.fc != nil {
			sent = t.fc.sent
		}
		t.fc = &forecast{what: name, sent: sent}
	}
	fc, err := t.fc.trend.Observe(end, used, limit)
	if err != nil {
		return
	}
	t.fc.last, t.fc.at, t.fc.dirty = fc, end.UnixNano(), true
}

// restoreTrend loads a stored trend ("trend:<what> <target>"); a state it cannot use is
// logged and skipped, and that trend starts again.
func (f *anomalyFeeder) restoreTrend(row store.AnomalyState) bool {
	what, target, ok := strings.Cut(strings.TrimPrefix(row.Key, forecastPrefix), " ")
	fc := &forecast{what: what, at: row.Last.UnixNano()}
	if !ok || what == "" || target == "" {
		f.logger.Warn("anomaly state with an unknown key skipped", "key", row.Key)
		return false
	}
	if err := fc.trend.UnmarshalBinary(row.State); err != nil {
		f.logger.Warn("capacity trend skipped: it starts again", "key", row.Key, "err", err)
		return false
	}
	fc.last = fc.trend.Current()
	t := f.target(target)
	t.mu.Lock()
	if t.fc != nil {
		fc.sent = t.fc.sent
	}
	t.fc = fc
	t.mu.Unlock()
	return true
}

// forecastOpen records that target's forecast alert is open at severity sev, found so at
// start: the next window updates or clears it.
func (f *anomalyFeeder) forecastOpen(target, sev string) {
	t := f.target(target)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fc == nil {
		t.fc = &forecast{}
	}
	t.fc.sent = sev
}

// forecastSeverity is the severity a forecast calls for, given the one already sent.
func forecastSeverity(fc anomaly.Forecast, sent string) string {
	switch {
	case !fc.OK:
		return ""
	case fc.ETA < forecastPage, sent == "P2" && fc.ETA < forecastCalm:
		return "P2"
	case fc.ETA < forecastWarn, sent != "" && fc.ETA < forecastClear:
		return "P3"
	}
	return ""
}

// decideForecast raises, changes or clears the target's forecast alert. The caller holds
// t.mu.
func (t *anomTarget) decideForecast(ctx context.Context, f *anomalyFeeder, job *schedule.Job, ns int64) {
	fc := t.fc
	if fc == nil {
		return
	}
	sev := forecastSeverity(fc.last, fc.sent)
	if sev == fc.sent {
		return
	}
	a := alert.Anomaly{Target: t.id, Metric: forecastMetric, Active: sev != "", Severity: sev, At: time.Unix(0, ns), Labels: anomalyLabels(job)}
	if sev != "" {
		a.Summary = fmt.Sprintf("%s: %s", t.id, forecastWords(fc.what, fc.last))
		a.Why = forecastWhy(fc.what, fc.last)
	} else {
		a.Severity = fc.sent
		a.Why = fmt.Sprintf("%s no longer forecast to reach its limit within %s", fc.what, forecastClear)
	}
	err := f.raise(ctx, a)
	if errors.Is(err, errNotLeading) {
		return
	}
	if err != nil && ctx.Err() == nil {
		f.logger.Warn("forecast alert", "target", t.id, "err", err)
	}
	fc.sent = sev
}

// forecastWords says a forecast in one line: "at this rate clients reach their limit
// (10000) in 3h10m".
func forecastWords(what string, fc anomaly.Forecast) string {
	if fc.ETA == 0 {
		return fmt.Sprintf("%s at their limit (%.0f of %.0f)", what, fc.Used, fc.Limit)
	}
	return fmt.Sprintf("at this rate %s reach their limit (%.0f) in %s", what, fc.Limit, roundETA(fc.ETA))
}

// forecastWhy is the alert's description: the reading, the rate and what it was fitted on.
func forecastWhy(what string, fc anomaly.Forecast) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %.0f of %.0f now (%.0f%%), rising %s over the last %s",
		what, fc.Used, fc.Limit, 100*fc.Used/fc.Limit, rateWords(fc.Rate), roundETA(fc.Span))
	if fc.Horizon == "long" {
		b.WriteString(" of hourly means, day against same hour of other days; the line runs through the daily peaks")
	}
	fmt.Fprintf(&b, ".\n%s.\nForecasts: P2 under %s, P3 under %s (docs/anomaly.md, \"Capacity forecasts\").",
		forecastWords(what, fc), forecastPage, forecastWarn)
	return b.String()
}

// rateWords says a rate per second as per minute, hour or day, whichever reads best.
func rateWords(perSec float64) string {
	switch {
	case perSec*60 >= 1:
		return fmt.Sprintf("%.3g a minute", perSec*60)
	case perSec*3600 >= 1:
		return fmt.Sprintf("%.3g an hour", perSec*3600)
	}
	return fmt.Sprintf("%.3g a day", perSec*86400)
}

// roundETA rounds a duration for people: minutes under a day, days under 90 days.
func roundETA(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < 24*time.Hour:
		return d.Round(time.Minute).String()
	case d < 90*24*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return "over 90 days"
}

// capacityAPI is the API's view of the forecasts; nil when the detector is off.
func (d *Daemon) capacityAPI(a *apiAdapter) api.Capacity {
	if d.anomalies == nil {
		return nil
	}
	return a
}

var _ api.Capacity = (*apiAdapter)(nil)

// CapacityForecasts lists every used/limit pair, what runs out first at the top, with
// the long horizon fitted over the last since (0: all it keeps, 30 days).
func (a *apiAdapter) CapacityForecasts(_ context.Context, since time.Duration) ([]api.CapacityForecast, error) {
	f := a.d.anomalies
	if f == nil {
		return nil, nil
	}
	f.mu.RLock()
	ts := make([]*anomTarget, 0, len(f.targets))
	for _, t := range f.targets {
		ts = append(ts, t)
	}
	f.mu.RUnlock()
	var rows []api.CapacityForecast
	for _, t := range ts {
		t.mu.Lock()
		if fc := t.fc; fc != nil {
			last := fc.last
			if since > 0 {
				last = fc.trend.Since(since)
			}
			r := api.CapacityForecast{Target: t.id, What: fc.what, Used: last.Used, Limit: last.Limit, PerDay: last.Rate * 86400,
				Horizon: last.Horizon, SpanSeconds: last.Span.Seconds(), Severity: fc.sent, At: time.Unix(0, fc.at).UTC()}
			if last.OK {
				e := last.ETA.Seconds()
				r.ETASeconds = &e
				r.Summary = forecastWords(fc.what, last)
			} else {
				r.Summary = fmt.Sprintf("%s: %.0f of %.0f, no rise toward the limit", fc.what, last.Used, last.Limit)
			}
			rows = append(rows, r)
		}
		t.mu.Unlock()
	}
	slices.SortFunc(rows, func(a, b api.CapacityForecast) int {
		switch {
		case a.ETASeconds != nil && b.ETASeconds != nil:
			return cmp.Or(cmp.Compare(*a.ETASeconds, *b.ETASeconds), cmp.Compare(a.Target, b.Target))
		case a.ETASeconds != nil:
			return -1
		case b.ETASeconds != nil:
			return 1
		}
		return cmp.Or(cmp.Compare(b.Used/max(b.Limit, 1), a.Used/max(a.Limit, 1)), cmp.Compare(a.Target, b.Target))
	})
	return rows, nil
}

// The store's disk is a used/limit pair too: with SQLite, the file system of the
// database is sampled at every save of the baselines (5 minutes) as a target of its own,
// "store:<directory>", whose forecast alert and report row say when it fills.
const storeDiskWhat = "disk MB"

// diskUsage returns the file system's used and usable megabytes at dir: the limit is
// what portpatrol's user can fill, used plus available to unprivileged users.
func diskUsage(dir string) (used, limit float64, err error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, 0, err
	}
	bs := float64(fs.Bsize) / (1 << 20)
	used = float64(fs.Blocks-fs.Bfree) * bs
	return used, used + float64(fs.Bavail)*bs, nil
}

// forecastStoreDisk samples the SQLite store's file system and raises, changes or
// clears its forecast alert. Nothing with PostgreSQL or without the detector.
func (d *Daemon) forecastStoreDisk(ctx context.Context, now time.Time) error {
	path, ok := strings.CutPrefix(d.dbName, "sqlite:")
	if d.anomalies == nil || !ok {
		return nil
	}
	dir := filepath.Dir(path)
	usage := d.diskUsage
	if usage == nil {
		usage = diskUsage
	}
	used, limit, err := usage(dir)
	if err != nil {
		return fmt.Errorf("store disk: %w", err)
	}
	t := d.anomalies.target("store:" + dir)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forecastPoint(storeDiskWhat, now, used, limit)
	if t.fc != nil {
		t.fc.at = now.UnixNano()
	}
	t.decideForecast(ctx, d.anomalies, nil, now.UnixNano())
	return nil
}

// bandsAPI is the API's view of the learned latency bands; nil when the detector is off.
func (d *Daemon) bandsAPI(a *apiAdapter) api.Bands {
	if d.anomalies == nil {
		return nil
	}
	return a
}

var _ api.Bands = (*apiAdapter)(nil)

// LatencyBand returns the band the target's latency detector has learned for each of
// times, in seconds; none until the series has learned as long as it must before it may
// page (anomalyLearn).
func (a *apiAdapter) LatencyBand(_ context.Context, target string, times []time.Time) ([]api.BandPoint, bool) {
	f := a.d.anomalies
	if f == nil {
		return nil, false
	}
	f.mu.RLock()
	t := f.targets[target]
	f.mu.RUnlock()
	if t == nil {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sig[sigLatency]
	if s == nil || !f.warm(s, s.last) {
		return nil, false
	}
	out := make([]api.BandPoint, 0, len(times))
	for _, at := range times {
		b, ok := s.det.Band(at)
		if !ok {
			return nil, false
		}
		out = append(out, api.BandPoint{Time: at.UTC(), Lower: max(b.Lower, 0) / 1e3, Expected: b.Expected / 1e3, Upper: b.Upper / 1e3})
	}
	return out, true
}
