package config

import "strings"

// merge lays src over dst by CRI-O's rules: tables merge key by key, the
// last writer wins, arrays are replaced whole except storage_option, which
// concatenates, and a runtime handler table that is declared again replaces
// the earlier one entirely. file is recorded as the origin of what it sets.
func (l *loader) merge(dst, src map[string]any, path []string, file string) {
	for k, v := range src {
		p := append(append([]string(nil), path...), k)
		key := strings.Join(p, ".")
		switch {
		case isHandler(p):
			// Replace the handler: drop the origins of the old one.
			for o := range l.origin {
				if strings.HasPrefix(o, key+".") && !strings.HasPrefix(l.origin[o], file+":") {
					delete(l.origin, o)
				}
			}
			dst[k] = v
		case key == "crio.storage_option":
			old, _ := dst[k].([]any)
			add, _ := v.([]any)
			dst[k] = append(append([]any(nil), old...), add...)
		default:
			sub, isTable := v.(map[string]any)
			cur, curIsTable := dst[k].(map[string]any)
			if isTable && curIsTable {
				l.merge(cur, sub, p, file)
				continue
			}
			dst[k] = v
		}
	}
}
