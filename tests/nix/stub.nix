# A stand-in for the few nixpkgs attributes nix/default.nix uses (there is no
# nixpkgs on the test machines). buildGoModule returns its arguments, so the
# test can read the wiring back; `goarch` marks which package set built it.
let
  mkPkgs = goarch: {
    inherit goarch;
    go = { version = "1.26.8"; };
    buildGoModule = args: args // { builtBy = "buildGoModule"; inherit goarch; };
    lib = {
      cleanSourceWith = { src, filter }: { cleaned = toString src; };
      fileContents = f: builtins.head (builtins.match "[[:space:]]*([^[:space:]]*)[[:space:]]*" (builtins.readFile f));
      removePrefix = p: s:
        if builtins.substring 0 (builtins.stringLength p) s == p
        then builtins.substring (builtins.stringLength p) (builtins.stringLength s) s
        else s;
      versionAtLeast = a: b: builtins.compareVersions a b >= 0;
      assertMsg = ok: msg: if ok then true else throw msg;
      licenses.asl20 = "Apache-2.0";
      platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
    };
  };
in
mkPkgs "amd64" // {
  pkgsCross.aarch64-multiplatform = mkPkgs "arm64";
}
