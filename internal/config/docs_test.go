package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/probe"
)

// schemaPaths lists every field of t as its dotted YAML path: "api.hosts",
// "alerting.inhibit.equal" (a list's items share the list's path), "alerting.escalations.*.after"
// (* for a map's keys). A type that decodes itself, or one in stop, is not entered.
func schemaPaths(prefix string, t reflect.Type, stop map[reflect.Type]string, out *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		if t.Kind() == reflect.Map {
			prefix += ".*"
		}
		t = t.Elem()
	}
	if _, ok := stop[t]; ok || t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case !f.IsExported() || tag == "-":
			continue
		case strings.Contains(opts, "inline"):
			schemaPaths(prefix, f.Type, stop, out)
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		p := strings.TrimPrefix(prefix+"."+name, ".")
		*out = append(*out, p)
		schemaPaths(p, f.Type, stop, out)
	}
}

// yamlPaths collects the dotted paths of every key in a YAML tree, as schemaPaths
// names them (list items share their list's path).
func yamlPaths(prefix string, n *yaml.Node, into map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			yamlPaths(prefix, c, into)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := strings.TrimPrefix(prefix+"."+n.Content[i].Value, ".")
			into[p] = true
			yamlPaths(p, n.Content[i+1], into)
		}
	}
}

// inYAML reports whether path (with * for any one key) is among the paths.
func inYAML(path string, paths map[string]bool) bool {
	if paths[path] {
		return true
	}
	if !strings.Contains(path, "*") {
		return false
	}
	re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(path), `\*`, `[^.]+`) + "$")
	for p := range paths {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

// TestEveryConfigFieldIsShownOrDocumented walks the configuration's schema: every
// field must appear in docs/examples/portpatrol.yaml, or be named in docs/config.md —
// in the row of its top-level field or in that field's own section — or, where that
// row sends the reader to another page, be named on that page.
func TestEveryConfigFieldIsShownOrDocumented(t *testing.T) {
	// probe.Module is blackbox_exporter's module schema, which config.md documents as
	// a whole ("Every field of blackbox_exporter's module schema is read") with the
	// exceptions in its migration table; its fields are not listed one by one.
	stop := map[reflect.Type]string{reflect.TypeFor[probe.Module](): "blackbox_exporter's module schema"}
	var paths []string
	schemaPaths("", reflect.TypeFor[Source](), stop, &paths)
	if len(paths) < 50 {
		t.Fatalf("the walk found %d fields, want the whole schema (at least 50)", len(paths))
	}

	example, err := os.ReadFile("../../docs/examples/portpatrol.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(example, &root); err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	yamlPaths("", &root, shown)

	md, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(md)
	// sectionOf is what config.md says about a top-level field: its row in the
	// top-level table and its own "### `field`" section; linked, the pages that row
	// links to.
	sectionOf := func(top string) (text string, linked []string) {
		for _, line := range strings.Split(doc, "\n") {
			if strings.HasPrefix(line, "| `"+top+"`") || strings.HasPrefix(line, "| `"+top+"`,") || strings.Contains(line, "| `"+top+"`, `") || strings.Contains(line, ", `"+top+"` |") {
				text += line + "\n"
				for _, m := range regexp.MustCompile(`\]\(([a-z]+\.md)`).FindAllStringSubmatch(line, -1) {
					linked = append(linked, m[1])
				}
			}
		}
		i := strings.Index(doc, "### `"+top+"`")
		if i < 0 {
			i = strings.Index(doc, "### `"+top+"[]`")
		}
		if i >= 0 {
			rest := doc[i+1:]
			if j := strings.Index(rest, "\n## "); j >= 0 {
				rest = rest[:j]
			}
			if j := strings.Index(rest, "\n### "); j >= 0 {
				rest = rest[:j]
			}
			text += rest
		}
		return text, linked
	}
	names := func(text, leaf string) bool {
		return strings.Contains(text, "`"+leaf+"`") || strings.Contains(text, "`"+leaf+":") || strings.Contains(text, "`"+leaf+"[")
	}
	for _, p := range paths {
		// Every section has a row of its own in config.md, shown in the example or not.
		if !strings.Contains(p, ".") {
			if text, _ := sectionOf(p); text == "" {
				t.Errorf("%s: docs/config.md's top-level table has no row for it", p)
			}
		}
		if inYAML(p, shown) {
			continue
		}
		parts := strings.Split(p, ".")
		top, leaf := parts[0], parts[len(parts)-1]
		if leaf == "*" {
			leaf = parts[len(parts)-2]
		}
		text, linked := sectionOf(top)
		if text == "" {
			t.Errorf("%s: not in docs/examples/portpatrol.yaml, and docs/config.md has no row or section for %s", p, top)
			continue
		}
		if names(text, leaf) || strings.Contains(doc, "`"+p+"`") {
			continue
		}
		found := false
		// A linked page may name the field in its text or show it in a YAML block.
		inBlock := regexp.MustCompile(`(?m)^\s*(- )?` + regexp.QuoteMeta(leaf) + `:`)
		for _, page := range linked {
			if b, err := os.ReadFile("../../docs/" + page); err == nil && (names(string(b), leaf) || inBlock.Match(b)) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: neither shown in docs/examples/portpatrol.yaml nor named (`%s`) in docs/config.md's %s row or section, nor on the pages it links (%v)", p, leaf, top, linked)
		}
	}
}
