package automation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Exec runs a command: an argv, never through a shell, with a timeout, only the
// environment variables its allowlist names, and optionally as another user.
type Exec struct {
	Params Params
	// Undo, when set, is the command that rolls the step back.
	Undo *Params
}

var _ Action = (*Exec)(nil)

type execDetail struct {
	argv    []string
	timeout time.Duration
	env     []string
	user    string
	undo    []string
}

// Plan expands the argv against the target.
func (x *Exec) Plan(t Target) (Change, error) {
	if len(x.Params.Argv) == 0 {
		return Change{}, errors.New("exec: empty argv")
	}
	d := execDetail{timeout: x.Params.Timeout, env: x.Params.Env, user: x.Params.User}
	if d.timeout == 0 {
		d.timeout = DefaultExecTimeout
	}
	for _, a := range x.Params.Argv {
		d.argv = append(d.argv, t.expand(a))
	}
	if x.Undo != nil {
		for _, a := range x.Undo.Argv {
			d.undo = append(d.undo, t.expand(a))
		}
	}
	params := map[string]string{"argv": quoteArgv(d.argv), "timeout": d.timeout.String()}
	if len(d.env) > 0 {
		params["env"] = strings.Join(d.env, ",")
	}
	if d.user != "" {
		params["user"] = d.user
	}
	if len(d.undo) > 0 {
		params["rollback"] = quoteArgv(d.undo)
	}
	diff := "run " + quoteArgv(d.argv)
	if d.user != "" {
		diff += " as " + d.user
	}
	return Change{Action: "exec", Target: t.ID, Params: params, Diff: diff, detail: d}, nil
}

// PreCheck checks that the program exists and is executable and that the user exists.
func (x *Exec) PreCheck(_ context.Context, c Change) error {
	d := c.detail.(execDetail)
	if _, err := exec.LookPath(d.argv[0]); err != nil {
		return fmt.Errorf("exec: program %q cannot be run: %w; install it or fix argv[0]", d.argv[0], err)
	}
	if d.user != "" {
		if _, err := user.Lookup(d.user); err != nil {
			return fmt.Errorf("exec: no user %q on this host: %w", d.user, err)
		}
		if os.Geteuid() != 0 {
			return fmt.Errorf("exec: running as %q needs portpatrol to run as root", d.user)
		}
	}
	return nil
}

// Apply runs the command and fails when it does not exit 0 within its timeout.
func (x *Exec) Apply(ctx context.Context, c Change) error {
	d := c.detail.(execDetail)
	return runArgv(ctx, d.argv, d.timeout, d.env, d.user)
}

// Verify has nothing to check beyond the command's exit status.
func (x *Exec) Verify(context.Context, Change) error { return nil }

// Rollback runs the rollback command, if the step has one.
func (x *Exec) Rollback(ctx context.Context, c Change) error {
	d := c.detail.(execDetail)
	if len(d.undo) == 0 {
		return nil
	}
	return runArgv(ctx, d.undo, d.timeout, d.env, d.user)
}

// runArgv runs argv without a shell, with only the allowed environment variables.
func runArgv(ctx context.Context, argv []string, timeout time.Duration, allow []string, as string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{}
	for _, name := range allow {
		if v, ok := os.LookupEnv(name); ok {
			cmd.Env = append(cmd.Env, name+"="+v)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A command that starts a service in the background may leave it holding the
	// output; it is not waited for beyond this.
	cmd.WaitDelay = 2 * time.Second
	if as != "" {
		u, err := user.Lookup(as)
		if err != nil {
			return fmt.Errorf("exec: no user %q: %w", as, err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // exited 0; something it started keeps the output open
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("exec %s: killed after its timeout %s", quoteArgv(argv), timeout)
	}
	if err != nil {
		return fmt.Errorf("exec %s: %w; output: %s", quoteArgv(argv), err, lastBytes(out.String(), 400))
	}
	return nil
}

// quoteArgv renders an argv for people: items with spaces or quotes are quoted.
func quoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'\\") {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

func lastBytes(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// lookPath finds a program as exec does.
func lookPath(name string) (string, error) { return exec.LookPath(name) }
