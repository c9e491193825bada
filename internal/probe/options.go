package probe

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// options reads a target's query string (?timeout=2s&expect=PONG). Every key a prober
// reads is marked used; unused() reports the rest so a typo is an error, not a silent
// default. The first bad value is kept in err.
type options struct {
	t    patrol.Target
	used map[string]bool
	// passed are the keys rest() handed on untouched (an http URL's own query).
	passed map[string]bool
	// pathRead is set when a prober took a setting from the target's path.
	pathRead bool
	err      error
}

func newOptions(t patrol.Target) *options {
	return &options{t: t, used: map[string]bool{}, passed: map[string]bool{}}
}

// narrowing are the query options that only narrow what a probe accepts or how long
// it waits, never what it sends nor with which credentials. Every other option a
// prober reads is an override (Probe.Overrides), which /probe refuses unless the
// module allows target options. This is the one list of them.
var narrowing = map[string]bool{
	"timeout": true, // waits less (the /probe handler caps it)
	"warn":    true, // judges slow sooner
	// A half-open check sends less than a connect; either only opens a connection.
	"handshake": true,
	"status":    true, // http: which status codes pass
	"body":      true, // http: a regexp the body must match
	"rcode":     true, // dns: which rcodes pass
	"role":      true, // redis: INFO is sent anyway; this judges its answer
	"require":   true, // prometheus: metrics the scraped exposition must contain
}

// path returns the target's path, recorded as a setting the target supplies: it
// picks the database or the service a prober asks for.
func (o *options) path() string {
	o.pathRead = o.pathRead || (o.t.Path != "" && o.t.Path != "/")
	return o.t.Path
}

// overrides returns the options present in the target that change what the probe
// sends or its credentials: the query keys a prober read that are not narrowing,
// "path" when a prober took a setting from the path, and "userinfo" for credentials
// in the URL. Sorted.
func (o *options) overrides() []string {
	var out []string
	for k := range o.t.Query {
		if o.used[k] && !o.passed[k] && !narrowing[k] {
			out = append(out, k)
		}
	}
	if o.pathRead {
		out = append(out, "path")
	}
	if o.t.User != nil {
		out = append(out, "userinfo")
	}
	sort.Strings(out)
	return out
}

func (o *options) fail(key, format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf("option %s: %s", key, fmt.Sprintf(format, args...))
	}
}

func (o *options) string(key string) (string, bool) {
	o.used[key] = true
	vs, ok := o.t.Query[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

func (o *options) strings(key string) []string {
	o.used[key] = true
	return o.t.Query[key]
}

func (o *options) duration(key string) (time.Duration, bool) {
	s, ok := o.string(key)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		o.fail(key, "%q is not a positive duration such as 500ms or 2s", s)
		return 0, false
	}
	return d, true
}

func (o *options) bool(key string) (bool, bool) {
	s, ok := o.string(key)
	if !ok {
		return false, false
	}
	if s == "" {
		return true, true
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		o.fail(key, "%q is not true or false", s)
		return false, false
	}
	return b, true
}

func (o *options) regexp(key string) (*regexp.Regexp, bool) {
	s, ok := o.string(key)
	if !ok {
		return nil, false
	}
	re, err := regexp.Compile(s)
	if err != nil {
		o.fail(key, "bad regular expression: %v", err)
		return nil, false
	}
	return re, true
}

// rest returns the keys no prober option has read, and marks them used. Probers whose
// URLs carry a query of their own (http) pass these on instead of rejecting them.
func (o *options) rest() url.Values {
	v := url.Values{}
	for k, vs := range o.t.Query {
		if !o.used[k] {
			v[k] = vs
			o.used[k] = true
			o.passed[k] = true
		}
	}
	return v
}

// done returns the first error, or an error naming unknown keys and the valid ones.
func (o *options) done() error {
	if o.err != nil {
		return o.err
	}
	var unknown []string
	for k := range o.t.Query {
		if !o.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	valid := make([]string, 0, len(o.used))
	for k := range o.used {
		valid = append(valid, k)
	}
	sort.Strings(valid)
	return fmt.Errorf("unknown option %s; valid for %s: %s", strings.Join(unknown, ", "), o.t.Scheme, strings.Join(valid, ", "))
}
