package config

// DefaultRuntimeName is the handler that exists when no file declares one.
const DefaultRuntimeName = "runc"

// Default returns CRI-O's defaults (with the deviations documented in
// schema/crio.cue). TestSchemaMatchesGo keeps this and the schema in step.
func Default() *Config {
	return &Config{
		Root:               "/var/lib/containers/storage",
		RunRoot:            "/var/run/containers/storage",
		StorageDriver:      "overlay",
		StorageOptions:     []string{},
		LogDir:             "/var/log/crio/pods",
		VersionFile:        "/var/run/crio/version",
		VersionFilePersist: "",
		CleanShutdownFile:  "/var/lib/crio/clean.shutdown",
		InternalWipe:       true,
		InternalRepair:     true,
		API: APIConfig{
			Listen:             "/var/run/crio/crio.sock",
			StreamAddress:      "127.0.0.1",
			StreamPort:         "0",
			GRPCMaxSendMsgSize: 83886080,
			GRPCMaxRecvMsgSize: 83886080,
		},
		Runtime: RuntimeConfig{
			DefaultRuntime: DefaultRuntimeName,
			Runtimes: map[string]RuntimeHandler{
				DefaultRuntimeName: DefaultHandler(),
			},
			DecryptionKeysPath: "/etc/crio/keys/",
			ApparmorProfile:    "crio-default",
			CgroupManager:      "cgroupfs",
			DefaultCapabilities: []string{
				"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID",
				"SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL",
			},
			DefaultSysctls:             []string{},
			DefaultUlimits:             []string{},
			DefaultEnv:                 []string{},
			AllowedDevices:             []string{"/dev/fuse", "/dev/net/tun"},
			AdditionalDevices:          []string{},
			CDISpecDirs:                []string{"/etc/cdi", "/var/run/cdi"},
			HooksDir:                   []string{"/usr/share/containers/oci/hooks.d"},
			LogSizeMax:                 -1,
			ContainerExitsDir:          "/var/run/crio/exits",
			ContainerAttachSocketDir:   "/var/run/crio",
			LogLevel:                   "info",
			CtrStopTimeout:             30,
			DropInfraCtr:               true,
			NamespacesDir:              "/var/run",
			AbsentMountSourcesToReject: []string{},
		},
		Image: ImageConfig{
			DefaultTransport:    "docker://",
			PauseImage:          "registry.k8s.io/pause:3.10",
			PauseCommand:        "/pause",
			PinnedImages:        []string{},
			SignaturePolicyDir:  "/etc/crio/policies",
			InsecureRegistries:  []string{},
			ImageVolumes:        "mkdir",
			PullProgressTimeout: "0s",
			ShortNameMode:       "enforcing",
		},
		Network: NetworkConfig{
			NetworkDir: "/etc/cni/net.d/",
			PluginDirs: []string{"/opt/cni/bin/", "/usr/lib/cni/"},
		},
		Metrics: MetricsConfig{
			MetricsHost:       "127.0.0.1",
			MetricsPort:       9090,
			MetricsCollectors: []string{},
		},
	}
}

// DefaultHandler is what a handler table declared with no keys holds, and
// the runc handler that exists when no file declares one. An empty
// runtime_root leaves the state directory to the runtime (/run/runc for runc).
func DefaultHandler() RuntimeHandler {
	return RuntimeHandler{
		RuntimeType:        "oci",
		MonitorEnv:         []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		AllowedAnnotations: []string{},
		ContainerMinMemory: "12MiB",
	}
}
