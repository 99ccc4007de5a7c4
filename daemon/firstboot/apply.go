package firstboot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
)

// Applied lists what a plan wrote, for the record.
type Applied struct {
	Paths []string `json:"paths"`
	Units []string `json:"units,omitempty"`
	Users []string `json:"users,omitempty"`
}

// Apply writes the plan under root: groups and users first (files may be
// owned by them), then directories, files and links, then units. Every
// file is written to a temporary name beside its target and renamed, so
// a crash leaves each file either old or new, never torn. Paths are
// resolved inside root: a symlink on the node cannot send a write out.
func (p *Plan) Apply(root string) (*Applied, error) {
	a := &Applied{}
	for i, g := range p.Groups {
		if err := applyGroup(root, g.Name, g.Gid, isTrue(g.System), g.PasswordHash); err != nil {
			return a, fmt.Errorf("$.passwd.groups.%d: %w", i, err)
		}
	}
	for i, u := range p.Users {
		if err := applyUser(root, u); err != nil {
			return a, fmt.Errorf("$.passwd.users.%d: %w", i, err)
		}
		a.Users = append(a.Users, u.Name)
	}
	ids, err := readIDs(root)
	if err != nil {
		return a, err
	}
	for _, n := range p.Nodes {
		uid, gid, err := n.Owner.resolve(ids)
		if err != nil {
			return a, fmt.Errorf("%s: %w", n.JSONPath, err)
		}
		switch n.Kind {
		case fs.ModeDir:
			err = writeDir(root, n.Path, n.Mode, uid, gid)
		case fs.ModeSymlink:
			err = writeLink(root, n, uid, gid)
		default:
			err = WriteFile(root, n.Path, n.Data, n.Mode, uid, gid)
		}
		if err != nil {
			return a, fmt.Errorf("%s: %w", n.JSONPath, err)
		}
		a.Paths = append(a.Paths, n.Path)
	}
	for _, u := range p.Units {
		if err := applyUnit(root, u); err != nil {
			return a, fmt.Errorf("%s: %w", u.JSONPath, err)
		}
		a.Units = append(a.Units, u.Name)
	}
	return a, nil
}

// resolve turns the owner into ids, names looked up in the node's tables
// (after the config's users and groups exist). No owner is root.
func (o Owner) resolve(t ids) (uid, gid int, err error) {
	if o.UID != nil {
		uid = *o.UID
	} else if o.User != "" {
		id, ok := t.users[o.User]
		if !ok || id < 0 {
			return 0, 0, fmt.Errorf("user %q not found", o.User)
		}
		uid = id
	}
	if o.GID != nil {
		gid = *o.GID
	} else if o.Group != "" {
		id, ok := t.groups[o.Group]
		if !ok || id < 0 {
			return 0, 0, fmt.Errorf("group %q not found", o.Group)
		}
		gid = id
	}
	return uid, gid, nil
}

// parentIn creates the parent directories of p inside root (0755, as
// Ignition does) and returns the parent's real path.
func parentIn(root, p string) (string, error) {
	dir := filepath.Dir(p)
	if err := pathrs.MkdirAll(root, dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	return securejoin.SecureJoin(root, dir)
}

// WriteFile writes data to the node path p under root atomically: a
// temporary file in the same directory, owned and moded before it is
// renamed over p, and synced with its directory.
func WriteFile(root, p string, data []byte, mode fs.FileMode, uid, gid int) error {
	dir, err := parentIn(root, p)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".crio-firstboot-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	// chown before chmod: chown clears the setuid and setgid bits.
	if err := tmp.Chown(uid, gid); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, filepath.Base(p))); err != nil {
		return err
	}
	done = true
	return syncDir(dir)
}

func writeDir(root, p string, mode fs.FileMode, uid, gid int) error {
	parent, err := parentIn(root, p)
	if err != nil {
		return err
	}
	target := filepath.Join(parent, filepath.Base(p))
	if st, err := os.Lstat(target); err == nil && !st.IsDir() {
		// NewPlan refused this without overwrite.
		if err := os.Remove(target); err != nil {
			return err
		}
	}
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Lchown(target, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(target, mode); err != nil {
		return err
	}
	return syncDir(parent)
}

func writeLink(root string, n Node, uid, gid int) error {
	parent, err := parentIn(root, n.Path)
	if err != nil {
		return err
	}
	target := filepath.Join(parent, filepath.Base(n.Path))
	tmp := filepath.Join(parent, ".crio-firstboot-link-"+filepath.Base(n.Path))
	os.Remove(tmp)
	if n.Hard {
		src, err := securejoin.SecureJoin(root, n.Target)
		if err != nil {
			return err
		}
		if err := os.Link(src, tmp); err != nil {
			return err
		}
	} else {
		if err := os.Symlink(n.Target, tmp); err != nil {
			return err
		}
		if err := os.Lchown(tmp, uid, gid); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// applyUnit writes a unit's contents and drop-ins under UnitDir, then
// sets its state with systemctl --root, which edits the symlinks exactly
// as systemd would, without talking to a running manager.
func applyUnit(root string, u Unit) error {
	if u.Contents != nil {
		if err := WriteFile(root, filepath.Join(UnitDir, u.Name), []byte(*u.Contents), 0o644, 0, 0); err != nil {
			return err
		}
	}
	for _, d := range u.Dropins {
		if err := WriteFile(root, filepath.Join(UnitDir, u.Name+".d", d.Name), []byte(d.Contents), 0o644, 0, 0); err != nil {
			return err
		}
	}
	switch {
	case u.Mask:
		return systemctl(root, "mask", u.Name)
	case u.Enabled != nil && *u.Enabled:
		return systemctl(root, "enable", u.Name)
	case u.Enabled != nil:
		return systemctl(root, "disable", u.Name)
	}
	return nil
}

func systemctl(root string, args ...string) error {
	return run("systemctl", append([]string{"--root=" + root, "--quiet"}, args...)...)
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// applyGroup creates a group, or sets the gid of an existing one.
func applyGroup(root, name string, gid *int, system bool, hash *string) error {
	t, err := readIDs(root)
	if err != nil {
		return err
	}
	args := []string{"--root", root}
	cur, exists := t.groups[name]
	if exists {
		if gid == nil || *gid == cur {
			return nil
		}
		return run("groupmod", append(args, "--gid", strconv.Itoa(*gid), name)...)
	}
	if gid != nil {
		args = append(args, "--gid", strconv.Itoa(*gid))
	}
	if system {
		args = append(args, "--system")
	}
	if hash != nil {
		args = append(args, "--password", *hash)
	}
	return run("groupadd", append(args, name)...)
}
