package alert

import (
	"fmt"
	"math"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// certExpiry judges the leaf certificate a result saw: a P3 within warn, a P2 within
// critical or once expired. A certificate that makes the probe fail (expired and
// verified) is also an unreachable P0, which inhibits this alert by default; one the
// probe accepts without verifying is only this alert. A result without TLS clears the
// alert when the target answered (it no longer presents TLS) and says nothing when it
// failed before a handshake.
func (e *Engine) certExpiry(base cond, r *patrol.Result) cond {
	cx := &e.cfg.certExpiry
	c := base
	c.rs, c.rule, c.sev, c.follow = &cx.ruleSettings, cx.name, patrol.P3, true
	if r.TLS == nil || r.TLS.NotAfter.IsZero() {
		if r.Up() {
			c.verdict = clears
		}
		return c
	}
	left := r.TLS.NotAfter.Sub(c.at)
	if left > cx.warn {
		c.verdict = clears
		return c
	}
	c.verdict = holds
	threshold, limit := "warn", cx.warn
	if left <= cx.critical {
		c.sev, threshold, limit = patrol.P2, "critical", cx.critical
	}
	name := certName(r.TLS)
	when := r.TLS.NotAfter.UTC().Format("2006-01-02 15:04 UTC")
	if left <= 0 {
		c.summary = fmt.Sprintf("%s: certificate %s expired %s ago, on %s", c.subject, name, inWords(-left), when)
	} else {
		c.summary = fmt.Sprintf("%s: certificate %s expires in %s, on %s", c.subject, name, inWords(left), when)
	}
	c.desc = fmt.Sprintf("The certificate %s that %s presents is valid until %s. The rule raises a P3 within %s "+
		"of expiry and a P2 within %s (alerting.rules.cert_expiry); it is within %s (%s). Renew the certificate; "+
		"the alert resolves when the renewed one is seen.",
		name, c.subject, r.TLS.NotAfter.UTC().Format(time.RFC3339), days(cx.warn), days(cx.critical),
		threshold, days(limit))
	return c
}

// certName names a certificate by its subject CN, else its first SAN, and issuer.
func certName(t *patrol.TLSInfo) string {
	name := t.Subject
	switch {
	case name == "" && t.SAN == "":
		name = "(no subject name)"
	case name == "":
		name = fmt.Sprintf("%q", t.SAN)
	case t.SAN != "" && t.SAN != name:
		name = fmt.Sprintf("%q (%s)", name, t.SAN)
	default:
		name = fmt.Sprintf("%q", name)
	}
	if t.Issuer != "" {
		name += fmt.Sprintf(" issued by %q", t.Issuer)
	}
	return name
}

// inWords renders a positive duration as a person counts it: days from two days on,
// then hours, then minutes.
func inWords(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return plural(int(math.Round(d.Hours()/24)), "day")
	case d >= 2*time.Hour:
		return plural(int(math.Round(d.Hours())), "hour")
	}
	return plural(max(1, int(math.Round(d.Minutes()))), "minute")
}

// days renders a threshold in days when it is a whole number of them.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return plural(int(d/(24*time.Hour)), "day")
	}
	return d.String()
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
