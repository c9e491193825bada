package probe

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// RedisModule configures the redis prober. Credentials in the target URL
// (redis://user:pass@host) take precedence over the module's. The zero value sends
// no AUTH and checks no role.
type RedisModule struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Role, when set, is the replication role the server must report: master or
	// replica ("slave" is accepted as a synonym of replica).
	Role string `yaml:"role"`
}

// RESP limits: a hostile server cannot make the prober allocate more than this.
const (
	respMaxLine  = 64 << 10
	respMaxBulk  = 1 << 20
	respMaxArray = 1024
	respMaxDepth = 4
)

// respValue is one decoded RESP2 value.
type respValue struct {
	kind byte // '+', '-', ':', '$', '*'
	str  string
	num  int64
	arr  []respValue
	null bool
}

// newRedis builds the redis prober. Query options: role (master or replica).
func newRedis(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	user, pass := credentials(t, m.Redis.Username, m.Redis.Password)
	role := m.Redis.Role
	if v, ok := q.string("role"); ok {
		role = v
	}
	switch role {
	case "", "master":
	case "replica", "slave":
		role = "slave" // what INFO replication reports
	default:
		return nil, fmt.Errorf("redis role %q: want master or replica", role)
	}
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer conn.Close()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		r := bufio.NewReaderSize(conn, 4096)
		if redisSession(conn, r, user, pass, role, res) {
			// QUIT is a courtesy: the server closes its side and we do not wait long.
			if redisCall(conn, "QUIT") == nil {
				_ = conn.SetDeadline(time.Now().Add(50 * time.Millisecond))
				_, _ = readRESP(r)
			}
		}
	}, nil
}

// redisSession runs AUTH, PING, INFO and the role check, classifying into res. It
// returns whether the connection is still in a state where QUIT makes sense.
func redisSession(conn net.Conn, r *bufio.Reader, user, pass, role string, res *patrol.Result) bool {
	t0 := time.Now()
	if pass != "" {
		args := []string{"AUTH", pass}
		if user != "" {
			args = []string{"AUTH", user, pass}
		}
		v, err := redisDo(conn, r, args...)
		if err != nil {
			failIO(res, err, "AUTH")
			return false
		}
		if v.kind == '-' {
			redisFail(res, v.str, "AUTH", true)
			return res.Class != patrol.ClassOverloaded
		}
	}
	v, err := redisDo(conn, r, "PING")
	res.AddPhase("first_byte", time.Since(t0))
	if err != nil {
		failIO(res, err, "PING")
		return false
	}
	switch {
	case v.kind == '-' && hasPrefixFold(v.str, "NOAUTH") && pass == "":
		res.SetDetail("note", "authentication required")
		return true
	case v.kind == '-':
		redisFail(res, v.str, "PING", pass != "")
		return res.Class != patrol.ClassOverloaded
	case v.kind != '+' || v.str != "PONG":
		res.Fail(patrol.ClassProtocol, "PING: expected +PONG, got %s", v.describe())
		return false
	}
	info, err := redisDo(conn, r, "INFO")
	if err != nil {
		failIO(res, err, "INFO")
		return false
	}
	if info.kind != '$' || info.null {
		// INFO may be forbidden by an ACL or renamed away; PONG already proved health.
		res.SetDetail("note", "INFO not permitted: "+truncate(info.describe(), 120))
		if role != "" {
			res.Fail(patrol.ClassProtocol, "cannot check the replication role: INFO answered %s", truncate(info.describe(), 120))
		}
		return true
	}
	fields := parseRedisInfo(info.str)
	for _, k := range []string{"redis_version", "redis_mode", "role"} {
		if fields[k] != "" {
			res.SetDetail(strings.TrimPrefix(k, "redis_"), fields[k])
		}
	}
	if used, err := strconv.ParseInt(fields["connected_clients"], 10, 64); err == nil {
		limit, err := strconv.ParseInt(fields["maxclients"], 10, 64)
		if err != nil {
			limit = redisConfigInt(conn, r, "maxclients")
		}
		if limit > 0 {
			res.Capacity = &patrol.Capacity{What: "clients", Used: used, Limit: limit}
		}
	}
	if role != "" && fields["role"] != role {
		res.Fail(patrol.ClassProtocol, "replication role is %s, want %s", roleName(fields["role"]), roleName(role))
	}
	return true
}

func roleName(r string) string {
	switch r {
	case "slave":
		return "replica"
	case "":
		return "unknown"
	}
	return r
}

// redisConfigInt reads an integer setting with CONFIG GET; it returns 0 when the
// command is denied or the reply is unexpected.
func redisConfigInt(conn net.Conn, r *bufio.Reader, name string) int64 {
	v, err := redisDo(conn, r, "CONFIG", "GET", name)
	if err != nil || v.kind != '*' || len(v.arr) != 2 {
		return 0
	}
	n, err := strconv.ParseInt(v.arr[1].str, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// redisFail classifies a Redis error reply. withCreds says whether we sent credentials.
func redisFail(res *patrol.Result, msg, doing string, withCreds bool) {
	msg = truncate(msg, 200)
	upper := strings.ToUpper(msg)
	switch {
	case strings.Contains(upper, "MAX NUMBER OF CLIENTS"):
		res.Fail(patrol.ClassOverloaded, "%s: server is full: %s (raise maxclients or find the client leaking connections)", doing, msg)
	case strings.HasPrefix(upper, "WRONGPASS"), strings.Contains(upper, "INVALID PASSWORD"),
		strings.Contains(upper, "INVALID USERNAME-PASSWORD"), strings.HasPrefix(upper, "NOPERM"):
		res.Fail(patrol.ClassAuth, "%s: credentials rejected: %s", doing, msg)
	case strings.Contains(upper, "WITHOUT ANY PASSWORD CONFIGURED"):
		res.Fail(patrol.ClassAuth, "%s: a password was given but the server has none configured: %s", doing, msg)
	case strings.HasPrefix(upper, "NOAUTH"):
		if withCreds {
			res.Fail(patrol.ClassAuth, "%s: %s", doing, msg)
		} else {
			res.Fail(patrol.ClassAuth, "%s: authentication required: %s (give credentials in the target URL or the module)", doing, msg)
		}
	case strings.HasPrefix(upper, "LOADING"):
		res.Fail(patrol.ClassProtocol, "%s: loading dataset in memory: the server is starting and does not serve yet", doing)
	case strings.HasPrefix(upper, "MASTERDOWN"):
		res.Fail(patrol.ClassProtocol, "%s: replica lost its master and does not serve stale data: %s", doing, msg)
	case strings.HasPrefix(upper, "BUSY"):
		res.Fail(patrol.ClassProtocol, "%s: server is busy running a script: %s", doing, msg)
	default:
		res.Fail(patrol.ClassProtocol, "%s: server replied with error: %s", doing, msg)
	}
}

// redisDo sends a command and reads one reply.
func redisDo(conn net.Conn, r *bufio.Reader, args ...string) (respValue, error) {
	if err := redisCall(conn, args...); err != nil {
		return respValue{}, err
	}
	return readRESP(r)
}

// redisCall writes a command as a RESP array of bulk strings.
func redisCall(conn net.Conn, args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(conn, b.String())
	return err
}

// readRESP reads one RESP2 value (RESP3 is never negotiated). It bounds line and bulk
// lengths, array sizes and nesting, and returns an error wrapping errMalformed for
// anything that is not RESP.
func readRESP(r *bufio.Reader) (respValue, error) {
	return readRESPDepth(r, 0)
}

func readRESPDepth(r *bufio.Reader, depth int) (respValue, error) {
	line, err := readCRLF(r, respMaxLine)
	if err != nil {
		return respValue{}, err
	}
	if len(line) == 0 {
		return respValue{}, malformed("empty RESP line")
	}
	v := respValue{kind: line[0]}
	body := line[1:]
	switch v.kind {
	case '+', '-':
		v.str = string(body)
		return v, nil
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return v, malformed("bad RESP integer %q", truncate(string(body), 40))
		}
		v.num = n
		return v, nil
	case '$':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil || n < -1 {
			return v, malformed("bad RESP bulk length %q", truncate(string(body), 40))
		}
		if n == -1 {
			v.null = true
			return v, nil
		}
		if n > respMaxBulk {
			return v, malformed("RESP bulk string of %d bytes exceeds the %d-byte limit", n, respMaxBulk)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return v, midMessage(err)
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return v, malformed("RESP bulk string not terminated by CRLF")
		}
		v.str = string(buf[:n])
		return v, nil
	case '*':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil || n < -1 {
			return v, malformed("bad RESP array length %q", truncate(string(body), 40))
		}
		if n == -1 {
			v.null = true
			return v, nil
		}
		if n > respMaxArray {
			return v, malformed("RESP array of %d elements exceeds the %d limit", n, respMaxArray)
		}
		if depth >= respMaxDepth {
			return v, malformed("RESP arrays nested deeper than %d", respMaxDepth)
		}
		v.arr = make([]respValue, 0, n)
		for i := int64(0); i < n; i++ {
			e, err := readRESPDepth(r, depth+1)
			if err != nil {
				return v, midMessage(err)
			}
			v.arr = append(v.arr, e)
		}
		return v, nil
	}
	return v, malformed("not a RESP reply: %q", truncate(string(line), 40))
}

func (v respValue) describe() string {
	switch v.kind {
	case '+':
		return fmt.Sprintf("+%q", truncate(v.str, 80))
	case '-':
		return "error " + truncate(v.str, 120)
	case ':':
		return fmt.Sprintf("integer %d", v.num)
	case '$':
		if v.null {
			return "null"
		}
		return fmt.Sprintf("bulk %q", truncate(v.str, 80))
	case '*':
		return fmt.Sprintf("array of %d", len(v.arr))
	}
	return "nothing"
}

// parseRedisInfo turns INFO's "key:value" lines into a map; section headers and blank
// lines are skipped.
func parseRedisInfo(s string) map[string]string {
	m := make(map[string]string, 64)
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}
