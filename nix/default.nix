# nix build -f nix   (or: nix-build nix)
#
# A static crio for the host's architecture with nixpkgs' buildGoModule:
# CGO_ENABLED=0, and the tags, flags and ldflags of ../build.mk (through
# flags.nix), the same as `make`. nix/default-arm64.nix cross-builds the
# arm64 binary from any host. vendor-hash is the hash of `go mod vendor`'s
# output (tests/nix/run.sh checks it against go.sum's modules).
{ pkgs ? import ./nixpkgs.nix { }
, commit ? "unknown"
}:
let
  flags = import ./flags.nix;
  lib = pkgs.lib;
  # go.mod asks for Go 1.26; take nixpkgs' builder for it when it has one.
  buildGoModule = pkgs.buildGo126Module or pkgs.buildGoModule;
  go = pkgs.go_1_26 or pkgs.go;
in
assert lib.assertMsg (lib.versionAtLeast go.version "1.26")
  "nixpkgs pinned in nix/nixpkgs.json has Go ${go.version}; crio needs 1.26: run hack/update-nixpkgs.sh";
buildGoModule {
  pname = "crio";
  inherit (flags) version;
  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: _: !(builtins.elem (baseNameOf path) [ ".git" "bin" "build" "result" ]);
  };
  vendorHash = lib.fileContents ./vendor-hash;
  subPackages = [ (lib.removePrefix "./" flags.package) ];
  tags = flags.tags;
  ldflags = flags.ldflags commit;
  env = {
    CGO_ENABLED = "0";
    # buildGoModule adds -mod=vendor and -trimpath itself; these make the
    # rest of build.mk's flags explicit.
    GOFLAGS = builtins.concatStringsSep " " flags.buildFlags;
  };
  # The tests need root, runc and a registry: they run in `make test`.
  doCheck = false;
  meta = {
    description = "Kubernetes container runtime compatible with CRI-O";
    license = lib.licenses.asl20;
    mainProgram = "crio";
    platforms = lib.platforms.linux;
  };
}
