package streaming

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/crio-appliance/crio/daemon/config"
)

// OptionsFromConfig maps [crio.api]'s stream_* keys to Options; the caller
// adds Containers and Pods.
func OptionsFromConfig(cfg *config.Config, log *slog.Logger) (Options, error) {
	api := cfg.API
	o := Options{Address: api.StreamAddress, Port: api.StreamPort, Logger: log}
	if o.Port == "" {
		o.Port = "0"
	}
	if api.StreamIdleTimeout != "" {
		d, err := time.ParseDuration(api.StreamIdleTimeout)
		if err != nil || d < 0 {
			return Options{}, fmt.Errorf("crio.api.stream_idle_timeout %q is not a duration", api.StreamIdleTimeout)
		}
		o.IdleTimeout = d
	}
	// The ExecSync reply must also fit in what the gRPC server may send.
	if m := api.GRPCMaxSendMsgSize; m > 0 && m < 2*DefaultMaxExecOutput+64<<10 {
		o.MaxExecOutput = int(max((m-64<<10)/2, 4<<10))
	}
	if api.StreamEnableTLS {
		o.TLS = &TLSFiles{Cert: api.StreamTLSCert, Key: api.StreamTLSKey, CA: api.StreamTLSCA}
	}
	return o, nil
}
