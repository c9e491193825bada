package config

import (
	"fmt"
	"strings"
	"time"
)

// Status configures the public status page (/status, /status.json). The zero value
// serves it on the main listener, titled "Service status", in UTC, listing only the
// services whose checks carry the label status: public.
type Status struct {
	// Title heads the page and names it in the browser (default "Service status").
	Title string `yaml:"title"`
	// LogoText is a short text shown as the page's logo, such as the company's name;
	// empty shows none.
	LogoText string `yaml:"logo_text"`
	// Timezone is the IANA zone the page's days and times are in (default UTC), such
	// as Europe/Berlin.
	Timezone string `yaml:"timezone"`
	// Listen, when set, serves the status page, and nothing else, on this address of
	// its own (no API, no dashboard, no metrics there), so it can face the internet
	// while the API stays on loopback. The main listener keeps serving it too.
	Listen string `yaml:"listen"`
	// Services are the services the page lists, in this order, with the names the
	// public sees. A service is the value of the label `service` of the checks.
	// Services whose checks carry the label status: public are listed as well, after
	// these, under their own names. Any other service is never shown.
	Services []StatusService `yaml:"services"`
}

// StatusService is one service listed on the status page.
type StatusService struct {
	// Service is the value of the checks' `service` label.
	Service string `yaml:"service"`
	// Name is what the page calls it (default: Service).
	Name string `yaml:"name"`
}

// StatusPublicLabel is the label, with the value "public", that puts a check's service
// on the status page.
const StatusPublicLabel = "status"

// resolveStatus checks the status section and loads its zone into StatusLocation.
func (c *Config) resolveStatus(at func(path, format string, args ...any)) {
	s := c.Source.Status
	c.StatusLocation = time.UTC
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil || strings.HasPrefix(s.Timezone, "/") {
			at("status.timezone", "%q is not a time zone name; give an IANA name such as Europe/Berlin or America/New_York", s.Timezone)
		} else {
			c.StatusLocation = loc
		}
	}
	if len(s.Title) > 200 {
		at("status.title", "longer than 200 bytes")
	}
	if len(s.LogoText) > 60 {
		at("status.logo_text", "longer than 60 bytes; give a short name such as the company's")
	}
	if s.Listen != "" {
		if msg := listenProblem(s.Listen); msg != "" {
			at("status.listen", "%s", msg)
		} else if s.Listen == c.Listen {
			at("status.listen", "%q is the main listen address; give the status page an address of its own, or leave status.listen out", s.Listen)
		} else if s.Listen == c.Source.Probe.Listen {
			at("status.listen", "%q is also probe.listen; each needs an address of its own", s.Listen)
		}
	}
	seen := map[string]int{}
	for i, sv := range s.Services {
		p := fmt.Sprintf("status.services[%d]", i)
		switch {
		case sv.Service == "":
			at(p+".service", "empty; give the value of the checks' service label")
		case seen[sv.Service] > 0:
			at(p+".service", "%q is listed twice (also status.services[%d])", sv.Service, seen[sv.Service]-1)
		}
		seen[sv.Service] = i + 1
	}
}

// StatusServiceNames returns the services the status page lists, by the value of the
// `service` label, with their public names: status.services first, in order, then
// those of checks labelled status: public, in file order.
func (c *Config) StatusServiceNames() []StatusService {
	out := make([]StatusService, 0, len(c.Source.Status.Services))
	seen := map[string]bool{}
	for _, s := range c.Source.Status.Services {
		if s.Name == "" {
			s.Name = s.Service
		}
		out = append(out, s)
		seen[s.Service] = true
	}
	for _, ch := range c.Checks {
		svc := ch.Target.Labels["service"]
		if svc == "" || seen[svc] || ch.Target.Labels[StatusPublicLabel] != "public" {
			continue
		}
		seen[svc] = true
		out = append(out, StatusService{Service: svc, Name: svc})
	}
	return out
}
