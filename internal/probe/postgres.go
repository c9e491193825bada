package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// PostgresModule configures the postgres prober. Credentials in the target URL
// (postgres://user:pass@host/db) take precedence over the module's. The zero value
// starts up as user postgres, without a password, TLS preferred but not verified.
type PostgresModule struct {
	// Username defaults to "postgres".
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Database defaults to the user name, as in libpq.
	Database string `yaml:"database"`
	// SSLMode is disable, prefer (the default: TLS when the server offers it, without
	// verifying the certificate), require (TLS, not verified) or verify-full (TLS,
	// chain and host name verified).
	SSLMode   string    `yaml:"sslmode"`
	TLSConfig TLSConfig `yaml:"tls_config"`
}

// pgMaxMessage bounds one backend message; the probe never needs more.
const pgMaxMessage = 1 << 20

// pgMaxSCRAMIterations bounds the PBKDF2 work a server can ask of the prober.
const pgMaxSCRAMIterations = 1 << 20

// pgError is an ErrorResponse's fields.
type pgError struct {
	Severity string
	Code     string
	Message  string
	Detail   string
	Hint     string
}

func (e *pgError) Error() string {
	s := fmt.Sprintf("%s %s: %s", e.Severity, e.Code, e.Message)
	if e.Hint != "" {
		s += " (hint: " + e.Hint + ")"
	}
	return s
}

// newPostgres builds the postgres prober. Query options: sslmode.
func newPostgres(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.Postgres
	user, pass := credentials(t, c.Username, c.Password)
	if user == "" {
		user = "postgres"
	}
	db := strings.TrimPrefix(q.path(), "/")
	if db == "" {
		db = c.Database
	}
	if db == "" {
		db = user
	}
	if strings.Contains(db, "/") {
		return nil, fmt.Errorf("postgres path %q: want /DATABASE", t.Path)
	}
	mode := c.SSLMode
	if v, ok := q.string("sslmode"); ok {
		mode = v
	}
	switch mode {
	case "":
		mode = "prefer"
	case "disable", "prefer", "require", "verify-full":
	default:
		return nil, fmt.Errorf("postgres sslmode %q: want disable, prefer, require or verify-full", mode)
	}
	var tlsCfg *tls.Config
	if mode != "disable" {
		var err error
		if tlsCfg, err = buildTLSConfig(c.TLSConfig, t.Host, env); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer func() { conn.Close() }()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		var pre []byte
		if mode != "disable" {
			c, p, ok := pgNegotiateTLS(ctx, conn, mode, tlsCfg, env, res)
			if !ok {
				return
			}
			conn, pre = c, p
		}
		pc := &pgConn{conn: conn, r: bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), conn), 4096)}
		if !pgStartup(pc, user, pass, db, res) {
			return
		}
		pgCheck(pc, res)
		_ = pc.send('X', nil) // Terminate
	}, nil
}

// pgNegotiateTLS sends SSLRequest and, when the server agrees, runs the TLS handshake.
// pre holds bytes already read that belong to the plain-text stream (an
// ErrorResponse from a server that rejects SSLRequest).
func pgNegotiateTLS(ctx context.Context, conn net.Conn, mode string, cfg *tls.Config, env *Env, res *patrol.Result) (net.Conn, []byte, bool) {
	req := binary.BigEndian.AppendUint32(nil, 8)
	req = binary.BigEndian.AppendUint32(req, 80877103)
	if _, err := conn.Write(req); err != nil {
		failIO(res, err, "SSLRequest")
		return nil, nil, false
	}
	// One byte, read unbuffered: nothing after it may be trusted before TLS.
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		failIO(res, err, "SSLRequest")
		return nil, nil, false
	}
	switch b[0] {
	case 'S':
		tc := handshake(ctx, conn, cfg, mode != "verify-full", env, res)
		if tc == nil || res.Class != patrol.ClassOK {
			return nil, nil, false
		}
		return tc, nil, true
	case 'N':
		if mode == "require" || mode == "verify-full" {
			res.Fail(patrol.ClassTLS, "server does not offer TLS (sslmode=%s); enable ssl on the server or lower sslmode", mode)
			return nil, nil, false
		}
		return conn, nil, true
	case 'E':
		return conn, b[:], true
	}
	res.Fail(patrol.ClassProtocol, "SSLRequest: expected S or N, got 0x%02x (is this a PostgreSQL server?)", b[0])
	return nil, nil, false
}

// pgConn frames frontend/backend messages: type byte, int32 length (itself included).
type pgConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *pgConn) send(typ byte, body []byte) error {
	buf := make([]byte, 0, 5+len(body))
	buf = append(buf, typ)
	buf = binary.BigEndian.AppendUint32(buf, uint32(4+len(body)))
	_, err := c.conn.Write(append(buf, body...))
	return err
}

// readPGMessage reads one backend message of at most pgMaxMessage bytes.
func readPGMessage(r *bufio.Reader) (byte, []byte, error) {
	var h [5]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if n > 0 {
			err = midMessage(err)
		}
		return 0, nil, err
	}
	if h[0] < 'A' || h[0] > 'z' {
		return 0, nil, malformed("not a PostgreSQL message (type byte 0x%02x)", h[0])
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n < 4 {
		return 0, nil, malformed("message length %d is less than 4", n)
	}
	if n-4 > pgMaxMessage {
		return 0, nil, malformed("message of %d bytes exceeds the %d-byte limit", n-4, pgMaxMessage)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, midMessage(err)
	}
	return h[0], body, nil
}

// parsePGError decodes ErrorResponse and NoticeResponse fields.
func parsePGError(body []byte) *pgError {
	e := &pgError{}
	for len(body) > 0 && body[0] != 0 {
		code := body[0]
		body = body[1:]
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			i = len(body)
		}
		v := truncate(strings.ToValidUTF8(string(body[:i]), "?"), 300)
		switch code {
		case 'V':
			e.Severity = v
		case 'S':
			if e.Severity == "" {
				e.Severity = v
			}
		case 'C':
			e.Code = v
		case 'M':
			e.Message = v
		case 'D':
			e.Detail = v
		case 'H':
			e.Hint = v
		}
		if i == len(body) {
			break
		}
		body = body[i+1:]
	}
	if e.Severity == "" {
		e.Severity = "ERROR"
	}
	return e
}

// parsePGDataRow decodes a DataRow; NULL reads as "".
func parsePGDataRow(body []byte) ([]string, error) {
	if len(body) < 2 {
		return nil, malformed("truncated DataRow")
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	row := make([]string, 0, min(n, 64))
	for range n {
		if len(body) < 4 {
			return nil, malformed("truncated DataRow")
		}
		l := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if l < 0 {
			row = append(row, "")
			continue
		}
		if int(l) > len(body) {
			return nil, malformed("truncated DataRow")
		}
		row = append(row, string(body[:l]))
		body = body[l:]
	}
	return row, nil
}

// pgFail classifies an ErrorResponse.
func pgFail(res *patrol.Result, e *pgError, doing string) {
	switch e.Code {
	case "53300":
		res.Fail(patrol.ClassOverloaded, "%s: server is full: %s (raise max_connections, add a pooler, or find the client holding connections)", doing, e)
	case "57P03":
		res.Fail(patrol.ClassProtocol, "%s: the database system is starting up, shutting down or in recovery: %s", doing, e)
	case "28P01", "28000":
		res.Fail(patrol.ClassAuth, "%s: %s", doing, e)
	default:
		res.Fail(patrol.ClassProtocol, "%s: %s", doing, e)
	}
}

var pgAuthMethods = map[uint32]string{2: "kerberos", 3: "password", 5: "md5", 7: "gss", 9: "sspi", 10: "sasl"}

// pgStartup sends the StartupMessage and authenticates. It returns true once the
// server is ready for a query.
func pgStartup(pc *pgConn, user, pass, db string, res *patrol.Result) bool {
	body := binary.BigEndian.AppendUint32(nil, 196608) // protocol 3.0
	for _, kv := range [][2]string{{"user", user}, {"database", db}, {"application_name", "portpatrol"}} {
		body = append(body, kv[0]...)
		body = append(body, 0)
		body = append(body, kv[1]...)
		body = append(body, 0)
	}
	body = append(body, 0)
	msg := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	t0 := time.Now()
	if _, err := pc.conn.Write(append(msg, body...)); err != nil {
		failIO(res, err, "startup")
		return false
	}
	var scram *scramClient
	first := true
	for range 64 {
		typ, body, err := readPGMessage(pc.r)
		if first {
			res.AddPhase("first_byte", time.Since(t0))
			first = false
		}
		if err != nil {
			failIO(res, err, "startup")
			return false
		}
		switch typ {
		case 'E':
			pgFail(res, parsePGError(body), "startup")
			return false
		case 'S': // ParameterStatus
			k, v, _ := strings.Cut(string(body), "\x00")
			if k == "server_version" {
				res.SetDetail("version", truncate(strings.TrimRight(v, "\x00"), 80))
			}
		case 'Z':
			return true
		case 'R':
			if len(body) < 4 {
				res.Fail(patrol.ClassProtocol, "startup: truncated authentication request")
				return false
			}
			code := binary.BigEndian.Uint32(body)
			if code == 0 {
				continue // AuthenticationOk
			}
			if code == 11 || code == 12 {
				if scram == nil {
					res.Fail(patrol.ClassProtocol, "startup: SASL continuation without a SASL exchange")
					return false
				}
				if code == 11 {
					resp, err := scram.final(body[4:])
					if err != nil {
						res.Fail(patrol.ClassProtocol, "SCRAM-SHA-256: %s", err)
						return false
					}
					if err := pc.send('p', resp); err != nil {
						failIO(res, err, "SCRAM-SHA-256")
						return false
					}
				} else if err := scram.verify(body[4:]); err != nil {
					res.Fail(patrol.ClassAuth, "SCRAM-SHA-256: %s", err)
					return false
				}
				continue
			}
			method, known := pgAuthMethods[code]
			if !known {
				method = fmt.Sprintf("method %d", code)
			}
			if code == 10 {
				method = "sasl " + strings.Join(pgSASLMechanisms(body[4:]), ",")
			}
			res.SetDetail("auth", method)
			if pass == "" {
				res.SetDetail("note", "authentication required ("+method+")")
				return false
			}
			var reply []byte
			switch code {
			case 3:
				reply = append([]byte(pass), 0)
			case 5:
				if len(body) < 8 {
					res.Fail(patrol.ClassProtocol, "startup: truncated md5 salt")
					return false
				}
				reply = append([]byte(pgMD5(user, pass, body[4:8])), 0)
			case 10:
				if !bytes.Contains(body[4:], []byte("SCRAM-SHA-256\x00")) {
					res.Fail(patrol.ClassError, "server offers SASL %s; portpatrol speaks SCRAM-SHA-256", method)
					return false
				}
				scram = newSCRAMClient(pass)
				first := scram.first()
				reply = append([]byte("SCRAM-SHA-256\x00"), binary.BigEndian.AppendUint32(nil, uint32(len(first)))...)
				reply = append(reply, first...)
			default:
				res.Fail(patrol.ClassError, "server asks for %s authentication; portpatrol speaks password, md5 and SCRAM-SHA-256", method)
				return false
			}
			if err := pc.send('p', reply); err != nil {
				failIO(res, err, "authentication")
				return false
			}
		}
		// BackendKeyData, NoticeResponse and NegotiateProtocolVersion need no answer.
	}
	res.Fail(patrol.ClassProtocol, "startup: too many messages before ReadyForQuery")
	return false
}

func pgSASLMechanisms(b []byte) []string {
	var out []string
	for _, m := range bytes.Split(b, []byte{0}) {
		if len(m) > 0 && len(out) < 8 {
			out = append(out, truncate(string(m), 40))
		}
	}
	return out
}

func pgMD5(user, pass string, salt []byte) string {
	inner := md5.Sum([]byte(pass + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt...))
	return "md5" + hex.EncodeToString(outer[:])
}

// pgCheck runs SELECT 1 and reads the connection capacity; a capacity that cannot be
// read is only a note.
func pgCheck(pc *pgConn, res *patrol.Result) {
	rows, perr, err := pgQuery(pc, "SELECT 1")
	switch {
	case err != nil:
		failIO(res, err, "SELECT 1")
		return
	case perr != nil:
		pgFail(res, perr, "SELECT 1")
		return
	case len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] != "1":
		res.Fail(patrol.ClassProtocol, "SELECT 1: unexpected result %q", truncate(fmt.Sprint(rows), 80))
		return
	}
	rows, perr, err = pgQuery(pc, "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), current_setting('max_connections')")
	if err != nil {
		failIO(res, err, "reading connection counts")
		return
	}
	if perr != nil || len(rows) != 1 || len(rows[0]) != 2 {
		res.SetDetail("note", "cannot read connection counts")
		return
	}
	used, err1 := strconv.ParseInt(rows[0][0], 10, 64)
	limit, err2 := strconv.ParseInt(rows[0][1], 10, 64)
	if err1 == nil && err2 == nil && limit > 0 {
		res.Capacity = &patrol.Capacity{What: "connections", Used: used, Limit: limit}
	}
}

// pgQuery runs a simple query and returns at most 100 rows and the server's error, if
// any, reading through to ReadyForQuery.
func pgQuery(pc *pgConn, sql string) ([][]string, *pgError, error) {
	if err := pc.send('Q', append([]byte(sql), 0)); err != nil {
		return nil, nil, err
	}
	var rows [][]string
	var perr *pgError
	for range 256 {
		typ, body, err := readPGMessage(pc.r)
		if err != nil {
			return nil, nil, err
		}
		switch typ {
		case 'D':
			if len(rows) == 100 {
				continue
			}
			row, err := parsePGDataRow(body)
			if err != nil {
				return nil, nil, err
			}
			rows = append(rows, row)
		case 'E':
			perr = parsePGError(body)
		case 'Z':
			return rows, perr, nil
		}
	}
	return nil, nil, malformed("too many messages in a query reply")
}

// scramClient is the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without
// channel binding.
type scramClient struct {
	pass        string
	nonce       string
	firstBare   string
	serverSig   []byte
	authMessage string
}

func newSCRAMClient(pass string) *scramClient {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return &scramClient{pass: pass, nonce: base64.RawStdEncoding.EncodeToString(b)}
}

// first returns the client-first-message; PostgreSQL ignores the user name in it.
func (s *scramClient) first() []byte {
	s.firstBare = "n=,r=" + s.nonce
	return []byte("n,," + s.firstBare)
}

// parseSCRAMServerFirst splits a server-first-message into nonce, salt and iterations.
func parseSCRAMServerFirst(msg string) (nonce string, salt []byte, iter int, err error) {
	for _, attr := range strings.Split(msg, ",") {
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			continue
		}
		switch k {
		case "r":
			nonce = v
		case "s":
			if salt, err = base64.StdEncoding.DecodeString(v); err != nil {
				return "", nil, 0, malformed("bad salt")
			}
		case "i":
			if iter, err = strconv.Atoi(v); err != nil {
				return "", nil, 0, malformed("bad iteration count")
			}
		}
	}
	if nonce == "" || len(salt) == 0 || iter < 1 {
		return "", nil, 0, malformed("incomplete server-first-message")
	}
	return nonce, salt, iter, nil
}

// final computes the client-final-message from the server-first-message.
func (s *scramClient) final(serverFirst []byte) ([]byte, error) {
	nonce, salt, iter, err := parseSCRAMServerFirst(string(serverFirst))
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
		return nil, malformed("server nonce does not extend ours")
	}
	if iter > pgMaxSCRAMIterations {
		return nil, malformed("server asks for %d PBKDF2 iterations, over the limit of %d", iter, pgMaxSCRAMIterations)
	}
	salted, err := pbkdf2.Key(sha256.New, s.pass, salt, iter, sha256.Size)
	if err != nil {
		return nil, err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=biws,r=" + nonce
	s.authMessage = s.firstBare + "," + string(serverFirst) + "," + withoutProof
	sig := hmacSHA256(storedKey[:], s.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ sig[i]
	}
	s.serverSig = hmacSHA256(hmacSHA256(salted, "Server Key"), s.authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// verify checks the server-final-message's signature: a server that cannot produce it
// does not know the password.
func (s *scramClient) verify(serverFinal []byte) error {
	v, ok := strings.CutPrefix(string(serverFinal), "v=")
	if !ok {
		return fmt.Errorf("server-final-message without a signature: %q", truncate(string(serverFinal), 60))
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || subtle.ConstantTimeCompare(got, s.serverSig) != 1 {
		return fmt.Errorf("server signature does not match: the server does not know this user's password")
	}
	return nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
