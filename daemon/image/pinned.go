package image

import "strings"

// pinMatcher implements CRI-O's pinned_images patterns: "name" matches
// exactly, "prefix*" matches names starting with prefix, "*word*" matches
// names containing word. Names are compared as stored (fully qualified).
type pinMatcher struct {
	exact    map[string]bool
	prefixes []string
	keywords []string
}

func newPinMatcher(patterns []string) *pinMatcher {
	m := &pinMatcher{exact: map[string]bool{}}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
		case len(p) > 2 && strings.HasPrefix(p, "*") && strings.HasSuffix(p, "*"):
			m.keywords = append(m.keywords, p[1:len(p)-1])
		case strings.HasSuffix(p, "*"):
			m.prefixes = append(m.prefixes, strings.TrimSuffix(p, "*"))
		default:
			m.exact[p] = true
			// A pattern written as a short or untagged name still pins
			// the image it denotes ("registry.k8s.io/pause" means :latest).
			if n := normalizeName(p); n != "" {
				m.exact[n] = true
			}
		}
	}
	return m
}

// pinned reports whether any of an image's names matches.
func (m *pinMatcher) pinned(names []string) bool {
	for _, n := range names {
		if m.exact[n] {
			return true
		}
		for _, p := range m.prefixes {
			if strings.HasPrefix(n, p) {
				return true
			}
		}
		for _, k := range m.keywords {
			if strings.Contains(n, k) {
				return true
			}
		}
	}
	return false
}
