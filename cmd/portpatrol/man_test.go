package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManWritesAPagePerCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	code, _, errOut := runCLI(t, "man", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, page := range []string{"portpatrol.1", "portpatrol-serve.1", "portpatrol-config-check.1", "portpatrol-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatalf("read %s: %v", page, err)
		}
		s := string(b)
		if !strings.HasPrefix(s, `.nh`) || !strings.Contains(s, `.TH "PORTPATROL" "1"`) {
			t.Errorf("%s: got %.80q, want a roff page with a PORTPATROL(1) title", page, s)
		}
		if !strings.Contains(s, ".SH NAME") || !strings.Contains(s, ".SH SYNOPSIS") {
			t.Errorf("%s: want NAME and SYNOPSIS sections", page)
		}
	}
	serve, _ := os.ReadFile(filepath.Join(dir, "portpatrol-serve.1"))
	if !strings.Contains(string(serve), "config") {
		t.Errorf("portpatrol-serve.1 does not mention its flags: %q", serve)
	}
	// Reproducible: a second run writes the same bytes (no generation date).
	dir2 := filepath.Join(t.TempDir(), "again")
	if code, _, errOut := runCLI(t, "man", dir2); code != exitOK {
		t.Fatalf("second run exit %d: %s", code, errOut)
	}
	again, _ := os.ReadFile(filepath.Join(dir2, "portpatrol-serve.1"))
	if string(again) != string(serve) {
		t.Error("two runs wrote different portpatrol-serve.1")
	}
}

func TestManNeedsADirectory(t *testing.T) {
	code, _, errOut := runCLI(t, "man")
	if code != exitUnknown || !strings.Contains(errOut, "accepts 1 arg") {
		t.Errorf("got exit %d %q, want %d and an argument error", code, errOut, exitUnknown)
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "man", filepath.Join(file, "sub"))
	if code != exitUnknown || !strings.Contains(errOut, "man:") {
		t.Errorf("got exit %d %q, want %d and a man: error", code, errOut, exitUnknown)
	}
}

func TestHelpListsCompletion(t *testing.T) {
	code, out, errOut := runCLI(t, "--help")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"completion", "man", "--version"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not list %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI(t, "completion", "bash")
	if code != exitOK || !strings.Contains(out, "__start_portpatrol") {
		t.Errorf("completion bash: exit %d, %.200q %s", code, out, errOut)
	}
}
