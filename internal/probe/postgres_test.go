package probe

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestPostgresLocal(t *testing.T) {
	addr := testsvc.Local(t, "PostgreSQL", "127.0.0.1:5432")
	for _, mode := range []string{"prefer", "disable"} {
		res := protoRun(t, "postgres://postgres@"+addr+"/test?sslmode="+mode, Module{})
		protoWant(t, res, patrol.ClassOK, "")
		if res.Details["version"] == "" {
			t.Errorf("sslmode=%s: no version in details %v", mode, res.Details)
		}
		if res.Capacity == nil || res.Capacity.What != "connections" || res.Capacity.Used < 1 || res.Capacity.Limit < 1 {
			t.Errorf("sslmode=%s: got capacity %+v, want connections used>=1 of limit>=1", mode, res.Capacity)
		}
	}
	res := protoRun(t, "postgres://"+addr+"/no_such_database", Module{})
	protoWant(t, res, patrol.ClassProtocol, "no_such_database")
}

func TestPostgresStates(t *testing.T) {
	t.Run("scram-sha-256", func(t *testing.T) {
		s := testsvc.Postgres(t, testsvc.PostgresOptions{Password: "pg-s3cret"})
		res := protoRun(t, "postgres://"+s.Addr+"/test?sslmode=disable", Module{})
		protoWant(t, res, patrol.ClassOK, "authentication required (sasl SCRAM-SHA-256")
		res = protoRun(t, "postgres://postgres:wrong-pw@"+s.Addr+"/test", Module{})
		protoWant(t, res, patrol.ClassAuth, "password authentication failed", "wrong-pw")
		res = protoRun(t, "postgres://postgres:pg-s3cret@"+s.Addr+"/test", Module{})
		protoWant(t, res, patrol.ClassOK, "", "pg-s3cret")
		if res.Capacity == nil || res.Capacity.Limit != 100 {
			t.Errorf("got capacity %+v, want a limit of 100", res.Capacity)
		}
		res = protoRun(t, "postgres://"+s.Addr+"/test", Module{Postgres: PostgresModule{Password: "pg-s3cret"}})
		protoWant(t, res, patrol.ClassOK, "", "pg-s3cret")
	})
	t.Run("slots exhausted", func(t *testing.T) {
		s := testsvc.Postgres(t, testsvc.PostgresOptions{Settings: map[string]string{
			"max_connections": "2", "superuser_reserved_connections": "0", "max_wal_senders": "0"}})
		testsvc.HoldPostgres(t, s.Addr, "postgres", "test", 2)
		res := protoRun(t, "postgres://"+s.Addr+"/test", Module{})
		protoWant(t, res, patrol.ClassOverloaded, "too many clients")
	})
	t.Run("sslmode=require without TLS", func(t *testing.T) {
		s := testsvc.Postgres(t, testsvc.PostgresOptions{})
		res := protoRun(t, "postgres://"+s.Addr+"/test?sslmode=require", Module{})
		protoWant(t, res, patrol.ClassTLS, "does not offer TLS")
		res = protoRun(t, "postgres://"+s.Addr+"/test", Module{})
		protoWant(t, res, patrol.ClassOK, "")
	})
}

func TestSCRAM(t *testing.T) {
	// RFC 7677 §3's example, with the user name PostgreSQL leaves out.
	s := &scramClient{pass: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO"}
	s.first()
	s.firstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
	final, err := s.final([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	if err != nil {
		t.Fatal(err)
	}
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if string(final) != want {
		t.Errorf("client-final: got %s, want %s", final, want)
	}
	if err := s.verify([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := s.verify([]byte("v=AAAA")); err == nil {
		t.Errorf("verify of a wrong signature: got no error")
	}
	if _, err := s.final([]byte("r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")); err == nil {
		t.Errorf("a nonce not extending ours: got no error")
	}
	if _, err := s.final([]byte("r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999")); err == nil {
		t.Errorf("a huge iteration count: got no error")
	}
}

func TestPGMD5(t *testing.T) {
	// md5(md5("secret"+"postgres") hex + salt), as libpq computes it.
	if got, want := pgMD5("postgres", "secret", []byte{1, 2, 3, 4}), "md5"; len(got) != 35 || got[:3] != want {
		t.Errorf("got %q, want md5 and 32 hex digits", got)
	}
}

func TestParsePGError(t *testing.T) {
	body := []byte("SFATAL\x00VFATAL\x00C53300\x00Msorry, too many clients already\x00Fproc.c\x00\x00")
	e := parsePGError(body)
	if e.Code != "53300" || e.Severity != "FATAL" || e.Message != "sorry, too many clients already" {
		t.Errorf("got %+v", e)
	}
}

func FuzzPostgresMessage(f *testing.F) {
	f.Add([]byte("E\x00\x00\x00\x2aSFATAL\x00C53300\x00Msorry, too many clients already\x00\x00"))
	f.Add([]byte("R\x00\x00\x00\x08\x00\x00\x00\x00Z\x00\x00\x00\x05I"))
	f.Add([]byte("D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x011"))
	f.Add([]byte("r=abc,s=c2FsdA==,i=4096"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 8 {
			typ, body, err := readPGMessage(r)
			if err != nil {
				break
			}
			switch typ {
			case 'E', 'N':
				_ = parsePGError(body)
			case 'D':
				_, _ = parsePGDataRow(body)
			}
		}
		_ = parsePGError(data)
		_, _ = parsePGDataRow(data)
		_, _, _, _ = parseSCRAMServerFirst(string(data))
	})
}
