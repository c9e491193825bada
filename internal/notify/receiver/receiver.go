// Package receiver holds what every provider's receiver configuration shares: errors
// named by the field they are about, the checks of required fields, URLs and secrets
// given inline or in a *_file twin, and Env, what building a receiver takes besides its
// own fields. Each provider package declares its ReceiverConfig with these; package
// notify decodes the right one for a receiver's type and builds it.
package receiver

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/render"
)

// FieldError is a problem with one field of a receiver, named by its path below the
// receiver ("url", "smtp.to[0]"); package notify puts the receiver's own path in front.
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: msg".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Errorf returns a *FieldError at field.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Required returns "field: required for type typ" unless the field is given, else nil.
func Required(typ, field string, given bool) error {
	if given {
		return nil
	}
	return Errorf(field, "required for type %s", typ)
}

// Secret checks a secret's two forms, inline and field_file: giving both is an error
// at field_file. Whether it is required is for Required to say (given either way).
func Secret(field, inline, file string) error {
	if inline != "" && file != "" {
		return Errorf(field+"_file", "give %s or %s_file, not both", field, field)
	}
	return nil
}

// URL checks that s, when given, is an http:// or https:// URL with a host.
func URL(field, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return Errorf(field, "does not parse as a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return Errorf(field, "want an http:// or https:// URL, got scheme %q", u.Scheme)
	case u.Host == "":
		return Errorf(field, "URL has no host")
	}
	return nil
}

// Env is what building a receiver takes besides its own fields. The zero value reads
// files from the working directory, sends with the provider's default client, renders
// the default templates and signs with time.Now.
type Env struct {
	// Dir is where relative *_file paths are read from; empty means the working
	// directory.
	Dir string
	// Client sends the provider's requests; nil means the provider's default.
	Client *http.Client
	// ExternalURL is portpatrol's own address, for links back from notifications.
	ExternalURL string
	// Templates render the receiver's messages (its lang, timezone and overrides).
	Templates *render.Templates
	// Now is the clock for signing timestamps; nil means time.Now.
	Now func() time.Time
}

// Secret returns a secret given inline, or read from file with trailing line breaks
// removed. A file that cannot be read or is empty is a *FieldError at field_file.
func (e Env) Secret(field, inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	if !filepath.IsAbs(file) && e.Dir != "" {
		file = filepath.Join(e.Dir, file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", Errorf(field+"_file", "%v", err)
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", Errorf(field+"_file", "%s is empty", file)
	}
	return s, nil
}
