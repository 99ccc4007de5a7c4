package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// identity is who the container's first process runs as.
type identity struct {
	uid, gid int64
	groups   []int64 // supplementary groups, the primary first
	home     string  // from /etc/passwd; "" when the user has no entry
}

// maxIDFile bounds /etc/passwd and /etc/group reads.
const maxIDFile = 4 << 20

// maxID is the largest valid uid/gid; (uid_t)-1 means "no change".
const maxID = math.MaxUint32 - 1

// resolveUser applies, in order: run_as_user or run_as_username, else the
// image's USER ("name", "uid", "name:group", "uid:gid"), else root; then
// run_as_group replaces the primary group. Names are looked up in the
// container's own /etc/passwd and /etc/group, opened inside the rootfs so
// that a symlink in the image cannot point the lookup at the host's.
//
// Supplementary groups start with the primary group; under the Merge
// policy (the default) the groups /etc/group gives the user follow; the
// CRI's supplemental_groups come last. Strict leaves out /etc/group.
func resolveUser(in *Input, sc *runtimeapi.LinuxContainerSecurityContext) (*identity, error) {
	const field = "config.linux.security_context"
	db := &userDB{rootfs: in.Rootfs}
	id := &identity{}
	var name string
	gidSet := false
	switch {
	case sc.GetRunAsUser() != nil:
		uid := sc.GetRunAsUser().GetValue()
		if uid < 0 || uid > maxID {
			return nil, errdefs.Invalid(field+".run_as_user", "%d is not a valid uid", uid)
		}
		id.uid = uid
	case sc.GetRunAsUsername() != "":
		n := sc.GetRunAsUsername()
		if err := checkLine(n, field+".run_as_username", maxNameLen); err != nil {
			return nil, err
		}
		u, err := db.userByName(n)
		if err != nil {
			return nil, err
		}
		if u == nil {
			return nil, errdefs.Invalid(field+".run_as_username", "user %q is not in the image's /etc/passwd", errdefs.Clip(n))
		}
		id.uid, id.gid, gidSet, name, id.home = int64(u.Uid), int64(u.Gid), true, u.Name, u.Home
	default:
		var spec string
		if in.Image != nil {
			spec = in.Image.User
		}
		if err := imageUser(db, spec, id, &name, &gidSet); err != nil {
			return nil, err
		}
	}
	if name == "" || !gidSet {
		// A numeric user: its passwd entry, if any, gives the name (for
		// group membership), home and default primary group.
		u, err := db.userByID(id.uid)
		if err != nil {
			return nil, err
		}
		if u != nil {
			name, id.home = u.Name, u.Home
			if !gidSet {
				id.gid = int64(u.Gid)
			}
		}
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
			return nil, errdefs.Invalid(field+".run_as_group", "needs run_as_user or run_as_username")
		}
		if g.GetValue() < 0 || g.GetValue() > maxID {
			return nil, errdefs.Invalid(field+".run_as_group", "%d is not a valid gid", g.GetValue())
		}
		id.gid = g.GetValue()
	}
	id.groups = []int64{id.gid}
	if sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Merge && name != "" {
		gids, err := db.groupsOf(name)
		if err != nil {
			return nil, err
		}
		id.groups = append(id.groups, gids...)
	} else if p := sc.GetSupplementalGroupsPolicy(); p != runtimeapi.SupplementalGroupsPolicy_Merge && p != runtimeapi.SupplementalGroupsPolicy_Strict {
		return nil, errdefs.Invalid(field+".supplemental_groups_policy", "unknown policy %d", p)
	}
	extra := sc.GetSupplementalGroups()
	if len(extra) > maxGroups {
		return nil, errdefs.Invalid(field+".supplemental_groups", "more than %d groups", maxGroups)
	}
	for i, g := range extra {
		if g < 0 || g > maxID {
			return nil, errdefs.Invalid(fmt.Sprintf("%s.supplemental_groups[%d]", field, i), "%d is not a valid gid", g)
		}
		id.groups = append(id.groups, g)
	}
	id.groups = dedupe(id.groups)
	if len(id.groups) > 65536 {
		return nil, errdefs.Invalid(field+".supplemental_groups", "more groups than the kernel allows")
	}
	return id, nil
}

// imageUser reads the image's USER.
func imageUser(db *userDB, spec string, id *identity, name *string, gidSet *bool) error {
	if strings.ContainsAny(spec, "\x00\n\r") || len(spec) > maxNameLen*2 {
		return errdefs.Invalid("image User", "%q is not a user", errdefs.Clip(spec))
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	switch {
	case u == "":
		id.uid = 0
	case isNumeric(u):
		n, err := strconv.ParseInt(u, 10, 64)
		if err != nil || n < 0 || n > maxID {
			return errdefs.Invalid("image User", "%q is not a valid uid", u)
		}
		id.uid = n
	default:
		e, err := db.userByName(u)
		if err != nil {
			return err
		}
		if e == nil {
			return errdefs.Invalid("image User", "the image runs as user %q, which is not in its /etc/passwd", errdefs.Clip(u))
		}
		id.uid, id.gid, *gidSet, *name, id.home = int64(e.Uid), int64(e.Gid), true, e.Name, e.Home
	}
	if !hasGroup || g == "" {
		return nil
	}
	if isNumeric(g) {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil || n < 0 || n > maxID {
			return errdefs.Invalid("image User", "%q is not a valid gid", g)
		}
		id.gid, *gidSet = n, true
		return nil
	}
	grp, err := db.groupByName(g)
	if err != nil {
		return err
	}
	if grp == nil {
		return errdefs.Invalid("image User", "the image runs as group %q, which is not in its /etc/group", errdefs.Clip(g))
	}
	id.gid, *gidSet = int64(grp.Gid), true
	return nil
}

func isNumeric(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func dedupe(l []int64) []int64 {
	out := l[:0:0]
	for _, v := range l {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// userDB reads the image's user database on demand.
type userDB struct {
	rootfs        string
	passwd, group []byte
	readP, readG  bool
}

// readInRoot reads a file of the rootfs with every path component (and
// symlink) resolved inside it. A missing file reads as empty: images
// without /etc/passwd are common (scratch, distroless).
func readInRoot(rootfs, p string) ([]byte, error) {
	if rootfs == "" {
		return nil, nil
	}
	h, err := pathrs.OpenInRoot(rootfs, p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in the container's rootfs: %w", p, err)
	}
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("open %s in the container's rootfs: %w", p, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the container's rootfs is not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIDFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in the container's rootfs: %w", p, err)
	}
	if len(data) > maxIDFile {
		return nil, fmt.Errorf("%s in the container's rootfs is larger than %d bytes", p, maxIDFile)
	}
	return data, nil
}

func (d *userDB) users(match func(user.User) bool) (*user.User, error) {
	if !d.readP {
		data, err := readInRoot(d.rootfs, "/etc/passwd")
		if err != nil {
			return nil, err
		}
		d.passwd, d.readP = data, true
	}
	us, err := user.ParsePasswdFilter(strings.NewReader(string(d.passwd)), match)
	if err != nil {
		return nil, fmt.Errorf("parse the image's /etc/passwd: %w", err)
	}
	if len(us) == 0 {
		return nil, nil
	}
	return &us[0], nil
}

func (d *userDB) groups(match func(user.Group) bool) ([]user.Group, error) {
	if !d.readG {
		data, err := readInRoot(d.rootfs, "/etc/group")
		if err != nil {
			return nil, err
		}
		d.group, d.readG = data, true
	}
	gs, err := user.ParseGroupFilter(strings.NewReader(string(d.group)), match)
	if err != nil {
		return nil, fmt.Errorf("parse the image's /etc/group: %w", err)
	}
	return gs, nil
}

func (d *userDB) userByName(n string) (*user.User, error) {
	return d.users(func(u user.User) bool { return u.Name == n })
}

func (d *userDB) userByID(uid int64) (*user.User, error) {
	return d.users(func(u user.User) bool { return int64(u.Uid) == uid })
}

func (d *userDB) groupByName(n string) (*user.Group, error) {
	gs, err := d.groups(func(g user.Group) bool { return g.Name == n })
	if err != nil || len(gs) == 0 {
		return nil, err
	}
	return &gs[0], nil
}

// groupsOf lists the gids of the groups that name the user as a member.
func (d *userDB) groupsOf(name string) ([]int64, error) {
	gs, err := d.groups(func(g user.Group) bool { return slices.Contains(g.List, name) })
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, len(gs))
	for _, g := range gs {
		out = append(out, int64(g.Gid))
	}
	return out, nil
}
