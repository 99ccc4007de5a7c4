package spec

import (
	"errors"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

func TestAppArmor(t *testing.T) {
	localhost := func(ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		name       string
		enabled    bool
		loaded     []string
		prof       *runtimeapi.SecurityProfile
		legacy     string
		privileged bool
		want       string // the spec's process.apparmorProfile
		warn       string // part of the security warning; "" for none
		err        string // part of the error; "" for none
	}{
		{name: "no AppArmor, nothing asked", want: ""},
		{name: "no AppArmor, RuntimeDefault", prof: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}},
		{name: "no AppArmor, Localhost warns", prof: localhost("mine"), warn: `"mine" not applied: AppArmor is not enabled on this host`},
		{name: "default applied", enabled: true, loaded: []string{"crio-default"}, want: "crio-default"},
		{name: "default not loaded warns", enabled: true, want: "", warn: `"crio-default" (crio.runtime.apparmor_profile) not applied: it is not loaded`},
		{name: "privileged asking nothing", enabled: true, loaded: []string{"crio-default"}, privileged: true, want: ""},
		{name: "unconfined", enabled: true, prof: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, want: "unconfined"},
		{name: "localhost loaded", enabled: true, loaded: []string{"mine"}, prof: localhost("mine"), want: "mine"},
		{name: "legacy localhost loaded", enabled: true, loaded: []string{"mine"}, legacy: "localhost/mine", want: "mine"},
		{name: "localhost not loaded is refused", enabled: true, prof: localhost("missing"), err: `AppArmor profile "missing" is not loaded`},
		{name: "legacy garbage is refused", enabled: true, legacy: "bogus", err: "apparmor_profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInput(t)
			in.Defaults.AppArmorProfile = "crio-default"
			h := in.Host.(*fakeHost)
			h.facts.AppArmor = tc.enabled
			h.apparmor = map[string]bool{}
			for _, p := range tc.loaded {
				h.apparmor[p] = true
			}
			sc(in).Apparmor = tc.prof
			//lint:ignore SA1019 the deprecated field is still honoured
			sc(in).ApparmorProfile = tc.legacy
			sc(in).Privileged = tc.privileged
			in.Pod.Privileged = tc.privileged
			r, err := Generate(in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want an invalid-argument error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Spec.Process.ApparmorProfile; got != tc.want {
				t.Errorf("profile %q, want %q", got, tc.want)
			}
			got := strings.Join(r.SecurityWarnings, "\n")
			if (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
				t.Errorf("security warnings %q, want %q", got, tc.warn)
			}
		})
	}
}
