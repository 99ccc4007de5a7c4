#!/usr/bin/env bash
# packaging/bundle/manifest.sh TREE ARCH VERSION COMMIT: writes TREE/versions
# (every component's version and source) and TREE/sbom.spdx.json (SPDX 2.3:
# every component with the Go modules it was built from). The module lists
# come from the binaries themselves (`go version -m`), not from what we
# believe we built. Deterministic: no times but SOURCE_DATE_EPOCH, sorted.
set -euo pipefail

tree=$1 arch=$2 version=$3 commit=$4
GO=${GO:-go}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"
created=$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%dT%H:%M:%SZ)
seccomp=$(dpkg-query -W -f='${Version}' "libseccomp-dev:$arch" 2>/dev/null || echo unknown)
gover=$("$GO" version -m "$tree/bin/crio" | sed -n '1s/^[^:]*: //p')

{
    echo "# Components of crio.$arch.$version and where each comes from."
    echo "crio         $version    github.com/crio-appliance/crio commit $commit"
    echo "runc         $RUNC_VERSION    $RUNC_MODULE (Go module), static, seccomp: libseccomp $seccomp (Debian libseccomp-dev:$arch, libseccomp.a)"
    echo "cni-plugins  $CNI_PLUGINS_VERSION    $CNI_PLUGINS_MODULE (Go module): $(for p in $CNI_PLUGINS; do printf '%s ' "${p#*/}"; done | sed 's/ $//')"
    echo "crictl       $CRI_TOOLS_VERSION    $CRI_TOOLS_MODULE (Go module)"
    echo "go           $gover    the toolchain every binary above was built with"
    echo "conmon       not included    host requirement (>= $CONMON_MIN_VERSION): Debian/Ubuntu apt-get install conmon, Fedora/RHEL dnf install conmon"
} >"$tree/versions"

# modules BINARY...: "path<TAB>version" of the main module and every
# dependency (a replaced one under its replacement), sorted, unique.
modules() {
    local b
    for b in "$@"; do
        "$GO" version -m "$b" | awk -F'\t' '
            $2 == "mod" || $2 == "dep" { path = $3; ver = $4; if (prev != "") print prev; prev = path "\t" ver }
            $2 == "=>" { prev = $3 "\t" $4 }
            END { if (prev != "") print prev }'
    done | LC_ALL=C sort -u
}

# One SPDX package per component, one per Go module (shared by the
# components that use it), and the relationships between them.
cni_bins=()
for p in $CNI_PLUGINS; do cni_bins+=("$tree/cni-plugins/${p#*/}"); done
{
    printf 'component\tcrio\t%s\thttps://github.com/crio-appliance/crio\tbin/crio\n' "$version"
    printf 'component\trunc\t%s\thttps://%s\tlibexec/crio/runc\n' "$RUNC_VERSION" "$RUNC_MODULE"
    printf 'component\tcni-plugins\t%s\thttps://%s\tcni-plugins/\n' "$CNI_PLUGINS_VERSION" "$CNI_PLUGINS_MODULE"
    printf 'component\tcrictl\t%s\thttps://%s\tbin/crictl\n' "$CRI_TOOLS_VERSION" "$CRI_TOOLS_MODULE"
    printf 'clib\trunc\tlibseccomp\t%s\n' "$seccomp"
    modules "$tree/bin/crio" | sed 's/^/mod\tcrio\t/'
    modules "$tree/libexec/crio/runc" | sed 's/^/mod\trunc\t/'
    modules "${cni_bins[@]}" | sed 's/^/mod\tcni-plugins\t/'
    modules "$tree/bin/crictl" | sed 's/^/mod\tcrictl\t/'
} | jq -R -s --arg name "crio.$arch.$version" --arg created "$created" --arg commit "$commit" \
    --arg go "${gover#go}" '
    def id: gsub("[^A-Za-z0-9.-]"; "-");
    [split("\n")[] | select(length > 0) | split("\t")] as $rows
    | ($rows | map(select(.[0] == "component"))) as $comps
    | ($rows | map(select(.[0] == "mod"))) as $mods
    | {
        spdxVersion: "SPDX-2.3",
        dataLicense: "CC0-1.0",
        SPDXID: "SPDXRef-DOCUMENT",
        name: $name,
        documentNamespace: ("https://github.com/crio-appliance/crio/spdx/" + $name + "-" + $commit),
        creationInfo: { created: $created, creators: ["Tool: crio-packaging-bundle-manifest.sh"] },
        packages: (
          [ $comps[] | {
              name: .[1], SPDXID: ("SPDXRef-component-" + (.[1] | id)), versionInfo: .[2],
              downloadLocation: .[3], filesAnalyzed: false, licenseConcluded: "NOASSERTION",
              licenseDeclared: "NOASSERTION", copyrightText: "NOASSERTION",
              comment: ("In the bundle at " + .[4]) } ]
          + [ { name: "go", SPDXID: "SPDXRef-golang-toolchain", versionInfo: $go,
                downloadLocation: "https://go.dev/dl/", filesAnalyzed: false,
                licenseConcluded: "NOASSERTION", licenseDeclared: "NOASSERTION", copyrightText: "NOASSERTION",
                externalRefs: [ { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
                                  referenceLocator: ("pkg:golang/stdlib@go" + $go) } ] } ]
          + [ $rows[] | select(.[0] == "clib") | {
                name: .[2], SPDXID: ("SPDXRef-clib-" + (.[2] | id)), versionInfo: .[3],
                downloadLocation: "https://github.com/seccomp/libseccomp", filesAnalyzed: false,
                licenseConcluded: "NOASSERTION", licenseDeclared: "LGPL-2.1-only", copyrightText: "NOASSERTION",
                comment: "Linked statically into runc from Debian libseccomp-dev",
                externalRefs: [ { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
                                  referenceLocator: ("pkg:deb/debian/libseccomp-dev@" + .[3]) } ] } ]
          + [ $mods | map({p: .[2], v: .[3]}) | unique[] | {
                name: .p, SPDXID: ("SPDXRef-gomod-" + (.p | id) + "-" + (.v | id)), versionInfo: .v,
                downloadLocation: ("https://proxy.golang.org/" + .p + "/@v/" + .v + ".zip"),
                filesAnalyzed: false, licenseConcluded: "NOASSERTION", licenseDeclared: "NOASSERTION",
                copyrightText: "NOASSERTION",
                externalRefs: [ { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
                                  referenceLocator: ("pkg:golang/" + .p + "@" + .v) } ] } ]
        ),
        relationships: (
          [ $comps[] | { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES",
                         relatedSpdxElement: ("SPDXRef-component-" + (.[1] | id)) } ]
          + [ $comps[] | { spdxElementId: ("SPDXRef-component-" + (.[1] | id)), relationshipType: "DEPENDS_ON",
                           relatedSpdxElement: "SPDXRef-golang-toolchain" } ]
          + [ $rows[] | select(.[0] == "clib") | { spdxElementId: ("SPDXRef-component-" + (.[1] | id)),
                relationshipType: "STATIC_LINK", relatedSpdxElement: ("SPDXRef-clib-" + (.[2] | id)) } ]
          + [ $mods | unique[] | { spdxElementId: ("SPDXRef-component-" + (.[1] | id)),
                relationshipType: "DEPENDS_ON",
                relatedSpdxElement: ("SPDXRef-gomod-" + (.[2] | id) + "-" + (.[3] | id)) } ]
        )
      }' >"$tree/sbom.spdx.json"
