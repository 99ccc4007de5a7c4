package config

import (
	"fmt"
	"sort"
	"strings"
)

// Diagnostic is one configuration problem, located compiler style.
type Diagnostic struct {
	File string // file path, or "flag --name" for a command-line flag
	Line int    // 1-based; 0 when unknown
	Key  string // dotted key path, "" when the problem is not about one key
	Msg  string
}

func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d", d.Line)
	}
	if d.Key != "" {
		b.WriteString(": ")
		b.WriteString(d.Key)
	}
	b.WriteString(": ")
	b.WriteString(d.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, so a user can fix them
// all in one pass.
type Errors []Diagnostic

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, d := range e {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// sorted orders diagnostics by the order files were read, then line.
func (e Errors) sorted(fileOrder []string) Errors {
	rank := map[string]int{}
	for i, f := range fileOrder {
		rank[f] = i
	}
	out := append(Errors(nil), e...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, iok := rank[out[i].File]
		rj, jok := rank[out[j].File]
		if iok != jok {
			return iok // files before flags
		}
		if ri != rj {
			return ri < rj
		}
		return out[i].Line < out[j].Line
	})
	return out
}

// suggest returns the candidate closest to word when it is close enough to
// be a likely typo, or "".
func suggest(word string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(word, c)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := len(word) / 3
	if limit < 2 {
		limit = 2
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
