package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/logging"
)

// logLevelKey is the only key a reload applies today.
const logLevelKey = "crio.runtime.log_level"

// Reload re-reads the configuration from the original sources and applies
// what can change at run time: log_level. Other changed keys are logged as
// needing a restart and are not shown by /config until then. On error the
// running configuration stays as it was. registries.conf and its drop-ins
// are re-read by the next pulls either way, as CRI-O does on SIGHUP: they
// are separate files, and a typo in crio.conf should not pin old mirrors.
func (d *Daemon) Reload() error {
	if d.services.Reload != nil {
		d.services.Reload()
		d.log.Info("registries configuration reloaded: the next pulls read registries.conf and its drop-ins again")
	}
	next, err := d.opts.Load(d.opts.Sources)
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", "error", err)
		return fmt.Errorf("reload configuration: %w", err)
	}
	for _, w := range next.Warnings {
		d.log.Warn(w)
	}
	newLevel, err := logging.ParseLevel(next.Config.Runtime.LogLevel)
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", "error", err)
		return fmt.Errorf("reload configuration: %s: %w", logLevelKey, err)
	}

	d.mu.Lock()
	cur := d.current
	d.current = withLogLevel(cur, next)
	d.mu.Unlock()

	if oldName, newName := cur.Config.Runtime.LogLevel, next.Config.Runtime.LogLevel; oldName != newName {
		msg := fmt.Sprintf("log_level changed from %s to %s", oldName, newName)
		// Log at info under whichever of the two levels shows it, so the
		// change is visible unless both levels hide info.
		if d.opts.Level.Level() <= slog.LevelInfo {
			d.log.Info(msg)
			d.opts.Level.Set(newLevel)
		} else {
			d.opts.Level.Set(newLevel)
			d.log.Info(msg)
		}
	}
	if keys := changedKeys(cur.Config, next.Config); len(keys) > 0 {
		d.log.Warn("configuration changed on disk but is not applied until restart", "keys", keys)
	}
	d.log.Info("configuration reloaded", "files", next.Files)
	return nil
}

// withLogLevel is cur with next's log_level (and its origin).
func withLogLevel(cur, next *config.Result) *config.Result {
	cfg := *cur.Config
	cfg.Runtime.LogLevel = next.Config.Runtime.LogLevel
	r := *cur
	r.Config = &cfg
	r.Origin = maps.Clone(cur.Origin)
	if r.Origin == nil {
		r.Origin = map[string]string{}
	}
	if o, ok := next.Origin[logLevelKey]; ok {
		r.Origin[logLevelKey] = o
	} else {
		delete(r.Origin, logLevelKey)
	}
	return &r
}

// changedKeys lists the dotted keys, other than log_level, whose values
// differ between a and b.
func changedKeys(a, b *config.Config) []string {
	fa, fb := flatten(a), flatten(b)
	var keys []string
	for k, va := range fa {
		if vb, ok := fb[k]; !ok || !reflect.DeepEqual(va, vb) {
			keys = append(keys, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			keys = append(keys, k)
		}
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == logLevelKey })
	slices.Sort(keys)
	return keys
}

// flatten turns cfg into dotted key paths ("crio.api.listen") to leaf values
// through its JSON form, whose names are the TOML keys.
func flatten(cfg *config.Config) map[string]any {
	out := map[string]any{}
	b, err := json.Marshal(cfg)
	if err != nil {
		return out
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, sub := range m {
				walk(prefix+"."+k, sub)
			}
			return
		}
		out[prefix] = v
	}
	walk("crio", doc)
	return out
}
