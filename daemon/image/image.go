package image

import (
	"slices"
	"strconv"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

// Image is what the CRI reports about a stored image.
type Image struct {
	ID          string
	RepoTags    []string // "registry/repo:tag"
	RepoDigests []string // "registry/repo@sha256:..."
	Size        uint64   // bytes of all layers (uncompressed) and metadata
	// UID is set when the image's configured user is numeric; Username when
	// it is a name. Only one is set; an image without a user runs as uid 0.
	UID      *int64
	Username string
	Pinned   bool
	// Info is the verbose status ("info": JSON with config and layers); only
	// filled when asked for.
	Info map[string]string
}

// namesOf splits a stored image's names into tags and digests. Repo
// digests are the names pulled by digest; a repository pulled only by tag
// gets one digest entry, repo@<manifest digest>, so the kubelet can always
// refer to the exact content.
func namesOf(img *storage.Image) (tags, digests []string) {
	var repos []string
	digested := map[string]bool{}
	for _, n := range img.Names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue // not a reference (a name set by another tool)
		}
		if !slices.Contains(repos, named.Name()) {
			repos = append(repos, named.Name())
		}
		if _, ok := named.(reference.Digested); ok {
			digests = appendUnique(digests, named.String())
			digested[named.Name()] = true
		} else if _, ok := named.(reference.Tagged); ok {
			tags = appendUnique(tags, named.String())
		}
	}
	if img.Digest != "" {
		for _, repo := range repos {
			if !digested[repo] {
				digests = appendUnique(digests, repo+"@"+img.Digest.String())
			}
		}
	}
	return tags, digests
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// parseUser reads an image config's User ("uid", "name", "uid:gid",
// "name:group") the way the kubelet wants it: a numeric user as UID, a
// name as Username; the group is not reported.
func parseUser(user string) (uid *int64, username string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return ptr(int64(0)), ""
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &n, ""
	}
	return nil, u
}
