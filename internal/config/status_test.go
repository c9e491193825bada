package config

import (
	"strings"
	"testing"
)

func TestStatusSection(t *testing.T) {
	good := `status:
  title: Acme status
  logo_text: ACME
  timezone: Europe/Berlin
  listen: 0.0.0.0:8080
  services:
    - {service: shop, name: Online shop}
    - {service: api}
targets:
  - {url: "tcp://127.0.0.1:1", labels: {service: db}}
  - {url: "tcp://127.0.0.1:2", labels: {service: search, status: public}}
  - {url: "tcp://127.0.0.1:3", labels: {service: shop, status: public}}
`
	c, err := Parse([]byte(good), "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.StatusLocation.String() != "Europe/Berlin" || c.Status.Title != "Acme status" || c.Status.LogoText != "ACME" || c.Status.Listen != "0.0.0.0:8080" {
		t.Errorf("status: %+v in %v", c.Status, c.StatusLocation)
	}
	var got []string
	for _, s := range c.StatusServiceNames() {
		got = append(got, s.Service+"="+s.Name)
	}
	if strings.Join(got, " ") != "shop=Online shop api=api search=search" {
		t.Errorf("listed services %v: want status.services in order, then the checks labelled status: public", got)
	}
	if c, err := Parse([]byte("targets: []\n"), "empty.yaml"); err != nil || c.StatusLocation.String() != "UTC" || len(c.StatusServiceNames()) != 0 {
		t.Errorf("defaults: %v, %v", c, err)
	}

	for _, tt := range []struct{ name, yaml, want string }{
		{"bad zone", "status: {timezone: Mars/Olympus}\n", `bad.yaml:1:20: status.timezone: "Mars/Olympus" is not a time zone name; give an IANA name such as Europe/Berlin or America/New_York`},
		{"bad listen", "status: {listen: nowhere}\n", `bad.yaml:1:18: status.listen: "nowhere" is not host:port (e.g. 127.0.0.1:9115)`},
		{"listen is the main address", "listen: 127.0.0.1:9115\nstatus: {listen: 127.0.0.1:9115}\n", `status.listen: "127.0.0.1:9115" is the main listen address`},
		{"listen is the probe address", "probe: {listen: 127.0.0.1:9116}\nstatus: {listen: 127.0.0.1:9116}\n", `status.listen: "127.0.0.1:9116" is also probe.listen`},
		{"service without a key", "status:\n  services:\n    - {name: Shop}\n", `bad.yaml:3:7: status.services[0].service: empty; give the value of the checks' service label`},
		{"service twice", "status:\n  services:\n    - {service: shop}\n    - {service: shop}\n", `status.services[1].service: "shop" is listed twice (also status.services[0])`},
		{"unknown field", "status: {titel: x}\n", `unknown field "titel"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
