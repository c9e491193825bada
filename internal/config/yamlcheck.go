package config

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/probe"
)

// index maps a field path ("targets[2].timeout") to the YAML node it came from, so
// that semantic errors found after decoding still point at file:line:column.
type index map[string]*yaml.Node

var (
	durationType = reflect.TypeOf(time.Duration(0))
	timeType     = reflect.TypeOf(time.Time{})
	sizeType     = reflect.TypeOf(probe.ByteSize(0))
)

// envRef is compiled on first use rather than at start-up.
var envRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`) })

// walker checks a YAML tree against a Go type before it is decoded: unknown fields
// (with the valid ones listed), scalars of the wrong kind, and ${ENV} references, each
// reported at its line and column. It expands ${ENV} in place.
//
// A value it refuses is replaced by null and a field given twice loses its second
// entry, so the tree then decodes without error and the checks that follow see every
// other field: one run reports a mistyped field together with the semantic errors of
// the rest of the file.
type walker struct {
	file   string
	idx    index
	errs   *Errors
	getenv func(string) (string, bool)
	// bad holds the paths of the fields refused here (see badPaths).
	bad badPaths
	// anchors are the anchored nodes walked so far.
	anchors map[*yaml.Node]bool
	// fields caches structFields by type: a file of a million targets walks the
	// target struct a million times. Read-only once cached.
	fields map[reflect.Type]map[string]reflect.Type
}

// structFields is structFields(t), computed once per walker.
func (w *walker) structFields(t reflect.Type) map[string]reflect.Type {
	f, ok := w.fields[t]
	if !ok {
		if w.fields == nil {
			w.fields = map[reflect.Type]map[string]reflect.Type{}
		}
		f = structFields(t)
		w.fields[t] = f
	}
	return f
}

// fail reports a problem at n and marks path bad.
func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.errs.add(w.file, n.Line, n.Column, path, fmt.Sprintf(format, args...))
	if w.bad == nil {
		w.bad = badPaths{}
	}
	w.bad[path] = true
}

// refuse reports n as unreadable and turns it into null in place, keeping its
// position for the index, so the decoder leaves the field at its zero value instead of
// stopping there.
func (w *walker) refuse(n *yaml.Node, path, format string, args ...any) {
	w.fail(n, path, format, args...)
	nullify(n)
}

func nullify(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// badPaths are the field paths the walker refused. Their decoded values are zero, not
// what the file says, so a semantic error about such a field, about a part of it or
// about what contains it (a target whose url could not be read is not "missing url")
// would only repeat the walker's error or mislead; such errors are left out.
type badPaths map[string]bool

// covers reports whether an error at path concerns a refused field: the field itself,
// one inside it, or one containing it.
func (b badPaths) covers(path string) bool {
	for p := range b {
		if path == p || within(path, p) || within(p, path) {
			return true
		}
	}
	return false
}

// within reports whether path lies strictly inside parent.
func within(path, parent string) bool {
	if parent == "" {
		return false // the root: a file that is not a mapping leaves nothing to mislead
	}
	return strings.HasPrefix(path, parent) && len(path) > len(parent) && (path[len(parent)] == '.' || path[len(parent)] == '[')
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	n, again := w.deref(n)
	w.idx[path] = n
	if again {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		if w.scalar(n, path) {
			if _, err := time.ParseDuration(n.Value); err != nil {
				w.refuse(n, path, "%q is not a duration; write e.g. 500ms, 5s, 1m30s", n.Value)
			}
		}
		return
	case warnType:
		if w.scalar(n, path) && n.Value != autoWord {
			if _, err := time.ParseDuration(n.Value); err != nil {
				w.refuse(n, path, "%q is not a duration or %s; write e.g. 500ms, 2s, or %s for the threshold learned from the target's baseline", n.Value, autoWord, autoWord)
			}
		}
		return
	case sizeType:
		if w.scalar(n, path) {
			if _, err := probe.ParseByteSize(n.Value); err != nil {
				w.refuse(n, path, "%v", err)
			}
		}
		return
	case timeType:
		if w.scalar(n, path) {
			if _, err := time.Parse(time.RFC3339, n.Value); err != nil {
				w.refuse(n, path, "%q is not a time; write RFC 3339, e.g. 2026-03-01T22:00:00Z or 2026-03-01T22:00:00+08:00", n.Value)
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.refuse(n, path, "want a mapping of fields (%s), got %s", strings.Join(fieldNames(t), ", "), kindName(n))
			return
		}
		fields := w.structFields(t)
		vr, isVariant := reflect.Zero(t).Interface().(variant)
		if isVariant {
			if s := vr.YAMLVariant(n); s != nil {
				fields = maps.Clone(fields) // the cached map stays the type's own
				for k, ft := range structFields(reflect.TypeOf(s).Elem()) {
					fields[k] = ft
				}
			}
		}
		var seen keySet
		var twice []int
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen.seen(n, i) {
				w.fail(k, p, "field %q given twice", k.Value)
				twice = append(twice, i)
				continue
			}
			f, ok := fields[k.Value]
			if !ok && isVariant {
				// The type's own validation names the field; point its error at the key.
				w.walkAny(v, p)
				w.idx[p] = k
				continue
			}
			if !ok {
				w.fail(k, p, "unknown field %q; valid fields here: %s", k.Value, strings.Join(fieldNames(t), ", "))
				continue
			}
			w.walk(v, f, p)
		}
		dropPairs(n, twice)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.refuse(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		var seen keySet
		var twice []int
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen.seen(n, i) {
				w.fail(k, p, "key %q given twice", k.Value)
				twice = append(twice, i)
				continue
			}
			w.walk(v, t.Elem(), p)
		}
		dropPairs(n, twice)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.refuse(n, path, "want a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.String:
		w.scalar(n, path)
	case reflect.Bool:
		if w.scalar(n, path) {
			if _, err := strconv.ParseBool(n.Value); err != nil {
				w.refuse(n, path, "%q is not true or false", n.Value)
			}
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if w.scalar(n, path) {
			if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil {
				w.refuse(n, path, "%q is not a whole number", n.Value)
			}
		}
	case reflect.Float64:
		if w.scalar(n, path) {
			if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
				w.refuse(n, path, "%q is not a number", n.Value)
			}
		}
	}
}

// keySet finds keys given twice in a mapping node. A small mapping (a target's
// fields, its labels) is searched in place rather than through a map, which a file of
// a million targets would otherwise build two million times.
type keySet struct{ m map[string]bool }

// smallMapping is how many keys a mapping may have to be searched in place.
const smallMapping = 16

// seen reports whether the key at n.Content[i] came earlier in n, and records it.
func (s *keySet) seen(n *yaml.Node, i int) bool {
	k := n.Content[i].Value
	if len(n.Content) <= 2*smallMapping {
		for j := 0; j < i; j += 2 {
			if n.Content[j].Value == k {
				return true
			}
		}
		return false
	}
	if s.m == nil {
		s.m = map[string]bool{}
	}
	if s.m[k] {
		return true
	}
	s.m[k] = true
	return false
}

// deref follows aliases to the node they name, and reports whether that node is an
// anchor already walked. An anchor is checked (and its ${ENV} expanded) once, where it
// is defined: walking it again at every alias would take time exponential in the size
// of the file ("billion laughs"), and its errors are at its own position anyway. The
// decoder limits how far aliases may expand.
func (w *walker) deref(n *yaml.Node) (*yaml.Node, bool) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Anchor == "" {
		return n, false
	}
	if w.anchors[n] {
		return n, true
	}
	if w.anchors == nil {
		w.anchors = map[*yaml.Node]bool{}
	}
	w.anchors[n] = true
	return n, false
}

// variant is a config type whose mapping also holds the fields of a variant that the
// mapping's content picks, as a notify receiver holds those of its type. YAMLVariant
// returns a pointer to the variant's struct, nil when the mapping names none. The
// walker checks the variant's fields as the type's own, and leaves a field that neither
// declares to the type's validation, which knows what to call it ("not used by type
// slack"); the index still gives that field's position.
type variant interface {
	YAMLVariant(n *yaml.Node) any
}

// walkAny indexes a value of no known type and expands ${ENV} in its scalars.
func (w *walker) walkAny(n *yaml.Node, path string) {
	n, again := w.deref(n)
	w.idx[path] = n
	if again {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		w.scalar(n, path)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walkAny(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			w.walkAny(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// scalar checks that n is a scalar and expands ${ENV} references in it.
func (w *walker) scalar(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode {
		w.refuse(n, path, "want a single value, got %s", kindName(n))
		return false
	}
	if !strings.Contains(n.Value, "${") {
		return true
	}
	ok := true
	n.Value = envRef().ReplaceAllStringFunc(n.Value, func(ref string) string {
		name := envRef().FindStringSubmatch(ref)[1]
		v, found := w.getenv(name)
		if !found {
			w.fail(n, path, "environment variable %s is not set", name)
			ok = false
		}
		return v
	})
	if !ok {
		nullify(n) // half-expanded, the value would be judged as if the file said it
		return false
	}
	if n.Tag != "!!str" {
		// Re-resolve the expanded value ("${PORT}" → 8080 is an int).
		n.Tag = ""
	}
	return true
}

// dropPairs removes the key/value pairs of mapping n that start at the given indexes
// of its Content (in increasing order).
func dropPairs(n *yaml.Node, at []int) {
	if len(at) == 0 {
		return
	}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if len(at) > 0 && at[0] == i {
			at = at[1:]
			continue
		}
		kept = append(kept, n.Content[i], n.Content[i+1])
	}
	n.Content = kept
}

func lookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps yaml names to field types, following inline fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range structFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for k := range structFields(t) {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
