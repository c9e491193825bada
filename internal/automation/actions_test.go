package automation

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// This host runs no systemd: the systemd action's plan names the systemctl argv, and
// its pre-check says systemd is not running, so nothing is attempted.
func TestSystemdFallsBackToSystemctlAndSaysWhyNot(t *testing.T) {
	s := &Systemd{Params: Params{Unit: "web.service"}, Root: t.TempDir() + "/no-systemd"}
	ch, err := s.Plan(Target{ID: "tcp://127.0.0.1:80"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ch.detail.(systemdDetail).argv, " "), "systemctl restart web.service"; got != want {
		t.Errorf("argv: got %q, want %q", got, want)
	}
	err = s.PreCheck(context.Background(), ch)
	if err == nil || !strings.Contains(err.Error(), "systemd is not running on this host") || !strings.Contains(err.Error(), "web.service") {
		t.Errorf("pre-check: got %v, want it to say systemd is not running and name the unit", err)
	}
	// With systemd's directory present the next thing checked is systemctl itself.
	s.Root = t.TempDir()
	t.Setenv("PATH", t.TempDir())
	if err := s.PreCheck(context.Background(), ch); err == nil || !strings.Contains(err.Error(), "systemctl is not installed") {
		t.Errorf("pre-check without systemctl: got %v", err)
	}
}

// The http action calls the webhook with the target filled in; a non-2xx reply fails
// it; the rollback is another call.
func TestHTTPActionCallsAndRollsBack(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b)+" "+r.Header.Get("X-Token"))
		mu.Unlock()
		if r.URL.Path == "/broken" {
			http.Error(w, "deploy locked", http.StatusConflict)
		}
	}))
	t.Cleanup(srv.Close)
	h := &HTTP{Params: Params{URL: srv.URL + "/deploy", Body: `{"t":"{target}","p":"{port}"}`, Headers: map[string]string{"X-Token": "k"}},
		Undo: &Params{URL: srv.URL + "/undo", Method: "DELETE"}}
	ch, _ := h.Plan(Target{ID: "tcp://127.0.0.1:8080", Host: "127.0.0.1", Port: "8080"})
	ctx := context.Background()
	if err := h.Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := h.Rollback(ctx, ch); err != nil {
		t.Fatal(err)
	}
	want := []string{`POST /deploy {"t":"tcp://127.0.0.1:8080","p":"8080"} k`, "DELETE /undo  "}
	mu.Lock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls: got %q, want %q", got, want)
	}
	mu.Unlock()
	bad := &HTTP{Params: Params{URL: srv.URL + "/broken"}}
	ch, _ = bad.Plan(Target{})
	if err := bad.Apply(ctx, ch); err == nil || !strings.Contains(err.Error(), "status 409: deploy locked") {
		t.Errorf("non-2xx: got %v", err)
	}
}

// exec never uses a shell, passes only allowed variables and fails its pre-check for a
// missing program.
func TestExecPreCheckAndEnvironment(t *testing.T) {
	x := &Exec{Params: Params{Argv: []string{"/nonexistent/web-start"}}}
	ch, _ := x.Plan(Target{})
	if err := x.PreCheck(context.Background(), ch); err == nil || !strings.Contains(err.Error(), `program "/nonexistent/web-start" cannot be run`) {
		t.Errorf("pre-check: got %v", err)
	}
	t.Setenv("PP_HELPER", "1")
	t.Setenv("PP_SECRET", "hunter2")
	out := tempFile(t, "env")
	x = &Exec{Params: Params{Argv: helperArgv("touch", out), Env: []string{"PP_HELPER"}}}
	ch, _ = x.Plan(Target{})
	if err := x.Apply(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the command did not run: %v", err)
	}
	// Without PP_HELPER in the allowlist the helper does nothing: the variable is not passed.
	out2 := tempFile(t, "env2")
	x = &Exec{Params: Params{Argv: helperArgv("touch", out2)}}
	ch, _ = x.Plan(Target{})
	_ = x.Apply(context.Background(), ch)
	if _, err := os.Stat(out2); err == nil {
		t.Error("a variable outside the allowlist reached the command")
	}
	x = &Exec{Params: Params{Argv: helperArgv("fail"), Env: []string{"PP_HELPER"}}}
	ch, _ = x.Plan(Target{})
	if err := x.Apply(context.Background(), ch); err == nil || !strings.Contains(err.Error(), "told to fail") {
		t.Errorf("failing command: got %v, want its exit status and output", err)
	}
}

// exec runs as the user it names: a file the command creates belongs to that user.
func TestExecRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, which CI has")
		}
		t.Skip("running a command as another user needs root")
	}
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		skip("no user nobody: %v", err)
	}
	dir := t.TempDir()
	// nobody must be able to reach the directory and write in it.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	touch, err := exec.LookPath("touch")
	if err != nil {
		skip("no touch: %v", err)
	}
	file := filepath.Join(dir, "made-by")
	x := &Exec{Params: Params{Argv: []string{touch, file}, User: "nobody"}}
	ch, _ := x.Plan(Target{})
	if err := x.PreCheck(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)); got != u.Uid {
		t.Errorf("the file belongs to uid %s, want nobody's %s", got, u.Uid)
	}
	x = &Exec{Params: Params{Argv: []string{touch, file}, User: "no-such-user-here"}}
	ch, _ = x.Plan(Target{})
	if err := x.PreCheck(context.Background(), ch); err == nil || !strings.Contains(err.Error(), `no user "no-such-user-here"`) {
		t.Errorf("pre-check for a missing user: %v", err)
	}
}
