package doctor

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// FirewallFinding is an nftables rule or chain policy that would stop a connection.
type FirewallFinding struct {
	Family, Table, Chain string
	// Hook is the chain's hook ("input", "output", "prerouting"…); "" for a chain that
	// is only jumped to.
	Hook string
	// Handle is the rule's handle (for nft delete rule … handle N); 0 for a policy.
	Handle int
	// Verdict is "drop" or "reject".
	Verdict string
	// Rule renders the rule's expressions, or "policy drop".
	Rule string
	// Certain is false when the rule has conditions besides the port (addresses,
	// interfaces, connection state…) that may or may not hold for this connection.
	Certain bool
}

func (f FirewallFinding) String() string {
	where := fmt.Sprintf("%s %s chain %s", f.Family, f.Table, f.Chain)
	if f.Hook != "" {
		where += " (hook " + f.Hook + ")"
	}
	if f.Handle != 0 {
		return fmt.Sprintf("%s: %s  # handle %d", where, f.Rule, f.Handle)
	}
	return where + ": " + f.Rule
}

type nftRule struct {
	Family  string            `json:"family"`
	Table   string            `json:"table"`
	Chain   string            `json:"chain"`
	Handle  int               `json:"handle"`
	Expr    []json.RawMessage `json:"expr"`
	Comment string            `json:"comment"`
}

type nftChain struct {
	Family string `json:"family"`
	Table  string `json:"table"`
	Name   string `json:"name"`
	Hook   string `json:"hook"`
	Policy string `json:"policy"`
}

type nftMatch struct {
	Op    string          `json:"op"`
	Left  json.RawMessage `json:"left"`
	Right json.RawMessage `json:"right"`
}

type nftPayload struct {
	Payload *struct {
		Protocol string `json:"protocol"`
		Field    string `json:"field"`
	} `json:"payload"`
	Meta *struct {
		Key string `json:"key"`
	} `json:"meta"`
}

// FirewallRules reads the output of `nft -j list ruleset` and returns the rules whose
// verdict is drop or reject for packets of proto ("tcp" or "udp") to port, and the
// hooked chains whose policy drops and that accept nothing for that port. Rules it
// cannot read are skipped. It is a pure function, safe for concurrent use.
func FirewallRules(js []byte, proto string, port int) ([]FirewallFinding, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("nft -j list ruleset: %w", err)
	}
	chains := make(map[string]nftChain)
	sets := make(map[string]json.RawMessage)
	var rules []nftRule
	for _, obj := range doc.Nftables {
		if raw, ok := obj["set"]; ok {
			var st struct {
				Family string          `json:"family"`
				Table  string          `json:"table"`
				Name   string          `json:"name"`
				Elem   json.RawMessage `json:"elem"`
			}
			if json.Unmarshal(raw, &st) == nil {
				sets[st.Family+"/"+st.Table+"/@"+st.Name] = st.Elem
			}
		}
		if raw, ok := obj["chain"]; ok {
			var c nftChain
			if json.Unmarshal(raw, &c) == nil {
				chains[c.Family+"/"+c.Table+"/"+c.Name] = c
			}
		}
		if raw, ok := obj["rule"]; ok {
			var r nftRule
			if json.Unmarshal(raw, &r) == nil {
				rules = append(rules, r)
			}
		}
	}
	var out []FirewallFinding
	accepts := make(map[string]bool)
	for _, r := range rules {
		key := r.Family + "/" + r.Table + "/" + r.Chain
		named := func(name string) json.RawMessage { return sets[r.Family+"/"+r.Table+"/"+name] }
		portMatch, other, verdict, text := readRule(r.Expr, proto, port, named)
		if portMatch && verdict == "accept" {
			accepts[key] = true
		}
		if !portMatch || (verdict != "drop" && verdict != "reject") {
			continue
		}
		out = append(out, FirewallFinding{Family: r.Family, Table: r.Table, Chain: r.Chain,
			Hook: chains[key].Hook, Handle: r.Handle, Verdict: verdict, Rule: text, Certain: !other})
	}
	keys := make([]string, 0, len(chains))
	for key := range chains {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		c := chains[key]
		if c.Hook == "" || c.Policy != "drop" || accepts[key] {
			continue
		}
		if c.Hook != "input" && c.Hook != "output" && c.Hook != "prerouting" && c.Hook != "forward" {
			continue
		}
		out = append(out, FirewallFinding{Family: c.Family, Table: c.Table, Chain: c.Name, Hook: c.Hook,
			Verdict: "drop", Rule: fmt.Sprintf("policy drop, and no rule accepts %s dport %d", proto, port)})
	}
	return out, nil
}

// readRule reports whether a rule's expressions match proto destination port (and no
// "!=" excludes it), whether other conditions remain, its verdict and a rendering.
// named returns the elements of a named set ("@name") of the rule's table.
func readRule(exprs []json.RawMessage, proto string, port int, named func(string) json.RawMessage) (portMatch, other bool, verdict, text string) {
	var parts []string
	for _, raw := range exprs {
		var e map[string]json.RawMessage
		if json.Unmarshal(raw, &e) != nil {
			other = true
			continue
		}
		for k, v := range e {
			switch k {
			case "match":
				var m nftMatch
				if json.Unmarshal(v, &m) != nil {
					other = true
					continue
				}
				left := render(m.Left)
				parts = append(parts, strings.Join(nonEmpty(left, opText(m.Op), render(m.Right)), " "))
				var p nftPayload
				_ = json.Unmarshal(m.Left, &p)
				if p.Payload != nil && p.Payload.Field == "dport" && (p.Payload.Protocol == proto || p.Payload.Protocol == "th") {
					right := m.Right
					var name string
					if json.Unmarshal(right, &name) == nil && strings.HasPrefix(name, "@") {
						right = named(name)
					}
					hit := valueHas(right, port)
					if m.Op == "!=" {
						hit = !hit
					}
					if !hit {
						return false, other, "", ""
					}
					portMatch = true
					continue
				}
				if p.Meta != nil && p.Meta.Key == "l4proto" && strings.Contains(render(m.Right), proto) {
					continue
				}
				if p.Payload != nil && p.Payload.Field == "protocol" && strings.Contains(render(m.Right), proto) {
					continue
				}
				other = true
			case "accept", "drop", "reject", "return":
				verdict = k
				parts = append(parts, k)
			case "jump", "goto":
				parts = append(parts, k+" "+render(v))
			case "counter", "log", "comment":
				parts = append(parts, k)
			default:
				other = true
				parts = append(parts, k)
			}
		}
	}
	return portMatch, other, verdict, strings.Join(parts, " ")
}

func nonEmpty(s ...string) []string {
	out := s[:0]
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func opText(op string) string {
	switch op {
	case "==", "in":
		return ""
	}
	return op
}

// render prints an nft JSON expression roughly as nft itself would.
func render(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return renderAny(v)
}

func renderAny(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return fmt.Sprint(x)
	case string:
		return x
	case []any:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = renderAny(e)
		}
		return strings.Join(s, ", ")
	case map[string]any:
		if p, ok := x["payload"].(map[string]any); ok {
			return fmt.Sprintf("%v %v", p["protocol"], p["field"])
		}
		if m, ok := x["meta"].(map[string]any); ok {
			return fmt.Sprintf("meta %v", m["key"])
		}
		if s, ok := x["set"]; ok {
			return "{ " + renderAny(s) + " }"
		}
		if r, ok := x["range"].([]any); ok && len(r) == 2 {
			return renderAny(r[0]) + "-" + renderAny(r[1])
		}
		if p, ok := x["prefix"].(map[string]any); ok {
			return fmt.Sprintf("%v/%v", p["addr"], p["len"])
		}
		if t, ok := x["target"]; ok {
			return renderAny(t)
		}
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// valueHas reports whether an nft right-hand value (number, set, range, set elements)
// holds port.
func valueHas(raw json.RawMessage, port int) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	return anyHas(v, port)
}

func anyHas(v any, port int) bool {
	switch x := v.(type) {
	case float64:
		return int(x) == port
	case []any:
		for _, e := range x {
			if anyHas(e, port) {
				return true
			}
		}
	case map[string]any:
		if s, ok := x["set"]; ok {
			return anyHas(s, port)
		}
		if e, ok := x["elem"].(map[string]any); ok {
			return anyHas(e["val"], port)
		}
		if r, ok := x["range"].([]any); ok && len(r) == 2 {
			lo, ok1 := r[0].(float64)
			hi, ok2 := r[1].(float64)
			return ok1 && ok2 && int(lo) <= port && port <= int(hi)
		}
	}
	return false
}
