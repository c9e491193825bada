package daemon

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// A pending approval survives a restart of serve on the same data directory: the new
// daemon lists the same request, and another operator's approval of it runs the step
// (the dead service is started again).
func TestServeAutomationPendingApprovalSurvivesRestart(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsvc.FreePort(t)))
	pidfile := filepath.Join(t.TempDir(), "svc.pid")
	t.Cleanup(func() {
		b, _ := os.ReadFile(pidfile)
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	hook := newPageReceiver(t)
	path := automationConfig(t, hook.URL, addr, helperArgvYAML("start", addr, pidfile), "{window: 10s, interval: 100ms}", "")
	b, _ := os.ReadFile(path)
	testsvc.WriteFile(t, path, strings.Replace(strings.Replace(string(b), "mode: auto", "mode: suggest", 1), "risk: R1", "risk: R2", 1))
	dir := t.TempDir()

	type reqs struct {
		Requests []struct {
			ID, State   string
			RequestedBy string `json:"requested_by"`
		}
	}
	pending := func(base, token string) []string {
		_, body := call(t, "GET", base+"/api/v1/automation/approvals", token, "")
		var r reqs
		_ = json.Unmarshal([]byte(body), &r)
		var ids []string
		for _, x := range r.Requests {
			if x.State == "pending" {
				ids = append(ids, x.ID)
			}
		}
		return ids
	}

	d1, err := New(Config{Path: path, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	base1, stop1 := serveDaemon(t, d1)
	viewer1 := namedToken(t, d1, "vera", store.RoleViewer)
	var id string
	eventually(t, "a pending approval request", func() bool {
		if ids := pending(base1, viewer1); len(ids) > 0 {
			id = ids[0]
			return true
		}
		return false
	})
	stop1()

	d2, err := New(Config{Path: path, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	base2 := runDaemon(t, d2)
	viewer2 := namedToken(t, d2, "vera2", store.RoleViewer)
	if ids := pending(base2, viewer2); !strings.Contains(strings.Join(ids, " "), id) {
		t.Fatalf("after the restart the pending requests are %v, want %s among them", ids, id)
	}
	bob := namedToken(t, d2, "bob", store.RoleOperator)
	if code, body := call(t, "POST", base2+"/api/v1/automation/approvals/"+id+"/approve", bob, `{"comment":"after the restart"}`); code != http.StatusOK ||
		!strings.Contains(body, `"state":"approved"`) {
		t.Fatalf("approval after the restart: %d %s", code, body)
	}
	eventually(t, "the service back after the approval", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
}
