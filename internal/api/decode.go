package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// badRequest is a client error, naming the field or parameter at fault when known.
type badRequest struct {
	status int // 400 unless set
	field  string
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func badField(field, format string, args ...any) *badRequest {
	return &badRequest{field: field, msg: fmt.Sprintf("%s: %s", field, fmt.Sprintf(format, args...))}
}

// writeBad answers a *badRequest.
func writeBad(w http.ResponseWriter, err *badRequest) {
	status := err.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, errorBody{Error: patrol.RedactPasswords(err.msg), Field: err.field})
}

// decodeBody reads one JSON object into v, refusing unknown fields, values of the
// wrong type, trailing data and bodies over the limit. An empty body leaves v as it is
// when emptyOK.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) *badRequest {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &badRequest{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("content type %q: want application/json", ct)}
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		if emptyOK {
			return nil
		}
		return &badRequest{msg: "empty body: want a JSON object"}
	}
	if err == nil {
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			return &badRequest{msg: "invalid JSON: data after the object"}
		}
		return nil
	}
	return jsonError(err, s.cfg.MaxBodyBytes)
}

// jsonError turns a decoding error into a message that names the field at fault.
func jsonError(err error, limit int64) *badRequest {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return &badRequest{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body larger than %d bytes", limit)}
	case errors.As(err, &syn):
		return &badRequest{msg: fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &badRequest{msg: fmt.Sprintf("invalid JSON: want an object, got %s", typ.Value)}
		}
		return badField(field, "want %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &badRequest{msg: "invalid JSON: unexpected end of body"}
	}
	// encoding/json reports unknown fields only in the text: json: unknown field "x".
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, uerr := strconv.Unquote(rest)
		if uerr != nil {
			name = rest
		}
		return &badRequest{field: name, msg: fmt.Sprintf("unknown field %q", name)}
	}
	return &badRequest{msg: "invalid JSON: " + err.Error()}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return k
}

// Times and durations in requests are bounded so that no arithmetic on them can
// overflow, and exact to the nanosecond so that nothing is silently rounded to zero
// (a step of 1e-10 seconds once divided by zero).
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseTime reads a time parameter or field: RFC 3339 or Unix seconds (a decimal
// number, up to nine digits after the point), from 1970 up to 2200. The error names
// field.
func parseTime(field, v string) (time.Time, *badRequest) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		ns, problem := parseNanos(v, false)
		if problem != "" {
			if problem == notANumber {
				problem = "is not an RFC 3339 time (2006-01-02T15:04:05Z) or Unix seconds"
			}
			return time.Time{}, badField(field, "%q %s", v, problem)
		}
		t = time.Unix(0, ns)
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, badField(field, "%q is out of range: want a time from %d to %d", v, minTime.Year(), maxTime.Year()-1)
	}
	return t, nil
}

// parseDuration reads a duration parameter or field: a Go duration ("90s", "1h30m")
// or seconds, from lo to hi inclusive. The error names field.
func parseDuration(field, v string, lo, hi time.Duration) (time.Duration, *badRequest) {
	ns, problem := parseNanos(v, true)
	if problem == notANumber {
		problem = "is not a duration (90s, 1h30m) or seconds"
	}
	switch {
	case problem != "":
		return 0, badField(field, "%q %s", v, problem)
	case ns < int64(lo):
		return 0, badField(field, "%q is shorter than the minimum of %s", v, lo)
	case ns > int64(hi):
		return 0, badField(field, "%q is longer than the maximum of %s", v, hi)
	}
	return time.Duration(ns), nil
}

// notANumber is parseNanos's problem for text that is no number at all, which the
// callers word for what they expected.
const notANumber = "is not a number"

// units are the Go duration units, in nanoseconds.
var units = map[string]int64{"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}

// parseNanos reads a non-negative amount of time exactly, as nanoseconds: decimal
// seconds ("90", "1.5") or, when withUnits, a Go duration ("1h30m", "250ms") too. It
// does the arithmetic itself rather than through floating point or time.ParseDuration,
// which silently round "1e-10" or "0.5ns" to zero. problem is empty on success, else
// it says why v is refused: no number, not finite, negative, out of range, or finer
// than a nanosecond.
func parseNanos(v string, withUnits bool) (ns int64, problem string) {
	if rest, ok := strings.CutPrefix(v, "-"); ok {
		if _, p := parseNanos(rest, withUnits); p == "" {
			return 0, "is negative"
		}
	}
	if isDecimal(v) {
		return decimalNanos(v, 1e9)
	}
	if withUnits && v != "" {
		rest := v
		for rest != "" {
			i := 0
			for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
				i++
			}
			j := i
			for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
				j++
			}
			unit, ok := units[rest[i:j]]
			if !ok || !isDecimal(rest[:i]) {
				return 0, classify(v)
			}
			n, problem := decimalNanos(rest[:i], unit)
			if problem != "" {
				return 0, problem
			}
			if ns > math.MaxInt64-n {
				return 0, "is out of range"
			}
			ns += n
			rest = rest[j:]
		}
		return ns, ""
	}
	return 0, classify(v)
}

// isDecimal reports whether s is digits with at most one '.', and at least one digit.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] >= '0' && s[i] <= '9':
			digits++
		case s[i] == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// decimalNanos returns the decimal number s times unit nanoseconds, exactly.
func decimalNanos(s string, unit int64) (int64, string) {
	whole, frac, _ := strings.Cut(s, ".")
	whole = strings.TrimLeft(whole, "0")
	frac = strings.TrimRight(frac, "0")
	var ns int64
	for i := 0; i < len(whole); i++ {
		d := int64(whole[i] - '0')
		if ns > (math.MaxInt64/unit-d)/10 {
			return 0, "is out of range"
		}
		ns = ns*10 + d
	}
	ns *= unit
	// The fraction times unit must be a whole number of nanoseconds: unit is at most
	// 3.6e12, so a fraction longer than that many digits cannot be, once its
	// trailing zeros are gone.
	if len(frac) > 13 {
		return 0, "is finer than a nanosecond"
	}
	var f, scale int64 = 0, 1
	for i := 0; i < len(frac); i++ {
		f = f*10 + int64(frac[i]-'0')
		scale *= 10
	}
	if f != 0 {
		// f < scale, so the quotient is below unit and Div64 cannot overflow.
		hi, lo := bits.Mul64(uint64(f), uint64(unit))
		quo, rem := bits.Div64(hi, lo, uint64(scale))
		if rem != 0 {
			return 0, "is finer than a nanosecond"
		}
		add := int64(quo)
		if ns > math.MaxInt64-add {
			return 0, "is out of range"
		}
		ns += add
	}
	return ns, ""
}

// classify says why text that is not a plain decimal is refused, for the numbers
// strconv reads (NaN, Inf, 1e300, -5, 1e-10, 0x10) and everything else.
func classify(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	var ne *strconv.NumError
	switch {
	case err != nil && !(errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange)):
		return notANumber
	case math.IsNaN(f) || math.IsInf(f, 0) && !strings.ContainsAny(v, "0123456789"):
		return "is not a finite number"
	case f < 0 || math.Signbit(f) && strings.HasPrefix(v, "-"):
		return "is negative"
	case math.IsInf(f, 0) || f > math.MaxInt64/1e9:
		return "is out of range"
	case f > 0 && f < 1e-9:
		return "is finer than a nanosecond"
	}
	return "is not a plain decimal number; write e.g. 90 or 1.5"
}
