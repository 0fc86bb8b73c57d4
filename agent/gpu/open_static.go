//go:build !cgo

package gpu

import "log/slog"

// staticReason is the inventory reason of static builds.
const staticReason = "built without cgo: NVML not compiled in"

// Open returns a NoneBackend: static (CGO_ENABLED=0) builds cannot load
// NVML, so they report no GPUs, after logging it at Info level. Simulated
// GPUs (NewSimulated) work in every build.
func Open(logger *slog.Logger) Backend {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger.Info("no GPU: " + staticReason)
	return NewNone(staticReason)
}
