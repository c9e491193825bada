// Package install tests portpatrol as operators install it: the systemd unit, the
// release build, and the .deb on this machine.
package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the repository's top directory (tests run in their package's).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// need skips without a tool, except under CI=true where every tool must be there.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
		t.Skipf("%s is not installed; scripts/deps.sh installs it", tool)
	}
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	if distDir != "" {
		os.RemoveAll(distDir)
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// portpatrolBin builds cmd/portpatrol once for the tests of this package.
func portpatrolBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portpatrol-install-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "portpatrol")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/portpatrol")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// unitForBinary copies the unit into a directory of its own with ExecStart pointing at
// bin, since systemd-analyze verify checks that the command exists.
func unitForBinary(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/systemd/portpatrol.service"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "ExecStart=/usr/bin/portpatrol ", "ExecStart="+bin+" ", 1)
	if s == string(b) {
		t.Fatal("the unit has no ExecStart=/usr/bin/portpatrol")
	}
	path := filepath.Join(t.TempDir(), "portpatrol.service")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnitVerifies(t *testing.T) {
	sa := need(t, "systemd-analyze")
	unit := unitForBinary(t, portpatrolBin(t))
	// --man=no: the man pages are checked by the package test, where they are installed.
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for portpatrol\.service: ([0-9.]+)`)

// TestUnitExposureScore checks systemd's own rating of the unit's sandbox (0 is
// locked down, 10 is unprotected) stays under 2.5.
func TestUnitExposureScore(t *testing.T) {
	sa := need(t, "systemd-analyze")
	unit := unitForBinary(t, portpatrolBin(t))
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score >= 2.5 {
		t.Errorf("exposure %.1f, want under 2.5:\n%s", score, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "User=portpatrol", "StateDirectory=portpatrol",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK", "SystemCallFilter=@system-service",
		"CapabilityBoundingSet=\n", "AmbientCapabilities=\n"} {
		b, _ := os.ReadFile(unit)
		if !strings.Contains(string(b), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
}
