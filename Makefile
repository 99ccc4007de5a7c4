# crio: build, test and run. `make` builds bin/crio; `make run` sets up this
# machine and starts the daemon; `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := bin/crio

MODULE   := github.com/crio-appliance/crio
GO       ?= go
TAGS     ?= containers_image_openpgp,exclude_graphdriver_btrfs
# VERSION and COMMIT depend only on the commit, so two clones of the same
# commit build byte-identical binaries. A working tree with changes to
# tracked files says so with "-dirty".
VERSION  ?= $(shell cat VERSION 2>/dev/null || git describe --tags --abbrev=12 --always 2>/dev/null || echo unknown)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
LDFLAGS  := -buildid= -s -w \
	-X $(MODULE)/daemon/version.Version=$(VERSION) \
	-X $(MODULE)/daemon/version.GitCommit=$(COMMIT) \
	-X $(MODULE)/daemon/version.BuildTags=$(TAGS)
GOBUILD  := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -tags $(TAGS) -ldflags "$(LDFLAGS)"
# Packages for unit tests: everything but the end-to-end tests under tests/.
UNIT_PKGS = $(shell $(GO) list -tags $(TAGS) ./... | grep -v '^$(MODULE)/tests/')

.PHONY: bin/crio bin/crio-arm64 all run deps test test-unit test-integration test-build test-critest docs clean

# Always handed to go build: its cache decides what is stale.
bin/crio:
	$(GOBUILD) -o $@ ./daemon/cmd/crio

bin/crio-arm64:
	GOARCH=arm64 $(GOBUILD) -o $@ ./daemon/cmd/crio

all: bin/crio bin/crio-arm64

# Runtime packages (runc, conmon, CNI plugins, ...), installed only when missing.
deps:
	hack/install-deps.sh

# Build, install what is missing, start the daemon in the foreground on the
# default configuration (/etc/crio as it is).
run: bin/crio deps
	exec bin/crio

test: test-unit test-integration test-build test-critest

test-unit:
	CGO_ENABLED=0 $(GO) test -tags $(TAGS) -count=1 $(UNIT_PKGS)

test-integration: bin/crio deps
	@if [ -z "$$($(GO) list ./tests/... 2>/dev/null | grep -v '/tests/build$$')" ]; then \
		echo "no integration test packages yet"; \
	else \
		CRIO_BINARY=$(CURDIR)/bin/crio CGO_ENABLED=0 $(GO) test -tags $(TAGS) -count=1 -timeout 30m ./tests/...; \
	fi

test-build:
	hack/install-deps.sh file git
	tests/build/reproducible.sh

test-critest: bin/crio deps
	tests/critest/run.sh

# Regenerate the configuration key table in README.md from schema/crio.cue.
docs:
	$(GO) run ./hack/gendocs -w README.md

clean:
	rm -rf bin
