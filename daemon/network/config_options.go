package network

import "github.com/crio-appliance/crio/daemon/config"

// OptionsFromConfig maps crio.network to Options.
func OptionsFromConfig(cfg *config.Config) Options {
	return Options{
		NetworkDir:     cfg.Network.NetworkDir,
		PluginDirs:     append([]string(nil), cfg.Network.PluginDirs...),
		DefaultNetwork: cfg.Network.CNIDefaultNetwork,
	}
}
