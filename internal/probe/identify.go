package probe

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Identification is what Identify learned about an open port.
type Identification struct {
	// Service is the scheme that answered ("redis", "ssh"), or "unknown" when no probe
	// confirmed one.
	Service string
	// Class is the class of the probe's result.
	Class patrol.Class
	// Detail is a banner or version, or why the guess was not confirmed.
	Detail string
}

// Identify names the service on an open TCP port with the protocol probes: the scheme
// its port suggests (6379 → redis, from patrol's table of well-known services), or a
// plain connect when no prober for that scheme exists. Each probe gives up after
// timeout. env may be nil.
func Identify(ctx context.Context, addr netip.AddrPort, timeout time.Duration, env *Env) Identification {
	scheme := "tcp"
	if svc, ok := patrol.ServiceByPort("tcp", addr.Port()); ok && svc.Scheme != "" {
		scheme = svc.Scheme
	}
	pr, err := probeAt(scheme, addr, timeout, env)
	if err != nil {
		// No prober for the guess: all a TCP connect can say is that it accepts.
		tcp, terr := probeAt("tcp", addr, timeout, env)
		if terr != nil {
			return Identification{Service: "unknown", Class: patrol.ClassError, Detail: terr.Error()}
		}
		res := tcp.Run(ctx)
		detail := "accepts TCP"
		if scheme != "tcp" {
			detail = fmt.Sprintf("no %s prober; accepts TCP", scheme)
		}
		if !res.Up() {
			detail = res.Error
		}
		return Identification{Service: "unknown", Class: res.Class, Detail: detail}
	}
	res := pr.Run(ctx)
	switch res.Class {
	case patrol.ClassOK, patrol.ClassSlow, patrol.ClassAuth, patrol.ClassOverloaded:
		// It spoke the protocol, even if it refused us.
		return Identification{Service: scheme, Class: res.Class, Detail: identDetail(res)}
	}
	if scheme == "tcp" {
		return Identification{Service: "unknown", Class: res.Class, Detail: res.Error}
	}
	return Identification{Service: "unknown", Class: res.Class, Detail: fmt.Sprintf("not %s: %s", scheme, res.Error)}
}

// probeAt builds a probe of scheme at addr with the scheme's defaults.
func probeAt(scheme string, addr netip.AddrPort, timeout time.Duration, env *Env) (*Probe, error) {
	host := addr.Addr().String()
	if addr.Addr().Is6() {
		host = "[" + host + "]"
	}
	t, err := patrol.ParseTarget(scheme + "://" + host + ":" + strconv.Itoa(int(addr.Port())))
	if err != nil {
		return nil, err
	}
	t.Timeout = timeout
	return New(t, Module{}, env)
}

// identDetail picks the facts worth a column: a version or banner, else the error.
func identDetail(res patrol.Result) string {
	for _, k := range []string{"version", "server_version", "banner", "server", "greeting"} {
		if v := res.Details[k]; v != "" {
			return v
		}
	}
	if res.HTTP != nil {
		return fmt.Sprintf("HTTP %d", res.HTTP.Status)
	}
	if res.TLS != nil {
		return res.TLS.Version
	}
	return res.Error
}
