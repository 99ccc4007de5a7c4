# nix build -f nix/default-arm64.nix: the static arm64 crio, cross-built
# from any host with nixpkgs' aarch64 cross package set (Go cross-compiles
# by GOARCH; nothing is built with a C compiler).
{ nixpkgs ? import ./nixpkgs.nix { }
, commit ? "unknown"
}:
import ./default.nix {
  pkgs = nixpkgs.pkgsCross.aarch64-multiplatform;
  inherit commit;
}
