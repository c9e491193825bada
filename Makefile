# portpatrol — build, test, benchmark.
GO ?= go
BIN ?= bin/portpatrol

.PHONY: all build run test vet fmt-check bench services

all: build

## build: compile bin/portpatrol
build:
	$(GO) build -o $(BIN) ./cmd/portpatrol

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

## bench: the engine and per-protocol benchmarks (print figures beside their goals)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/engine
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./bench/protocols
