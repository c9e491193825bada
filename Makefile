# portpatrol — build, test, benchmark.
GO ?= go
BIN ?= bin/portpatrol

# Version stamping: `portpatrol version` prints these. A plain `go build` leaves them
# empty and the binary falls back to the vcs settings the Go toolchain records.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# -s -w drop the symbol table and DWARF (a fifth of the file); -trimpath keeps build
# paths out of the binary.
LDFLAGS ?= -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

.PHONY: all build run test vet fmt-check bench services

all: build

## build: compile bin/portpatrol, stripped and stamped with its version
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/portpatrol

## run: build and run the daemon on its embedded defaults (127.0.0.1:9115)
run: build
	./$(BIN) serve

## test: formatting, vet and every test with the race detector
test: fmt-check vet
	$(GO) test -race -timeout 25m ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## services: start the local services the integration tests use (if down)
services:
	scripts/services.sh

## bench: ls and start-up against ss, the whole daemon at 100,000 targets, scans against nmap, the engine, per-protocol and intrusion detector benchmarks (figures beside goals)
bench: build
	$(GO) run ./bench/ls -bin $(BIN)
	$(GO) run ./bench/daemon -bin $(BIN)
	$(GO) run ./bench/metrics
	$(GO) run ./bench/scan
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/engine
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./bench/protocols
	$(GO) test -run '^$$' -bench Detector -benchtime 1000000x ./internal/intrusion
	$(GO) test -run '^$$' -bench BenignReplay -benchtime 1x ./internal/intrusion

# --- Release artefacts: everything lands in dist/ (gitignored). -------------------------
DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64
HOSTARCH  := $(shell $(GO) env GOARCH)
# Package versions must start with a digit: an untagged checkout is 0.0.0~git<hash>,
# which sorts before any release.
PKG_VERSION ?= $(shell echo '$(VERSION)' | sed -e 's/^v//' -e '/^[0-9]/!s/^/0.0.0~git/' -e 's/-/./g')
# Tools built once from the module proxy and cached (scripts/gotool.sh).
CYCLONEDX_GOMOD ?= github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0
NFPM            ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

.PHONY: release package

## release: static, stripped, versioned linux/amd64 and linux/arm64 binaries in dist/, SHA256SUMS and a CycloneDX SBOM of each (from the modules linked into it)
release:
	@mkdir -p $(DIST)
	@rm -f $(DIST)/portpatrol_*_linux_* $(DIST)/SHA256SUMS $(DIST)/*.cdx.json
	@for p in $(PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
	  echo "build $(DIST)/portpatrol_$(VERSION)_$${os}_$${arch}"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	    -o $(DIST)/portpatrol_$(VERSION)_$${os}_$${arch} ./cmd/portpatrol || exit 1; \
	done
	@cdx=$$(scripts/gotool.sh cyclonedx-gomod $(CYCLONEDX_GOMOD)) && for p in $(PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
	  echo "sbom $(DIST)/portpatrol_$(VERSION)_$${os}_$${arch}.cdx.json"; \
	  $$cdx bin -json -version $(VERSION) -output $(DIST)/portpatrol_$(VERSION)_$${os}_$${arch}.cdx.json \
	    $(DIST)/portpatrol_$(VERSION)_$${os}_$${arch} || exit 1; \
	done
	cd $(DIST) && sha256sum portpatrol_$(VERSION)_* > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

## package: .deb and .rpm for linux/amd64 and linux/arm64 (nfpm) in dist/, with the unit, config, man pages and completions
package: release
	rm -rf $(DIST)/stage && mkdir -p $(DIST)/stage/man $(DIST)/stage/completions
	$(DIST)/portpatrol_$(VERSION)_linux_$(HOSTARCH) man $(DIST)/stage/man
	gzip -n -9 $(DIST)/stage/man/*.1
	$(DIST)/portpatrol_$(VERSION)_linux_$(HOSTARCH) completion bash > $(DIST)/stage/completions/portpatrol.bash
	$(DIST)/portpatrol_$(VERSION)_linux_$(HOSTARCH) completion zsh > $(DIST)/stage/completions/_portpatrol
	$(DIST)/portpatrol_$(VERSION)_linux_$(HOSTARCH) completion fish > $(DIST)/stage/completions/portpatrol.fish
	@nfpm=$$(scripts/gotool.sh nfpm $(NFPM)) && for p in $(PLATFORMS); do arch=$${p#*/}; \
	  sed -e "s|\$${ARCH}|$$arch|g" -e 's|\$${PKG_VERSION}|$(PKG_VERSION)|g' \
	    -e "s|\$${BIN}|$(DIST)/portpatrol_$(VERSION)_linux_$$arch|g" -e 's|\$${STAGE}|$(DIST)/stage|g' \
	    deploy/packaging/nfpm.yaml > $(DIST)/stage/nfpm-$$arch.yaml; \
	  for f in deb rpm; do $$nfpm package -f $(DIST)/stage/nfpm-$$arch.yaml -p $$f -t $(DIST)/ || exit 1; done; \
	done
	cd $(DIST) && sha256sum *.deb *.rpm >> SHA256SUMS

# The image's name; its tag is the Helm chart's appVersion, which deploy/kubernetes and
# the chart name by default, so what `make image` writes is what they run.
IMAGE_REPO ?= ghcr.io/portpatrol/portpatrol
IMAGE_TAG  ?= $(shell awk '$$1 == "appVersion:" {gsub(/"/, "", $$2); print $$2}' deploy/helm/portpatrol/Chart.yaml)

.PHONY: image print-nfpm print-image

## image: an OCI image (empty base, static binary, uid 65532) for linux/amd64 and linux/arm64 in dist/oci and dist/*_oci.tar
image: release
	$(GO) run -C tools/ociimage . -out $(abspath $(DIST))/oci -tag $(IMAGE_TAG) \
	  -version $(VERSION) -revision '$(COMMIT)' -created $(DATE) \
	  -bin $$(for p in $(PLATFORMS); do a=$${p#*/}; printf '%s=%s,' $$a $(abspath $(DIST))/portpatrol_$(VERSION)_linux_$$a; done | sed 's/,$$//')
	tar -C $(DIST)/oci -cf $(DIST)/portpatrol_$(VERSION)_oci.tar .
	@echo "image $(IMAGE_REPO):$(IMAGE_TAG): skopeo inspect oci:$(DIST)/oci:$(IMAGE_TAG)"

print-nfpm:
	@echo $(NFPM)

print-image:
	@echo $(IMAGE_REPO):$(IMAGE_TAG)

.PHONY: dashboards
## dashboards: regenerate deploy/grafana/*.json from tools/dashboards (Grafana Foundation SDK)
dashboards:
	$(GO) run -C tools/dashboards . -out $(CURDIR)/deploy/grafana
