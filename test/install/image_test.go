package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
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
