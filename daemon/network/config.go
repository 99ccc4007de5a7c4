package network

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// confExtensions are the file names libcni and CRI-O read from network_dir.
var confExtensions = []string{".conflist", ".conf", ".json"}

// maxConfSize bounds one file: network configs are a few hundred bytes, and a
// huge file in network_dir should not make every readiness query expensive.
const maxConfSize = 1 << 20

// fingerprint identifies the state of network_dir cheaply (names, sizes,
// modification times), so that an unchanged directory is not re-parsed.
type fingerprint string

func dirFingerprint(dir string) (fingerprint, []string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read network_dir %s: %w", dir, err)
	}
	var b strings.Builder
	var files []string
	for _, e := range entries {
		if e.IsDir() || !slices.Contains(confExtensions, filepath.Ext(e.Name())) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed between ReadDir and Info: the next query sees it gone
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", e.Name(), info.Size(), info.ModTime().UnixNano())
		files = append(files, filepath.Join(dir, e.Name()))
	}
	slices.Sort(files) // os.ReadDir sorts already; make the lexical order explicit
	return fingerprint(b.String()), files, nil
}

// loadFile parses one config file into a list. Single-plugin .conf/.json
// files are upgraded to a one-element list, as CRI-O does.
func loadFile(path string) (*libcni.NetworkConfigList, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Size() > maxConfSize {
		return nil, fmt.Errorf("%s: %d bytes, larger than %d", path, info.Size(), maxConfSize)
	}
	if filepath.Ext(path) == ".conflist" {
		list, err := libcni.NetworkConfFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return list, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	//lint:ignore SA1019 the single-plugin format is deprecated, still in use.
	list, err := libcni.ConfListFromConf(conf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}

// loaded is one successfully chosen network.
type loaded struct {
	list   *libcni.NetworkConfigList
	file   string
	loaded time.Time
}

// choose picks the network from files (already in lexical order): the one
// named want, or the first valid one when want is empty. Every plugin the
// list names must exist in pluginDirs; otherwise pods would fail at attach
// time while Status claimed the network ready.
func choose(files []string, want string, findPlugin func(string) error) (*loaded, []error) {
	var problems []error
	for _, f := range files {
		list, err := loadFile(f)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if want != "" && list.Name != want {
			continue
		}
		if err := checkList(list, findPlugin); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", f, err))
			continue
		}
		return &loaded{list: list, file: f, loaded: time.Now()}, problems
	}
	return nil, problems
}

func checkList(list *libcni.NetworkConfigList, findPlugin func(string) error) error {
	if list.Name == "" {
		return errors.New("network has no name")
	}
	if len(list.Plugins) == 0 {
		return errors.New("network has no plugins")
	}
	for _, p := range list.Plugins {
		if p.Network == nil || p.Network.Type == "" {
			return errors.New("plugin without a type")
		}
		if err := findPlugin(p.Network.Type); err != nil {
			return fmt.Errorf("plugin %q: %w", p.Network.Type, err)
		}
	}
	return nil
}
