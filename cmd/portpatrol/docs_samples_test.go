package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docSample is one "$ portpatrol …" line of a console block in the docs with the
// output printed under it.
type docSample struct {
	file, cmd string
	out       []string
	before    string // the text of the docs before the block, for the files it uses
}

// docSamples reads every console block of README.md and docs/*.md.
func docSamples(t *testing.T) []docSample {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	var all []docSample
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range regexp.MustCompile("(?s)```console\n(.*?)```").FindAllStringSubmatchIndex(text, -1) {
			var cur *docSample
			for _, line := range strings.Split(strings.TrimSuffix(text[m[2]:m[3]], "\n"), "\n") {
				switch {
				case strings.HasPrefix(line, "$ ") || strings.HasPrefix(line, "# "):
					all = append(all, docSample{file: filepath.Base(f), cmd: line[2:], before: text[:m[0]]})
					cur = &all[len(all)-1]
				case cur != nil && line != "":
					cur.out = append(cur.out, line)
				}
			}
		}
	}
	return all
}

// volatile are the parts of an output that differ from run to run and host to host.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d+(\.\d+)?(ms|µs|s)\b`), "T"},   // durations
	{regexp.MustCompile(`(127\.0\.0\.1|\]):\d+`), "$1:P"}, // ports
	{regexp.MustCompile(`\s+`), " "},
}

func normalise(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return strings.TrimSpace(s)
}

// TestDocSamplesMatchWhatTheCommandsPrint runs the commands the docs show that need no
// daemon and no other host, and compares what they print with the docs' samples,
// durations and ports aside. Each listed sample must still be in the docs.
func TestDocSamplesMatchWhatTheCommandsPrint(t *testing.T) {
	port := listenLoopback(t, "127.0.0.1")
	dir := t.TempDir()
	example, err := filepath.Abs("../../docs/examples/portpatrol.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type runner struct {
		args func(t *testing.T, s docSample) []string
		// rename maps what the command prints back to what the docs show.
		rename func(string) string
		code   int
		// only compares just the first lines (the rest depends on the host).
		only int
	}
	same := func(s string) string { return s }
	runners := map[string]runner{
		// The docs' Redis port is this test's own listener.
		"portpatrol check 127.0.0.1:6379 127.0.0.1:1": {
			args: func(*testing.T, docSample) []string {
				return []string{"check", fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1:1"}
			},
			rename: same, code: exitCritical,
		},
		"portpatrol config check portpatrol.yaml": {
			args:   func(*testing.T, docSample) []string { return []string{"config", "check", example} },
			rename: func(s string) string { return strings.ReplaceAll(s, example, "portpatrol.yaml") },
		},
		"portpatrol config check bad.yaml": {
			// bad.yaml is the YAML block shown just before the sample.
			args: func(t *testing.T, s docSample) []string {
				blocks := regexp.MustCompile("(?s)```yaml\n# bad.yaml\n(.*?)```").FindAllStringSubmatch(s.before, -1)
				if len(blocks) == 0 {
					t.Fatalf("%s: no ```yaml block starting with \"# bad.yaml\" before the sample", s.file)
				}
				p := filepath.Join(dir, "bad.yaml")
				if err := os.WriteFile(p, []byte("# bad.yaml\n"+blocks[len(blocks)-1][1]), 0o600); err != nil {
					t.Fatal(err)
				}
				return []string{"config", "check", p}
			},
			rename: func(s string) string { return strings.ReplaceAll(s, filepath.Join(dir, "bad.yaml"), "bad.yaml") },
			code:   exitUnknown,
		},
		// The listeners are this host's; the columns are the docs'.
		"portpatrol ls": {args: func(*testing.T, docSample) []string { return []string{"ls"} }, rename: same, only: 1},
		// Refused before a packet is sent.
		"portpatrol scan 10.0.0.1 -p 22": {args: func(*testing.T, docSample) []string { return []string{"scan", "10.0.0.1", "-p", "22"} }, rename: same, code: exitUnknown},
	}
	seen := map[string]bool{}
	for _, s := range docSamples(t) {
		r, ok := runners[s.cmd]
		if !ok {
			continue
		}
		seen[s.cmd] = true
		t.Run(s.file+": "+s.cmd, func(t *testing.T) {
			code, out, errs := runCmd(r.args(t, s)...)
			if code != r.code {
				t.Errorf("exit %d, want %d\n%s%s", code, r.code, out, errs)
			}
			got := strings.Split(strings.TrimSuffix(r.rename(out+errs), "\n"), "\n")
			want := s.out
			if r.only > 0 {
				got, want = got[:min(r.only, len(got))], want[:min(r.only, len(want))]
			}
			if len(got) != len(want) {
				t.Fatalf("%d lines, the docs show %d\ngot:\n%s\ndocs:\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for i := range got {
				if g, w := normalise(got[i]), normalise(want[i]); g != w {
					t.Errorf("line %d:\n got  %s\n docs %s", i+1, g, w)
				}
			}
		})
	}
	for cmd := range runners {
		if !seen[cmd] {
			t.Errorf("the docs no longer show %q: update this test's list", cmd)
		}
	}
}
