# sync-proxy — `make help` lists the targets.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN       := bin/sync-proxy
FUZZTIME  ?= 30s

.PHONY: help build test test-unit test-e2e lint fmt fuzz bench devnet clean

help: #? list the targets
	@grep -E '^[a-z-]+:.*#\?' $(MAKEFILE_LIST) | sed -E 's/:.*#\? /\t/' | expand -t 14

build: #? build bin/sync-proxy (static, trimmed, versioned)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sync-proxy

test: #? the whole suite, as CI runs it: vet, then every test with -race (needs geth, nginx, chromium, lodestar)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 75m ./...

test-unit: #? unit tests only (no real clients)
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

test-e2e: #? the real-client suite only
	$(GO) test -race -count=1 -timeout 75m -v ./test/e2e/

lint: #? gofmt, go vet, staticcheck, go mod tidy check
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	staticcheck ./...
	$(GO) mod tidy -diff

fmt: #? format the code
	gofmt -w $$(git ls-files '*.go')

fuzz: #? run every fuzz target for FUZZTIME each (default 30s)
	@for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean: #? remove build outputs
	rm -rf bin
