package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/daemon"
)

// fdChildEnv makes the test binary the fd-limit child (TestFDLimitChild).
const fdChildEnv = "PORTPATROL_FAULTS_FD_CHILD"

// TestFDLimit runs the daemon in a child process whose file descriptors are used up
// (RLIMIT_NOFILE lowered and filled): its probes fail as portpatrol's own error, "too
// many open files", never as the target down, and no unreachable alert is raised.
func TestFDLimit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFDLimitChild$", "-test.v")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1", "PORTPATROL_FAULTS_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var fig string
	for _, l := range strings.Split(string(out), "\n") {
		if _, f, ok := strings.Cut(l, "FIGURES "); ok {
			fig = f
		}
	}
	if fig == "" {
		t.Fatalf("the child printed no figures:\n%s", out)
	}
	t.Logf("fd limit: %s", fig)
}

// TestFDLimitChild is the child process of TestFDLimit; anywhere else it returns at
// once (the limit it sets would starve the rest of the test binary).
func TestFDLimitChild(t *testing.T) {
	if os.Getenv(fdChildEnv) != "1" {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if strings.Contains(err.Error(), "closed") {
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			c.Close()
		}
	}()
	target := "tcp://" + ln.Addr().String()
	cfg, err := config.Parse([]byte(`host_watch: {disabled: true}
anomaly: {enabled: false}
defaults: {interval: 100ms, timeout: 100ms, failure_threshold: 1}
api: {anonymous_read: true}
targets:
  - url: `+target+`?handshake=full
`), filepath.Join(os.Getenv("PORTPATROL_FAULTS_DIR"), "pp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Config{Config: cfg, DataDir: os.Getenv("PORTPATROL_FAULTS_DIR")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, srvLn) }()
	defer func() {
		cancel()
		<-done
		d.Close()
	}()
	h := d.Handler()
	get := func(path string) string { // in-process: no descriptor needed
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	value := func(prefix string) float64 {
		for _, l := range strings.Split(get("/metrics"), "\n") {
			if strings.HasPrefix(l, prefix+" ") {
				var v float64
				fmt.Sscan(strings.TrimPrefix(l, prefix+" "), &v)
				return v
			}
		}
		return 0
	}
	poll(t, 30*time.Second, "first ok result", func() bool { return value(`portpatrol_probes_total{class="ok",scheme="tcp"}`) > 0 })

	// Use up the descriptors: a low limit, filled with /dev/null.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	low := syscall.Rlimit{Cur: uint64(len(ents) + 16), Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		held = append(held, f)
	}
	deadline := time.Now().Add(30 * time.Second)
	for value(`portpatrol_probes_total{class="error",scheme="tcp"}`) == 0 {
		if time.Now().After(deadline) {
			var lines []string
			for _, l := range strings.Split(get("/metrics"), "\n") {
				if strings.HasPrefix(l, "portpatrol_probes_total") {
					lines = append(lines, l)
				}
			}
			t.Fatalf("no probe failed for want of descriptors within 30s: %s\n%s", lines, get("/api/v1/targets"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	errors := value(`portpatrol_probes_total{class="error",scheme="tcp"}`)
	down := value(`portpatrol_probes_total{class="refused",scheme="tcp"}`) + value(`portpatrol_probes_total{class="timeout",scheme="tcp"}`)
	var list struct {
		Targets []struct {
			Last struct {
				Class string `json:"class"`
				Error string `json:"error"`
			} `json:"last"`
		} `json:"targets"`
	}
	body := get("/api/v1/targets")
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Targets) != 1 {
		t.Fatalf("targets: %v: %s", err, body)
	}
	tgt := list.Targets[0]
	alerts := get("/api/v1/alerts")
	for _, f := range held {
		f.Close()
	}
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	if down != 0 {
		t.Fatalf("%v results blamed the target (refused or timeout) while portpatrol was out of descriptors", down)
	}
	if strings.Contains(alerts, `"class":"unreachable"`) {
		t.Fatalf("an unreachable alert while portpatrol was out of descriptors: %s", alerts)
	}
	if tgt.Last.Class != "error" || !strings.Contains(tgt.Last.Error, "too many open files") {
		t.Fatalf("the last result is %s %q, want error: too many open files", tgt.Last.Class, tgt.Last.Error)
	}
	fmt.Printf("FIGURES %d descriptors held by the test; %v probes classed error, 0 refused or timeout, no unreachable alert; last result as the API shows it: %s %q\n",
		len(held), errors, tgt.Last.Class, tgt.Last.Error)
}
