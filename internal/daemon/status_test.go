package daemon

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// status.listen serves the status page alone on its own address, with the configured
// title, logo, zone and public services, and the notes operators post through the API.
func TestStatusPageOnItsOwnListener(t *testing.T) {
	open, db := testsvc.Listen(t), testsvc.Listen(t)
	statusAddr := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	dir := t.TempDir()
	path := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {disabled: true}
storage: %q
status:
  listen: %q
  title: Acme status
  logo_text: ACME
  timezone: Europe/Berlin
  services:
    - {service: shop, name: Online shop}
targets:
  - {url: "tcp://%s", labels: {service: shop}}
  - {url: "tcp://%s", name: internal db, labels: {service: db}}
`, filepath.Join(dir, "pp.db"), statusAddr, open, db))
	d, base := startDaemon(t, path)
	sbase := "http://" + statusAddr
	waitFor(t, base+"/-/ready", "ready")

	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/status/notes",
		strings.NewReader(`{"service":"shop","state":"monitoring","text":"Checkout is back; we are watching it."}`))
	req.Header.Set("Authorization", "Bearer "+newToken(t, d, store.RoleOperator))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("post note: %s", resp.Status)
	}
	for _, tt := range []struct {
		url  string
		code int
		want []string
	}{
		{sbase + "/", 200, []string{"<title>Acme status</title>", `<span class="logo">ACME</span>`, "Online shop", "times are in Europe/Berlin",
			"<b>Monitoring</b> — Checkout is back"}},
		{sbase + "/status.json", 200, []string{`"name": "Online shop"`}},
		{sbase + "/api/v1/targets", 404, nil},
		{sbase + "/metrics", 404, nil},
		{sbase + "/index.html", 404, nil},
		{base + "/status", 200, []string{"Online shop"}},
	} {
		code, body := testsvc.Get(t, tt.url)
		if code != tt.code {
			t.Errorf("%s: got %d, want %d", tt.url, code, tt.code)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", tt.url, w)
			}
		}
		if strings.Contains(body, "internal db") || strings.Contains(body, ">db<") {
			t.Errorf("%s lists the internal service", tt.url)
		}
	}
}
