# crio: build, test and run. `make` builds bin/crio; `make run` sets up this
# machine and starts the daemon; `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := bin/crio

include build.mk
GO       ?= go
# VERSION and COMMIT depend only on the commit, so two clones of the same
# commit build byte-identical binaries. A working tree with changes to
# tracked files says so with "-dirty".
VERSION  ?= $(shell cat VERSION 2>/dev/null || git describe --tags --abbrev=12 --always 2>/dev/null || echo unknown)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
LDFLAGS  := $(LDFLAGS_BASE) \
	-X $(MODULE)/daemon/version.Version=$(VERSION) \
	-X $(MODULE)/daemon/version.GitCommit=$(COMMIT) \
	-X $(MODULE)/daemon/version.BuildTags=$(TAGS)
GOBUILD  := CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -tags $(TAGS) -ldflags "$(LDFLAGS)"
# Packages for unit tests: everything but the end-to-end tests under tests/.
UNIT_PKGS = $(shell $(GO) list -tags $(TAGS) ./... | grep -v '^$(MODULE)/tests/')

.PHONY: bin/crio bin/crio-arm64 all run deps test lint test-race test-unit test-integration test-build test-critest docs clean FORCE

# Always handed to go build: its cache decides what is stale.
bin/crio:
	$(GOBUILD) -o $@ $(PACKAGE)

bin/crio-arm64:
	GOARCH=arm64 $(GOBUILD) -o $@ $(PACKAGE)

# bin/crio-linux-amd64, bin/crio-linux-arm64: what the packages carry.
bin/crio-linux-%: FORCE
	GOOS=linux GOARCH=$* $(GOBUILD) -o $@ $(PACKAGE)

FORCE:

all: bin/crio bin/crio-arm64

# Runtime packages (runc, conmon, CNI plugins, ...), installed only when missing.
deps:
	hack/install-deps.sh

# Build, install what is missing, start the daemon in the foreground on the
# default configuration (/etc/crio as it is).
run: bin/crio deps
	exec bin/crio

test: lint test-unit test-race test-integration test-build test-critest test-packages test-nix test-bundle test-image

# The docs tests render the man pages and check the completion scripts.
# crc64iso's assembly must run: natively (amd64), and its arm64 version
# under qemu.
test-unit:
	hack/install-deps.sh groff-base man-db zsh fish qemu-user-static
	CRC64ISO_MUST_FOLD=1 CGO_ENABLED=0 $(GO) test -tags $(TAGS) -count=1 $(UNIT_PKGS)
	CRC64ISO_MUST_FOLD=1 CGO_ENABLED=0 GOARCH=arm64 $(GO) test -exec qemu-aarch64-static -count=1 ./daemon/image/stagedest/crc64iso

# staticcheck at a pinned version, built from the Go module proxy into
# .tools/ the first time lint runs (the version is in the file name, so a
# bump rebuilds it).
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CURDIR)/.tools/staticcheck-$(STATICCHECK_VERSION)
$(STATICCHECK):
	GOBIN=$(CURDIR)/.tools/build CGO_ENABLED=0 $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CURDIR)/.tools/build/staticcheck $@

# Static checks over every package: go vet, staticcheck (unused code,
# simplifications, misuse; deliberate exceptions carry a //lint:ignore
# that says why) and gofmt (lists the files it would change and fails).
lint: $(STATICCHECK)
	$(GO) vet -tags $(TAGS) ./...
	CGO_ENABLED=0 $(STATICCHECK) -tags $(TAGS) ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

# The unit tests again under the race detector. -race needs cgo, so this
# test build links with gcc; the shipped binary (bin/crio) stays static.
test-race:
	hack/install-deps.sh gcc libc6-dev groff-base man-db zsh fish
	CGO_ENABLED=1 $(GO) test -race -tags $(TAGS) -count=1 $(UNIT_PKGS)

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
	rm -rf bin build bundle

# ---------------------------------------------------------------------------
# Installation (GNU directory variables; DESTDIR for staging).
#
# The defaults install under /usr/local for a build from source on Debian;
# the packages set the distribution's paths (see `packages` below).
PREFIX         ?= /usr/local
prefix         ?= $(PREFIX)
exec_prefix    ?= $(prefix)
bindir         ?= $(exec_prefix)/bin
sysconfdir     ?= /etc
datarootdir    ?= $(prefix)/share
mandir         ?= $(datarootdir)/man
docdir         ?= $(datarootdir)/doc/crio
systemdunitdir ?= $(prefix)/lib/systemd/system
bashcompdir    ?= $(datarootdir)/bash-completion/completions
zshcompdir     ?= $(datarootdir)/zsh/vendor-completions
fishcompdir    ?= $(datarootdir)/fish/vendor_completions.d
# Where the unit reads CRIO_*_OPTIONS: /etc/default/crio on Debian,
# /etc/sysconfig/crio on RPM distributions.
ENVFILE        ?= $(sysconfdir)/default/crio
# Where the target distribution installs crio's helpers; they go into the
# packaged drop-in 10-crio.conf.
RUNC           ?= /usr/bin/runc
CONMON         ?= /usr/bin/conmon
CNI_PLUGIN_DIR ?= /usr/lib/cni
# The binary to install (bin/crio-arm64 for an arm64 package).
CRIO_BIN       ?= bin/crio
INSTALL        ?= install
GEN            := build/gen
GENDOCS        ?= $(GO) run -tags $(TAGS) ./hack/gendocs

SUBST = sed -e 's|@BINDIR@|$(bindir)|g' -e 's|@ENVFILE@|$(ENVFILE)|g' \
	-e 's|@SYSCONFDIR@|$(sysconfdir)|g' -e 's|@RUNC@|$(RUNC)|g' \
	-e 's|@CONMON@|$(CONMON)|g' -e 's|@CNI_PLUGIN_DIR@|$(CNI_PLUGIN_DIR)|g'

.PHONY: install uninstall gen-docs packages test-packages

# Man pages and completions, generated from the schema and the CLI's own
# definitions (never by running the target binary, so cross builds work).
gen-docs:
	rm -rf $(GEN) && mkdir -p $(GEN)
	$(GENDOCS) -man $(GEN)/man
	$(GENDOCS) -completions $(GEN)/completions

install: gen-docs
	@[[ -x $(CRIO_BIN) ]] || $(MAKE) $(CRIO_BIN)
	$(INSTALL) -d -m 0755 $(DESTDIR)$(bindir) $(DESTDIR)$(systemdunitdir) \
		$(DESTDIR)$(sysconfdir)/crio/crio.conf.d $(DESTDIR)$(sysconfdir)/containers/registries.conf.d \
		$(DESTDIR)$(sysconfdir)/cni/net.d $(DESTDIR)$(dir $(ENVFILE)) $(DESTDIR)$(datarootdir)/crio \
		$(DESTDIR)$(mandir)/man5 $(DESTDIR)$(mandir)/man8 \
		$(DESTDIR)$(bashcompdir) $(DESTDIR)$(zshcompdir) $(DESTDIR)$(fishcompdir)
	$(INSTALL) -m 0755 $(CRIO_BIN) $(DESTDIR)$(bindir)/crio
	$(SUBST) systemd/crio.service.in >$(GEN)/crio.service
	$(INSTALL) -m 0644 $(GEN)/crio.service $(DESTDIR)$(systemdunitdir)/crio.service
	$(SUBST) systemd/crio-firstboot.service.in >$(GEN)/crio-firstboot.service
	$(INSTALL) -m 0644 $(GEN)/crio-firstboot.service $(DESTDIR)$(systemdunitdir)/crio-firstboot.service
	$(SUBST) packaging/10-crio.conf.in >$(GEN)/10-crio.conf
	$(INSTALL) -m 0644 $(GEN)/10-crio.conf $(DESTDIR)$(sysconfdir)/crio/crio.conf.d/10-crio.conf
	$(INSTALL) -m 0644 packaging/crio.env $(DESTDIR)$(ENVFILE)
	$(INSTALL) -m 0644 policy/policy.json $(DESTDIR)$(sysconfdir)/crio/policy.json
	$(INSTALL) -m 0644 policy/registries.conf.d/10-crio.conf $(DESTDIR)$(sysconfdir)/containers/registries.conf.d/10-crio.conf
	$(INSTALL) -m 0644 policy/seccomp.json $(DESTDIR)$(datarootdir)/crio/seccomp.json
	$(INSTALL) -m 0644 packaging/crictl.yaml $(DESTDIR)$(sysconfdir)/crictl.yaml
	$(INSTALL) -m 0644 packaging/11-crio-ipv4-bridge.conflist.disabled $(DESTDIR)$(sysconfdir)/cni/net.d/
	gzip -n -9 -c $(GEN)/man/man5/crio.conf.5 >$(DESTDIR)$(mandir)/man5/crio.conf.5.gz
	gzip -n -9 -c $(GEN)/man/man8/crio.8 >$(DESTDIR)$(mandir)/man8/crio.8.gz
	chmod 0644 $(DESTDIR)$(mandir)/man5/crio.conf.5.gz $(DESTDIR)$(mandir)/man8/crio.8.gz
	$(INSTALL) -m 0644 $(GEN)/completions/crio $(DESTDIR)$(bashcompdir)/crio
	$(INSTALL) -m 0644 $(GEN)/completions/_crio $(DESTDIR)$(zshcompdir)/_crio
	$(INSTALL) -m 0644 $(GEN)/completions/crio.fish $(DESTDIR)$(fishcompdir)/crio.fish

# Removes what install put there. Configuration files an operator may have
# edited go too, as with any uninstall from source; packages keep them.
uninstall:
	rm -f $(DESTDIR)$(bindir)/crio $(DESTDIR)$(systemdunitdir)/crio.service \
		$(DESTDIR)$(systemdunitdir)/crio-firstboot.service \
		$(DESTDIR)$(sysconfdir)/crio/crio.conf.d/10-crio.conf $(DESTDIR)$(ENVFILE) \
		$(DESTDIR)$(sysconfdir)/crio/policy.json $(DESTDIR)$(sysconfdir)/containers/registries.conf.d/10-crio.conf \
		$(DESTDIR)$(datarootdir)/crio/seccomp.json $(DESTDIR)$(sysconfdir)/crictl.yaml \
		$(DESTDIR)$(sysconfdir)/cni/net.d/11-crio-ipv4-bridge.conflist.disabled \
		$(DESTDIR)$(mandir)/man5/crio.conf.5.gz $(DESTDIR)$(mandir)/man8/crio.8.gz \
		$(DESTDIR)$(bashcompdir)/crio $(DESTDIR)$(zshcompdir)/_crio $(DESTDIR)$(fishcompdir)/crio.fish
	-rmdir $(DESTDIR)$(datarootdir)/crio $(DESTDIR)$(sysconfdir)/crio/crio.conf.d $(DESTDIR)$(sysconfdir)/crio 2>/dev/null

# ---------------------------------------------------------------------------
# Nix. nix/hermetic.nix builds crio in nix's sandbox from build/nix/src: the
# tracked files plus their vendored modules. bin/crio-vendor-linux-<arch> is
# the same build (vendor mode, same flags from build.mk) outside nix, which
# tests/nix/run.sh compares byte for byte.
NIX_SRC := build/nix/src

.PHONY: nix-src nix-vendor-hash test-nix
nix-src:
	rm -rf $(NIX_SRC) && mkdir -p $(NIX_SRC)
	git ls-files -z | xargs -0 cp --parents -t $(NIX_SRC) --
	$(GO) mod vendor -o $(NIX_SRC)/vendor

bin/crio-vendor-linux-%: nix-src
	cd $(NIX_SRC) && GOFLAGS=-mod=vendor GOOS=linux GOARCH=$* $(GOBUILD) -mod=vendor -o $(CURDIR)/$@ $(PACKAGE)

# nix/vendor-hash, the vendorHash of nix/default.nix: run after go.mod changes.
nix-vendor-hash: nix-src
	NIX_CONFIG='experimental-features = nix-command' nix hash path $(NIX_SRC)/vendor >nix/vendor-hash

test-nix:
	hack/install-deps.sh nix-bin busybox-static qemu-user-static
	tests/nix/run.sh

# crio_<version>_{amd64,arm64}.deb and crio-<version>.{x86_64,aarch64}.rpm
# in build/packages (packaging/build.sh; ARCHES to narrow).
packages:
	packaging/build.sh $(ARCHES)

# Lint, install, boot, upgrade and purge the packages in Debian roots.
PKG_TEST_DEPS := debootstrap systemd-container lintian rpmlint rpm cpio apt-utils file qemu-user-static

test-packages:
	hack/install-deps.sh $(PKG_TEST_DEPS)
	$(MAKE) --no-print-directory packages
	tests/packaging/run.sh

# ---------------------------------------------------------------------------
# Node image (image-build/): a UEFI-bootable GPT disk image with a read-only
# squashfs root, crio from the amd64 .deb, and preloaded images (IMAGES,
# default the busybox test image, copied from the local test registry).
# Output: build/image/crio-node-amd64.img. The base root (kernel, initrd,
# runtime packages) is cached in /var/cache/crio-tests.
.PHONY: image test-image
IMAGE_DEPS := debootstrap squashfs-tools dosfstools mtools fdisk skopeo
IMAGE_TEST_DEPS := qemu-system-x86 ovmf

image:
	hack/install-deps.sh $(IMAGE_DEPS)
	packaging/build.sh amd64
	image-build/build.sh

# The arm64 node root file system (no kernel: it cannot be boot-tested
# here): build/image/crio-node-arm64.rootfs.tar.gz, built and checked with
# qemu-aarch64-static through binfmt_misc.
.PHONY: rootfs-arm64
ROOTFS_ARM64_DEPS := debootstrap qemu-user-static binutils

rootfs-arm64:
	hack/install-deps.sh $(ROOTFS_ARM64_DEPS)
	packaging/build.sh arm64
	image-build/rootfs-arm64.sh

# Boot it in QEMU (TCG, OVMF, read-only disk, no network) with an Ignition
# config: a pod runs from a preloaded image; a bad config keeps crio down;
# the same on the hybrid cgroup layout. Then the arm64 root file system.
test-image: image rootfs-arm64
	hack/install-deps.sh $(IMAGE_TEST_DEPS)
	tests/image/run.sh
	tests/image/rootfs-arm64.sh

# ---------------------------------------------------------------------------
# Release bundle (packaging/bundle/): bundle/crio.<arch>.<version>.tar.gz
# and .sha256 for amd64 and arm64 (BUNDLE_ARCHES to narrow), carrying static
# crio, runc (with seccomp), CNI plugins and crictl; conmon is a host
# requirement. Versions pinned in packaging/bundle/versions.env. runc needs
# cgo with libseccomp.a of each architecture, hence the cross toolchain.
.PHONY: release-bundle test-bundle
BUNDLE_ARCHES ?= amd64 arm64
BUNDLE_DEPS := gcc libc6-dev libseccomp-dev pkg-config jq binutils file \
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross libseccomp-dev:arm64

release-bundle:
	hack/install-deps.sh $(BUNDLE_DEPS)
	packaging/bundle/build.sh $(BUNDLE_ARCHES)

# amd64: install into a scratch DESTDIR, run a pod on it, uninstall;
# arm64: every binary under qemu-aarch64-static; and a second build from a
# clone at another path gives the same tarballs.
test-bundle:
	hack/install-deps.sh $(BUNDLE_DEPS) qemu-user-static iproute2
	tests/bundle/run.sh
