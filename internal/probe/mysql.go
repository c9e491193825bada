package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// MySQLModule configures the mysql prober (MySQL and MariaDB). Credentials in the
// target URL (mysql://user:pass@host) take precedence over the module's. Without a
// user name (the zero value) the probe only reads the server's greeting.
type MySQLModule struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// mysqlMaxPacket bounds one packet payload; the probe never needs more.
const mysqlMaxPacket = 1 << 20

// Capability flags of the client/server protocol.
const (
	mysqlLongPassword     = 0x00000001
	mysqlProtocol41       = 0x00000200
	mysqlTransactions     = 0x00002000
	mysqlSecureConnection = 0x00008000
	mysqlPluginAuth       = 0x00080000
)

const (
	mysqlNativePassword = "mysql_native_password"
	mysqlCachingSHA2    = "caching_sha2_password"
)

// mysqlHandshake is the part of the initial handshake (protocol 10) the probe uses.
type mysqlHandshake struct {
	ServerVersion string
	ConnectionID  uint32
	Capabilities  uint32
	AuthData      []byte // the 20-byte scramble
	AuthPlugin    string
}

// mysqlError is an ERR packet.
type mysqlError struct {
	Code    uint16
	State   string
	Message string
}

func (e *mysqlError) Error() string {
	if e.State != "" {
		return fmt.Sprintf("error %d (%s): %s", e.Code, e.State, e.Message)
	}
	return fmt.Sprintf("error %d: %s", e.Code, e.Message)
}

// newMySQL builds the mysql prober.
func newMySQL(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	user, pass := credentials(t, m.MySQL.Username, m.MySQL.Password)
	db := strings.TrimPrefix(q.path(), "/")
	if strings.Contains(db, "/") {
		return nil, fmt.Errorf("mysql path %q: want /DATABASE", t.Path)
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
		mc := &mysqlConn{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
		t0 := time.Now()
		p, err := mc.read()
		res.AddPhase("first_byte", time.Since(t0))
		if err != nil {
			failIO(res, err, "reading the server greeting")
			return
		}
		hs, merr, err := parseMySQLGreeting(p)
		if err != nil {
			res.Fail(patrol.ClassProtocol, "server greeting: %s", err)
			return
		}
		if merr != nil {
			mysqlFail(res, merr, "greeting")
			return
		}
		version := strings.TrimPrefix(hs.ServerVersion, "5.5.5-") // MariaDB's replication prefix
		res.SetDetail("version", version)
		res.SetDetail("connection_id", strconv.FormatUint(uint64(hs.ConnectionID), 10))
		if hs.AuthPlugin != "" {
			res.SetDetail("auth_plugin", hs.AuthPlugin)
		}
		if strings.Contains(version, "MariaDB") {
			res.SetDetail("flavor", "mariadb")
		} else {
			res.SetDetail("flavor", "mysql")
		}
		if user == "" {
			return
		}
		if !mysqlLogin(mc, hs, user, pass, db, res) {
			return
		}
		mysqlCheck(mc, res)
		mc.seq = 0
		_ = mc.write([]byte{0x01}) // COM_QUIT: the server closes without a reply
	}, nil
}

// mysqlConn frames packets: 3-byte little-endian length, 1-byte sequence id.
type mysqlConn struct {
	conn net.Conn
	r    *bufio.Reader
	seq  byte
}

func (c *mysqlConn) read() ([]byte, error) {
	seq, p, err := readMySQLPacket(c.r)
	if err != nil {
		return nil, err
	}
	c.seq = seq + 1
	return p, nil
}

func (c *mysqlConn) write(p []byte) error {
	buf := make([]byte, 4, 4+len(p))
	buf[0], buf[1], buf[2] = byte(len(p)), byte(len(p)>>8), byte(len(p)>>16)
	buf[3] = c.seq
	c.seq++
	_, err := c.conn.Write(append(buf, p...))
	return err
}

// readMySQLPacket reads one packet of at most mysqlMaxPacket bytes.
func readMySQLPacket(r io.Reader) (byte, []byte, error) {
	var h [4]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if n > 0 {
			err = midMessage(err)
		}
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > mysqlMaxPacket {
		return 0, nil, malformed("packet of %d bytes exceeds the %d-byte limit", n, mysqlMaxPacket)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, midMessage(err)
	}
	return h[3], p, nil
}

// parseMySQLGreeting parses the server's first packet: an initial handshake or an
// ERR packet. It never panics on arbitrary input.
func parseMySQLGreeting(p []byte) (*mysqlHandshake, *mysqlError, error) {
	if len(p) == 0 {
		return nil, nil, malformed("empty packet")
	}
	if p[0] == 0xff {
		e, err := parseMySQLError(p)
		return nil, e, err
	}
	if p[0] != 10 {
		return nil, nil, malformed("handshake protocol version %d, want 10 (is this a MySQL server?)", p[0])
	}
	hs := &mysqlHandshake{}
	rest := p[1:]
	end := bytes.IndexByte(rest, 0)
	if end < 0 || end > 255 {
		return nil, nil, malformed("handshake without a server version")
	}
	hs.ServerVersion = string(rest[:end])
	rest = rest[end+1:]
	if len(rest) < 4+8+1+2 {
		return nil, nil, malformed("handshake truncated after the server version")
	}
	hs.ConnectionID = binary.LittleEndian.Uint32(rest)
	scramble := append([]byte{}, rest[4:12]...)
	hs.Capabilities = uint32(binary.LittleEndian.Uint16(rest[13:15]))
	rest = rest[15:]
	if len(rest) < 1+2+2+1+10 {
		hs.AuthData = scramble
		return hs, nil, nil
	}
	hs.Capabilities |= uint32(binary.LittleEndian.Uint16(rest[3:5])) << 16
	authLen := int(rest[5])
	rest = rest[16:]
	if hs.Capabilities&mysqlSecureConnection != 0 {
		n := max(13, authLen-8)
		if n > len(rest) {
			return nil, nil, malformed("handshake truncated in the auth data")
		}
		part := rest[:n]
		if i := bytes.IndexByte(part, 0); i >= 0 {
			part = part[:i]
		}
		scramble = append(scramble, part...)
		rest = rest[n:]
	}
	hs.AuthData = scramble
	if hs.Capabilities&mysqlPluginAuth != 0 && len(rest) > 0 {
		if i := bytes.IndexByte(rest, 0); i >= 0 {
			rest = rest[:i]
		}
		hs.AuthPlugin = string(rest)
	}
	return hs, nil, nil
}

// parseMySQLError parses an ERR packet, with or without the "#SQLSTATE" marker
// (servers omit it before the handshake).
func parseMySQLError(p []byte) (*mysqlError, error) {
	if len(p) < 3 || p[0] != 0xff {
		return nil, malformed("truncated ERR packet")
	}
	e := &mysqlError{Code: binary.LittleEndian.Uint16(p[1:3])}
	msg := p[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		e.State = string(msg[1:6])
		msg = msg[6:]
	}
	e.Message = truncate(strings.ToValidUTF8(string(msg), "?"), 300)
	return e, nil
}

// mysqlFail classifies an ERR packet received while doing something.
func mysqlFail(res *patrol.Result, e *mysqlError, doing string) {
	switch e.Code {
	case 1040:
		res.Fail(patrol.ClassOverloaded, "%s: too many connections (%s): raise max_connections or find the client holding them", doing, e)
	case 1129:
		res.Fail(patrol.ClassProtocol, "%s: host blocked because of many connection errors; run mysqladmin flush-hosts (%s)", doing, e)
	case 1045, 1044, 1698, 1130, 1251:
		res.Fail(patrol.ClassAuth, "%s: %s", doing, e)
	default:
		res.Fail(patrol.ClassProtocol, "%s: %s", doing, e)
	}
}

// mysqlLogin sends the handshake response and follows auth switches until OK or ERR.
// It reports whether the session is logged in.
func mysqlLogin(mc *mysqlConn, hs *mysqlHandshake, user, pass, db string, res *patrol.Result) bool {
	if hs.Capabilities&mysqlProtocol41 == 0 || hs.Capabilities&mysqlSecureConnection == 0 {
		res.Fail(patrol.ClassProtocol, "server %s does not speak protocol 4.1 authentication", hs.ServerVersion)
		return false
	}
	plugin := hs.AuthPlugin
	if plugin != mysqlCachingSHA2 {
		plugin = mysqlNativePassword
	}
	caps := uint32(mysqlLongPassword | mysqlProtocol41 | mysqlTransactions | mysqlSecureConnection | mysqlPluginAuth)
	const connectWithDB = 0x00000008
	if db != "" {
		caps |= connectWithDB
	}
	auth := mysqlScramble(plugin, pass, hs.AuthData)
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, mysqlMaxPacket)
	p = append(p, 45) // utf8mb4_general_ci
	p = append(p, make([]byte, 23)...)
	p = append(p, user...)
	p = append(p, 0, byte(len(auth)))
	p = append(p, auth...)
	if db != "" {
		p = append(p, db...)
		p = append(p, 0)
	}
	p = append(p, plugin...)
	p = append(p, 0)
	t0 := time.Now()
	defer func() { res.AddPhase("auth", time.Since(t0)) }()
	if err := mc.write(p); err != nil {
		failIO(res, err, "login")
		return false
	}
	for range 4 {
		reply, err := mc.read()
		if err != nil {
			failIO(res, err, "login")
			return false
		}
		if len(reply) == 0 {
			res.Fail(patrol.ClassProtocol, "login: empty reply")
			return false
		}
		switch reply[0] {
		case 0x00:
			return true
		case 0xff:
			e, err := parseMySQLError(reply)
			if err != nil {
				res.Fail(patrol.ClassProtocol, "login: %s", err)
				return false
			}
			mysqlFail(res, e, "login")
			return false
		case 0xfe: // auth switch request: plugin name, NUL, new scramble
			rest := reply[1:]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				res.Fail(patrol.ClassProtocol, "login: server asks for the pre-4.1 password protocol, which is insecure and not supported")
				return false
			}
			plugin = string(rest[:i])
			data := rest[i+1:]
			if n := len(data); n > 0 && data[n-1] == 0 {
				data = data[:n-1]
			}
			if plugin != mysqlNativePassword && plugin != mysqlCachingSHA2 {
				res.Fail(patrol.ClassError, "login: server asks for auth plugin %q; portpatrol speaks mysql_native_password and caching_sha2_password (fast path)", truncate(plugin, 64))
				return false
			}
			if err := mc.write(mysqlScramble(plugin, pass, data)); err != nil {
				failIO(res, err, "login")
				return false
			}
		case 0x01: // more data: caching_sha2_password's fast-auth verdict
			if plugin != mysqlCachingSHA2 || len(reply) < 2 {
				res.Fail(patrol.ClassProtocol, "login: unexpected auth-more-data packet")
				return false
			}
			switch reply[1] {
			case 3: // fast auth succeeded; OK follows
			case 4:
				res.Fail(patrol.ClassError, "login: caching_sha2_password needs full authentication (TLS or RSA), which the probe does not do; log in once with the mysql client to fill the server's cache, or use mysql_native_password for the monitoring user")
				return false
			default:
				res.Fail(patrol.ClassProtocol, "login: unexpected caching_sha2_password status %d", reply[1])
				return false
			}
		default:
			res.Fail(patrol.ClassProtocol, "login: unexpected reply 0x%02x", reply[0])
			return false
		}
	}
	res.Fail(patrol.ClassProtocol, "login: too many authentication rounds")
	return false
}

// mysqlScramble computes the auth response of a plugin; an empty password sends none.
func mysqlScramble(plugin, pass string, scramble []byte) []byte {
	if pass == "" {
		return nil
	}
	if len(scramble) > 20 {
		scramble = scramble[:20]
	}
	if plugin == mysqlCachingSHA2 {
		// SHA256(pass) XOR SHA256(SHA256(SHA256(pass)) + scramble)
		h1 := sha256.Sum256([]byte(pass))
		h2 := sha256.Sum256(h1[:])
		h3 := sha256.Sum256(append(h2[:], scramble...))
		for i := range h1 {
			h1[i] ^= h3[i]
		}
		return h1[:]
	}
	// SHA1(pass) XOR SHA1(scramble + SHA1(SHA1(pass)))
	h1 := sha1.Sum([]byte(pass))
	h2 := sha1.Sum(h1[:])
	h3 := sha1.Sum(append(append([]byte{}, scramble...), h2[:]...))
	for i := range h1 {
		h1[i] ^= h3[i]
	}
	return h1[:]
}

// mysqlCheck runs SELECT 1 and reads the connection capacity. Failure of SELECT 1 is
// a protocol failure; a capacity that cannot be read is only a note.
func mysqlCheck(mc *mysqlConn, res *patrol.Result) {
	rows, err := mysqlQuery(mc, "SELECT 1")
	if err != nil {
		mysqlQueryFail(res, err, "SELECT 1")
		return
	}
	if len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] != "1" {
		res.Fail(patrol.ClassProtocol, "SELECT 1: unexpected result %q", truncate(fmt.Sprint(rows), 80))
		return
	}
	rows, err = mysqlQuery(mc, "SELECT @@max_connections")
	if err != nil || len(rows) != 1 || len(rows[0]) != 1 {
		res.SetDetail("note", "cannot read max_connections")
		return
	}
	limit, err1 := strconv.ParseInt(rows[0][0], 10, 64)
	rows, err = mysqlQuery(mc, "SHOW GLOBAL STATUS LIKE 'Threads_connected'")
	if err != nil || len(rows) != 1 || len(rows[0]) != 2 {
		res.SetDetail("note", "cannot read Threads_connected")
		return
	}
	used, err2 := strconv.ParseInt(rows[0][1], 10, 64)
	if err1 == nil && err2 == nil && limit > 0 {
		res.Capacity = &patrol.Capacity{What: "connections", Used: used, Limit: limit}
	}
}

func mysqlQueryFail(res *patrol.Result, err error, doing string) {
	if e, ok := err.(*mysqlError); ok {
		mysqlFail(res, e, doing)
		return
	}
	failIO(res, err, doing)
}

// mysqlQuery runs a text-protocol query and returns at most 100 rows; NULL reads as "".
func mysqlQuery(mc *mysqlConn, sql string) ([][]string, error) {
	mc.seq = 0
	if err := mc.write(append([]byte{0x03}, sql...)); err != nil {
		return nil, err
	}
	p, err := mc.read()
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, malformed("empty query reply")
	}
	switch p[0] {
	case 0x00:
		return nil, nil
	case 0xff:
		e, err := parseMySQLError(p)
		if err != nil {
			return nil, err
		}
		return nil, e
	}
	ncol, _, ok := mysqlLenEnc(p)
	if !ok || ncol == 0 || ncol > 64 {
		return nil, malformed("bad column count in query reply")
	}
	for range ncol { // column definitions
		if _, err := mc.read(); err != nil {
			return nil, err
		}
	}
	if p, err = mc.read(); err != nil { // EOF after the definitions
		return nil, err
	}
	if !mysqlIsEOF(p) {
		return nil, malformed("missing EOF after column definitions")
	}
	var rows [][]string
	for {
		p, err := mc.read()
		if err != nil {
			return nil, err
		}
		if mysqlIsEOF(p) {
			return rows, nil
		}
		if len(p) > 0 && p[0] == 0xff {
			e, err := parseMySQLError(p)
			if err != nil {
				return nil, err
			}
			return nil, e
		}
		if len(rows) == 100 {
			return nil, malformed("more than 100 rows")
		}
		row, err := parseMySQLRow(p, int(ncol))
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
}

func mysqlIsEOF(p []byte) bool { return len(p) > 0 && len(p) < 9 && p[0] == 0xfe }

// parseMySQLRow decodes a text-protocol row of n length-encoded strings.
func parseMySQLRow(p []byte, n int) ([]string, error) {
	row := make([]string, 0, n)
	for range n {
		if len(p) > 0 && p[0] == 0xfb {
			row = append(row, "")
			p = p[1:]
			continue
		}
		l, used, ok := mysqlLenEnc(p)
		if !ok || l > uint64(len(p)-used) {
			return nil, malformed("truncated row")
		}
		row = append(row, string(p[used:used+int(l)]))
		p = p[used+int(l):]
	}
	return row, nil
}

// mysqlLenEnc decodes a length-encoded integer and reports how many bytes it used.
func mysqlLenEnc(p []byte) (uint64, int, bool) {
	if len(p) == 0 {
		return 0, 0, false
	}
	var n int
	switch p[0] {
	case 0xfc:
		n = 2
	case 0xfd:
		n = 3
	case 0xfe:
		n = 8
	case 0xfb, 0xff:
		return 0, 0, false
	default:
		return uint64(p[0]), 1, true
	}
	if len(p) < 1+n {
		return 0, 0, false
	}
	var v uint64
	for i := n; i >= 1; i-- {
		v = v<<8 | uint64(p[i])
	}
	return v, 1 + n, true
}
