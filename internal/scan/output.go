package scan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable renders a report for people: a heading per host and a row per port that is
// not closed.
func WriteTable(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	for i, h := range r.Hosts {
		if i > 0 {
			ew.printf("\n")
		}
		open := 0
		for _, p := range h.Ports {
			if p.State == Open {
				open++
			}
		}
		ew.printf("%s: %d ports, %d open, %d closed", hostLabel(h.Host), len(r.Ports), open, h.Closed)
		if other := len(h.Ports) - open; other > 0 {
			ew.printf(", %d filtered or unknown", other)
			if r.Method == MethodUDP {
				ew.printf(" (open|filtered: no answer, which an open port that ignores the datagram and a firewall that drops it give alike)")
			}
		}
		ew.printf("\n")
		if len(h.Ports) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(ew, 0, 8, 2, ' ', 0)
		ident := hasIdent(h)
		if ident {
			fmt.Fprintln(tw, "PORT\tSTATE\tSERVICE\tIDENTIFIED")
		} else {
			fmt.Fprintln(tw, "PORT\tSTATE\tSERVICE\tREASON")
		}
		for _, p := range h.Ports {
			last := p.Reason
			if ident {
				last = identText(p.Ident)
			}
			fmt.Fprintf(tw, "%d/%s\t%s\t%s\t%s\n", p.Port, r.Proto(), p.State, orUnknown(p.Service), last)
		}
		tw.Flush()
	}
	what := "connects"
	if r.Method == MethodSYN {
		what = "SYNs"
	}
	if r.Method == MethodUDP {
		what = "datagrams"
	}
	ew.printf("\nscanned %d address(es) in %s (%d %s, %d retries)\n",
		len(r.Hosts), r.Elapsed.Round(time.Millisecond), r.Stats.Probes, what, r.Stats.Retries)
	return ew.err
}

func hostLabel(h Host) string {
	if h.Name != "" {
		return fmt.Sprintf("%s (%s)", h.Addr, h.Name)
	}
	return h.Addr.String()
}

func hasIdent(h HostResult) bool {
	for _, p := range h.Ports {
		if p.Ident != nil {
			return true
		}
	}
	return false
}

func identText(id *Ident) string {
	if id == nil {
		return ""
	}
	s := id.Service
	if id.Class != "" && id.Class != "ok" {
		s += " (" + id.Class + ")"
	}
	if id.Detail != "" {
		s += ": " + id.Detail
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// WriteGreppable renders a report in nmap's greppable format (-oG), so scripts written
// for nmap read it as they are: a comment line, a "Status: Up" and a "Ports:" line per
// host, and a closing comment line. cmdline is shown in the first comment.
func WriteGreppable(w io.Writer, r *Report, cmdline string) error {
	ew := &errWriter{w: w}
	ew.printf("# portpatrol scan initiated %s as: %s\n", r.Start.Format(time.ANSIC), cmdline)
	for _, h := range r.Hosts {
		name := h.Name
		ew.printf("Host: %s (%s)\tStatus: Up\n", h.Addr, name)
		ew.printf("Host: %s (%s)\tPorts: ", h.Addr, name)
		for i, p := range h.Ports {
			if i > 0 {
				ew.printf(", ")
			}
			service, version := orUnknown(p.Service), ""
			if p.Ident != nil {
				if p.Ident.Service != "" && p.Ident.Service != "unknown" {
					service = p.Ident.Service
				}
				version = p.Ident.Detail
			}
			ew.printf("%d/%s/%s//%s//%s/", p.Port, p.State, r.Proto(), field(service), field(version))
		}
		if h.Closed > 0 {
			ew.printf("\tIgnored State: closed (%d)", h.Closed)
		}
		ew.printf("\n")
	}
	s := "es"
	if len(r.Hosts) == 1 {
		s = ""
	}
	ew.printf("# portpatrol done at %s -- %d IP address%s (%d host%s up) scanned in %.2f seconds\n",
		r.Start.Add(r.Elapsed).Format(time.ANSIC), len(r.Hosts), s, len(r.Hosts), plural(len(r.Hosts)), r.Elapsed.Seconds())
	return ew.err
}

// field makes text safe inside one greppable field, as nmap does: '/' becomes '|' and
// separators become spaces.
func field(s string) string {
	return strings.NewReplacer("/", "|", ",", " ", "\t", " ", "\n", " ", "\r", " ").Replace(s)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
