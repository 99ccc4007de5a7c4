# Build settings of the crio binary: read by the Makefile (include) and by
# the nix expressions (nix/flags.nix parses the "NAME := value" and
# "NAME ?= value" lines), so that make and nix cannot drift apart.
MODULE := github.com/crio-appliance/crio
# containers_image_openpgp: signature checks in Go instead of gpgme (cgo);
# exclude_graphdriver_btrfs: the btrfs driver needs cgo and its headers.
TAGS ?= containers_image_openpgp,exclude_graphdriver_btrfs
# Reproducible: no build paths, no VCS stamp, no build id.
BUILD_FLAGS := -trimpath -buildvcs=false
LDFLAGS_BASE := -buildid= -s -w
PACKAGE := ./daemon/cmd/crio
