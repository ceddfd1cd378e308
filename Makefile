# bareflow — build, check and run.
#
# `make help` lists the targets. CI runs `bash .ci/run`, which ends in `make test`:
# format and vet → workflowcheck and import check → unit, replay and integration tests.
# Tools are pinned in go.mod and run with `go tool …`; nothing is fetched @latest.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go

# Version stamped into the binary (main.version).
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin/bareflow

# `make run`: data of `bareflow dev`, and the PostgreSQL database it uses
# (created on the local server by scripts/ensure-postgres.sh when missing).
XDG_DATA_HOME ?= $(HOME)/.local/share
BAREFLOW_DATA_DIR ?= $(XDG_DATA_HOME)/bareflow
RUN_DB_NAME ?= bareflow
BAREFLOW_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/$(RUN_DB_NAME)?sslmode=disable
# Extra arguments for `bareflow dev`, e.g. RUN_FLAGS=--ephemeral.
RUN_FLAGS ?=

# `make test`: CI sets BAREFLOW_REQUIRE_INTEGRATION=1 so that tests needing
# PostgreSQL, ipmi_sim or network namespaces fail instead of skipping.
BAREFLOW_REQUIRE_INTEGRATION ?=
TEST_TIMEOUT ?= 30m
TEST_FLAGS ?=
PKGS ?= ./...

# `make fuzz`: how long each Fuzz* target runs.
FUZZTIME ?= 10s

.PHONY: help build ramdisk run test e2e lint fmt-check vet workflowcheck check-imports bench bench-images fuzz image clean

help: ## List the targets.
	@echo 'Usage: make <target> [VAR=value …]'
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/bareflow (trimmed paths, version from git describe).
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bareflow

ramdisk: ## Build the PXE ramdisk (kernel, initrd, manifest) into build/ramdisk from Debian packages; reused when nothing changed.
	ramdisk/build.sh

run: build ## Run `bareflow dev` (embedded Temporal + Web UI, API, worker, boot) on the local PostgreSQL.
	scripts/ensure-postgres.sh --create-db '$(RUN_DB_NAME)'
	mkdir -p '$(BAREFLOW_DATA_DIR)'
	BAREFLOW_DATA_DIR='$(BAREFLOW_DATA_DIR)' BAREFLOW_DATABASE_URL='$(BAREFLOW_DATABASE_URL)' \
		$(BIN) dev $(RUN_FLAGS)

# Packages that link the embedded Temporal server run without -race: a race
# build of the server alone takes longer than the rest of the suite, and their
# tests drive bareflow as a separate process, whose packages the race-enabled
# tests already cover.
SERVER_PKGS := ./cmd/bareflow ./internal/devserver

test: lint ## Lint, then run every test (-race except the embedded-server packages) against the local PostgreSQL.
	scripts/ensure-postgres.sh
	BAREFLOW_REQUIRE_INTEGRATION='$(BAREFLOW_REQUIRE_INTEGRATION)' \
		$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) \
		$$($(GO) list $(PKGS) | grep -v -e '/cmd/bareflow$$' -e '/internal/devserver$$')
	BAREFLOW_REQUIRE_INTEGRATION='$(BAREFLOW_REQUIRE_INTEGRATION)' \
		$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(SERVER_PKGS)

# `make e2e`: where its artefacts go (serial logs, operation histories,
# timings), and its bound.
E2E_ARTIFACTS ?= $(CURDIR)/artifacts/e2e
E2E_TIMEOUT ?= 45m

e2e: ramdisk ## End to end (root): a rack of three QEMU machines from power-on to installed, reinstalled, wiped, through crashes; artefacts in artifacts/e2e.
	scripts/ensure-postgres.sh
	BAREFLOW_REQUIRE_INTEGRATION=1 BAREFLOW_E2E_ARTIFACTS='$(E2E_ARTIFACTS)' \
		$(GO) test -tags e2e -run '^TestE2E' -parallel 4 -count=1 -v -timeout $(E2E_TIMEOUT) ./cmd/bareflow

lint: fmt-check vet workflowcheck check-imports ## gofmt, go vet, workflowcheck and the workflows import check.

fmt-check: ## Fail when a Go file is not gofmt-formatted.
	@files="$$(find . -path ./.git -prune -o -path '*/testdata' -prune -o -name '*.go' -type f -print | sort)"; \
	unformatted="$$(gofmt -l $$files)"; \
	if [ -n "$$unformatted" ]; then \
		echo 'gofmt: these files need `gofmt -w`:'; echo "$$unformatted" | sed 's/^/  /'; exit 1; \
	fi; \
	echo 'gofmt: ok'

vet: ## go vet every package (and the end-to-end test, built with -tags e2e).
	$(GO) vet $(PKGS)
	$(GO) vet -tags e2e ./cmd/bareflow

workflowcheck: ## Check workflow code for non-determinism (pinned go tool).
	$(GO) tool workflowcheck ./workflows/...

check-imports: ## Fail when ./workflows/... can reach database, SSH, IPMI, HTTP or exec packages.
	scripts/check-imports.sh

bench: ## Run the benchmarks (no tests) with allocation counts.
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

bench-boot: build ## Boot service vs kea/dnsmasq, tftpd-hpa, nginx (root; results in build/bench/, see docs/benchmarks.md).
	scripts/ensure-postgres.sh
	bench/boot/run.sh

bench-images: ## Image writer vs download+qemu-img, curl|zstd|dd, local qemu-img (root; results in build/bench/images/).
	bench/images/run.sh

fuzz: ## Run each Fuzz* target for FUZZTIME (default 10s).
	FUZZTIME='$(FUZZTIME)' scripts/fuzz.sh $(PKGS)

image: ## Build the container image bareflow:$(VERSION) (needs Docker).
	docker build --build-arg VERSION='$(VERSION)' -t 'bareflow:$(VERSION)' .

clean: ## Remove bin/ and build/ (the Go build cache is left alone).
	rm -rf bin build
