package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/crio-appliance/crio/daemon/image/stagedest"
	"github.com/crio-appliance/crio/daemon/metrics"
)

// Pull fetches name (tag or digest; a short name is expanded through
// registries.conf) into the store and returns the image ID. Concurrent
// pulls of the same reference with the same credentials share one download.
func (s *Service) Pull(ctx context.Context, name string, auth *AuthConfig) (id string, err error) {
	var errs []error
	// Once per call, as CRI-O counts PullImage, whatever the candidates.
	defer func() {
		if err != nil {
			// combinePullErrors keeps the kind but not the causes: look
			// at each candidate's error.
			metrics.PullFailed(pullFailureCategory(append(errs, err)))
		} else {
			metrics.PullSucceeded()
		}
	}()
	name = trimInput(name)
	sys, err := s.pullSystemContext(auth)
	if err != nil {
		return "", err
	}
	candidates, err := pullCandidates(sys, name, s.opts.ShortNameMode)
	if err != nil {
		return "", err
	}
	for _, named := range candidates {
		key := named.String() + "\x00" + auth.key()
		id, joined, err := s.flights.do(ctx, key, func(ctx context.Context) (string, error) {
			return s.pullOne(ctx, named, sys, auth)
		})
		if joined {
			s.opts.Logger.Debug("pull joined one already in flight", "image", named.String())
		}
		if err == nil {
			return id, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		errs = append(errs, err)
	}
	return "", combinePullErrors(name, errs)
}

// pullOne copies one fully qualified reference into the store.
func (s *Service) pullOne(ctx context.Context, named reference.Named, sys *types.SystemContext, auth *AuthConfig) (string, error) {
	if err := checkBlocked(sys, named); err != nil {
		return "", err
	}
	srcRef, err := docker.NewReference(named)
	if err != nil {
		return "", newError(ErrInvalidReference, err, fmt.Sprintf("cannot pull %s", named))
	}
	destRef, err := istorage.Transport.NewStoreReference(s.store, named, "")
	if err != nil {
		return "", fmt.Errorf("preparing storage reference for %s: %w", named, err)
	}
	policyPath := s.opts.policyPath()
	policy, pc, err := loadPolicy(policyPath)
	if err != nil {
		return "", err
	}
	defer pc.Destroy()

	var copyDest types.ImageReference = destRef
	var copySrc types.ImageReference = srcRef
	if stagedest.Supported(s.store) {
		peek := stagedest.NewSourcePeek(srcRef)
		copySrc = peek
		copyDest = stagedest.NewReference(destRef, s.store, s.opts.BigFilesTemporaryDir, peek)
	}
	cctx, watch, stop := watchProgress(ctx, s.opts.PullProgressTimeout)
	_, err = copy.Image(cctx, pc, copyDest, copySrc, &copy.Options{
		SourceCtx:        sys,
		DestinationCtx:   sys,
		ReportWriter:     io.Discard,
		Progress:         watch.Progress,
		ProgressInterval: watch.Interval,
		// The signatures are checked against policy.json before the copy,
		// from the source; crio never reads them from the store, and the
		// staging destination could store only simple-signing ones.
		RemoveSignatures: true,
	})
	if err != nil {
		// Before stop, which cancels cctx: classifyPullError reads a
		// cancelled cctx as the caller having given up.
		err = classifyPullError(cctx, err, pullFailure{
			named:      named,
			srcRef:     srcRef,
			policy:     policy,
			policyPath: policyPath,
			authSource: describeAuth(auth, s.opts.GlobalAuthFile),
			timeout:    s.opts.PullProgressTimeout.String(),
		})
	}
	stop()
	if err != nil {
		return "", err
	}
	_, img, err := istorage.ResolveReference(destRef)
	if err != nil {
		return "", fmt.Errorf("looking up %s after pulling it: %w", named, err)
	}
	s.opts.Logger.Info("pulled image", "image", named.String(), "id", img.ID)
	return img.ID, nil
}

// checkBlocked refuses a registry that registries.conf blocks before any
// network traffic, naming the entry so the operator knows what to edit.
func checkBlocked(sys *types.SystemContext, named reference.Named) error {
	reg, err := sysregistriesv2.FindRegistry(sys, named.Name())
	if err != nil {
		return fmt.Errorf("reading registries.conf (%s): %w", sysregistriesv2.ConfigurationSourceDescription(sys), err)
	}
	if reg != nil && reg.Blocked {
		return newError(ErrDenied, nil, fmt.Sprintf(
			"pulling %s is refused: the [[registry]] entry with prefix %q in %s has blocked = true; "+
				"pull from another registry or unblock that entry",
			named, reg.Prefix, sysregistriesv2.ConfigurationSourceDescription(sys)))
	}
	return nil
}

// combinePullErrors reports the failure of every candidate of a short name.
// The kind is that of the most telling error: "not found" only if every
// registry said so, since a registry that refused or failed is the one the
// user needs to hear about.
func combinePullErrors(name string, errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	var kind error = ErrNotFound
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
		if k := KindOf(e); k != ErrNotFound && kind == ErrNotFound {
			kind = k
		}
	}
	msg := fmt.Sprintf("pulling %s failed from every candidate registry: %s", name, strings.Join(msgs, "; "))
	if kind == nil {
		return errors.New(msg)
	}
	return newError(kind, nil, msg)
}
