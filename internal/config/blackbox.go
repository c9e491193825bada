package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// blackboxFile is the shape of blackbox_exporter's configuration file.
type blackboxFile struct {
	Modules map[string]probe.Module `yaml:"modules"`
}

// LoadBlackboxModules reads the modules of a blackbox_exporter configuration file.
// Every field of blackbox_exporter's module schema is read; the ones portpatrol does
// not act on yet come back as warnings with their positions, and fields blackbox does
// not know either are errors. All problems of the file are reported in one run.
func LoadBlackboxModules(path string) (map[string]probe.Module, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return ParseBlackboxModules(data, path)
}

// ParseBlackboxModules is LoadBlackboxModules on bytes already read.
func ParseBlackboxModules(data []byte, file string) (map[string]probe.Module, []Warning, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		errs := &Errors{}
		errs.addYAML(file, err)
		return nil, nil, errs
	}
	var f blackboxFile
	if len(doc.Content) == 0 {
		return nil, nil, nil
	}
	errs := &Errors{}
	idx := index{}
	w := &walker{file: file, idx: idx, errs: errs, getenv: lookupEnv}
	w.walk(doc.Content[0], typeOfBlackbox, "")
	// The walker nulled what it refused: decoding and the checks below go on, so one
	// run reports every problem of the file.
	if err := doc.Content[0].Decode(&f); err != nil {
		errs.addYAML(file, err)
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, nil, errs
		}
	}
	at := func(path, format string, args ...any) {
		if w.bad.covers(path) {
			return
		}
		n := idx.near(path)
		errs.add(file, n.Line, n.Column, path, fmt.Sprintf(format, args...))
	}
	var warns []Warning
	for _, name := range sortedKeys(f.Modules) {
		warns = append(warns, checkBlackboxModule(at, file, idx, "modules."+name, f.Modules[name], nil)...)
	}
	if errs.Len() > 0 {
		return nil, nil, errs
	}
	return f.Modules, sortWarnings(warns), nil
}

// sortWarnings puts the warnings of one file in file order.
func sortWarnings(ws []Warning) []Warning {
	slices.SortStableFunc(ws, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return ws
}

// blackboxOnly are blackbox_exporter's probers that portpatrol reads but cannot run:
// a module of theirs loads with a warning, and a target that uses it is an error.
var blackboxOnly = map[string]bool{"unix": true, "websocket": true}

// checkBlackboxModule checks the module m found at path (modules.NAME): its prober
// and timeout, and that a probe builds from it, reporting errors through at; it
// returns the settings m has that portpatrol does not act on, as warnings at their
// positions.
func checkBlackboxModule(at func(path, format string, args ...any), file string, idx index, path string, m probe.Module, env *probe.Env) []Warning {
	checkPeriod(at, path+".timeout", m.Timeout)
	var warns []Warning
	switch {
	case m.Prober == "":
		at(path+".prober", "missing prober; want one of: %s", strings.Join(proberList(), ", "))
		return nil
	case blackboxOnly[m.Prober]:
	case !probe.Supported(m.Prober):
		at(path+".prober", "prober %q is not supported; want one of: %s", m.Prober, strings.Join(proberList(), ", "))
		return nil
	default:
		err := checkModule(m, env)
		if errors.Is(err, fs.ErrNotExist) {
			// blackbox_exporter reads its files when it probes, so a file that is not
			// there yet is no reason to refuse the configuration; a target that uses
			// the module is refused, as its probe cannot be built.
			n := idx.near(path)
			warns = append(warns, Warning{File: file, Line: n.Line, Column: n.Column, Path: path,
				Msg: fmt.Sprintf("%v; a target using this module fails until the file exists", err)})
		} else if err != nil {
			// A module no target uses yet can still be asked for through /probe.
			at(path, "%v", err)
		}
	}
	for _, u := range m.Unhonoured() {
		p := path + "." + u.Path
		n := idx.near(p)
		warns = append(warns, Warning{File: file, Line: n.Line, Column: n.Column, Path: p, Msg: u.Why})
	}
	return warns
}

// withCredentials returns t with user and password set; the ID never carries the
// password.
func withCredentials(t patrol.Target, user, pass string) patrol.Target {
	if pass != "" {
		return t.WithUser(url.UserPassword(user, pass))
	}
	return t.WithUser(url.User(user))
}
