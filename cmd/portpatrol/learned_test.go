package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/api"
)

// learnedWorld is a host watch's listeners behind the real API.
type learnedWorld struct {
	mu sync.Mutex
	ls []api.LearnedListener
}

func newLearnedWorld() *learnedWorld {
	now := time.Now()
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	return &learnedWorld{ls: []api.LearnedListener{
		{Addr: "127.0.0.1:1883", Port: 1883, Process: "mosquitto", PID: 123, State: "learning", FirstSeen: now.Add(-30 * time.Second),
			LearnAt: at(90 * time.Second), TargetID: "tcp://127.0.0.1:1883"},
		{Addr: "0.0.0.0:5432", Port: 5432, Process: "postgres", PID: 99, State: "learned", FirstSeen: now.Add(-48 * time.Hour),
			LearnedAt: at(-48 * time.Hour), TargetID: "tcp://127.0.0.1:5432"},
		{Addr: "0.0.0.0:9222", Port: 9222, Process: "node", State: "gone", FirstSeen: now.Add(-3 * time.Hour), LearnedAt: at(-3 * time.Hour),
			GoneSince: at(-time.Hour), ForgetAt: at(23 * time.Hour), Fate: "exited", TargetID: "tcp://127.0.0.1:9222"},
	}}
}

func (w *learnedWorld) LearnedListeners(context.Context) ([]api.LearnedListener, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ls), nil
}

func (w *learnedWorld) ForgetLearned(_ context.Context, addr string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.IndexFunc(w.ls, func(l api.LearnedListener) bool { return l.Addr == addr && l.State != "learning" })
	if i < 0 {
		return nil, fmt.Errorf("forget %s: %w", addr, api.ErrNotFound)
	}
	w.ls = slices.Delete(w.ls, i, i+1)
	return []string{addr}, nil
}

func (w *learnedWorld) ForgetGoneLearned(context.Context) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	w.ls = slices.DeleteFunc(w.ls, func(l api.LearnedListener) bool {
		gone := l.State == "gone" || l.State == "retired"
		if gone {
			out = append(out, l.Addr)
		}
		return gone
	})
	return out, nil
}

func startLearnedAPI(t *testing.T, w *learnedWorld) string {
	t.Helper()
	srv := httptest.NewServer(api.New(api.Config{Learned: w, Tokens: api.StaticTokens{
		{ID: "t1", Name: "grafana", Role: api.RoleViewer, Secret: viewerToken},
		{ID: "t2", Name: "alice", Role: api.RoleOperator, Secret: operatorToken},
	}}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestLearnedCommands(t *testing.T) {
	w := newLearnedWorld()
	url := startLearnedAPI(t, w)
	view := []string{"--server", url, "--token", viewerToken}
	op := []string{"--server", url, "--token", operatorToken}

	out, errOut, code := runAPICmd(t, append([]string{"learned", "ls"}, view...)...)
	if code != exitOK {
		t.Fatalf("learned ls: exit %d, %s", code, errOut)
	}
	for _, want := range []string{
		"ADDR            PROCESS          STATE     WHEN",
		"127.0.0.1:1883  mosquitto (123)  learning  learned in 1m",
		"0.0.0.0:5432    postgres (99)    learned   since 48h0m0s ago",
		"0.0.0.0:9222    node             gone      gone 1h0m0s ago, process exited: retired in 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("learned ls: missing %q in:\n%s", want, out)
		}
	}
	out, _, code = runAPICmd(t, append([]string{"learned", "ls", "--json"}, view...)...)
	if code != exitOK || !strings.Contains(out, `"state": "learning"`) || !strings.Contains(out, `"learned_at": null`) {
		t.Errorf("learned ls --json: exit %d:\n%s", code, out)
	}

	_, errOut, code = runAPICmd(t, append([]string{"learned", "forget", "0.0.0.0:5432"}, view...)...)
	if code != exitUnknown || !strings.Contains(errOut, "permission denied") {
		t.Errorf("forget as a viewer: exit %d, %q", code, errOut)
	}
	_, errOut, code = runAPICmd(t, append([]string{"learned", "forget"}, op...)...)
	if code != exitUnknown || !strings.Contains(errOut, "or --all-gone") {
		t.Errorf("forget without an address: exit %d, %q", code, errOut)
	}
	_, errOut, code = runAPICmd(t, append([]string{"learned", "forget", "127.0.0.1:9", "--all-gone"}, op...)...)
	if code != exitUnknown || !strings.Contains(errOut, "not both") {
		t.Errorf("forget with both: exit %d, %q", code, errOut)
	}
	_, errOut, code = runAPICmd(t, append([]string{"learned", "forget", "127.0.0.1:9"}, op...)...)
	if code != exitWarning || !strings.Contains(errOut, "no learned listener 127.0.0.1:9") {
		t.Errorf("forget unknown: exit %d, %q", code, errOut)
	}
	out, errOut, code = runAPICmd(t, append([]string{"learned", "forget", "0.0.0.0:5432"}, op...)...)
	if code != exitOK || out != "Forgot 0.0.0.0:5432\n" {
		t.Errorf("forget: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runAPICmd(t, append([]string{"learned", "forget", "--all-gone"}, op...)...)
	if code != exitOK || out != "Forgot 0.0.0.0:9222\n" {
		t.Errorf("forget --all-gone: exit %d, %q", code, out)
	}
	out, _, _ = runAPICmd(t, append([]string{"learned", "forget", "--all-gone"}, op...)...)
	if out != "No learned listener is gone; nothing forgotten.\n" {
		t.Errorf("forget --all-gone again: %q", out)
	}
}

// The examples in learned's --help run as written, against a daemon that has what
// they name.
func TestLearnedExamplesRun(t *testing.T) {
	cmd := newLearnedCmd()
	var examples []string
	for _, c := range append([]*cobra.Command{cmd}, cmd.Commands()...) {
		for line := range strings.SplitSeq(c.Example, "\n") {
			line, _, _ = strings.Cut(strings.TrimSpace(line), " | ")
			if line != "" && !slices.Contains(examples, line) {
				examples = append(examples, line)
			}
		}
	}
	if len(examples) < 4 {
		t.Fatalf("examples: %q", examples)
	}
	for _, ex := range examples {
		url := startLearnedAPI(t, newLearnedWorld())
		args := strings.Fields(strings.TrimPrefix(ex, "portpatrol "))
		if args[0] == "learned" && len(args) > 2 && args[1] == "forget" && args[2] == "127.0.0.1:1883" {
			// Still being learned in this world: nothing to forget yet, exit 1.
			if _, _, code := runAPICmd(t, append(args, "--server", url, "--token", operatorToken)...); code != exitWarning {
				t.Errorf("%s: exit %d, want 1 (not learned yet)", ex, code)
			}
			continue
		}
		if _, errOut, code := runAPICmd(t, append(args, "--server", url, "--token", operatorToken)...); code != exitOK {
			t.Errorf("%s: exit %d: %s", ex, code, errOut)
		}
	}
}
