package config

import (
	"reflect"
	"testing"
)

// A configuration of a million targets must not keep a module or a label map per
// target: checks of one module share one module value, and checks with equal labels
// share one map, while each check still reads its own values.
func TestChecksShareModulesAndLabels(t *testing.T) {
	c, err := Parse([]byte(`
defaults: {labels: {env: prod}}
modules:
  ping: {prober: tcp, tcp: {query_response: [{send: PING}, {expect: PONG}]}}
targets:
  - {url: "tcp://127.0.0.1:1", module: ping, labels: {team: a}}
  - {url: "tcp://127.0.0.1:2", module: ping, labels: {team: a}}
  - {url: "tcp://127.0.0.1:3", labels: {team: b}}
  - {url: "tcp://127.0.0.1:4"}
`), "shared.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Checks); got != 4 {
		t.Fatalf("got %d checks, want 4", got)
	}
	// The targets as written are not kept beside the checks resolved from them.
	if c.Targets != nil {
		t.Errorf("got %d targets kept after resolving, want none (Checks hold them)", len(c.Targets))
	}
	ch := c.Checks
	if ch[0].Module == nil || ch[0].Module != ch[1].Module {
		t.Errorf("checks of module ping: got modules %p and %p, want one shared value", ch[0].Module, ch[1].Module)
	}
	if got := len(ModuleOf(ch[0].Module).TCP.QueryResponse); got != 2 {
		t.Errorf("module ping: got %d query_response steps, want 2", got)
	}
	if ch[2].Module != nil {
		t.Errorf("check without a module: got %+v, want nil (the scheme's default)", ch[2].Module)
	}
	ptr := func(m map[string]string) uintptr { return reflect.ValueOf(m).Pointer() }
	if ptr(ch[0].Target.Labels) != ptr(ch[1].Target.Labels) {
		t.Error("equal label sets: got two maps, want one shared map")
	}
	if ptr(ch[0].Target.Labels) == ptr(ch[2].Target.Labels) {
		t.Error("different label sets share a map")
	}
	for i, want := range []map[string]string{
		{"env": "prod", "team": "a"}, {"env": "prod", "team": "a"}, {"env": "prod", "team": "b"}, {"env": "prod"},
	} {
		if got := ch[i].Target.Labels; !reflect.DeepEqual(got, want) {
			t.Errorf("targets[%d] labels: got %v, want %v", i, got, want)
		}
	}
}

func TestLabelsKeyTellsSetsApart(t *testing.T) {
	for _, tt := range []struct{ a, b map[string]string }{
		{map[string]string{"a": "b:c"}, map[string]string{"a:b": "c"}},
		{map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "12"}},
		{map[string]string{"ab": ""}, map[string]string{"a": "b"}},
	} {
		if labelsKey(tt.a) == labelsKey(tt.b) {
			t.Errorf("labelsKey(%v) = labelsKey(%v) = %q, want different keys", tt.a, tt.b, labelsKey(tt.a))
		}
	}
}
