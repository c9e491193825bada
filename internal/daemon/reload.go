package daemon

import (
	"reflect"

	"github.com/portpatrol/portpatrol/internal/config"
)

// changed reports whether two parts of a configuration differ.
func changed(a, b any) bool { return !reflect.DeepEqual(a, b) }

// restartSections names the sections a reload cannot apply: they differ between old and
// cur as written, but are only read at start. It compares what the files say, not what
// was resolved from them.
func restartSections(old, cur *config.Config) []string {
	o, c := old.Source, cur.Source
	var out []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"storage", o.Storage, c.Storage}, {"retention", o.Retention, c.Retention},
		{"host_watch", o.HostWatch, c.HostWatch}, {"kubernetes", o.Kubernetes, c.Kubernetes},
		{"api", o.API, c.API}, {"metrics.require_token", o.Metrics.RequireToken, c.Metrics.RequireToken},
		{"scheduler", o.Scheduler, c.Scheduler}, {"listen", o.Listen, c.Listen},
		{"probe.listen", o.Probe.Listen, c.Probe.Listen}, {"anomaly", o.Anomaly, c.Anomaly},
		{"status.listen", o.Status.Listen, c.Status.Listen}, {"status.title", o.Status.Title, c.Status.Title},
		{"status.logo_text", o.Status.LogoText, c.Status.LogoText}, {"status.timezone", o.Status.Timezone, c.Status.Timezone},
		{"host_name", o.HostName, c.HostName}, {"automation", o.Automation, c.Automation},
		{"intrusion.enabled", o.Intrusion.Enabled, c.Intrusion.Enabled}, {"intrusion.netns", o.Intrusion.NetNS, c.Intrusion.NetNS},
		{"cluster", o.Cluster, c.Cluster},
	} {
		if changed(s.a, s.b) {
			out = append(out, s.name)
		}
	}
	return out
}
