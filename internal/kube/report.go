package kube

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// tree writes an indented tree with box-drawing branches.
type tree struct {
	b      strings.Builder
	prefix []bool // per depth: is the branch at that depth the last one?
}

func (t *tree) line(depth int, last bool, s string) {
	for len(t.prefix) <= depth {
		t.prefix = append(t.prefix, false)
	}
	t.prefix[depth] = last
	for i := 0; i < depth; i++ {
		if t.prefix[i] {
			t.b.WriteString("   ")
		} else {
			t.b.WriteString("│  ")
		}
	}
	if last {
		t.b.WriteString("└─ ")
	} else {
		t.b.WriteString("├─ ")
	}
	t.b.WriteString(s)
	t.b.WriteByte('\n')
}

// status renders a target's latest result as a status word and a short description.
func status(results Results, id string) string {
	if id == "" {
		return "-    not probed"
	}
	r, ok := results(id)
	if !ok {
		return "?    " + id + "  no result"
	}
	word := "OK  "
	switch {
	case r.Class == patrol.ClassSlow:
		word = "WARN"
	case !r.Up():
		word = "CRIT"
	}
	d := fmt.Sprintf("%.2fms", float64(r.Duration)/float64(time.Millisecond))
	if r.Up() && r.Class != patrol.ClassSlow {
		return fmt.Sprintf("%s %s  %s", word, id, d)
	}
	return fmt.Sprintf("%s %s  %s: %s", word, id, r.Class, r.Error)
}

// WriteTree renders a snapshot for people, one Service at a time: Service → ports →
// ClusterIP, EndpointSlices → endpoints (with their pods), NodePorts per node,
// LoadBalancer addresses; then the selected pods and the Service's findings. Ingresses
// follow. results gives each target's probe result (nil: none were probed); findings are
// printed under the Service or Ingress they concern.
func WriteTree(w io.Writer, s *Snapshot, results Results, findings []Finding) error {
	if results == nil {
		results = func(string) (patrol.Result, bool) { return patrol.Result{}, false }
	}
	t := &tree{}
	for _, v := range s.Services {
		head := fmt.Sprintf("%s/%s  %s", v.Namespace, v.Name, v.Type)
		if v.ClusterIP != "" {
			head += " " + v.ClusterIP
		}
		if len(v.Selector) > 0 {
			head += "  selector " + selectorString(v.Selector)
		} else {
			head += "  no selector"
		}
		if v.Disabled {
			head += "  (" + AnnotationEnabled + ": false)"
		}
		t.b.WriteString(head + "\n")
		if v.Disabled {
			continue
		}
		var fs []Finding
		for _, f := range findings {
			if f.Labels[LabelNamespace] == v.Namespace && f.Labels[LabelService] == v.Name && f.Labels[LabelIngress] == "" {
				fs = append(fs, f)
			}
		}
		items := len(v.Ports) + 1
		if len(fs) > 0 {
			items++
		}
		n := 0
		next := func() bool { n++; return n == items }
		for _, p := range v.Ports {
			last := next()
			tp := p.TargetPort.String()
			if tp == "0" {
				tp = fmt.Sprint(p.Port)
			}
			kind := p.Scheme
			if kind == "" {
				kind = "not probed"
			}
			t.line(0, last, fmt.Sprintf("port %s %d/%s → targetPort %s (%s), %d ready endpoint%s",
				portLabel(p.Name, p.Port), p.Port, p.Protocol, tp, kind, p.Ready(), plural(p.Ready())))
			var sub []func(bool)
			if p.ClusterIPTarget != "" {
				sub = append(sub, func(l bool) { t.line(1, l, "clusterip  "+status(results, p.ClusterIPTarget)) })
			}
			for _, sl := range v.Slices {
				var eps []EndpointView
				for _, e := range p.Endpoints {
					if e.Slice == sl.Name {
						eps = append(eps, e)
					}
				}
				sub = append(sub, func(l bool) {
					t.line(1, l, fmt.Sprintf("slice %s  %s  %d endpoint%s, %d ready, %d terminating",
						sl.Name, sl.AddressType, sl.Endpoints, plural(sl.Endpoints), sl.Ready, sl.Terminating))
					for i, e := range eps {
						who := ""
						if e.Pod != "" {
							who = "  pod " + e.Pod
						}
						if e.Node != "" {
							who += " on " + e.Node
						}
						var st string
						switch {
						case e.Ready:
							st = status(results, e.Target)
						case e.Terminating:
							st = fmt.Sprintf("-    %s:%d  terminating", e.Address, e.Port)
						default:
							st = fmt.Sprintf("-    %s:%d  not ready", e.Address, e.Port)
						}
						t.line(2, i == len(eps)-1, st+who)
					}
				})
			}
			if len(p.NodePorts) > 0 {
				sub = append(sub, func(l bool) {
					t.line(1, l, fmt.Sprintf("nodeport %d on %d node%s", p.NodePort, len(p.NodePorts), plural(len(p.NodePorts))))
					for i, np := range p.NodePorts {
						t.line(2, i == len(p.NodePorts)-1, np.Node+"  "+status(results, np.Target))
					}
				})
			}
			for _, id := range p.LoadBalancerTargets {
				sub = append(sub, func(l bool) { t.line(1, l, "loadbalancer  "+status(results, id)) })
			}
			for i, f := range sub {
				f(i == len(sub)-1)
			}
		}
		last := next()
		if len(v.Pods) == 0 {
			t.line(0, last, "pods: none selected")
		} else {
			t.line(0, last, fmt.Sprintf("pods: %d selected", len(v.Pods)))
			for i, p := range v.Pods {
				st := "ready"
				if !p.Ready {
					st = "not ready: " + p.Reason
				}
				where := ""
				if p.Node != "" {
					where = " on " + p.Node
				}
				t.line(1, i == len(v.Pods)-1, fmt.Sprintf("%s %s%s  %s", p.Name, p.IP, where, st))
			}
		}
		if len(fs) > 0 {
			t.line(0, next(), "findings:")
			for i, f := range fs {
				t.line(1, i == len(fs)-1, fmt.Sprintf("%s %s: %s", f.Severity, f.Rule, f.Summary))
			}
		}
	}
	for _, ing := range s.Ingresses {
		t.b.WriteString(fmt.Sprintf("%s/ingress/%s  backends %s\n", ing.Namespace, ing.Name, strings.Join(ing.Backends, ", ")))
		var fs []Finding
		for _, f := range findings {
			if f.Labels[LabelNamespace] == ing.Namespace && f.Labels[LabelIngress] == ing.Name {
				fs = append(fs, f)
			}
		}
		for i, id := range ing.Targets {
			t.line(0, i == len(ing.Targets)-1 && len(fs) == 0, "ingress  "+status(results, id))
		}
		for i, f := range fs {
			t.line(0, i == len(fs)-1, fmt.Sprintf("%s %s: %s", f.Severity, f.Rule, f.Summary))
		}
	}
	_, err := io.WriteString(w, t.b.String())
	return err
}

// WriteFindings renders findings as a table, most severe first, with each one's
// explanation below it.
func WriteFindings(w io.Writer, fs []Finding) error {
	var b strings.Builder
	if len(fs) == 0 {
		b.WriteString("no findings\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%d finding%s\n", len(fs), plural(len(fs)))
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SEV\tRULE\tSUBJECT\tWHERE\tFINDING")
	for _, f := range fs {
		where := f.Source
		if where == "" {
			where = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, f.Rule, f.Subject, where, f.Summary)
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes findings as a JSON array.
func WriteJSON(w io.Writer, fs []Finding) error {
	if fs == nil {
		fs = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(fs)
}
