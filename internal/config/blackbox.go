package config

import (
	"fmt"
	"net/url"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// blackboxFile is the shape of blackbox_exporter's configuration file.
type blackboxFile struct {
	Modules map[string]probe.Module `yaml:"modules"`
}

// LoadBlackboxModules reads the modules of a blackbox_exporter configuration file.
// Fields portpatrol does not support are reported with their position, rather than
// silently ignored.
func LoadBlackboxModules(path string) (map[string]probe.Module, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseBlackboxModules(data, path)
}

// ParseBlackboxModules is LoadBlackboxModules on bytes already read.
func ParseBlackboxModules(data []byte, file string) (map[string]probe.Module, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		errs := &Errors{}
		errs.addYAML(file, err)
		return nil, errs
	}
	var f blackboxFile
	if len(doc.Content) == 0 {
		return nil, nil
	}
	errs := &Errors{}
	idx := index{}
	w := &walker{file: file, idx: idx, errs: errs, getenv: lookupEnv}
	w.walk(doc.Content[0], typeOfBlackbox, "")
	if errs.Len() > 0 {
		return nil, errs
	}
	if err := doc.Content[0].Decode(&f); err != nil {
		errs.addYAML(file, err)
		return nil, errs
	}
	for name, m := range f.Modules {
		if !probe.Supported(m.Prober) {
			n := idx.near("modules." + name + ".prober")
			errs.add(file, n.Line, n.Column, "modules."+name+".prober", fmt.Sprintf("prober %q is not supported", m.Prober))
		}
	}
	if errs.Len() > 0 {
		return nil, errs
	}
	return f.Modules, nil
}

// withCredentials returns t with user and password set; the ID never carries the
// password.
func withCredentials(t patrol.Target, user, pass string) patrol.Target {
	if pass != "" {
		return t.WithUser(url.UserPassword(user, pass))
	}
	return t.WithUser(url.User(user))
}
