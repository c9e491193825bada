package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestVersionPrintsLdflagsValues(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-12-07T11:00:00Z"
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"portpatrol v1.2.3\n",
		"commit:  0123456789abcdef0123456789abcdef01234567\n",
		"built:   2026-12-07T11:00:00Z\n",
		"go:      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("got %q, want it to contain %q", out.String(), want)
		}
	}
}

func TestVersionWithoutLdflagsNamesTheGoVersion(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "dev", "", ""
	b := buildInfo()
	// A test binary carries no vcs settings: commit and date stay unknown rather than
	// empty, and the Go version is always there.
	if b.Version != "dev" || b.Go != runtime.Version() {
		t.Errorf("got version %q go %q, want dev and %s", b.Version, b.Go, runtime.Version())
	}
	s := b.String()
	if b.Commit == "" && !strings.Contains(s, "commit:  unknown\n") {
		t.Errorf("got %q, want commit unknown", s)
	}
}
