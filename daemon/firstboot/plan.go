package firstboot

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	igntypes "github.com/coreos/ignition/v2/config/v3_6_experimental/types"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/nodecheck"
)

// Owner is a node's owner as the config gives it: by id, by name, or
// neither (root).
type Owner struct {
	UID      *int
	User     string
	GID      *int
	Group    string
	JSONPath string
}

// Node is one file, directory or link to write.
type Node struct {
	JSONPath  string
	Path      string // absolute node path, cleaned
	Kind      fs.FileMode
	Mode      fs.FileMode
	Data      []byte // files
	Target    string // links
	Hard      bool   // links
	Overwrite bool
	Owner     Owner
}

// Unit is a systemd unit: its contents, drop-ins and state.
type Unit struct {
	JSONPath string
	Name     string
	Contents *string
	Dropins  []Dropin
	Enabled  *bool
	Mask     bool
}

// Dropin is one unit drop-in.
type Dropin struct {
	Name     string
	Contents string
}

// Plan is everything a config writes, validated and decoded, in the
// order it is applied.
type Plan struct {
	Groups []igntypes.PasswdGroup
	Users  []igntypes.PasswdUser
	Nodes  []Node // directories, then files, then links
	Units  []Unit
	// Ignition is the parsed config the plan came from, for the node
	// checks.
	Ignition *nodecheck.Ignition
}

// UnitDir is where units and their drop-ins are written, as Ignition
// writes them.
const UnitDir = "/etc/systemd/system"

// unitSearch are the directories where an enabled unit without contents
// must already exist.
var unitSearch = []string{UnitDir, "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// NewPlan turns a parsed config into a plan, checking everything that can
// be checked before a byte is written: sections crio firstboot cannot
// apply, content hashes, owners, existing nodes, units. root is the
// node's root directory.
func NewPlan(ign *nodecheck.Ignition, root string) (*Plan, config.Errors, []string) {
	cfg := ign.Config
	errs, warns := unsupported(cfg)
	p := &Plan{Ignition: ign, Groups: cfg.Passwd.Groups, Users: cfg.Passwd.Users}
	for i, u := range cfg.Passwd.Users {
		if u.ShouldExist != nil && !*u.ShouldExist {
			errs = append(errs, diag(fmt.Sprintf("$.passwd.users.%d.shouldExist", i), "deleting users is not supported"))
		}
	}
	for i, g := range cfg.Passwd.Groups {
		if g.ShouldExist != nil && !*g.ShouldExist {
			errs = append(errs, diag(fmt.Sprintf("$.passwd.groups.%d.shouldExist", i), "deleting groups is not supported"))
		}
	}
	ids, err := readIDs(root)
	if err != nil {
		errs = append(errs, diag("$.passwd", err.Error()))
	}
	for _, u := range cfg.Passwd.Users {
		ids.users[u.Name] = -1 // created, id known once it exists
		if u.NoUserGroup == nil || !*u.NoUserGroup {
			ids.groups[u.Name] = -1
		}
	}
	for _, g := range cfg.Passwd.Groups {
		ids.groups[g.Name] = -1
	}
	for i, u := range cfg.Passwd.Users {
		jp := fmt.Sprintf("$.passwd.users.%d", i)
		if u.PrimaryGroup != nil {
			if _, ok := ids.groups[*u.PrimaryGroup]; !ok {
				errs = append(errs, diag(jp+".primaryGroup", fmt.Sprintf("group %q neither exists on the node nor is created by the config", *u.PrimaryGroup)))
			}
		}
		for j, g := range u.Groups {
			if _, ok := ids.groups[string(g)]; !ok {
				errs = append(errs, diag(fmt.Sprintf("%s.groups.%d", jp, j), fmt.Sprintf("group %q neither exists on the node nor is created by the config", g)))
			}
		}
	}

	decoded := map[string][]byte{}
	for _, f := range ign.Files {
		decoded[f.JSONPath] = f.Data
	}
	owner := func(jp string, n igntypes.Node) Owner {
		o := Owner{JSONPath: jp, UID: n.User.ID, GID: n.Group.ID}
		if n.User.Name != nil {
			o.User = *n.User.Name
			if _, ok := ids.users[o.User]; !ok {
				errs = append(errs, diag(jp+".user.name", fmt.Sprintf("user %q neither exists on the node nor is created by the config", o.User)))
			}
		}
		if n.Group.Name != nil {
			o.Group = *n.Group.Name
			if _, ok := ids.groups[o.Group]; !ok {
				errs = append(errs, diag(jp+".group.name", fmt.Sprintf("group %q neither exists on the node nor is created by the config", o.Group)))
			}
		}
		return o
	}
	for i, d := range cfg.Storage.Directories {
		jp := fmt.Sprintf("$.storage.directories.%d", i)
		n := Node{JSONPath: jp, Path: filepath.Clean(d.Path), Kind: fs.ModeDir, Mode: 0o755, Overwrite: isTrue(d.Overwrite), Owner: owner(jp, d.Node)}
		if d.Mode != nil {
			n.Mode = fileMode(*d.Mode)
		}
		if st, err := os.Lstat(filepath.Join(root, n.Path)); err == nil && !st.IsDir() && !n.Overwrite {
			errs = append(errs, diag(jp+".overwrite", fmt.Sprintf("%s exists on the node and is not a directory; set overwrite to replace it", n.Path)))
		}
		p.Nodes = append(p.Nodes, n)
	}
	for i, f := range cfg.Storage.Files {
		jp := fmt.Sprintf("$.storage.files.%d", i)
		data, ok := decoded[jp]
		if !ok {
			continue // nodecheck reported why it could not decode it
		}
		if err := verify(f.Contents.Verification, data); err != nil {
			errs = append(errs, diag(jp+".contents.verification.hash", err.Error()))
		}
		n := Node{JSONPath: jp, Path: filepath.Clean(f.Path), Mode: 0o644, Data: data, Overwrite: isTrue(f.Overwrite), Owner: owner(jp, f.Node)}
		if f.Mode != nil {
			n.Mode = fileMode(*f.Mode)
		}
		// Existing files that differ without overwrite are the node
		// checks' to report (nodecheck.NewOverlay), as Ignition would.
		p.Nodes = append(p.Nodes, n)
	}
	for i, l := range cfg.Storage.Links {
		jp := fmt.Sprintf("$.storage.links.%d", i)
		if l.Target == nil {
			errs = append(errs, diag(jp+".target", "a link needs a target"))
			continue
		}
		n := Node{JSONPath: jp, Path: filepath.Clean(l.Path), Kind: fs.ModeSymlink, Target: *l.Target, Hard: isTrue(l.Hard), Overwrite: isTrue(l.Overwrite), Owner: owner(jp, l.Node)}
		if n.Hard && !filepath.IsAbs(n.Target) {
			errs = append(errs, diag(jp+".target", "a hard link's target must be absolute"))
		}
		if cur, err := os.Readlink(filepath.Join(root, n.Path)); err == nil && !n.Hard && cur == n.Target {
			// already in place: a re-run after an interrupted apply
		} else if _, err := os.Lstat(filepath.Join(root, n.Path)); err == nil && !n.Overwrite {
			errs = append(errs, diag(jp+".overwrite", fmt.Sprintf("%s exists on the node; set overwrite to replace it", n.Path)))
		}
		p.Nodes = append(p.Nodes, n)
	}
	for i, u := range cfg.Systemd.Units {
		jp := fmt.Sprintf("$.systemd.units.%d", i)
		unit := Unit{JSONPath: jp, Name: u.Name, Contents: u.Contents, Enabled: u.Enabled, Mask: isTrue(u.Mask)}
		for _, d := range u.Dropins {
			c := ""
			if d.Contents != nil {
				c = *d.Contents
			}
			unit.Dropins = append(unit.Dropins, Dropin{Name: d.Name, Contents: c})
		}
		if unit.Enabled != nil && *unit.Enabled && unit.Contents == nil && !unitExists(root, u.Name) {
			errs = append(errs, diag(jp+".enabled", fmt.Sprintf("%s is enabled but has no contents and is not installed on the node", u.Name)))
		}
		if strings.Contains(u.Name, "@.") && unit.Enabled != nil && *unit.Enabled {
			errs = append(errs, diag(jp+".name", fmt.Sprintf("%s is a template: enable an instance (name@instance.%s)", u.Name, strings.TrimPrefix(filepath.Ext(u.Name), "."))))
		}
		p.Units = append(p.Units, unit)
	}
	return p, errs, warns
}

func diag(jsonPath, msg string) config.Diagnostic {
	return config.Diagnostic{File: jsonPath, Msg: msg}
}

func isTrue(b *bool) bool { return b != nil && *b }

// fileMode keeps the permission and the setuid, setgid and sticky bits
// of an Ignition mode (an octal number in JSON's decimal).
func fileMode(m int) fs.FileMode {
	mode := fs.FileMode(m) & fs.ModePerm
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// verify checks contents against a verification hash
// ("sha512-<hex>" or "sha256-<hex>"), computed as Ignition does, on the
// decompressed bytes.
func verify(v igntypes.Verification, data []byte) error {
	if v.Hash == nil || *v.Hash == "" {
		return nil
	}
	fn, sum, ok := strings.Cut(*v.Hash, "-")
	if !ok {
		return fmt.Errorf("%q is not <function>-<hex digest>", *v.Hash)
	}
	var h hash.Hash
	switch fn {
	case "sha512":
		h = sha512.New()
	case "sha256":
		h = sha256.New()
	default:
		return fmt.Errorf("hash function %q: sha512 or sha256", fn)
	}
	want, err := hex.DecodeString(sum)
	if err != nil {
		return fmt.Errorf("digest %q: %v", sum, err)
	}
	h.Write(data)
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("the contents hash to %s-%x, not %s", fn, got, *v.Hash)
	}
	return nil
}

func unitExists(root, name string) bool {
	for _, d := range unitSearch {
		if _, err := os.Stat(filepath.Join(root, d, name)); err == nil {
			return true
		}
	}
	return false
}

// ids are the node's user and group names with their ids (-1: created by
// the config, id not known yet).
type ids struct {
	users, groups map[string]int
}

// readIDs reads root's /etc/passwd and /etc/group. Missing files are
// empty tables: a root without them can still take files owned by ids.
func readIDs(root string) (ids, error) {
	t := ids{users: map[string]int{}, groups: map[string]int{}}
	var errs []error
	for _, f := range []struct {
		path string
		into map[string]int
	}{{"/etc/passwd", t.users}, {"/etc/group", t.groups}} {
		raw, err := os.ReadFile(filepath.Join(root, f.path))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			fields := strings.Split(line, ":")
			if len(fields) < 3 || fields[0] == "" {
				continue
			}
			var id int
			if _, err := fmt.Sscanf(fields[2], "%d", &id); err == nil {
				f.into[fields[0]] = id
			}
		}
	}
	return t, errors.Join(errs...)
}
