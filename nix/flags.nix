# The build settings of ../build.mk, which the Makefile includes: parsed
# here so that nix builds crio with the same tags and flags as make.
let
  text = builtins.readFile ../build.mk;
  lines = builtins.filter builtins.isString (builtins.split "\n" text);
  assignment = line: builtins.match "([A-Z_]+)[[:space:]]*[:?]=[[:space:]]*(.*[^[:space:]])[[:space:]]*" line;
  pairs = builtins.filter (m: m != null) (map assignment lines);
  mk = builtins.listToAttrs (map (m: { name = builtins.elemAt m 0; value = builtins.elemAt m 1; }) pairs);
  words = s: builtins.filter (w: builtins.isString w && w != "") (builtins.split "[[:space:]]+" s);
  trim = s: builtins.head (builtins.match "[[:space:]]*([^[:space:]]*)[[:space:]]*" s);
in
mk // rec {
  # The crio version, as the Makefile reads it.
  version = trim (builtins.readFile ../VERSION);
  tags = builtins.filter (t: builtins.isString t && t != "") (builtins.split "," mk.TAGS);
  buildFlags = words mk.BUILD_FLAGS;
  # -ldflags as the Makefile writes them, for a given commit.
  ldflags = commit:
    words mk.LDFLAGS_BASE ++ [
      "-X" "${mk.MODULE}/daemon/version.Version=${version}"
      "-X" "${mk.MODULE}/daemon/version.GitCommit=${commit}"
      "-X" "${mk.MODULE}/daemon/version.BuildTags=${mk.TAGS}"
    ];
  package = mk.PACKAGE;
}
