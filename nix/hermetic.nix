# nix/hermetic.nix: crio built in nix's sandbox with no nixpkgs and no
# network. Everything the build reads is imported into the store first:
#   - the Go toolchain (a directory such as /usr/local/go: Go is static, so
#     it runs in the sandbox as it is);
#   - a static busybox (Debian's busybox-static), the only shell and
#     coreutils the build needs;
#   - the source tree with its vendored modules (`make nix-src` lays it
#     out: the tracked files plus `go mod vendor`).
# The flags come from ../build.mk through flags.nix, as the Makefile's do;
# `make bin/crio-vendor-linux-<arch>` builds the same tree outside nix, and
# tests/nix/run.sh checks that both give the same bytes.
#
#   nix-build nix/hermetic.nix --argstr arch arm64 --argstr commit "$(git rev-parse HEAD)"
{ arch ? "amd64"
, commit ? "unknown"
, src ? ../build/nix/src
, goroot ? /usr/local/go
, busybox ? /usr/bin/busybox
}:
let
  flags = import ./flags.nix;
  go = builtins.path { path = goroot; name = "go-toolchain"; };
  # busybox picks its applet from argv[0], which must then be named
  # busybox: import the file inside a directory of its own.
  bbdir = builtins.path {
    path = dirOf busybox;
    name = "busybox-static";
    filter = p: _: p == toString busybox;
  };
  sh = "${bbdir}/busybox";
  source = builtins.path { path = src; name = "crio-source"; };
  quote = s: "'" + s + "'";
  ldflags = builtins.concatStringsSep " " (flags.ldflags commit);
in
assert builtins.elem arch [ "amd64" "arm64" ];
derivation {
  name = "crio-${flags.version}-linux-${arch}";
  system = builtins.currentSystem;
  builder = sh;
  args = [
    "sh"
    "-euc"
    ''
      bb=${sh}
      $bb mkdir -p "$TMPDIR/src" "$out/bin"
      $bb cp -r ${source}/. "$TMPDIR/src/"
      cd "$TMPDIR/src"
      export HOME="$TMPDIR" GOCACHE="$TMPDIR/cache" GOPATH="$TMPDIR/gopath"
      export GOROOT=${go} GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=vendor
      export CGO_ENABLED=0 GOOS=linux GOARCH=${arch}
      ${go}/bin/go build -mod=vendor ${builtins.concatStringsSep " " flags.buildFlags} \
        -tags ${quote flags.TAGS} -ldflags ${quote ldflags} \
        -o "$out/bin/crio" ${flags.package}
    ''
  ];
}
