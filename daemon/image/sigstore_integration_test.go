package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"
	"go.podman.io/image/v5/types"
)

// The names policy/examples uses for the registry and its key; the test
// replaces exactly these with its own registry and key.
const (
	exampleRegistry = "registry.example.com"
	exampleKeyPath  = "/etc/containers/keys/registry.example.com.pub"
	examplesDir     = "../../policy/examples"
)

// sigstoreKey is a key pair written the way an operator would have it: the
// encrypted private key for signing, the public key for policy.json.
type sigstoreKey struct {
	private, public string
	passphrase      []byte
}

func newSigstoreKey(t *testing.T, dir, name string) sigstoreKey {
	t.Helper()
	k := sigstoreKey{
		private:    filepath.Join(dir, name+".private"),
		public:     filepath.Join(dir, name+".pub"),
		passphrase: []byte("passphrase of " + name),
	}
	pair, err := sigstore.GenerateKeyPair(k.passphrase)
	if err != nil {
		t.Fatalf("generating sigstore key pair: %v", err)
	}
	if err := os.WriteFile(k.private, pair.PrivateKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.public, pair.PublicKey, 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// instantiateExamples writes policy/examples with the example registry and
// key path replaced, and checks that the replacement produced the rule the
// README describes, so that an edit of the examples that changes their
// meaning (or renames the placeholders) fails here instead of testing
// nothing. Returns the policy path and the registries.d directory.
func instantiateExamples(t *testing.T, dir, registry, keyPath string) (string, string) {
	t.Helper()
	subst := func(b []byte) []byte {
		s := strings.ReplaceAll(string(b), exampleKeyPath, keyPath)
		return []byte(strings.ReplaceAll(s, exampleRegistry, registry))
	}
	raw, err := os.ReadFile(filepath.Join(examplesDir, "policy.json"))
	if err != nil {
		t.Fatalf("reading the example policy: %v", err)
	}
	policyPath := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policyPath, subst(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	// The library's own parser, so that a file it would reject fails here.
	policy, err := signature.NewPolicyFromFile(policyPath)
	if err != nil {
		t.Fatalf("the example policy does not parse: %v", err)
	}
	reqs := policy.Transports["docker"][registry]
	got, _ := json.Marshal(reqs)
	if len(reqs) != 1 || !strings.Contains(string(got), `"type":"sigstoreSigned"`) || !strings.Contains(string(got), keyPath) {
		t.Fatalf("the example policy's rule for %s is %s, want one sigstoreSigned requirement with keyPath %s", registry, got, keyPath)
	}
	if d, _ := json.Marshal(policy.Default); string(d) != `[{"type":"insecureAcceptAnything"}]` {
		t.Fatalf("the example policy's default is %s, want that of policy/policy.json", d)
	}

	regDir := filepath.Join(dir, "registries.d")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		t.Fatal(err)
	}
	yamls, err := filepath.Glob(filepath.Join(examplesDir, "registries.d", "*.yaml"))
	if err != nil || len(yamls) == 0 {
		t.Fatalf("no registries.d example (%v)", err)
	}
	for _, y := range yamls {
		raw, err := os.ReadFile(y)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), exampleRegistry+":") {
			t.Fatalf("%s does not configure %s", y, exampleRegistry)
		}
		if err := os.WriteFile(filepath.Join(regDir, filepath.Base(y)), subst(raw), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return policyPath, regDir
}

// signedCopy copies reg's src (repo:tag) to dst (repo:tag), signing it with
// key on the way, as `skopeo copy --sign-by-sigstore-private-key` does. The
// signature goes where registriesDir says: with use-sigstore-attachments,
// into the registry beside the image.
func signedCopy(t *testing.T, reg *testRegistry, src, dst string, key sigstoreKey, registriesDir string) {
	t.Helper()
	ref := func(s string) types.ImageReference {
		named, err := reference.ParseNormalizedNamed(reg.Host + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		r, err := docker.NewReference(named)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sgn, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(key.private, key.passphrase))
	if err != nil {
		t.Fatalf("preparing the signer: %v", err)
	}
	defer sgn.Close()
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	sys := &types.SystemContext{
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue, // the test registry speaks plain HTTP
		RegistriesDirPath:           registriesDir,
	}
	if _, err := copy.Image(testCtx(t), pc, ref(dst), ref(src), &copy.Options{
		SourceCtx:      sys,
		DestinationCtx: sys,
		Signers:        []*signer.Signer{sgn},
	}); err != nil {
		t.Fatalf("signing %s as %s: %v", src, dst, err)
	}
}

// policy/examples, as shipped, through the image service that PullImage
// uses: the registry it names gets only images signed with its key, other
// registries keep the packaged default.
func TestExamplePolicyRequiresSigstoreSignature(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	other := startRegistry(t, registryOpts{})
	dir := t.TempDir()
	key := newSigstoreKey(t, dir, "release")
	wrongKey := newSigstoreKey(t, dir, "someone-else")
	policyPath, registriesDir := instantiateExamples(t, dir, reg.Host, key.public)

	reg.push(t, "staging/app", "1", buildImage(t, imageSpec{files: map[string]string{"id": "signed"}}))
	reg.push(t, "staging/app", "2", buildImage(t, imageSpec{files: map[string]string{"id": "wrong key"}}))
	reg.push(t, "team/app", "unsigned", buildImage(t, imageSpec{files: map[string]string{"id": "unsigned"}}))
	signedCopy(t, reg, "staging/app:1", "team/app:signed", key, registriesDir)
	signedCopy(t, reg, "staging/app:2", "team/app:wrongkey", wrongKey, registriesDir)
	other.push(t, "team/app", "unsigned", buildImage(t, imageSpec{files: map[string]string{"id": "elsewhere"}}))

	env := newEnv(t, insecure(reg.Host)+insecure(other.Host), "")
	env.opts.SignaturePolicy = policyPath
	env.opts.RegistriesDir = registriesDir
	s := env.open(t)

	// Refused: the message names the image, the policy file and its rule,
	// so the operator knows what to sign or edit.
	for _, ref := range []string{reg.Host + "/team/app:unsigned", reg.Host + "/team/app:wrongkey"} {
		_, err := s.Pull(testCtx(t), ref, nil)
		wantKind(t, err, ErrDenied, ref, policyPath, `transports.docker["`+reg.Host+`"]`, "sigstoreSigned")
		if _, err := s.Status(testCtx(t), ref, false); KindOf(err) != ErrNotFound {
			t.Fatalf("the refused image %s is in the store: %v", ref, err)
		}
	}

	signed := reg.Host + "/team/app:signed"
	id := mustPull(t, s, signed, nil)
	st, err := s.Status(testCtx(t), signed, false)
	if err != nil || st.ID != id || !slices.Contains(st.RepoTags, signed) {
		t.Fatalf("status of the signed image: %+v %v", st, err)
	}

	// Registries the example does not name fall under its default.
	mustPull(t, s, other.Host+"/team/app:unsigned", nil)

	// Without the registries.d entry the signature is never fetched and the
	// signed image is refused too: the README's "fails closed".
	env.opts.RegistriesDir = t.TempDir()
	env.opts.Root += "2"
	env.opts.RunRoot += "2"
	_, err = env.open(t).Pull(testCtx(t), signed, nil)
	wantKind(t, err, ErrDenied, signed, "no signature exists")
}
