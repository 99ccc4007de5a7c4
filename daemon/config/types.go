// Package config loads crio's TOML configuration the way CRI-O does
// (crio.conf, then crio.conf.d/*.conf in lexical order, then flags), checks
// every file and the merged result against the CUE schema in schema/, and
// renders the effective configuration back as TOML.
package config

import "time"

// Config is the whole [crio] table. Field names follow CRI-O's TOML keys; the
// json tags are what the CUE schema and the merge code see.
type Config struct {
	Root               string   `json:"root"`
	RunRoot            string   `json:"runroot"`
	ImageStore         string   `json:"imagestore"`
	StorageDriver      string   `json:"storage_driver"`
	StorageOptions     []string `json:"storage_option"`
	LogDir             string   `json:"log_dir"`
	VersionFile        string   `json:"version_file"`
	VersionFilePersist string   `json:"version_file_persist"`
	CleanShutdownFile  string   `json:"clean_shutdown_file"`
	InternalWipe       bool     `json:"internal_wipe"`
	InternalRepair     bool     `json:"internal_repair"`

	API     APIConfig     `json:"api"`
	Runtime RuntimeConfig `json:"runtime"`
	Image   ImageConfig   `json:"image"`
	Network NetworkConfig `json:"network"`
	Metrics MetricsConfig `json:"metrics"`
}

// APIConfig is [crio.api].
type APIConfig struct {
	Listen             string `json:"listen"`
	StreamAddress      string `json:"stream_address"`
	StreamPort         string `json:"stream_port"`
	StreamEnableTLS    bool   `json:"stream_enable_tls"`
	StreamIdleTimeout  string `json:"stream_idle_timeout"`
	StreamTLSCert      string `json:"stream_tls_cert"`
	StreamTLSKey       string `json:"stream_tls_key"`
	StreamTLSCA        string `json:"stream_tls_ca"`
	GRPCMaxSendMsgSize int64  `json:"grpc_max_send_msg_size"`
	GRPCMaxRecvMsgSize int64  `json:"grpc_max_recv_msg_size"`
}

// RuntimeConfig is [crio.runtime].
type RuntimeConfig struct {
	DefaultRuntime                     string                    `json:"default_runtime"`
	Runtimes                           map[string]RuntimeHandler `json:"runtimes"`
	NoPivot                            bool                      `json:"no_pivot"`
	DecryptionKeysPath                 string                    `json:"decryption_keys_path"`
	SELinux                            bool                      `json:"selinux"`
	SeccompProfile                     string                    `json:"seccomp_profile"`
	ApparmorProfile                    string                    `json:"apparmor_profile"`
	CgroupManager                      string                    `json:"cgroup_manager"`
	DefaultCapabilities                []string                  `json:"default_capabilities"`
	AddInheritableCapabilities         bool                      `json:"add_inheritable_capabilities"`
	DefaultSysctls                     []string                  `json:"default_sysctls"`
	DefaultUlimits                     []string                  `json:"default_ulimits"`
	DefaultEnv                         []string                  `json:"default_env"`
	AllowedDevices                     []string                  `json:"allowed_devices"`
	AdditionalDevices                  []string                  `json:"additional_devices"`
	CDISpecDirs                        []string                  `json:"cdi_spec_dirs"`
	DeviceOwnershipFromSecurityContext bool                      `json:"device_ownership_from_security_context"`
	HooksDir                           []string                  `json:"hooks_dir"`
	DefaultMountsFile                  string                    `json:"default_mounts_file"`
	LogSizeMax                         int64                     `json:"log_size_max"`
	LogToJournald                      bool                      `json:"log_to_journald"`
	ContainerExitsDir                  string                    `json:"container_exits_dir"`
	ContainerAttachSocketDir           string                    `json:"container_attach_socket_dir"`
	BindMountPrefix                    string                    `json:"bind_mount_prefix"`
	ReadOnly                           bool                      `json:"read_only"`
	LogLevel                           string                    `json:"log_level"`
	LogFilter                          string                    `json:"log_filter"`
	CtrStopTimeout                     int64                     `json:"ctr_stop_timeout"`
	DropInfraCtr                       bool                      `json:"drop_infra_ctr"`
	InfraCtrCPUSet                     string                    `json:"infra_ctr_cpuset"`
	NamespacesDir                      string                    `json:"namespaces_dir"`
	PinnsPath                          string                    `json:"pinns_path"`
	EnableCriuSupport                  bool                      `json:"enable_criu_support"`
	EnablePodEvents                    bool                      `json:"enable_pod_events"`
	AbsentMountSourcesToReject         []string                  `json:"absent_mount_sources_to_reject"`
	DisableHostportMapping             bool                      `json:"disable_hostport_mapping"`
	Timezone                           string                    `json:"timezone"`
}

// RuntimeHandler is one [crio.runtime.runtimes.<name>] table: a RuntimeClass
// handler mapped to an OCI runtime binary and its monitor.
type RuntimeHandler struct {
	RuntimePath                  string   `json:"runtime_path"`
	RuntimeType                  string   `json:"runtime_type"`
	RuntimeRoot                  string   `json:"runtime_root"`
	RuntimeConfigPath            string   `json:"runtime_config_path"`
	MonitorPath                  string   `json:"monitor_path"`
	MonitorCgroup                string   `json:"monitor_cgroup"`
	MonitorEnv                   []string `json:"monitor_env"`
	PrivilegedWithoutHostDevices bool     `json:"privileged_without_host_devices"`
	AllowedAnnotations           []string `json:"allowed_annotations"`
	ContainerMinMemory           string   `json:"container_min_memory"`
	NoSyncLog                    bool     `json:"no_sync_log"`
}

// ImageConfig is [crio.image].
type ImageConfig struct {
	DefaultTransport     string   `json:"default_transport"`
	GlobalAuthFile       string   `json:"global_auth_file"`
	PauseImage           string   `json:"pause_image"`
	PauseImageAuthFile   string   `json:"pause_image_auth_file"`
	PauseCommand         string   `json:"pause_command"`
	PinnedImages         []string `json:"pinned_images"`
	SignaturePolicy      string   `json:"signature_policy"`
	SignaturePolicyDir   string   `json:"signature_policy_dir"`
	InsecureRegistries   []string `json:"insecure_registries"`
	ImageVolumes         string   `json:"image_volumes"`
	BigFilesTemporaryDir string   `json:"big_files_temporary_dir"`
	AutoReloadRegistries bool     `json:"auto_reload_registries"`
	PullProgressTimeout  string   `json:"pull_progress_timeout"`
	ShortNameMode        string   `json:"short_name_mode"`
}

// NetworkConfig is [crio.network].
type NetworkConfig struct {
	CNIDefaultNetwork string   `json:"cni_default_network"`
	NetworkDir        string   `json:"network_dir"`
	PluginDirs        []string `json:"plugin_dirs"`
}

// MetricsConfig is [crio.metrics].
type MetricsConfig struct {
	EnableMetrics bool   `json:"enable_metrics"`
	MetricsHost   string `json:"metrics_host"`
	MetricsPort   int64  `json:"metrics_port"`
	MetricsSocket string `json:"metrics_socket"`
	MetricsCert   string `json:"metrics_cert"`
	MetricsKey    string `json:"metrics_key"`
	// MetricsCollectors selects what is exported; empty means all.
	MetricsCollectors []string `json:"metrics_collectors"`
}

// Duration parses a duration key that the schema has already checked.
func Duration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}
