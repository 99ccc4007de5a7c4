package container

import (
	"cmp"
	"slices"
)

// HandlerInfo is one runtime handler as the CRI Status reports it.
type HandlerInfo struct {
	Name string
	// RecursiveReadOnly: recursive read-only mounts can be made.
	RecursiveReadOnly bool
}

// RuntimeHandlers lists the usable runtime handlers by name; the default
// one is also listed as "", the handler of pods that name none (CRI-O
// reports it the same way, and critest looks it up so).
func (s *Service) RuntimeHandlers() []HandlerInfo {
	out := make([]HandlerInfo, 0, len(s.opts.Handlers)+1)
	for name, h := range s.opts.Handlers {
		out = append(out, HandlerInfo{Name: name, RecursiveReadOnly: h.RecursiveReadOnly})
		if name == s.opts.DefaultHandler {
			out = append(out, HandlerInfo{Name: "", RecursiveReadOnly: h.RecursiveReadOnly})
		}
	}
	slices.SortFunc(out, func(a, b HandlerInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
