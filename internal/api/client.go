package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Client calls a running daemon's API over HTTP, or over its local socket. The zero
// value is not usable: set Base or Socket. It is safe for concurrent use.
type Client struct {
	// Base is the daemon's URL, such as http://127.0.0.1:9115.
	Base string
	// Socket is the path of the daemon's local socket; when set, requests go there
	// instead of Base and are authorised by this process's uid.
	Socket string
	// Token is the bearer token sent with each request; empty sends none.
	Token string
	// Timeout bounds each request; zero means 30 seconds.
	Timeout time.Duration

	once sync.Once
	http *http.Client
}

// Where names the daemon the client talks to, for messages: the URL, or
// "unix:PATH" for the local socket.
func (c *Client) Where() string {
	if c.Socket != "" {
		return "unix:" + c.Socket
	}
	return c.Base
}

// Error is an error answer of the API: its status and its "error" field.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// UnreachableError is returned when the daemon cannot be reached or its answer
// cannot be read.
type UnreachableError struct {
	Where string
	Err   error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach portpatrol at %s: %v", e.Where, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ForeignAnswerError is an answer that is not the API's: a non-2xx status without
// the API's JSON error body, or a body that does not decode.
type ForeignAnswerError struct {
	Where, Method, Path, Status string
	Err                         error
}

func (e *ForeignAnswerError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s %s: unexpected answer: %v", e.Method, e.Path, e.Err)
	}
	return fmt.Sprintf("%s %s answered %s: is %s a portpatrol daemon?", e.Method, e.Path, e.Status, e.Where)
}

func (e *ForeignAnswerError) Unwrap() error { return e.Err }

// client is the HTTP client, made on first use by init.
func (c *Client) client() *http.Client {
	c.once.Do(c.init)
	return c.http
}

func (c *Client) init() {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if c.Socket != "" {
		path := c.Socket
		t.Proxy = nil
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	c.http = &http.Client{Timeout: c.Timeout, Transport: t}
	if c.http.Timeout == 0 {
		c.http.Timeout = 30 * time.Second
	}
}

// Do sends a request with body (nil for none) as JSON and decodes the answer into
// out (nil to ignore it). A non-2xx answer of the API is an *Error; a daemon that
// cannot be reached is an *UnreachableError, an answer that is not the API's a
// *ForeignAnswerError. Errors never contain the token.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	base := strings.TrimRight(c.Base, "/")
	if c.Socket != "" {
		base = "http://localhost" // the Host the socket's requests carry
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		// The error names the URL, never the token, which travels in a header.
		if u := errors.Unwrap(err); u != nil {
			err = u
		}
		return &UnreachableError{Where: c.Where(), Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return &UnreachableError{Where: c.Where(), Err: fmt.Errorf("read the answer: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			return &ForeignAnswerError{Where: c.Where(), Method: method, Path: path, Status: resp.Status}
		}
		return &Error{Status: resp.StatusCode, Msg: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &ForeignAnswerError{Where: c.Where(), Method: method, Path: path, Status: resp.Status, Err: err}
	}
	return nil
}
