package image

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"go.podman.io/image/v5/types"
)

// AuthConfig is the credential set of a CRI PullImageRequest. Exactly the
// CRI fields; empty means "use global_auth_file".
type AuthConfig struct {
	Username      string
	Password      string
	Auth          string // base64("user:password"), as in a docker config.json
	ServerAddress string
	IdentityToken string // OAuth2 refresh token
	RegistryToken string // bearer token sent to the registry as is
}

func (a *AuthConfig) empty() bool {
	return a == nil || *a == AuthConfig{}
}

// key identifies the credentials without revealing them, so pulls with
// equal credentials can share a download and pulls with different ones
// never do (a wrong password must not ride on somebody else's right one).
func (a *AuthConfig) key() string {
	if a.empty() {
		return ""
	}
	h := sha256.Sum256([]byte(strings.Join([]string{a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// dockerAuth converts CRI credentials for containers/image.
func (a *AuthConfig) dockerAuth() (*types.DockerAuthConfig, string, error) {
	user, pass := a.Username, a.Password
	if a.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return nil, "", newError(ErrInvalidReference, err, "the auth field of the pull credentials is not base64 of \"user:password\"")
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, "", newError(ErrInvalidReference, nil, "the auth field of the pull credentials does not decode to \"user:password\"")
		}
		user, pass = u, p
	}
	var da *types.DockerAuthConfig
	if user != "" || pass != "" || a.IdentityToken != "" {
		da = &types.DockerAuthConfig{Username: user, Password: pass, IdentityToken: a.IdentityToken}
	}
	return da, a.RegistryToken, nil
}

// baseSystemContext is the SystemContext shared by every operation: where
// the registry configuration, certificates and caches live, and which
// platform to pick from a manifest list.
func (s *Service) baseSystemContext() *types.SystemContext {
	o := &s.opts
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    o.RegistriesConf,
		SystemRegistriesConfDirPath: o.RegistriesConfDir,
		DockerPerHostCertDirPath:    o.RegistryCertsDir,
		RegistriesDirPath:           o.RegistriesDir,
		SignaturePolicyPath:         o.policyPath(),
		BigFilesTemporaryDir:        o.BigFilesTemporaryDir,
		// Keep the blob-info cache with the store it describes rather than in
		// a global /var/lib/containers/cache shared with other tools.
		BlobInfoCacheDir: filepath.Join(s.store.GraphRoot(), "cache"),
		// Short names are resolved by resolvePull, never by the library,
		// which would prompt on a terminal in enforcing mode.
		ShortNameMode: ptr(types.ShortNameModeDisabled),
	}
	// containers/image detects the ARM variant from /proc/cpuinfo, which is
	// missing or foreign under emulation; every arm64 CPU is v8, so say so
	// and a "linux/arm64/v8" index entry is matched as well as a plain
	// "linux/arm64" one.
	if runtime.GOARCH == "arm64" {
		sys.VariantChoice = "v8"
	}
	return sys
}

// pullSystemContext adds the caller's credentials. Without any, the global
// auth file is used; when that is unset containers/image looks in its
// default places (/run/containers/0/auth.json, ~/.docker/config.json).
func (s *Service) pullSystemContext(auth *AuthConfig) (*types.SystemContext, error) {
	sys := s.baseSystemContext()
	if auth.empty() {
		sys.AuthFilePath = s.opts.GlobalAuthFile
		return sys, nil
	}
	da, token, err := auth.dockerAuth()
	if err != nil {
		return nil, err
	}
	sys.DockerAuthConfig = da
	sys.DockerBearerRegistryToken = token
	return sys, nil
}

func ptr[T any](v T) *T { return &v }

// describeAuth names the credential source for error messages.
func describeAuth(auth *AuthConfig, globalAuthFile string) string {
	switch {
	case !auth.empty():
		return "the credentials in the pull request (the pod's imagePullSecrets)"
	case globalAuthFile != "":
		return fmt.Sprintf("global_auth_file %s", globalAuthFile)
	default:
		return "no credentials (set imagePullSecrets or global_auth_file)"
	}
}
