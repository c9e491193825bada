// Package chatops answers chat commands from Slack and Mattermost: ack, resolve,
// silence, status, who, and approve and deny of remediation plans. Every request is
// authenticated before its text is read — Slack's v0 request signature (HMAC-SHA256 of
// "v0:<timestamp>:<body>" with the app's signing secret, timestamps older or newer than
// five minutes refused, and a request already answered refused when sent again),
// Mattermost's slash-command token — and compared in constant time. A chat user acts as
// the portpatrol user the configuration maps them to, with that user's role; a user who
// is not mapped, or whose role is viewer, may only read (status, who, help); only the
// approver role approves or denies a remediation plan. Every change is made in the
// name "<user> via <platform>:<chat user ID>", which the alert engine keeps as who
// acknowledged, resolved or silenced and the audit chain as who approved or denied,
// and is logged.
package chatops

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Alerts is what commands read and change in the alert engine.
type Alerts interface {
	// Active returns the open alerts: firing, acknowledged, silenced or flapping.
	Active(ctx context.Context) ([]patrol.Alert, error)
	// Ack acknowledges alert id in the name of by.
	Ack(ctx context.Context, id, by, comment string) error
	// Resolve resolves alert id in the name of by.
	Resolve(ctx context.Context, id, by, comment string) error
}

// Silencer creates silences.
type Silencer interface {
	CreateSilence(ctx context.Context, s patrol.Silence) (patrol.Silence, error)
}

// Who names the processes listening on a port of this host, one line each.
type Who interface {
	Who(ctx context.Context, port uint16) ([]string, error)
}

// Approvals is the remediation engine's approval requests as approve and deny decide
// them. An approval binds to the plan hash the request was made with, exactly as one
// through the API: the engine refuses it when the target drifted, the request expired,
// was decided or voided, or is the approver's own.
type Approvals interface {
	// Approve adds by's approval to request id.
	Approve(ctx context.Context, id string, by Approver, comment string) (Decision, error)
	// Deny refuses request id.
	Deny(ctx context.Context, id string, by Approver, reason string) (Decision, error)
}

// Approver is who decides from chat.
type Approver struct {
	// Name is the portpatrol user the chat user maps to.
	Name string
	// Role is the chat user's role, "approver".
	Role string
	// Via is the platform and chat user ID, such as "slack:U0BOB".
	Via string
}

// Decision is an approval request after a decision.
type Decision struct {
	ID       string
	State    string // pending (more approvals needed), approved, denied
	Playbook string
	Step     string
	Target   string
	Diff     string // what the plan changes, in words
	PlanHash string
	Needs    string // what approvals are still missing
}

// Role is what a chat user may do.
type Role int

// The roles: Read runs status, who and help; Operate also acks, resolves and silences;
// Approve also approves and denies remediation plans.
const (
	Read Role = iota
	Operate
	Approve
)

// String is the role's name in the configuration.
func (r Role) String() string {
	switch r {
	case Operate:
		return "operator"
	case Approve:
		return "approver"
	}
	return "viewer"
}

// User maps chat identities to a portpatrol user.
type User struct {
	// Name is the portpatrol user the chat user acts as.
	Name string
	Role Role
	// Slack is the Slack user ID (U…); Mattermost the Mattermost user ID or user
	// name. Empty means none on that platform.
	Slack, Mattermost string
}

// Config configures a Handler. A platform whose secret is empty is switched off: its
// endpoint answers 404.
type Config struct {
	// SlackSigningSecret is the Slack app's signing secret.
	SlackSigningSecret string
	// MattermostTokens are the tokens of the Mattermost slash commands that may call.
	MattermostTokens []string
	// Users are the mapped chat users; anyone else may only read.
	Users []User
	// Alerts is the alert engine the commands act on. Required.
	Alerts Alerts
	// Silences creates silences; nil leaves silence out.
	Silences Silencer
	// Who answers who; nil leaves it out.
	Who Who
	// Approvals decides remediation plans for approve and deny; nil leaves them out.
	Approvals Approvals
	// MaxSilence bounds a silence's duration; zero means 7 days.
	MaxSilence time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger records every command with who ran it; nil discards.
	Logger *slog.Logger
	// Replays remembers accepted Slack signatures; nil means one of the Handler's
	// own. Share one between Handlers that replace each other (on reload).
	Replays *Replays
}

// Replays remembers the signatures of accepted Slack requests for twice MaxSkew, so a
// request captured and sent again while its timestamp is still fresh is refused too.
// The zero value is ready; it is safe for concurrent use.
type Replays struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// check records sig at now and reports whether it was already recorded.
func (r *Replays) check(sig string, now time.Time) (replayed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	for k, t := range r.seen {
		if now.Sub(t) > 2*MaxSkew {
			delete(r.seen, k)
		}
	}
	if _, ok := r.seen[sig]; ok {
		return true
	}
	r.seen[sig] = now
	return false
}

// Handler serves the chat endpoints. Build it with New; it is safe for concurrent use.
type Handler struct {
	cfg Config
	mux *http.ServeMux
}

// Paths of the endpoints, below the API's prefix.
const (
	SlackPath      = "/api/v1/chatops/slack"
	MattermostPath = "/api/v1/chatops/mattermost"
)

// MaxSkew is how far a Slack request's timestamp may be from now.
const MaxSkew = 5 * time.Minute

// maxBody bounds a request body (Slack's payloads are a few KiB).
const maxBody = 64 << 10

// New returns a Handler serving SlackPath and MattermostPath.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Replays == nil {
		cfg.Replays = &Replays{}
	}
	if cfg.MaxSilence <= 0 {
		cfg.MaxSilence = 7 * 24 * time.Hour
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST "+SlackPath, h.slack)
	h.mux.HandleFunc("POST "+MattermostPath, h.mattermost)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// reply is the JSON both platforms read back: ephemeral (only the caller sees it) or
// in_channel.
type reply struct {
	ResponseType    string `json:"response_type"`
	Text            string `json:"text"`
	ReplaceOriginal *bool  `json:"replace_original,omitempty"`
}

func writeReply(w http.ResponseWriter, public bool, text string) {
	rt := "ephemeral"
	if public {
		rt = "in_channel"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply{ResponseType: rt, Text: text})
}

// slackEscape escapes the three characters Slack reads as control characters in
// message text, so "<alert-id>" is shown rather than read as a link.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// VerifySlack checks a Slack request's signature over body at now: the v0 scheme,
// within MaxSkew. Its error says why, without the secret or the expected signature.
func VerifySlack(secret, timestamp, signature string, body []byte, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("X-Slack-Request-Timestamp %q is not a Unix time", timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("X-Slack-Request-Timestamp is %s from now, more than %s: stale or replayed", d.Round(time.Second), MaxSkew)
	}
	got, ok := strings.CutPrefix(signature, "v0=")
	sig, err := hex.DecodeString(got)
	if !ok || err != nil {
		return fmt.Errorf("X-Slack-Signature is not v0=<hex>")
	}
	if !hmac.Equal(sig, SignSlack(secret, timestamp, body)) {
		return fmt.Errorf("X-Slack-Signature does not match the signing secret")
	}
	return nil
}

// SignSlack returns HMAC-SHA256(secret, "v0:"+timestamp+":"+body).
func SignSlack(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, "v0:"+timestamp+":")
	m.Write(body)
	return m.Sum(nil)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "request body unreadable or over 64 KiB", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	return body, true
}

func (h *Handler) slack(w http.ResponseWriter, r *http.Request) {
	if h.cfg.SlackSigningSecret == "" {
		http.Error(w, "chatops.slack is not configured", http.StatusNotFound)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := VerifySlack(h.cfg.SlackSigningSecret, r.Header.Get("X-Slack-Request-Timestamp"), r.Header.Get("X-Slack-Signature"), body, h.cfg.Now()); err != nil {
		h.cfg.Logger.Warn("chatops request refused", "platform", "slack", "remote", r.RemoteAddr, "reason", err.Error())
		http.Error(w, "signature refused: "+err.Error(), http.StatusUnauthorized)
		return
	}
	if h.cfg.Replays.check(r.Header.Get("X-Slack-Signature"), h.cfg.Now()) {
		h.cfg.Logger.Warn("chatops request refused", "platform", "slack", "remote", r.RemoteAddr, "reason", "replayed: this signed request was already answered")
		http.Error(w, "signature refused: replayed: this signed request was already answered", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "body is not a form", http.StatusBadRequest)
		return
	}
	if p := form.Get("payload"); p != "" {
		h.slackAction(w, r.Context(), p)
		return
	}
	public, text := h.run(r.Context(), "slack", form.Get("user_id"), form.Get("text"))
	writeReply(w, public, slackEscape(text))
}

func (h *Handler) mattermost(w http.ResponseWriter, r *http.Request) {
	if len(h.cfg.MattermostTokens) == 0 {
		http.Error(w, "chatops.mattermost is not configured", http.StatusNotFound)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "body is not a form", http.StatusBadRequest)
		return
	}
	token := form.Get("token")
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token "); ok && token == "" {
		token = t
	}
	known := 0
	for _, t := range h.cfg.MattermostTokens {
		known |= subtle.ConstantTimeCompare([]byte(token), []byte(t))
	}
	if token == "" || known != 1 {
		h.cfg.Logger.Warn("chatops request refused", "platform", "mattermost", "remote", r.RemoteAddr, "reason", "unknown token")
		http.Error(w, "token refused: not the token of a configured slash command", http.StatusUnauthorized)
		return
	}
	user := form.Get("user_id")
	if u := h.user("mattermost", user); u == nil {
		if name := form.Get("user_name"); name != "" && h.user("mattermost", name) != nil {
			user = name
		}
	}
	public, text := h.run(r.Context(), "mattermost", user, form.Get("text"))
	writeReply(w, public, text)
}

// user returns the mapping of a chat user, nil when there is none.
func (h *Handler) user(platform, id string) *User {
	if id == "" {
		return nil
	}
	for i, u := range h.cfg.Users {
		if (platform == "slack" && u.Slack == id) || (platform == "mattermost" && u.Mattermost == id) {
			return &h.cfg.Users[i]
		}
	}
	return nil
}
