package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// defaultServer is where the commands that talk to a running daemon find it.
const defaultServer = "http://127.0.0.1:9115"

// apiExitHelp is the part of --help that the commands talking to the daemon share.
const apiExitHelp = `
The daemon is found at --server (default $PORTPATROL_SERVER, else ` + defaultServer + `) and
the bearer token is --token (default $PORTPATROL_TOKEN); reading needs the viewer role,
changing needs operator (see portpatrol token create). The token is never printed. With
neither, root (or the daemon's own user) on the daemon's host goes through its local
socket, portpatrol.sock in the data directory (--socket to name another), as admin.

Exit codes: 0 done; 1 no such alert or silence, or a conflict (already resolved, still
pending); 3 bad input, a missing, unknown or too weak token, or the daemon could not be
reached or failed.`

// apiFlags are the flags of every command that talks to a running daemon.
type apiFlags struct {
	server string
	token  string
	socket string
}

// addAPIFlags registers --server, --token and --socket. Their defaults come from the
// environment at run time, so that --help never shows a token.
func addAPIFlags(cmd *cobra.Command, f *apiFlags) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", "", "URL of the running daemon (default $PORTPATROL_SERVER, else "+defaultServer+")")
	pf.StringVar(&f.token, "token", "", "API bearer token (default $PORTPATROL_TOKEN)")
	pf.StringVar(&f.socket, "socket", "", "the daemon's local socket (default $PORTPATROL_SOCKET, else portpatrol.sock in the data directory when no server or token is given and you may use it)")
}

// client builds an API client from the flags and the environment: the local socket
// when one is named, or when neither a server nor a token is given and the default
// socket is there for this user; else HTTP.
func (f *apiFlags) client() (*apiClient, error) {
	server := firstOf(f.server, os.Getenv("PORTPATROL_SERVER"))
	token := firstOf(f.token, os.Getenv("PORTPATROL_TOKEN"))
	if sock := firstOf(f.socket, os.Getenv("PORTPATROL_SOCKET")); sock != "" {
		return &apiClient{api.Client{Socket: sock, Token: token}}, nil
	}
	if server == "" && token == "" {
		if sock, ok := localSocket(); ok {
			return &apiClient{api.Client{Socket: sock}}, nil
		}
	}
	server = firstOf(server, defaultServer)
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, exitf(exitUnknown, "--server %q: want a URL such as %s", server, defaultServer)
	}
	return &apiClient{api.Client{Base: u.String(), Token: token}}, nil
}

// localSocket is the default data directory's socket when it exists and this user
// may connect to it (root, or the user the daemon runs as).
func localSocket() (string, bool) {
	dir, err := store.DefaultDataDir()
	if err != nil {
		return "", false
	}
	p := filepath.Join(dir, api.SocketName)
	fi, err := os.Stat(p)
	return p, err == nil && fi.Mode()&os.ModeSocket != 0 && unix.Access(p, unix.W_OK) == nil
}

// firstOf returns the first non-empty string.
func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiClient is the API client with the CLI's messages and exit codes.
type apiClient struct{ api.Client }

// call is Client.Do with a daemon that cannot be reached or answers something else
// turned into an exit error; the API's own error answers stay *api.Error for fail.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	err := c.Do(ctx, method, path, body, out)
	var ue *api.UnreachableError
	var fe *api.ForeignAnswerError
	switch {
	case errors.As(err, &ue) && c.Socket != "":
		return exitf(exitUnknown, "%v (is `portpatrol serve` running? pass --server or --token to use HTTP instead)", err)
	case errors.As(err, &ue):
		return exitf(exitUnknown, "%v (is `portpatrol serve` running? set --server or PORTPATROL_SERVER)", err)
	case errors.As(err, &fe):
		return exitf(exitUnknown, "%v", err)
	}
	return err
}

// fail turns an API error into a one-line message and an exit code: 404 and 409 exit
// 1, everything else 3. what names the object, as in "alert a1".
func (c *apiClient) fail(err error, what string) error {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return err
	}
	where, msg := c.Where(), ae.Msg
	switch ae.Status {
	case http.StatusUnauthorized:
		if c.Token == "" {
			return exitf(exitUnknown, "%s needs a token: pass --token or set PORTPATROL_TOKEN (create one with: portpatrol token create --role operator --name NAME), or run as root on the daemon's host to use its local socket", where)
		}
		return exitf(exitUnknown, "%s refused the token: %s", where, msg)
	case http.StatusForbidden:
		return exitf(exitUnknown, "permission denied: %s", msg)
	case http.StatusNotFound:
		return exitf(exitWarning, "no %s on %s", what, where)
	case http.StatusConflict:
		return exitf(exitWarning, "%s: %s", what, conflictReason(msg))
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return exitf(exitUnknown, "bad request: %s", msg)
	case http.StatusNotImplemented:
		return exitf(exitUnknown, "%s does not serve this: %s", where, msg)
	}
	return exitf(exitUnknown, "%s failed (%d): %s", where, ae.Status, msg)
}

// conflictReason keeps the end of a conflict message: "conflict: ack a1: already
// resolved" → "already resolved".
func conflictReason(msg string) string {
	msg = strings.TrimPrefix(msg, "conflict: ")
	for _, verb := range []string{"ack ", "resolve "} {
		if rest, ok := strings.CutPrefix(msg, verb); ok {
			if _, reason, ok := strings.Cut(rest, ": "); ok {
				return reason
			}
		}
	}
	return msg
}

// alertJSON is an alert as the API returns it, with the fields the commands show.
type alertJSON struct {
	ID             string            `json:"id"`
	Severity       string            `json:"severity"`
	State          string            `json:"state"`
	Target         string            `json:"target"`
	Summary        string            `json:"summary"`
	StartsAt       time.Time         `json:"starts_at"`
	Deadline       time.Time         `json:"deadline"`
	AckedBy        string            `json:"acked_by"`
	ResolvedBy     string            `json:"resolved_by"`
	EscalationStep int               `json:"escalation_step"`
	MutedBy        string            `json:"muted_by"`
	Told           []string          `json:"told"`
	Labels         map[string]string `json:"labels"`
	Hint           string            `json:"hint"`
}

// label is what --label matches: the alert's labels, then its severity, state and
// target by those names.
func (a alertJSON) label(name string) string {
	if v, ok := a.Labels[name]; ok {
		return v
	}
	switch name {
	case "severity":
		return a.Severity
	case "state":
		return a.State
	case "target":
		return a.Target
	}
	return ""
}

func newAlertsCmd() *cobra.Command {
	var (
		f          apiFlags
		states     []string
		severities []string
		labels     []string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List the alerts of a running daemon",
		Long: `List the alerts of a running portpatrol daemon, most urgent first: by default the
open ones (every state but resolved).

Columns: ID; SEV (P0–P3); STATE; TARGET; SINCE (how long ago the condition began);
DEADLINE (time left to acknowledge before it escalates, or how long overdue; "-" once
acknowledged or silenced, or before anyone was paged); STEP (the escalation step reached, 1 being the
first; "-" before anyone was paged); SUMMARY.
` + apiExitHelp,
		Example: `  portpatrol alerts
  portpatrol alerts --severity P0 --state firing
  portpatrol alerts --label team=db --label 'service=~orders|payments'
  portpatrol alerts --state all --json | jq '.[] | select(.labels.team == "db")'
  PORTPATROL_SERVER=https://portpatrol.example:9115 PORTPATROL_TOKEN=... portpatrol alerts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var match patrol.Matchers
			for _, l := range labels {
				m, err := patrol.ParseMatcher(l)
				if err != nil {
					return exitf(exitUnknown, "--label: %v", err)
				}
				match = append(match, m)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for _, s := range states {
				q.Add("state", s)
			}
			for _, s := range severities {
				q.Add("severity", strings.ToUpper(s))
			}
			path := "/api/v1/alerts"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var list struct {
				Alerts []json.RawMessage `json:"alerts"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, path, nil, &list); err != nil {
				return c.fail(err, "alerts")
			}
			alerts := make([]alertJSON, 0, len(list.Alerts))
			kept := list.Alerts[:0]
			for _, raw := range list.Alerts {
				var a alertJSON
				if err := json.Unmarshal(raw, &a); err != nil {
					return exitf(exitUnknown, "unexpected alert in the answer: %v", err)
				}
				if len(match) > 0 && !match.Matches(a.label) {
					continue
				}
				alerts = append(alerts, a)
				kept = append(kept, raw)
			}
			out := cmd.OutOrStdout()
			if done, err := printRaw(out, asJSON, kept, "No alerts."); done {
				return err
			}
			now := time.Now()
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSEV\tSTATE\tTARGET\tSINCE\tDEADLINE\tSTEP\tSUMMARY")
			for _, a := range alerts {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Severity, a.State, a.Target,
					short(now.Sub(a.StartsAt)), countdown(a, now), step(a), oneLine(a.Summary))
			}
			return w.Flush()
		},
	}
	addAPIFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringSliceVar(&states, "state", nil, "open (default), all, pending, firing, acknowledged, resolved, silenced or flapping; repeat or comma-separate")
	fl.StringSliceVar(&severities, "severity", nil, "P0, P1, P2 or P3; repeat or comma-separate")
	fl.StringArrayVar(&labels, "label", nil, "only alerts whose labels match: name=value, name!=value, name=~regexp or name!~regexp; repeat for all of them")
	fl.BoolVar(&asJSON, "json", false, "print the alerts as the API returns them, as a JSON array")
	return cmd
}

// countdown is the DEADLINE column: time left to acknowledge, or how long overdue.
func countdown(a alertJSON, now time.Time) string {
	// A silenced alert pages nobody, so no deadline runs for it.
	if a.Deadline.IsZero() || a.State == "acknowledged" || a.State == "resolved" || a.State == "silenced" || a.MutedBy != "" || len(a.Told) == 0 {
		return "-"
	}
	left := a.Deadline.Sub(now)
	if left < 0 {
		return "overdue " + short(-left)
	}
	return "in " + short(left)
}

func step(a alertJSON) string {
	if len(a.Told) == 0 {
		return "-"
	}
	return fmt.Sprint(a.EscalationStep + 1)
}

// short renders a duration as "45s", "12m", "3h04m" or "2d05h".
func short(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newAckCmd() *cobra.Command {
	return newAlertActionCmd("ack", "acknowledge", "Acknowledge an alert: escalation and reminders stop",
		`  portpatrol ack 3fa85f64a1b2-m5x0q1 -m "looking at it"`)
}

func newResolveCmd() *cobra.Command {
	return newAlertActionCmd("resolve", "resolve", "Resolve an alert by hand; everyone told is told",
		`  portpatrol resolve 3fa85f64a1b2-m5x0q1 -m "replaced the disk"`)
}

// newAlertActionCmd builds ack and resolve, which differ only in their verb.
func newAlertActionCmd(verb, action, short, example string) *cobra.Command {
	var (
		f       apiFlags
		comment string
	)
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   short + " (on a running daemon)",
		Long:    short + ". The action is recorded under the token's name, with the comment.\n" + apiExitHelp,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			id := args[0]
			var body any
			if comment != "" {
				body = map[string]string{"comment": comment}
			}
			var a alertJSON
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/alerts/"+url.PathEscape(id)+"/"+verb, body, &a); err != nil {
				return c.fail(err, "alert "+id)
			}
			by := a.AckedBy
			past := "Acknowledged"
			if verb == "resolve" {
				by, past = a.ResolvedBy, "Resolved"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s %s) as %s: %s\n", past, a.ID, a.Severity, a.State, by, oneLine(a.Summary))
			if a.Hint != "" {
				fmt.Fprintln(cmd.OutOrStdout(), a.Hint)
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().StringVarP(&comment, "message", "m", "", "comment recorded with the "+action)
	return cmd
}

// silenceRequest is the body of POST /api/v1/silences.
type silenceRequest struct {
	Matchers patrol.Matchers `json:"matchers"`
	Comment  string          `json:"comment"`
	StartsAt string          `json:"starts_at,omitempty"`
	EndsAt   string          `json:"ends_at,omitempty"`
	Duration string          `json:"duration,omitempty"`
}

// matcherList renders matchers as the command line takes them: "a=b,c=~d".
func matcherList(ms patrol.Matchers) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}

func newSilenceCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use: "silence",
		Example: `  portpatrol silence add service=cache --for 2h -m "redis failover drill"
  portpatrol silence ls
  portpatrol silence expire 01HQ7ZK3N2`,
		Short: "Add, list and expire silences on a running daemon",
		Long: `Silences mute the alerts their matchers all match, until they expire. A silenced
alert is still shown, as silenced, with the silence that mutes it; it pages nobody and
sends no customer impact notice.

Matchers are name=value, name!=value, name=~regexp or name!~regexp over the target's
labels and alertname, class, severity, target and host.
` + apiExitHelp,
		Args: cobra.NoArgs,
	}
	addAPIFlags(cmd, &f)
	cmd.AddCommand(newSilenceAddCmd(&f), newSilenceLsCmd(&f), newSilenceExpireCmd(&f))
	return cmd
}

func newSilenceAddCmd(f *apiFlags) *cobra.Command {
	var (
		dur          time.Duration
		comment      string
		start, until string
	)
	add := &cobra.Command{
		Use:   "add MATCHER...",
		Short: "Silence the alerts that match every matcher",
		Long: `Silence the alerts that match every matcher, from now (or --start) for --for (or until
--end). amtool's flag names work too: --duration for --for, --comment for -m. Times are
RFC 3339 (2026-12-24T22:00:00Z) or a date (2026-12-24, midnight UTC).`,
		Example: `  portpatrol silence add service=orders --for 2h -m "schema migration"
  portpatrol silence add 'target=~tcp://db-.*:5432' severity!=P0 --for 30m -m "failover test"
  portpatrol silence add host=db1 --start 2026-12-24T22:00:00Z --end 2026-12-25T02:00:00Z --comment "planned move"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if comment == "" {
				return exitf(exitUnknown, "-m (or --comment) is required: say why the alerts are silenced")
			}
			req := silenceRequest{Comment: comment}
			if start != "" {
				t, err := parseAt(start)
				if err != nil {
					return exitf(exitUnknown, "--start: %v", err)
				}
				req.StartsAt = t.UTC().Format(time.RFC3339)
			}
			switch {
			case until != "" && cmd.Flags().Changed("for"):
				return exitf(exitUnknown, "give --end or --for (--duration), not both")
			case until != "":
				t, err := parseAt(until)
				if err != nil {
					return exitf(exitUnknown, "--end: %v", err)
				}
				req.EndsAt = t.UTC().Format(time.RFC3339)
			case dur <= 0:
				return exitf(exitUnknown, "--for must be positive, got %s", dur)
			default:
				req.Duration = dur.String()
			}
			for _, arg := range args {
				m, err := patrol.ParseMatcher(arg)
				if err != nil {
					return exitf(exitUnknown, "%v", err)
				}
				req.Matchers = append(req.Matchers, m)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var s patrol.Silence
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/silences", req, &s); err != nil {
				return c.fail(err, "silence")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created silence %s of %s until %s (by %s).\n", s.ID, matcherList(s.Matchers), stamp(s.EndsAt), s.Author)
			return nil
		},
	}
	fl := add.Flags()
	fl.DurationVar(&dur, "for", 2*time.Hour, "how long the silence lasts (amtool: --duration)")
	fl.StringVarP(&comment, "message", "m", "", "why the alerts are silenced (required; amtool: --comment)")
	fl.StringVar(&start, "start", "", "when the silence starts (RFC 3339 or a date; default now)")
	fl.StringVar(&until, "end", "", "when the silence ends, instead of --for")
	// amtool's names for the same flags.
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "duration":
			name = "for"
		case "comment":
			name = "message"
		}
		return pflag.NormalizedName(name)
	})
	return add
}

func newSilenceLsCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	ls := &cobra.Command{
		Use: "ls",
		Example: `  portpatrol silence ls
  portpatrol silence ls --json | jq '.[] | select(.comment | test("drill"))'`,
		Aliases: []string{"list"},
		Short:   "List silences, active ones first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var list struct {
				Silences []json.RawMessage `json:"silences"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/silences", nil, &list); err != nil {
				return c.fail(err, "silences")
			}
			out := cmd.OutOrStdout()
			if done, err := printRaw(out, asJSON, list.Silences, "No silences."); done {
				return err
			}
			now := time.Now()
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSTATE\tMATCHERS\tENDS\tAUTHOR\tCOMMENT")
			for _, raw := range list.Silences {
				var s patrol.Silence
				if err := json.Unmarshal(raw, &s); err != nil {
					return exitf(exitUnknown, "unexpected silence in the answer: %v", err)
				}
				state, ends := "active", "in "+short(s.EndsAt.Sub(now))
				switch {
				case !s.EndsAt.After(now):
					state, ends = "expired", short(now.Sub(s.EndsAt))+" ago"
					if s.ExpiredBy != "" {
						state = "expired by " + s.ExpiredBy
					}
				case s.StartsAt.After(now):
					state = "pending"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, state, matcherList(s.Matchers), ends, s.Author, oneLine(s.Comment))
			}
			return w.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print the silences as the API returns them, as a JSON array")
	return ls
}

func newSilenceExpireCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "expire ID",
		Short:   "End a silence now",
		Example: `  portpatrol silence expire s-m5x0q1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			id := args[0]
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/silences/"+url.PathEscape(id)+"/expire", nil, nil); err != nil {
				return c.fail(err, "silence "+id)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Expired silence %s.\n", id)
			return nil
		},
	}
}

// printRaw prints items as a JSON array when asJSON is set, or says empty when there
// are none; done reports that nothing is left to print.
func printRaw(out io.Writer, asJSON bool, items []json.RawMessage, empty string) (done bool, err error) {
	if asJSON {
		if items == nil {
			items = []json.RawMessage{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return true, enc.Encode(items)
	}
	if len(items) == 0 {
		_, err := fmt.Fprintln(out, empty)
		return true, err
	}
	return false, nil
}
