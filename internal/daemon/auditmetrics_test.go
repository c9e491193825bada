package daemon

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// A scheduled audit's findings are on /metrics by audit, kind and severity (the
// policy's), with no port or host label, and go back to 0 when the finding goes away:
// a required port that is closed is one required_closed finding until it opens.
func TestServeAuditFindingsOnMetrics(t *testing.T) {
	required := testsvc.NewFlip(t)
	required.Close()
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(required.Addr)
	testsvc.WriteFile(t, filepath.Join(dir, "ports.yaml"), fmt.Sprintf(`severity:
  unauthorised_open: P2
scan:
  ports: "%s"
hosts:
  - match: 127.0.0.1
    allow: [{port: %s}]
    require: [%s]
`, port, port, port))
	path := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, path, "host_watch: {disabled: true}\naudits:\n  - {name: local, policy: ports.yaml, interval: 1s, targets: [127.0.0.1]}\n")
	_, base := startDaemon(t, path)

	body := waitFor(t, base+"/metrics",
		`portpatrol_audit_findings{audit="local",kind="required_closed",severity="P0"} 1`+"\n",
		`portpatrol_audit_findings{audit="local",kind="unauthorised_open",severity="P2"} `,
		`portpatrol_audit_findings{audit="local",kind="exception_expired",severity="P3"} 0`+"\n",
		`portpatrol_audit_last_success_timestamp_seconds{audit="local"} `)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "portpatrol_audit_findings{") && (strings.Contains(line, "port=") || strings.Contains(line, "host=")) {
			t.Errorf("a per-port or per-host label on %q", line)
		}
	}

	required.Open(t)
	waitFor(t, base+"/metrics", `portpatrol_audit_findings{audit="local",kind="required_closed",severity="P0"} 0`+"\n")
}
