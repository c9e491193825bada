// Package send holds what every notification provider shares: the error that tells
// the outbox whether a failed send may be retried, a JSON POST that classifies HTTP
// responses into such errors, and the reading of chat robots' replies, which answer
// 200 and put the verdict in the body. It imports only the standard library.
package send

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a failed send. Permanent errors (a 4xx other than 429, a rejected payload,
// a bad credential) are not retried: the outbox marks the delivery failed. Temporary
// errors (429, 5xx, network) are retried, no sooner than RetryAfter when it is set.
// The zero value is a temporary error without a cause.
type Error struct {
	// Permanent says the same request will fail again; do not retry it.
	Permanent bool
	// Status is the HTTP status (or SMTP reply code), 0 when there was none.
	Status int
	// Body is the start of the response body, for the delivery's last error.
	Body string
	// RetryAfter is the wait the server asked for (Retry-After), 0 when none.
	RetryAfter time.Duration
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("send failed")
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanentf returns a permanent Error with a formatted cause.
func Permanentf(format string, args ...any) *Error {
	return &Error{Permanent: true, Err: fmt.Errorf(format, args...)}
}

// IsPermanent reports whether err is, or wraps, a permanent Error.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// RetryAfter returns the wait the server asked for, if err carries one.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// maxSnippet bounds how much of a response body an Error keeps.
const maxSnippet = 512

// Snippet returns the start of b as a single trimmed line of valid UTF-8.
func Snippet(b []byte) string {
	if len(b) > maxSnippet {
		b = b[:maxSnippet]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	return s
}

// ParseRetryAfter reads a Retry-After header value: delay-seconds or an HTTP date,
// relative to now. It returns 0 for an empty or unreadable value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Marshal encodes v as compact JSON without escaping <, > and &, which chat payloads
// carry as text.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Request is one JSON POST.
type Request struct {
	URL    string
	Header http.Header
	// Body is encoded with Marshal unless it is already a []byte.
	Body any
}

// Response is a successful (2xx) response, its body read in full (up to 1 MiB).
type Response struct {
	Status int
	Body   []byte
}

// Decode unmarshals the body into v. A body that does not decode is a temporary
// Error, "<name>: unreadable reply: …": the server took the request, so whether it
// was delivered is unknown and a retry is the safer guess.
func (r *Response) Decode(name string, v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return &Error{Status: r.Status, Body: Snippet(r.Body), Err: fmt.Errorf("%s: unreadable reply: %w", name, err)}
	}
	return nil
}

// Refused returns the Error for a 2xx response whose body says the request was
// refused, as chat robots answer: permanent, unless retry says the refusal was a
// rate limit.
func (r *Response) Refused(retry bool, err error) *Error {
	return &Error{Permanent: !retry, Status: r.Status, Body: Snippet(r.Body), Err: err}
}

// Bearer returns a header with "Authorization: Bearer <token>", or an empty header
// when token is empty.
func Bearer(token string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// DefaultTimeout bounds a request made with a nil client.
const DefaultTimeout = 30 * time.Second

// maxBody bounds how much of a response is read.
const maxBody = 1 << 20

// JSON posts r with Content-Type application/json and classifies the outcome:
// 2xx is success; 429 and 5xx are temporary (with Retry-After); any other status is
// permanent; a network failure is temporary. The error names the host but never the
// path or query, which often hold the credential (webhook tokens). A nil c means a
// client with DefaultTimeout.
func JSON(ctx context.Context, c *http.Client, r Request) (*Response, error) {
	body, ok := r.Body.([]byte)
	if !ok {
		var err error
		if body, err = Marshal(r.Body); err != nil {
			return nil, Permanentf("encode payload: %w", err)
		}
	}
	return Post(ctx, c, r.URL, "application/json", r.Header, body)
}

// Post posts body with the given Content-Type and header and classifies the outcome as
// JSON does: for providers that take a form or plain text.
func Post(ctx context.Context, c *http.Client, url, contentType string, header http.Header, body []byte) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, Permanentf("build request: %v", redact(err))
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", contentType)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "portpatrol")
	}
	if c == nil {
		c = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("post to %s: %w", req.URL.Host, redact(err))}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil && resp.StatusCode/100 == 2 {
		return nil, &Error{Status: resp.StatusCode, Err: fmt.Errorf("read response from %s: %w", req.URL.Host, err)}
	}
	if resp.StatusCode/100 == 2 {
		return &Response{Status: resp.StatusCode, Body: b}, nil
	}
	return nil, StatusError(resp, b, req.URL.Host)
}

// StatusError classifies a non-2xx response: 429 and 5xx are temporary, honouring
// Retry-After; everything else is permanent.
func StatusError(resp *http.Response, body []byte, host string) *Error {
	e := &Error{
		Status: resp.StatusCode,
		Body:   Snippet(body),
		Err:    fmt.Errorf("%s answered %s", host, resp.Status),
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		e.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	default:
		e.Permanent = true
	}
	return e
}

// redact drops the URL from a *url.Error, whose path or query may hold a token.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
