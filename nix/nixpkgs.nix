# The nixpkgs that nix/default.nix builds with, pinned by revision and hash
# in nixpkgs.json. Move the pin with hack/update-nixpkgs.sh REV.
let
  pin = builtins.fromJSON (builtins.readFile ./nixpkgs.json);
in
import (builtins.fetchTarball {
  url = "${pin.url}/archive/${pin.rev}.tar.gz";
  sha256 = pin.sha256;
})
