package image

import (
	"encoding/json"
	"fmt"

	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// loadPolicy reads policy.json for one pull. It is read every time so an
// edit takes effect without restarting the daemon, as with CRI-O.
func loadPolicy(path string) (*signature.Policy, *signature.PolicyContext, error) {
	policy, err := signature.NewPolicyFromFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("loading signature policy %s (crio.image.signature_policy): %w", path, err)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, nil, fmt.Errorf("preparing signature policy %s: %w", path, err)
	}
	return policy, pc, nil
}

// policyRule names the policy.json section that governs ref, the same way
// the library picks it, and shows its requirements, so a rejection says
// which rule to change.
func policyRule(policy *signature.Policy, ref types.ImageReference) string {
	transport := ref.Transport().Name()
	if scopes, ok := policy.Transports[transport]; ok {
		names := append([]string{ref.PolicyConfigurationIdentity()}, ref.PolicyConfigurationNamespaces()...)
		names = append(names, "")
		for _, n := range names {
			if reqs, ok := scopes[n]; ok {
				return fmt.Sprintf("transports.%s[%q] = %s", transport, n, requirementsJSON(reqs))
			}
		}
	}
	return fmt.Sprintf("default = %s", requirementsJSON(policy.Default))
}

func requirementsJSON(reqs signature.PolicyRequirements) string {
	b, err := json.Marshal(reqs)
	if err != nil {
		return fmt.Sprintf("%d requirement(s)", len(reqs))
	}
	return string(b)
}
