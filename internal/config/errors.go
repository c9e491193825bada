package config

import (
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

var (
	errEOF         = io.EOF
	typeOfConfig   = reflect.TypeOf(Source{})
	typeOfBlackbox = reflect.TypeOf(blackboxFile{})
)

// yamlLine is compiled on first use: start-up pays nothing for a config error path.
var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`) })

// Error is one problem in a config file, at a position.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the field path, such as "targets[2].timeout"; empty for syntax errors.
	Path string
	Msg  string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Warning is a setting that is read but not acted on, at its position: a field of
// blackbox_exporter's module schema portpatrol does not honour yet. A configuration
// with warnings loads and runs; `config check` prints them and serve logs them.
type Warning struct {
	File   string
	Line   int
	Column int
	// Path is the field path, such as "modules.http_2xx.http.proxy_url".
	Path string
	Msg  string
}

// String returns "file:line:col: warning: path: message", as compilers print a
// warning, so editors and CI annotations pick up its position.
func (w Warning) String() string {
	e := Error(w)
	if e.Path != "" {
		e.Msg = e.Path + ": " + e.Msg
	}
	e.Path = "warning"
	return e.Error()
}

// Errors is every problem found in one file, in file order. Its Error method prints one
// problem per line.
type Errors struct {
	List []Error
}

// add records a problem. Messages may quote a value from the file, so URL passwords
// in them are hidden ("want a list, got \"redis://u:xxxxx@h\"").
func (e *Errors) add(file string, line, col int, path, msg string) {
	e.List = append(e.List, Error{File: file, Line: line, Column: col, Path: path, Msg: patrol.RedactPasswords(msg)})
}

// addYAML records an error from the YAML library, keeping its line numbers.
func (e *Errors) addYAML(file string, err error) {
	var lines []string
	if te, ok := err.(*yaml.TypeError); ok {
		lines = te.Errors
	} else {
		lines = []string{err.Error()}
	}
	for _, l := range lines {
		l = strings.TrimPrefix(l, "yaml: ")
		if m := yamlLine().FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			e.add(file, n, 0, "", m[2])
			continue
		}
		e.add(file, 0, 0, "", l)
	}
}

// Len returns the number of problems.
func (e *Errors) Len() int { return len(e.List) }

func (e *Errors) Error() string {
	sort.SliceStable(e.List, func(i, j int) bool {
		if e.List[i].Line != e.List[j].Line {
			return e.List[i].Line < e.List[j].Line
		}
		return e.List[i].Column < e.List[j].Column
	})
	parts := make([]string, len(e.List))
	for i, x := range e.List {
		parts[i] = x.Error()
	}
	return strings.Join(parts, "\n")
}

// near returns the node at path, or the node of its closest recorded parent, so an
// error about a missing field points at the mapping that lacks it.
func (idx index) near(path string) *yaml.Node {
	for p := path; p != ""; {
		if n, ok := idx[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	if n, ok := idx[""]; ok {
		return n
	}
	return &yaml.Node{}
}
