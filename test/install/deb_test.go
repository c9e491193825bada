package install

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// run runs a command and returns its combined output, failing the test on error.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

const testVersion = "1.2.3-test"

var (
	distOnce sync.Once
	distDir  string
	distErr  error
)

// artefacts runs `make package image` once for this machine's architecture, into a
// directory the package's tests share (TestMain removes it), and returns it.
func artefacts(t *testing.T) (dist, version string) {
	t.Helper()
	need(t, "make")
	distOnce.Do(func() {
		if distDir, distErr = os.MkdirTemp("", "portpatrol-dist"); distErr != nil {
			return
		}
		cmd := exec.Command("make", "package", "image", "DIST="+distDir, "PLATFORMS=linux/"+runtime.GOARCH, "VERSION="+testVersion)
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			distErr = &buildError{out: string(out), err: err}
			return
		}
		t.Logf("make package image:\n%s", out)
	})
	if distErr != nil {
		t.Fatal(distErr)
	}
	return distDir, testVersion
}

// checkRelease checks what `make release` promises: a static, stripped, stamped binary,
// an SBOM naming the module, and checksums that match.
func checkRelease(t *testing.T, dist, version string) {
	t.Helper()
	bin := filepath.Join(dist, "portpatrol_"+version+"_linux_"+runtime.GOARCH)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the release binary has an ELF interpreter: it is not static")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("the release binary has a symbol table: it is not stripped")
	}
	if out := run(t, dist, nil, bin, "version"); !strings.HasPrefix(out, "portpatrol "+version+"\n") {
		t.Errorf("version: got %q, want portpatrol %s", out, version)
	}
	var sbom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name string } `json:"component"`
		} `json:"metadata"`
		Components []struct{ Name string } `json:"components"`
	}
	b, err := os.ReadFile(bin + ".cdx.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sbom); err != nil {
		t.Fatalf("SBOM: %v", err)
	}
	if sbom.BOMFormat != "CycloneDX" || sbom.Metadata.Component.Name != "github.com/portpatrol/portpatrol" || len(sbom.Components) < 10 {
		t.Errorf("SBOM: got format %q component %q with %d dependencies, want CycloneDX for the module with its dependencies",
			sbom.BOMFormat, sbom.Metadata.Component.Name, len(sbom.Components))
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: %s does not match", name)
		}
		n++
	}
	if n < 4 { // binary, SBOM, .deb, .rpm
		t.Errorf("SHA256SUMS lists %d files, want the binary, the SBOM and the packages", n)
	}
	rpms, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("got rpms %v, want one", rpms)
	}
	lead, _ := os.ReadFile(rpms[0])
	if !bytes.HasPrefix(lead, []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Errorf("%s is not an RPM", rpms[0])
	}
}

// mode checks a path's permission bits and owner.
func mode(t *testing.T, path string, perm fs.FileMode, owner, group string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s: mode %o, want %o", path, fi.Mode().Perm(), perm)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(fmt.Sprint(st.Uid))
	g, _ := user.LookupGroupId(fmt.Sprint(st.Gid))
	if u == nil || g == nil || u.Username != owner || g.Name != group {
		t.Errorf("%s: owned by %d:%d, want %s:%s", path, st.Uid, st.Gid, owner, group)
	}
}

const wants = "/etc/systemd/system/multi-user.target.wants/portpatrol.service"

// TestDebInstallUpgradePurge builds the packages, installs the .deb on this machine with
// dpkg, checks what it put where, upgrades it over data and an edited config, and purges
// it, checking the machine is as it was.
func TestDebInstallUpgradePurge(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the package test installs a .deb and must run as root under CI")
		}
		t.Skip("installs a .deb with dpkg: run as root (CI does)")
	}
	dpkg := need(t, "dpkg")
	sa := need(t, "systemd-analyze")
	if out, err := exec.Command("dpkg-query", "-W", "portpatrol").CombinedOutput(); err == nil {
		t.Fatalf("portpatrol is already installed on this machine (%s); remove it first", bytes.TrimSpace(out))
	}
	if _, err := user.Lookup("portpatrol"); err == nil {
		t.Fatal("a portpatrol user already exists on this machine; the test would not leave it as it was")
	}
	for _, p := range []string{"/etc/portpatrol", "/var/lib/portpatrol", "/usr/bin/portpatrol"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s already exists on this machine", p)
		}
	}

	dist, version := artefacts(t)
	checkRelease(t, dist, version)
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("got debs %v, want one", debs)
	}
	t.Cleanup(func() { exec.Command(dpkg, "--purge", "portpatrol").Run() })

	out := run(t, "", nil, dpkg, "-i", debs[0])
	t.Logf("dpkg -i %s:\n%s", filepath.Base(debs[0]), out)
	if !strings.Contains(out, "enabled, not started") {
		t.Errorf("dpkg -i did not say the service is enabled and not started")
	}

	mode(t, "/usr/bin/portpatrol", 0o755, "root", "root")
	mode(t, "/usr/lib/systemd/system/portpatrol.service", 0o644, "root", "root")
	mode(t, "/etc/portpatrol/portpatrol.yaml", 0o640, "root", "portpatrol")
	mode(t, "/var/lib/portpatrol", 0o700, "portpatrol", "portpatrol")
	for _, p := range []string{
		"/usr/share/man/man1/portpatrol.1.gz", "/usr/share/man/man1/portpatrol-serve.1.gz",
		"/usr/share/bash-completion/completions/portpatrol",
		"/usr/share/zsh/vendor-completions/_portpatrol",
		"/usr/share/fish/vendor_completions.d/portpatrol.fish",
	} {
		mode(t, p, 0o644, "root", "root")
	}
	if conf := run(t, "", nil, dpkg, "-s", "portpatrol"); !strings.Contains(conf, "/etc/portpatrol/portpatrol.yaml") {
		t.Errorf("the config is not a conffile:\n%s", conf)
	}
	u, err := user.Lookup("portpatrol")
	if err != nil {
		t.Fatal(err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid <= 0 || uid >= 1000 || u.HomeDir != "/var/lib/portpatrol" {
		t.Errorf("user portpatrol: got %+v, want a system user (uid below 1000) at home in /var/lib/portpatrol", u)
	}
	if pw := run(t, "", nil, "getent", "passwd", "portpatrol"); !strings.HasSuffix(strings.TrimSpace(pw), ":/usr/sbin/nologin") {
		t.Errorf("user portpatrol can log in: %s", pw)
	}
	if got := run(t, "", nil, "/usr/bin/portpatrol", "version"); !strings.HasPrefix(got, "portpatrol "+version+"\n") {
		t.Errorf("portpatrol version: got %q", got)
	}
	if got := run(t, "", nil, "/usr/bin/portpatrol", "config", "check", "/etc/portpatrol/portpatrol.yaml"); !strings.Contains(got, "OK") {
		t.Errorf("the default config does not check: %s", got)
	}
	if got, err := exec.Command(sa, "verify", "/usr/lib/systemd/system/portpatrol.service").CombinedOutput(); err != nil || len(got) > 0 {
		t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, got)
	}
	if target, err := os.Readlink(wants); err != nil || !strings.HasSuffix(target, "/portpatrol.service") {
		t.Errorf("not enabled: %s -> %q (%v)", wants, target, err)
	}

	// Upgrade: the data and an edited config stay.
	marker := "/var/lib/portpatrol/keep-me"
	if err := os.WriteFile(marker, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile("/etc/portpatrol/portpatrol.yaml")
	edited := append(conf, "# edited by the administrator\n"...)
	if err := os.WriteFile("/etc/portpatrol/portpatrol.yaml", edited, 0o640); err != nil {
		t.Fatal(err)
	}
	next := repackage(t, dist, version, "1.2.4")
	out = run(t, "", nil, dpkg, "--force-confold", "-i", next)
	t.Logf("dpkg -i %s (upgrade):\n%s", filepath.Base(next), out)
	if b, err := os.ReadFile(marker); err != nil || string(b) != "data" {
		t.Errorf("the upgrade lost the data: %q %v", b, err)
	}
	if b, _ := os.ReadFile("/etc/portpatrol/portpatrol.yaml"); !bytes.Equal(b, edited) {
		t.Errorf("the upgrade replaced the edited config")
	}
	mode(t, "/var/lib/portpatrol", 0o700, "portpatrol", "portpatrol")
	if st := run(t, "", nil, "dpkg-query", "-W", "-f=${Version}", "portpatrol"); st != "1.2.4-1" {
		t.Errorf("installed version %q after the upgrade, want 1.2.4-1", st)
	}

	out = run(t, "", nil, dpkg, "--purge", "portpatrol")
	t.Logf("dpkg --purge portpatrol:\n%s", out)
	for _, p := range []string{"/usr/bin/portpatrol", "/usr/lib/systemd/system/portpatrol.service", "/etc/portpatrol",
		"/var/lib/portpatrol", wants, "/usr/share/man/man1/portpatrol.1.gz",
		"/var/lib/systemd/deb-systemd-helper-enabled/portpatrol.service.dsh-also"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after dpkg --purge", p)
		}
	}
	if _, err := user.Lookup("portpatrol"); err == nil {
		t.Error("user portpatrol is still there after dpkg --purge")
	}
	if _, err := user.LookupGroup("portpatrol"); err == nil {
		t.Error("group portpatrol is still there after dpkg --purge")
	}
	if err := exec.Command("dpkg-query", "-W", "portpatrol").Run(); err == nil {
		t.Error("dpkg still knows portpatrol after --purge")
	}
}

// repackage builds the .deb again under another version from the same staged files, as
// the next release would be, with the nfpm the Makefile uses.
func repackage(t *testing.T, dist, version, next string) string {
	t.Helper()
	root := repoRoot(t)
	mk := run(t, root, nil, "make", "-s", "--no-print-directory", "-f", "Makefile", "print-nfpm")
	nfpm := strings.TrimSpace(run(t, root, nil, "scripts/gotool.sh", "nfpm", strings.TrimSpace(mk)))
	out := t.TempDir()
	tmpl, err := os.ReadFile(filepath.Join(root, "deploy/packaging/nfpm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer(
		"${ARCH}", runtime.GOARCH, "${PKG_VERSION}", next,
		"${BIN}", filepath.Join(dist, "portpatrol_"+version+"_linux_"+runtime.GOARCH),
		"${STAGE}", filepath.Join(dist, "stage"),
	).Replace(string(tmpl))
	confPath := filepath.Join(out, "nfpm.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, root, nil, nfpm, "package", "-f", confPath, "-p", "deb", "-t", out)
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("repackage: got %v", debs)
	}
	return debs[0]
}
