package automation

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// HTTP calls a deployment system's webhook; its rollback is another call.
type HTTP struct {
	Params Params
	// Undo, when set, is the call that rolls the step back.
	Undo *Params
	// Client makes the calls; nil means a client with no redirects followed.
	Client *http.Client
}

var _ Action = (*HTTP)(nil)

type httpCall struct {
	method, url, body string
	headers           map[string]string
	timeout           time.Duration
}

type httpDetail struct{ do, undo *httpCall }

func callOf(p *Params, t Target) *httpCall {
	c := &httpCall{method: strings.ToUpper(p.Method), url: t.expand(p.URL), body: t.expand(p.Body), timeout: p.Timeout,
		headers: map[string]string{}}
	if c.method == "" {
		c.method = http.MethodPost
	}
	if c.timeout == 0 {
		c.timeout = DefaultHTTPTimeout
	}
	for k, v := range p.Headers {
		c.headers[k] = t.expand(v)
	}
	return c
}

// Plan expands the call against the target.
func (h *HTTP) Plan(t Target) (Change, error) {
	d := httpDetail{do: callOf(&h.Params, t)}
	params := map[string]string{"method": d.do.method, "url": d.do.url, "body": d.do.body}
	keys := make([]string, 0, len(d.do.headers))
	for k := range d.do.headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		params["header."+k] = d.do.headers[k]
	}
	if h.Undo != nil && h.Undo.URL != "" {
		d.undo = callOf(h.Undo, t)
		params["rollback"] = d.undo.method + " " + d.undo.url
	}
	return Change{Action: "http", Target: t.ID, Params: params, Diff: "call " + d.do.method + " " + d.do.url, detail: d}, nil
}

// PreCheck has nothing to check before the call: the call itself says.
func (h *HTTP) PreCheck(context.Context, Change) error { return nil }

// Apply makes the call; a reply outside 2xx fails it.
func (h *HTTP) Apply(ctx context.Context, c Change) error {
	return h.call(ctx, c.detail.(httpDetail).do)
}

// Verify has nothing to check beyond the reply.
func (h *HTTP) Verify(context.Context, Change) error { return nil }

// Rollback makes the rollback call, if the step has one.
func (h *HTTP) Rollback(ctx context.Context, c Change) error {
	if u := c.detail.(httpDetail).undo; u != nil {
		return h.call(ctx, u)
	}
	return nil
}

func (h *HTTP) call(ctx context.Context, c *httpCall) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	cl := h.Client
	if cl == nil {
		cl = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("http %s %s: %w", c.method, redactURL(c.url), err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("http %s %s: status %d: %s", c.method, redactURL(c.url), resp.StatusCode, lastBytes(string(b), 200))
	}
	return nil
}

// redactURL hides a password in a URL's user info.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexAny(rest+"/", "/") {
			return s[:i+3] + "xxxxx@" + rest[at+1:]
		}
	}
	return s
}
