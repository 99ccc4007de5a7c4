package image

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/crio-appliance/crio/daemon/config"
)

// Short-name modes accepted in Options.ShortNameMode.
const (
	// ShortNameEnforcing refuses a short name that resolves to more than one
	// candidate registry: pulling from the wrong registry is a supply-chain
	// risk, so the user must spell the registry out.
	ShortNameEnforcing = "enforcing"
	// ShortNameDisabled tries every candidate in order and keeps the first
	// that pulls.
	ShortNameDisabled = "disabled"
)

// DefaultPolicyPath is used when Options.SignaturePolicy is empty.
const DefaultPolicyPath = "/etc/containers/policy.json"

// Options configure a Service. Empty values mean "the default", which for
// the store is whatever storage.conf says (as CRI-O does).
type Options struct {
	// Root, RunRoot, StorageDriver, StorageOptions and ImageStore describe
	// the containers/storage store ([crio] root, runroot, storage_driver,
	// storage_option, imagestore).
	Root           string
	RunRoot        string
	StorageDriver  string
	StorageOptions []string
	ImageStore     string

	// RegistriesConf overrides the registries.conf path; empty means
	// $CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf.
	// RegistriesConfDir overrides the drop-in directory
	// (/etc/containers/registries.conf.d).
	RegistriesConf    string
	RegistriesConfDir string
	// RegistryCertsDir overrides /etc/containers/certs.d (per-host CA
	// certificates and client keys, <dir>/<host:port>/*.crt).
	RegistryCertsDir string
	// RegistriesDir overrides /etc/containers/registries.d, where the
	// per-registry signature storage is configured (lookaside URLs,
	// use-sigstore-attachments). The daemon leaves it empty, as CRI-O has
	// no key for it: every containers tool on the node must read the same
	// files, or podman could verify a signature that crio cannot find.
	RegistriesDir string

	// GlobalAuthFile is a docker-style auth.json used when a pull request
	// carries no credentials.
	GlobalAuthFile string
	// SignaturePolicy is the policy.json path; empty means
	// /etc/containers/policy.json.
	SignaturePolicy string
	// PinnedImages are names (exact, "prefix*" or "*keyword*") of images
	// the kubelet must not garbage-collect.
	PinnedImages []string
	// ShortNameMode is ShortNameEnforcing (the default) or ShortNameDisabled.
	ShortNameMode string
	// PullProgressTimeout cancels a pull that has made no progress for this
	// long; zero disables the watchdog. Progress is bytes arriving from the
	// registry: unpacking a layer reports none, so keep the timeout well
	// above the time the largest layer takes to unpack.
	PullProgressTimeout time.Duration
	// DefaultTransport is the transport prefix for pulled names. Only
	// "docker://" is supported, as it is the only one the CRI can express.
	DefaultTransport string
	// PreviousShutdown says how the last run ended. The daemon keeps the
	// clean-shutdown marker (it writes it only after every service has
	// closed) and passes what it found. After an unclean end (the zero
	// value: assume the worst) a store that has been used is checked and
	// repaired at New.
	PreviousShutdown PreviousShutdown
	// InternalRepair enables that check and repair; when false an unclean
	// shutdown is only logged.
	InternalRepair bool
	// BigFilesTemporaryDir holds downloaded blobs before they are committed
	// (default /var/tmp).
	BigFilesTemporaryDir string

	// Logger receives repair reports and pull diagnostics; nil discards.
	Logger *slog.Logger
}

// PreviousShutdown is how the previous run of the daemon ended.
type PreviousShutdown int

const (
	// ShutdownUnclean: no marker was found (a crash, a power loss, or the
	// first start); check the store.
	ShutdownUnclean PreviousShutdown = iota
	// ShutdownClean: the marker was there; no check.
	ShutdownClean
)

// OptionsFromConfig maps the daemon configuration onto Options. The daemon
// keeps the clean-shutdown marker (it writes it only after every service
// has closed), so it passes what it found instead of the file. The pause
// image is pinned as CRI-O does: the kubelet must never collect it.
func OptionsFromConfig(c *config.Config, previousShutdownClean bool) Options {
	prev := ShutdownUnclean
	if previousShutdownClean {
		prev = ShutdownClean
	}
	pinned := append([]string(nil), c.Image.PinnedImages...)
	if c.Image.PauseImage != "" {
		pinned = append(pinned, c.Image.PauseImage)
	}
	return Options{
		Root:                 c.Root,
		RunRoot:              c.RunRoot,
		StorageDriver:        c.StorageDriver,
		StorageOptions:       append([]string(nil), c.StorageOptions...),
		ImageStore:           c.ImageStore,
		GlobalAuthFile:       c.Image.GlobalAuthFile,
		SignaturePolicy:      c.Image.SignaturePolicy,
		PinnedImages:         pinned,
		ShortNameMode:        c.Image.ShortNameMode,
		PullProgressTimeout:  config.Duration(c.Image.PullProgressTimeout),
		DefaultTransport:     c.Image.DefaultTransport,
		PreviousShutdown:     prev,
		InternalRepair:       c.InternalRepair,
		BigFilesTemporaryDir: c.Image.BigFilesTemporaryDir,
	}
}

// normalize fills defaults and rejects values the service cannot honour.
func (o *Options) normalize() error {
	switch o.ShortNameMode {
	case "":
		o.ShortNameMode = ShortNameEnforcing
	case ShortNameEnforcing, ShortNameDisabled:
	default:
		return fmt.Errorf("short_name_mode %q: want %q or %q", o.ShortNameMode, ShortNameEnforcing, ShortNameDisabled)
	}
	switch o.DefaultTransport {
	case "", "docker://", "docker":
		o.DefaultTransport = "docker://"
	default:
		return fmt.Errorf("default_transport %q: only \"docker://\" is supported", o.DefaultTransport)
	}
	if o.PullProgressTimeout < 0 {
		return fmt.Errorf("pull_progress_timeout %v: must not be negative", o.PullProgressTimeout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RegistriesConf == "" {
		// The containers libraries read the variable too; resolving it here
		// makes the path visible in our error messages and logs.
		o.RegistriesConf = os.Getenv("CONTAINERS_REGISTRIES_CONF")
	}
	if o.RegistriesConfDir == "" {
		// Set by crio's --registries-conf-dir (CRI-O's flag).
		o.RegistriesConfDir = os.Getenv("CONTAINERS_REGISTRIES_CONF_DIR")
	}
	return nil
}

// policyPath is the signature policy file in effect.
func (o *Options) policyPath() string {
	if o.SignaturePolicy != "" {
		return o.SignaturePolicy
	}
	return DefaultPolicyPath
}
