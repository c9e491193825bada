package audit

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText renders a report for people: the findings, most severe first, then a line
// per host.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fs := slices.Clone(r.Findings)
	slices.SortStableFunc(fs, func(a, b Finding) int { return int(a.Severity) - int(b.Severity) })
	if len(fs) == 0 {
		fmt.Fprintf(&b, "audit against %s: no findings\n", r.Policy)
	} else {
		fmt.Fprintf(&b, "audit against %s: %d finding%s\n", r.Policy, len(fs), plural(len(fs)))
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SEV\tKIND\tHOST\tPORT\tFINDING")
		for _, f := range fs {
			port := "-"
			if f.Port != 0 {
				port = fmt.Sprint(f.Port)
			}
			msg := f.Message
			if owner := ownerText(f); owner != "" {
				msg += " [" + owner + "]"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, f.Kind, f.Host, port, msg)
		}
		tw.Flush()
	}
	for _, h := range r.Hosts {
		src := "scan"
		if h.Inventory {
			src = "scan + local inventory"
		}
		var open []string
		for _, o := range h.Open {
			open = append(open, fmt.Sprintf("%d %s", o.Port, o.Verdict))
		}
		if len(open) == 0 {
			open = []string{"none"}
		}
		fmt.Fprintf(&b, "%s: %d ports, %s; open: %s\n", hostLabel(h), h.Scanned, src, strings.Join(open, ", "))
		for _, n := range h.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hostLabel(h HostAudit) string {
	if h.Host == h.Addr.String() {
		return h.Host
	}
	return fmt.Sprintf("%s (%s)", h.Host, h.Addr)
}

func ownerText(f Finding) string {
	var parts []string
	for _, s := range []string{f.Process, f.User, f.Bind} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// WriteJSON renders a report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit renders a report as JUnit XML, so CI systems show each host as a suite and
// each port checked as a test case that fails with the policy's findings.
func WriteJUnit(w io.Writer, r *Report) error {
	out := junitSuites{Name: "portpatrol audit " + r.Policy}
	for _, h := range r.Hosts {
		suite := junitSuite{Name: hostLabel(h), Timestamp: r.Time.UTC().Format(time.RFC3339)}
		class := "audit." + strings.ReplaceAll(h.Host, ".", "_")
		var findings []Finding
		for _, f := range r.Findings {
			if f.Host == h.Host && f.Addr == h.Addr {
				findings = append(findings, f)
			}
		}
		ports := map[uint16]string{}
		for _, o := range h.Open {
			ports[o.Port] = "open, " + o.Verdict
		}
		for _, p := range h.Required {
			if _, ok := ports[p]; !ok {
				ports[p] = "required"
			}
		}
		for _, f := range findings {
			if _, ok := ports[f.Port]; !ok && f.Port != 0 {
				ports[f.Port] = string(f.Kind)
			}
		}
		keys := make([]uint16, 0, len(ports))
		for p := range ports {
			keys = append(keys, p)
		}
		slices.Sort(keys)
		for _, p := range keys {
			c := junitCase{Name: fmt.Sprintf("port %d (%s)", p, ports[p]), ClassName: class}
			var mine []Finding
			for _, f := range findings {
				if f.Port == p {
					mine = append(mine, f)
				}
			}
			c.Failure = failure(mine)
			suite.Cases = append(suite.Cases, c)
		}
		var hostWide []Finding
		for _, f := range findings {
			if f.Port == 0 {
				hostWide = append(hostWide, f)
			}
		}
		if len(hostWide) > 0 || len(suite.Cases) == 0 {
			suite.Cases = append(suite.Cases, junitCase{Name: "host policy", ClassName: class, Failure: failure(hostWide)})
		}
		for _, c := range suite.Cases {
			suite.Tests++
			if c.Failure != nil {
				suite.Failures++
			}
		}
		out.Tests += suite.Tests
		out.Failures += suite.Failures
		out.Suites = append(out.Suites, suite)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func failure(fs []Finding) *junitFailure {
	if len(fs) == 0 {
		return nil
	}
	var msgs, lines []string
	for _, f := range fs {
		msgs = append(msgs, fmt.Sprintf("%s %s: %s", f.Severity, f.Kind, f.Message))
		line := fmt.Sprintf("%s %s %s", f.Severity, f.Kind, f.Message)
		if o := ownerText(f); o != "" {
			line += " [" + o + "]"
		}
		if f.Rule != "" {
			line += " (policy " + f.Rule + ")"
		}
		lines = append(lines, line)
	}
	return &junitFailure{Type: string(fs[0].Kind), Message: strings.Join(msgs, "; "), Text: strings.Join(lines, "\n")}
}
