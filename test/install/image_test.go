package install

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// imageRef is what `make image` tags the image with, as the Makefile prints it.
func imageRef(t *testing.T) (repo, tag string) {
	t.Helper()
	out := strings.TrimSpace(run(t, repoRoot(t), nil, "make", "-s", "--no-print-directory", "print-image"))
	repo, tag, ok := strings.Cut(out, ":")
	if !ok || tag == "" {
		t.Fatalf("make print-image: %q", out)
	}
	return repo, tag
}

// TestManifestsRunTheImageMakeImageBuilds: deploy/kubernetes names the tag `make image`
// writes, and the Helm chart defaults to it (its appVersion).
func TestManifestsRunTheImageMakeImageBuilds(t *testing.T) {
	repo, tag := imageRef(t)
	root := repoRoot(t)
	imageRE := regexp.MustCompile(`(?m)^\s*image:\s*(\S+)\s*$`)
	for _, f := range []string{"deploy/kubernetes/deployment.yaml", "deploy/kubernetes/daemonset.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		m := imageRE.FindAllSubmatch(b, -1)
		if len(m) == 0 {
			t.Errorf("%s names no image", f)
		}
		for _, x := range m {
			if string(x[1]) != repo+":"+tag {
				t.Errorf("%s runs %s, want %s:%s", f, x[1], repo, tag)
			}
		}
	}
	values, _ := os.ReadFile(filepath.Join(root, "deploy/helm/portpatrol/values.yaml"))
	if !strings.Contains(string(values), "repository: "+repo+"\n") || !strings.Contains(string(values), `tag: ""`) {
		t.Errorf("values.yaml: want repository %s and the tag defaulting to appVersion", repo)
	}
}

// TestImageReadsAsOCI reads the image `make image` wrote with skopeo and unpacks it
// with umoci, as a registry or runtime would.
func TestImageReadsAsOCI(t *testing.T) {
	skopeo := need(t, "skopeo")
	umoci := need(t, "umoci")
	dist, version := artefacts(t)
	_, tag := imageRef(t)
	ref := "oci:" + filepath.Join(dist, "oci") + ":" + tag

	out := run(t, "", nil, skopeo, "inspect", ref)
	t.Logf("skopeo inspect %s:\n%s", ref, out)
	var info struct {
		Architecture, Os string
		Labels           map[string]string
		Layers           []string
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Architecture != runtime.GOARCH || info.Os != "linux" || len(info.Layers) != 1 {
		t.Errorf("got %s/%s with %d layers, want linux/%s with one", info.Os, info.Architecture, len(info.Layers), runtime.GOARCH)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.source":  "https://github.com/portpatrol/portpatrol",
	} {
		if info.Labels[k] != want {
			t.Errorf("label %s: got %q, want %q", k, info.Labels[k], want)
		}
	}
	if len(info.Labels["org.opencontainers.image.revision"]) < 7 {
		t.Errorf("label org.opencontainers.image.revision: got %q, want the commit", info.Labels["org.opencontainers.image.revision"])
	}
	var cfg struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(run(t, "", nil, skopeo, "inspect", "--config", ref)), &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/usr/bin/portpatrol" || len(c.Cmd) == 0 || c.Cmd[0] != "serve" {
		t.Errorf("got user %q entrypoint %q cmd %q, want 65532:65532 running portpatrol serve", c.User, c.Entrypoint, c.Cmd)
	}

	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "", nil, umoci, "unpack", "--rootless", "--image", filepath.Join(dist, "oci")+":"+tag, bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	if got := run(t, "", nil, filepath.Join(rootfs, "usr/bin/portpatrol"), "version"); !strings.HasPrefix(got, "portpatrol "+version+"\n") {
		t.Errorf("the image's binary says %q", got)
	}
	conf := filepath.Join(rootfs, "etc/portpatrol/portpatrol.yaml")
	if got := run(t, "", nil, filepath.Join(rootfs, "usr/bin/portpatrol"), "config", "check", conf); !strings.Contains(got, "OK") {
		t.Errorf("the image's config does not check: %s", got)
	}
	for _, p := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "var/lib/portpatrol", "tmp"} {
		if _, err := os.Stat(filepath.Join(rootfs, p)); err != nil {
			t.Errorf("the image lacks /%s: %v", p, err)
		}
	}
}

// TestImageRunsUnderPodman runs the image as operators would, with a read-only root file
// system, published on loopback only, and reads its /metrics. podman's storage lives in
// the test's temporary directory (vfs), so the machine keeps no image or container.
// runc, not crun: crun refuses the hybrid cgroup hierarchy of some machines (CI's too);
// the explicit ulimits stay within what such a sandbox lets a container set.
func TestImageRunsUnderPodman(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("running the image with podman needs root under CI")
		}
		t.Skip("runs the image with podman as root")
	}
	podman := need(t, "podman")
	runc := need(t, "runc")
	dist, version := artefacts(t)
	_, tag := imageRef(t)
	state := t.TempDir()
	base := []string{"--root", filepath.Join(state, "root"), "--runroot", filepath.Join(state, "run"),
		"--storage-driver", "vfs", "--runtime", runc, "--events-backend", "none"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	name := fmt.Sprintf("portpatrol-test-%d", os.Getpid())
	args := append(append([]string{}, base...), "run", "-d", "--name", name, "--read-only",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"-p", fmt.Sprintf("127.0.0.1:%d:9115", port), "oci:"+filepath.Join(dist, "oci")+":"+tag)
	t.Cleanup(func() {
		exec.Command(podman, append(append([]string{}, base...), "rm", "-f", "-v", name)...).Run()
		exec.Command(podman, append(append([]string{}, base...), "system", "reset", "-f")...).Run()
	})
	run(t, "", nil, podman, args...)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				body = string(b)
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(body, "\nportpatrol_config_last_reload_successful 1\n") {
		logs, _ := exec.Command(podman, append(append([]string{}, base...), "logs", name)...).CombinedOutput()
		t.Fatalf("no portpatrol metrics from the container at %s:\n%.500s\nlogs:\n%s", url, body, logs)
	}
	top := run(t, "", nil, podman, append(append([]string{}, base...), "top", name, "user", "args")...)
	t.Logf("podman top:\n%s", top)
	if !strings.Contains(top, "portpatrol ") || strings.Contains(top, "root ") {
		t.Errorf("want the daemon running as portpatrol, not root:\n%s", top)
	}
	if got := run(t, "", nil, podman, append(append([]string{}, base...), "exec", name, "/usr/bin/portpatrol", "version")...); !strings.HasPrefix(got, "portpatrol "+version+"\n") {
		t.Errorf("version in the container: %q", got)
	}
}
