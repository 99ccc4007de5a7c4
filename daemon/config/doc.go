package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"cuelang.org/go/cue"
)

// The merge works on plain documents: nested map[string]any decoded from
// JSON, with numbers as int64.

// toMap turns the Go defaults into a document.
func toMap(c *Config) (map[string]any, error) {
	b, err := json.Marshal(struct {
		Crio *Config `json:"crio"`
	}{c})
	if err != nil {
		return nil, fmt.Errorf("encoding defaults: %w", err)
	}
	return decodeDoc(b)
}

// plain turns a CUE value built from one TOML file into a document.
func plain(v cue.Value) (map[string]any, error) {
	b, err := v.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	return decodeDoc(b)
}

func decodeDoc(b []byte) (map[string]any, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytesReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	return normalise(raw).(map[string]any), nil
}

func normalise(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalise(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = normalise(x)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

func getPath(doc map[string]any, p []string) any {
	var cur any = doc
	for _, k := range p {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func setPath(doc map[string]any, p []string, v any) {
	m := doc
	for _, k := range p[:len(p)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[p[len(p)-1]] = v
}

func deletePath(doc map[string]any, p []string) {
	if parent, ok := getPath(doc, p[:len(p)-1]).(map[string]any); ok {
		delete(parent, p[len(p)-1])
	}
}

func bytesReader(b []byte) *strings.Reader { return strings.NewReader(string(b)) }
