package auditlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// hashVersion starts every hashed input, so that a future change of the encoding
// cannot be mistaken for this one.
const hashVersion = "portpatrol audit v1\n"

// Hash returns the hex SHA-256 that chains an entry: over the bytes
//
//	"portpatrol audit v1\n" seq "\n" time_ns "\n" len(record) "\n" record "\n" prev
//
// with seq, time_ns (Unix nanoseconds, UTC) and the record's length in bytes written
// in decimal, record the record's canonical JSON (see Canonical) and prev the previous
// entry's hash ("" for the first). Anyone can recompute it from an export.
func Hash(seq, timeNs int64, record []byte, prev string) string {
	h := sha256.New()
	var buf [64]byte
	h.Write([]byte(hashVersion))
	h.Write(strconv.AppendInt(buf[:0], seq, 10))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(buf[:0], timeNs, 10))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(buf[:0], int64(len(record)), 10))
	h.Write([]byte{'\n'})
	h.Write(record)
	h.Write([]byte{'\n'})
	h.Write([]byte(prev))
	return hex.EncodeToString(h.Sum(nil))
}

// MaxRecord bounds a record's canonical JSON: evidence is a snapshot, not an archive.
const MaxRecord = 1 << 20

// Canonical returns the canonical JSON of r, the bytes an entry's hash covers:
// encoding/json's encoding of the Record (fields in declaration order, empty optional
// fields left out, no spaces, <, > and & escaped), with the evidence re-encoded the
// same way with its object keys sorted and its numbers kept as written. Encoding the
// decoded result again gives the same bytes. Evidence that is not JSON is an error;
// evidence that is JSON null is left out; invalid UTF-8 in any string becomes U+FFFD.
func Canonical(r Record) ([]byte, error) {
	b, err := canonical(r)
	if err != nil {
		return nil, err
	}
	// Invalid UTF-8 is encoded as the escape \ufffd, which decodes to U+FFFD, which
	// encodes as itself: a second round makes the result a fixed point.
	var again Record
	if err := json.Unmarshal(b, &again); err != nil {
		return nil, err
	}
	return canonical(again)
}

func canonical(r Record) ([]byte, error) {
	if len(r.Evidence) > 0 {
		d := json.NewDecoder(bytes.NewReader(r.Evidence))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("evidence: %w", err)
		}
		if d.More() {
			return nil, fmt.Errorf("evidence: more than one JSON value")
		}
		if v == nil {
			r.Evidence = nil
		} else {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("evidence: %w", err)
			}
			r.Evidence = b
		}
	}
	return json.Marshal(r)
}

// parseRecord decodes a stored record and reports whether the bytes are its canonical
// JSON.
func parseRecord(b []byte) (Record, bool, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, false, err
	}
	c, err := Canonical(r)
	if err != nil {
		return Record{}, false, err
	}
	return r, bytes.Equal(c, b), nil
}
