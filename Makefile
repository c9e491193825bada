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
