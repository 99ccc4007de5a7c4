package image

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/types"
)

// idPattern matches a full image ID; idPrefixPattern an abbreviated one.
var (
	idPattern       = regexp.MustCompile(`^[a-f0-9]{64}$`)
	idPrefixPattern = regexp.MustCompile(`^[a-f0-9]{3,64}$`)
)

// trimInput drops what the CRI may carry around a name: spaces and an
// explicit docker:// transport.
func trimInput(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimPrefix(s, "docker://")
}

// asImageID returns the ID when s is a full image ID, optionally written
// "sha256:<id>" as the kubelet does with image refs.
func asImageID(s string) (string, bool) {
	s = strings.TrimPrefix(s, "sha256:")
	return s, idPattern.MatchString(s)
}

// pullCandidates are the fully qualified references a pull of name tries,
// in order. A short name expands through registries.conf (aliases, then
// unqualified-search registries); under enforcing mode an expansion to more
// than one registry is refused because the first registry that happens to
// answer could serve a different image.
func pullCandidates(sys *types.SystemContext, name, mode string) ([]reference.Named, error) {
	if name == "" {
		return nil, newError(ErrInvalidReference, nil, "no image name given")
	}
	if _, ok := asImageID(name); ok {
		return nil, newError(ErrInvalidReference, nil,
			fmt.Sprintf("%q is an image ID; an ID can only refer to an image already present, pull by name", name))
	}
	resolved, err := shortnames.Resolve(sys, name)
	if err != nil {
		if _, perr := reference.Parse(name); perr != nil {
			return nil, newError(ErrInvalidReference, perr,
				fmt.Sprintf("%q is not a valid image reference (want [registry/]repository[:tag|@digest])", name))
		}
		return nil, newError(ErrInvalidReference, err,
			fmt.Sprintf("cannot resolve short name %q; use a fully qualified name such as docker.io/library/%s", name, name))
	}
	out := make([]reference.Named, 0, len(resolved.PullCandidates))
	for _, c := range resolved.PullCandidates {
		out = append(out, c.Value)
	}
	if mode == ShortNameEnforcing && len(out) > 1 && shortnames.IsShortName(name) {
		list := make([]string, len(out))
		for i, c := range out {
			list[i] = c.String()
		}
		return nil, newError(ErrInvalidReference, nil, fmt.Sprintf(
			"short name %q is ambiguous under short_name_mode=\"enforcing\": it could mean any of [%s]; "+
				"use a fully qualified image name, or add a short-name alias in registries.conf",
			name, strings.Join(list, ", ")))
	}
	return out, nil
}

// localCandidates are the names under which a local image called name may
// be stored: the name itself when fully qualified, else its short-name
// expansions (alias, localhost/, unqualified-search registries) and last
// the Docker Hub reading ("busybox" = docker.io/library/busybox), which is
// what clients other than the containers tools assume.
func localCandidates(sys *types.SystemContext, name string) ([]reference.Named, error) {
	named, err := shortnames.ResolveLocally(sys, name)
	if err != nil {
		return nil, newError(ErrInvalidReference, err,
			fmt.Sprintf("%q is not a valid image name or ID", name))
	}
	if shortnames.IsShortName(name) {
		if hub, err := reference.ParseNormalizedNamed(name); err == nil {
			hub = reference.TagNameOnly(hub)
			if !slices.ContainsFunc(named, func(n reference.Named) bool { return n.String() == hub.String() }) {
				named = append(named, hub)
			}
		}
	}
	return named, nil
}

// repoOf strips tag and digest from a stored name; "" if unparsable.
func repoOf(name string) string {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ""
	}
	return n.Name()
}

// normalizeName returns the fully qualified, tagged form of name
// ("busybox" -> "docker.io/library/busybox:latest"), or "" if unparsable.
func normalizeName(name string) string {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ""
	}
	return reference.TagNameOnly(n).String()
}
