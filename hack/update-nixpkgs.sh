#!/usr/bin/env bash
# update-nixpkgs.sh REV: pin nix/default.nix's nixpkgs to revision REV of
# github.com/NixOS/nixpkgs (needs network; nix-prefetch-url comes with nix).
set -euo pipefail
rev=${1:?usage: hack/update-nixpkgs.sh NIXPKGS_REVISION}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
url=https://github.com/NixOS/nixpkgs
sha256=$(nix-prefetch-url --unpack "$url/archive/$rev.tar.gz")
printf '{\n  "url": "%s",\n  "rev": "%s",\n  "sha256": "%s"\n}\n' "$url" "$rev" "$sha256" >nix/nixpkgs.json
echo "nix/nixpkgs.json: $rev $sha256"
