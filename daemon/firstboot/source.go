package firstboot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
)

// Platforms crio firstboot fetches configs on. Ignition knows many more
// (clouds, metal with a config URL); those need network or a provider's
// metadata service, which a node image without Ignition in its initramfs
// does not have, so they are refused rather than half supported.
const (
	PlatformFile = "file" // a file on the node: IGNITION_CONFIG_FILE or --config
	PlatformQEMU = "qemu" // QEMU's fw_cfg: -fw_cfg name=opt/com.coreos/config,file=F
)

// Default locations, Ignition's own.
const (
	DefaultCmdline = "/proc/cmdline"
	// DefaultFwCfg is where the qemu_fw_cfg module shows the QEMU
	// platform's config blob.
	DefaultFwCfg = "/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw"
	// DefaultConfigFile is the file platform's config when neither
	// --config nor IGNITION_CONFIG_FILE names one: Ignition reads
	// config.ign from its working directory, which is / in the initramfs.
	DefaultConfigFile = "/config.ign"
	// ConfigFileEnv is the file platform's variable, as Ignition names it.
	ConfigFileEnv = "IGNITION_CONFIG_FILE"
)

// Source is where a config came from, and the config itself (nil Data:
// there is none).
type Source struct {
	Platform string
	Path     string
	Data     []byte
}

// Locator says where to look for a config. Empty fields take the
// defaults above.
type Locator struct {
	// Platform overrides the kernel command line's ignition.platform.id.
	Platform string
	// ConfigFile is the file platform's path.
	ConfigFile string
	Cmdline    string
	FwCfg      string
}

// Find returns the node's config the way Ignition finds it: the platform
// from the kernel command line (or the override), then that platform's
// place. No platform, or a platform with nothing in its place, is no
// config, not an error; an unsupported platform is an error.
func Find(l Locator) (Source, error) {
	platform := l.Platform
	if platform == "" {
		cmdline := l.Cmdline
		if cmdline == "" {
			cmdline = DefaultCmdline
		}
		raw, err := os.ReadFile(cmdline)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Source{}, fmt.Errorf("reading the kernel command line: %w", err)
		}
		platform = cmdlineValue(string(raw), "ignition.platform.id")
	}
	src := Source{Platform: platform}
	switch platform {
	case "":
		return src, nil
	case PlatformFile:
		src.Path = l.ConfigFile
		if src.Path == "" {
			src.Path = os.Getenv(ConfigFileEnv)
		}
		if src.Path == "" {
			src.Path = DefaultConfigFile
		}
	case PlatformQEMU:
		src.Path = l.FwCfg
		if src.Path == "" {
			src.Path = DefaultFwCfg
			loadFwCfg()
		}
	default:
		return src, fmt.Errorf("ignition.platform.id=%s: crio firstboot reads configs only on the %q and %q platforms; other platforms need Ignition in the initramfs", platform, PlatformFile, PlatformQEMU)
	}
	data, err := os.ReadFile(src.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return src, nil
	case err != nil:
		return src, fmt.Errorf("%s platform: %w", platform, err)
	case len(data) == 0:
		// QEMU shows an empty blob for an empty file; Ignition treats
		// it as no config.
		return src, nil
	}
	src.Data = data
	return src, nil
}

// loadFwCfg loads the qemu_fw_cfg module when its sysfs tree is absent
// (a kernel that builds it as a module). A failure shows as no config.
func loadFwCfg() {
	if _, err := os.Stat("/sys/firmware/qemu_fw_cfg"); err == nil {
		return
	}
	_ = exec.Command("modprobe", "-q", "qemu_fw_cfg").Run()
}

// cmdlineValue returns the value of the last key=value word for key on a
// kernel command line (the kernel's rule: the last one wins).
func cmdlineValue(cmdline, key string) string {
	val := ""
	for _, w := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(w, "="); ok && k == key {
			val = strings.Trim(v, `"`)
		}
	}
	return val
}
