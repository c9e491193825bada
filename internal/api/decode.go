package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
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
	writeJSON(w, status, errorBody{Error: err.msg, Field: err.field})
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

// parseTime reads an RFC 3339 time or Unix seconds.
func parseTime(field, v string) (time.Time, *badRequest) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if sec, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(sec*1e9)), nil
	}
	return time.Time{}, badField(field, "%q is not an RFC 3339 time (2006-01-02T15:04:05Z) or Unix seconds", v)
}

// parseDuration reads a Go duration ("90s", "1h30m") or seconds.
func parseDuration(field, v string) (time.Duration, *badRequest) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	if sec, err := strconv.ParseFloat(v, 64); err == nil && sec > 0 {
		return time.Duration(sec * float64(time.Second)), nil
	}
	return 0, badField(field, "%q is not a positive duration (90s, 1h30m) or seconds", v)
}
