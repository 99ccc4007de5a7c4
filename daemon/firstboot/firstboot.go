// Package firstboot applies a node's Ignition config at its first boot,
// for node images that do not run Ignition in their initramfs, and
// validates the node's runtime configuration on every boot.
//
// It fails closed. Everything is checked before anything is written: the
// sections it can apply (files, directories, links, systemd units and
// drop-ins, users and groups with SSH keys), the content hashes, the
// owners, and the node's whole runtime configuration as the config would
// leave it (package nodecheck). One error and nothing is written; the
// unit fails, and crio.service, which requires it, does not start. After
// applying, the config's sha256 is recorded so that later boots neither
// apply it again nor lose it: they only validate.
package firstboot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/nodecheck"
)

// Paths on the node.
const (
	// IgnitionResult is written by Ignition itself when it ran in the
	// initramfs: then there is nothing left to apply.
	IgnitionResult = "/etc/.ignition-result.json"
	// DefaultRecord records what crio firstboot applied. It lives in
	// /etc, beside the files it describes, so that the two persist (or
	// not) together.
	DefaultRecord = "/etc/crio/firstboot.json"
)

// Options configure a run.
type Options struct {
	// Root is the node's root directory ("/" on a live node).
	Root    string
	Locator Locator
	// Check configures the node checks; its Root is set from Root.
	Check nodecheck.Options
	// Record is the record's node path ("" is DefaultRecord).
	Record string
	// Now stamps the record.
	Now func() time.Time
}

// Action is what a run did.
type Action string

const (
	ActionApplied        Action = "applied"
	ActionAlreadyApplied Action = "already applied"
	ActionIgnitionRan    Action = "Ignition ran in the initramfs"
	ActionNoConfig       Action = "no config"
)

// Outcome is a run's result. The node is fit to start crio when Errors is
// empty.
type Outcome struct {
	Action   Action
	Source   Source
	SHA256   string
	Applied  *Applied
	Errors   config.Errors
	Warnings []string
	// Units are the units the config enabled; on a live node the caller
	// starts them, since the boot transaction was computed before they
	// existed.
	Units []string
}

// Record is what is kept of an applied config.
type Record struct {
	SHA256    string    `json:"sha256"`
	Platform  string    `json:"platform"`
	Source    string    `json:"source"`
	AppliedAt time.Time `json:"appliedAt"`
	Applied
}

// Run finds the node's config and applies it when it has not been
// applied, then validates the node's runtime configuration as it is on
// disk. An error is returned only when the run could not be carried out
// (a write failed); configuration problems are in Outcome.Errors.
func Run(opts Options) (*Outcome, error) {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.Record == "" {
		opts.Record = DefaultRecord
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	out := &Outcome{}
	if _, err := os.Stat(filepath.Join(opts.Root, IgnitionResult)); err == nil {
		out.Action = ActionIgnitionRan
		return out, validateOnDisk(opts, out)
	}
	src, err := Find(opts.Locator)
	out.Source = src
	if err != nil {
		out.Errors = append(out.Errors, config.Diagnostic{File: "ignition", Msg: err.Error()})
		return out, nil
	}
	if src.Data != nil {
		sum := sha256.Sum256(src.Data)
		out.SHA256 = hex.EncodeToString(sum[:])
	}
	rec, err := ReadRecord(opts.Root, opts.Record)
	if err != nil {
		out.Errors = append(out.Errors, config.Diagnostic{File: opts.Record, Msg: err.Error()})
		return out, nil
	}
	switch {
	case rec != nil:
		out.Action = ActionAlreadyApplied
		if out.SHA256 != "" && out.SHA256 != rec.SHA256 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%s: the config (sha256 %s) differs from the one applied at first boot (sha256 %s, recorded in %s); a config is applied once, so it was not applied",
				src.Path, out.SHA256, rec.SHA256, opts.Record))
		}
		return out, validateOnDisk(opts, out)
	case src.Data == nil:
		out.Action = ActionNoConfig
		return out, validateOnDisk(opts, out)
	}

	ign, errs, warns := nodecheck.ParseIgnition(src.Data)
	out.Warnings = append(out.Warnings, warns...)
	out.Errors = append(out.Errors, errs...)
	if ign == nil {
		return out, nil
	}
	plan, errs, warns := NewPlan(ign, opts.Root)
	out.Errors = append(out.Errors, errs...)
	out.Warnings = append(out.Warnings, warns...)
	rep, err := nodecheck.CheckIgnition(ign, opts.Root, opts.Check)
	if err != nil {
		return out, fmt.Errorf("checking the node as the config leaves it: %w", err)
	}
	out.Errors = append(out.Errors, rep.Errors...)
	out.Warnings = append(out.Warnings, rep.Warnings...)
	if len(out.Errors) > 0 {
		return out, nil
	}

	applied, err := plan.Apply(opts.Root)
	out.Applied = applied
	if err != nil {
		return out, fmt.Errorf("applying %s: %w", src.Path, err)
	}
	rec = &Record{SHA256: out.SHA256, Platform: src.Platform, Source: src.Path, AppliedAt: opts.Now().UTC(), Applied: *applied}
	if err := writeRecord(opts.Root, opts.Record, rec); err != nil {
		return out, err
	}
	out.Action = ActionApplied
	for _, u := range plan.Units {
		if u.Enabled != nil && *u.Enabled && !u.Mask {
			out.Units = append(out.Units, u.Name)
		}
	}
	return out, validateOnDisk(opts, out)
}

// validateOnDisk runs the node checks on root as it is.
func validateOnDisk(opts Options, out *Outcome) error {
	c := opts.Check
	c.Root = opts.Root
	rep := nodecheck.Check(c)
	out.Errors = append(out.Errors, rep.Errors...)
	out.Warnings = append(out.Warnings, rep.Warnings...)
	return nil
}

// ReadRecord reads the record of an applied config; nil when there is
// none. A record that does not parse is an error: the node cannot know
// whether its config was applied.
func ReadRecord(root, path string) (*Record, error) {
	raw, err := os.ReadFile(filepath.Join(root, path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil || r.SHA256 == "" {
		return nil, fmt.Errorf("unreadable record of the first boot (remove it to apply the config again): %v", err)
	}
	return &r, nil
}

func writeRecord(root, path string, r *Record) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFile(root, path, append(raw, '\n'), 0o644, 0, 0); err != nil {
		return fmt.Errorf("recording the applied config in %s: %w", path, err)
	}
	return nil
}

// OK says whether the node may start crio.
func (o *Outcome) OK() bool { return len(o.Errors) == 0 }

// StartUnits makes a running systemd see the units the config wrote and
// starts the enabled ones: the boot transaction was computed before they
// existed, so their targets will not pull them in on this boot. Without
// systemd as PID 1 there is nothing to do.
func StartUnits(units []string) error {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil
	}
	if err := run("systemctl", "daemon-reload"); err != nil {
		return err
	}
	if len(units) == 0 {
		return nil
	}
	return run("systemctl", append([]string{"start", "--no-block"}, units...)...)
}
