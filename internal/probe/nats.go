package probe

import (
	"bufio"
	"context"

	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// NATSModule configures the nats prober. Credentials in the target URL
// (nats://user:pass@host, or nats://token@host) take precedence over the module's.
// The zero value connects without credentials.
type NATSModule struct {
	Username  string    `yaml:"username"`
	Password  string    `yaml:"password"`
	Token     string    `yaml:"token"`
	TLSConfig TLSConfig `yaml:"tls_config"`
}

// natsMaxLine bounds one protocol line; INFO with a long connect_urls list stays well
// under it.
const natsMaxLine = 64 << 10

// natsInfo is the part of the INFO greeting the probe reports.
type natsInfo struct {
	ServerID     string `json:"server_id"`
	ServerName   string `json:"server_name"`
	Version      string `json:"version"`
	MaxPayload   int64  `json:"max_payload"`
	AuthRequired bool   `json:"auth_required"`
	TLSRequired  bool   `json:"tls_required"`
	JetStream    bool   `json:"jetstream"`
}

// newNATS builds the nats prober: read INFO, send CONNECT and PING, expect PONG.
// Query options: insecure, servername (used when the server requires TLS).
func newNATS(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.NATS
	user, pass := credentials(t, c.Username, c.Password)
	token := c.Token
	if t.User != nil {
		if _, ok := t.User.Password(); !ok && t.User.Username() != "" {
			token, user = t.User.Username(), "" // nats://TOKEN@host
		}
	}
	if v, ok := q.bool("insecure"); ok {
		c.TLSConfig.InsecureSkipVerify = v
	}
	if v, ok := q.string("servername"); ok {
		c.TLSConfig.ServerName = v
	}
	tlsCfg, err := buildTLSConfig(c.TLSConfig, t.Host, env)
	if err != nil {
		return nil, err
	}
	hasCreds := pass != "" || token != ""
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer func() { conn.Close() }()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		r := bufio.NewReaderSize(conn, 4096)
		t0 := time.Now()
		line, err := readCRLF(r, natsMaxLine)
		res.AddPhase("first_byte", time.Since(t0))
		if err != nil {
			failIO(res, err, "waiting for INFO")
			return
		}
		info, err := parseNATSInfo(line)
		if err != nil {
			if strings.HasPrefix(string(line), "-ERR") {
				natsFail(res, string(line), hasCreds)
				return
			}
			res.Fail(patrol.ClassProtocol, "greeting: %s", err)
			return
		}
		for k, v := range map[string]string{"server_id": info.ServerID, "server_name": info.ServerName, "version": info.Version} {
			if v != "" {
				res.SetDetail(k, truncate(v, 80))
			}
		}
		if info.MaxPayload > 0 {
			res.SetDetail("max_payload", strconv.FormatInt(info.MaxPayload, 10))
		}
		if info.JetStream {
			res.SetDetail("jetstream", "true")
		}
		if info.TLSRequired {
			tc := handshake(ctx, conn, tlsCfg, tlsSkipVerify(c.TLSConfig), env, res)
			if tc == nil || res.Class != patrol.ClassOK {
				return
			}
			conn, r = tc, bufio.NewReaderSize(tc, 4096)
		}
		if info.AuthRequired && !hasCreds {
			res.SetDetail("note", "authentication required")
			return
		}
		connect := map[string]any{"verbose": false, "pedantic": false, "name": "portpatrol", "lang": "go", "version": "1", "protocol": 1, "tls_required": info.TLSRequired}
		if token != "" {
			connect["auth_token"] = token
		}
		if pass != "" {
			connect["user"], connect["pass"] = user, pass
		}
		body, _ := json.Marshal(connect)
		if _, err := io.WriteString(conn, "CONNECT "+string(body)+"\r\nPING\r\n"); err != nil {
			failIO(res, err, "CONNECT")
			return
		}
		for range 16 {
			line, err := readCRLF(r, natsMaxLine)
			if err != nil {
				failIO(res, err, "waiting for PONG")
				return
			}
			s := string(line)
			switch {
			case s == "PONG":
				return
			case s == "PING":
				_, _ = io.WriteString(conn, "PONG\r\n")
			case s == "+OK", strings.HasPrefix(s, "INFO "):
			case strings.HasPrefix(s, "-ERR"):
				natsFail(res, s, hasCreds)
				return
			default:
				res.Fail(patrol.ClassProtocol, "expected PONG, got %q", truncate(strings.ToValidUTF8(s, "?"), 80))
				return
			}
		}
		res.Fail(patrol.ClassProtocol, "no PONG after 16 lines")
	}, nil
}

// parseNATSInfo parses the "INFO {json}" greeting line.
func parseNATSInfo(line []byte) (natsInfo, error) {
	var info natsInfo
	s := string(line)
	body, ok := strings.CutPrefix(s, "INFO ")
	if !ok {
		return info, malformed("expected INFO {…}, got %q (is this a NATS server?)", truncate(strings.ToValidUTF8(s, "?"), 60))
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &info); err != nil {
		return info, malformed("INFO is not valid JSON: %v", err)
	}
	return info, nil
}

// natsFail classifies an -ERR line.
func natsFail(res *patrol.Result, line string, hasCreds bool) {
	msg := truncate(strings.ToValidUTF8(strings.TrimSpace(strings.TrimPrefix(line, "-ERR")), "?"), 200)
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "maximum connections exceeded"):
		res.Fail(patrol.ClassOverloaded, "server is full: %s (raise max_connections or find the client holding connections)", msg)
	case strings.Contains(lower, "authorization violation"), strings.Contains(lower, "authentication"):
		if !hasCreds {
			res.Class, res.Error = patrol.ClassOK, ""
			res.SetDetail("note", "authentication required")
			return
		}
		res.Fail(patrol.ClassAuth, "credentials rejected: %s", msg)
	default:
		res.Fail(patrol.ClassProtocol, "server error: %s", msg)
	}
}
