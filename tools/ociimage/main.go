// Command ociimage assembles portpatrol's container image without a container daemon:
// an empty base, the static binary, a container config, CA certificates and a
// non-root user, written as an OCI image layout (one image per architecture under one
// index) that skopeo, umoci, podman and registries read. `make image` runs it.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// uid and gid of the image's user: 65532, the non-root id the Kubernetes manifests and
// the Helm chart run as.
const uid = 65532

// containerConfig is /etc/portpatrol/portpatrol.yaml in the image. The container has a
// network namespace of its own, so it listens on every address inside it; what reaches
// it is decided where the port is published (`-p 127.0.0.1:9115:9115`, a Service).
const containerConfig = `# portpatrol in a container: mount your own file over this one.
# Inside the container's own network namespace portpatrol listens on every address;
# publish the port on loopback only (-p 127.0.0.1:9115:9115) or behind a Service and a
# NetworkPolicy. Writes through the API always need a token.
listen: 0.0.0.0:9115
# The container sees only its own sockets: the host watch has nothing to learn.
host_watch:
  disabled: true
targets: []
`

func main() {
	var (
		bins     = flag.String("bin", "", "comma-separated ARCH=PATH of static linux binaries, e.g. amd64=dist/portpatrol_linux_amd64")
		out      = flag.String("out", "dist/oci", "directory of the OCI image layout to write (replaced)")
		tag      = flag.String("tag", "", "the image's tag (its ref name in the layout), e.g. 0.1.0")
		version  = flag.String("version", "", "org.opencontainers.image.version")
		revision = flag.String("revision", "", "org.opencontainers.image.revision (the commit)")
		source   = flag.String("source", "https://github.com/portpatrol/portpatrol", "org.opencontainers.image.source")
		created  = flag.String("created", "", "creation time, RFC 3339 (default: the Unix epoch, for reproducible images)")
		caFile   = flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include for TLS probes and notifications (empty: none)")
	)
	flag.Parse()
	if err := build(*bins, *out, *tag, *version, *revision, *source, *created, *caFile); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func build(bins, out, tag, version, revision, source, created, caFile string) error {
	if bins == "" || tag == "" || version == "" {
		return fmt.Errorf("-bin, -tag and -version are required")
	}
	when := time.Unix(0, 0).UTC()
	if created != "" {
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			return fmt.Errorf("-created: %w", err)
		}
		when = t
	}
	var ca []byte
	if caFile != "" {
		var err error
		if ca, err = os.ReadFile(caFile); err != nil {
			return fmt.Errorf("-ca: %w", err)
		}
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "portpatrol",
		"org.opencontainers.image.description": "Port monitoring daemon: probes, P0-P3 alerting, Prometheus metrics",
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.revision":    revision,
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.created":     when.Format(time.RFC3339),
	}
	idx := v1.ImageIndex(empty.Index)
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	for _, pair := range strings.Split(bins, ",") {
		arch, path, ok := strings.Cut(pair, "=")
		if !ok {
			return fmt.Errorf("-bin %q: want ARCH=PATH", pair)
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		img, err := image(arch, bin, ca, labels, when)
		if err != nil {
			return fmt.Errorf("%s: %w", arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
	})); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (tag %s, index %s)\n", out, tag, d)
	return nil
}

// image is one architecture's image: a single layer on an empty base.
func image(arch string, bin, ca []byte, labels map[string]string, when time.Time) (v1.Image, error) {
	files, err := rootfs(bin, ca, when)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: when}, CreatedBy: "portpatrol tools/ociimage", Comment: "portpatrol " + labels["org.opencontainers.image.version"],
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: when}
	cf.Config = v1.Config{
		// The entrypoint is the binary, so `… IMAGE check HOST:PORT` runs other commands
		// and a manifest's args: [serve, …] replace the default serve command whole.
		Entrypoint:   []string{"/usr/bin/portpatrol"},
		Cmd:          []string{"serve", "--config", "/etc/portpatrol/portpatrol.yaml", "--data-dir", "/var/lib/portpatrol"},
		User:         fmt.Sprintf("%d:%d", uid, uid),
		WorkingDir:   "/var/lib/portpatrol",
		Env:          []string{"HOME=/var/lib/portpatrol", "PORTPATROL_DATA_DIR=/var/lib/portpatrol"},
		ExposedPorts: map[string]struct{}{"9115/tcp": {}},
		Volumes:      map[string]struct{}{"/var/lib/portpatrol": {}},
		Labels:       labels,
		StopSignal:   "SIGTERM",
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer's tar: the binary, its config, CA roots, a passwd naming the
// user, and the state and temporary directories.
func rootfs(bin, ca []byte, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: owner, Gid: owner, ModTime: when})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: when}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"etc/", "etc/portpatrol/", "etc/ssl/", "etc/ssl/certs/", "usr/", "usr/bin/", "var/", "var/lib/"} {
		if err := dir(d, 0o755, 0); err != nil {
			return nil, err
		}
	}
	steps := []error{
		dir("tmp/", 0o1777, 0),
		dir("var/lib/portpatrol/", 0o700, uid),
		file("usr/bin/portpatrol", 0o755, bin),
		file("etc/portpatrol/portpatrol.yaml", 0o644, []byte(containerConfig)),
		file("etc/passwd", 0o644, []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nportpatrol:x:%d:%d:portpatrol:/var/lib/portpatrol:/sbin/nologin\n", uid, uid))),
		file("etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nportpatrol:x:%d:\n", uid))),
	}
	if ca != nil {
		steps = append(steps, file("etc/ssl/certs/ca-certificates.crt", 0o644, ca))
	}
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
