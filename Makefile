# sync-proxy — `make help` lists the targets.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN       := bin/sync-proxy
FUZZTIME  ?= 30s

# what scripts/setup.sh installs is found first, without touching the caller's PATH
GOBIN_DIR := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)
export PATH := $(GOBIN_DIR):$(PATH)
export SYNC_PROXY_LODESTAR_DIR ?= $(HOME)/.cache/sync-proxy/lodestar
SETUP     := GO=$(GO) scripts/setup.sh

.PHONY: help setup build test check test-e2e lint fmt fuzz bench soak devnet clean

help: #? list the targets
	@grep -E '^[a-z-]+:.*#\?' $(MAKEFILE_LIST) | sed -E 's/:.*#\? /\t/' | expand -t 14

build: #? build bin/sync-proxy (static, trimmed, versioned)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sync-proxy

setup: #? install what make test needs, once: staticcheck and geth (go install), nginx, Chromium, nftables, Node.js (apt-get, as root), Lodestar (npm)
	@$(SETUP)

test: #? the whole suite, as CI runs it: setup, lint, every test with -race, then each fuzz target briefly (root for test/netfault); prints each phase's time
	@scripts/phases.sh 'setup=$(SETUP)' 'lint=$(MAKE) --no-print-directory lint' \
	  'test=$(GO) test -race -count=1 -timeout 80m ./...' 'fuzz=$(MAKE) --no-print-directory fuzz FUZZTIME=3s'

check: #? the fast tier, for working (under 3 minutes): lint, then every package's unit tests with -race -short (no real clients, a 15 s soak)
	@scripts/phases.sh 'lint=$(MAKE) --no-print-directory lint' \
	  'unit=$(GO) test -race -count=1 -short $$($(GO) list ./... | grep -v /test/)'

test-e2e: #? the real-client suite only
	$(GO) test -race -count=1 -timeout 75m -v ./test/e2e/

lint: #? gofmt, go vet, staticcheck, go mod tidy check
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	@$(SETUP) staticcheck
	staticcheck ./...
	$(GO) mod tidy -diff

fmt: #? format the code
	gofmt -w $$(git ls-files '*.go')

fuzz: #? run every fuzz target for FUZZTIME each (default 30s); see scripts/fuzz-one.sh
	@for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; GO=$(GO) scripts/fuzz-one.sh $$pkg $$f $(FUZZTIME) || exit 1; \
	  done; \
	done

bench: build #? measure the hop: floor, nginx, sync-proxy (mirror, direct 1/16 followers, a hung follower, a 10,000-block burst); writes bin/bench.md
	$(GO) build -o bin/sync-proxy-load ./cmd/sync-proxy-load
	bin/sync-proxy-load bench --proxy-bin $(BIN) --out bin/bench.md $(BENCHFLAGS)

devnet: build #? see it work: three gethes behind sync-proxy, two simulated beacon nodes, a block every 4 s; Ctrl-C stops all
	@$(SETUP) geth
	$(GO) build -o bin/sync-proxy-devnet ./cmd/sync-proxy-devnet
	bin/sync-proxy-devnet --sync-proxy $(BIN) $(DEVNETFLAGS)

soak: #? the soak for SOAK_DURATION (default 10m): 3 BNs, 4 ELs (one flapping), accelerated slots; every block accounted for, goroutines and memory flat
	SOAK_DURATION=$${SOAK_DURATION:-10m} $(GO) test -count=1 -run '^TestSoak$$' -timeout 60m -v ./internal/proxy/

clean: #? remove build outputs
	rm -rf bin
