package firstboot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	igntypes "github.com/coreos/ignition/v2/config/v3_6_experimental/types"
	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
)

// applyUser creates the user with useradd, or changes the fields the
// config sets with usermod, then installs its SSH keys. The shadow tools
// take --root, so the same code provisions the live node and a tree.
func applyUser(root string, u igntypes.PasswdUser) error {
	t, err := readIDs(root)
	if err != nil {
		return err
	}
	_, exists := t.users[u.Name]
	args := []string{"--root", root}
	if u.UID != nil {
		args = append(args, "--uid", strconv.Itoa(*u.UID))
	}
	if u.Gecos != nil {
		args = append(args, "--comment", *u.Gecos)
	}
	if u.HomeDir != nil {
		args = append(args, "--home", *u.HomeDir)
	}
	if u.PrimaryGroup != nil {
		args = append(args, "--gid", *u.PrimaryGroup)
	}
	if len(u.Groups) > 0 {
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = string(g)
		}
		args = append(args, "--groups", strings.Join(gs, ","))
	}
	if u.Shell != nil {
		args = append(args, "--shell", *u.Shell)
	}
	if u.PasswordHash != nil {
		args = append(args, "--password", *u.PasswordHash)
	}
	if exists {
		if len(args) > 2 {
			if err := run("usermod", append(args, u.Name)...); err != nil {
				return err
			}
		}
	} else {
		if isTrue(u.NoCreateHome) {
			args = append(args, "--no-create-home")
		} else {
			args = append(args, "--create-home")
		}
		if isTrue(u.System) {
			args = append(args, "--system")
		}
		if isTrue(u.NoUserGroup) {
			args = append(args, "--no-user-group")
		} else if u.PrimaryGroup == nil {
			args = append(args, "--user-group")
		}
		if isTrue(u.NoLogInit) {
			args = append(args, "--no-log-init")
		}
		if err := run("useradd", append(args, u.Name)...); err != nil {
			return err
		}
	}
	if len(u.SSHAuthorizedKeys) == 0 {
		return nil
	}
	keys := make([]string, len(u.SSHAuthorizedKeys))
	for i, k := range u.SSHAuthorizedKeys {
		keys[i] = string(k)
	}
	return addSSHKeys(root, u.Name, keys)
}

// addSSHKeys adds keys to the user's ~/.ssh/authorized_keys (the file
// Debian's sshd reads), keeping the keys already there.
func addSSHKeys(root, name string, keys []string) error {
	home, uid, gid, err := lookupUser(root, name)
	if err != nil {
		return err
	}
	sshDir := filepath.Join(home, ".ssh")
	if err := pathrs.MkdirAll(root, sshDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", sshDir, err)
	}
	real, err := securejoin.SecureJoin(root, sshDir)
	if err != nil {
		return err
	}
	if err := os.Lchown(real, uid, gid); err != nil {
		return err
	}
	file := filepath.Join(sshDir, "authorized_keys")
	realFile, err := securejoin.SecureJoin(root, file)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(realFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	data := strings.TrimRight(string(old), "\n")
	for _, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" || have[k] {
			continue
		}
		if data != "" {
			data += "\n"
		}
		data += k
		have[k] = true
	}
	return WriteFile(root, file, []byte(data+"\n"), 0o600, uid, gid)
}

// lookupUser reads a user's home and ids from root's /etc/passwd.
func lookupUser(root, name string) (home string, uid, gid int, err error) {
	raw, err := os.ReadFile(filepath.Join(root, "/etc/passwd"))
	if err != nil {
		return "", 0, 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || f[5] == "" {
			return "", 0, 0, fmt.Errorf("user %s: malformed /etc/passwd entry", name)
		}
		return f[5], uid, gid, nil
	}
	return "", 0, 0, fmt.Errorf("user %s not found in /etc/passwd", name)
}
