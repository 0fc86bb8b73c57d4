// Package modelserver launches, probes, logs and stops the model servers an
// agent benchmarks: vLLM, SGLang, TGI, Triton, LMI (djl-serving), any user
// command, and the agent's own simulated LLM server.
//
// A Manager turns a Spec into a running server: it assigns GPUs from an
// Allocator (through CUDA_VISIBLE_DEVICES; GPUs × Copies of them for a
// server holding several data-parallel copies of its model), picks a
// loopback port, fetches an s3:// model into an ETag-keyed cache, builds
// the framework's command line (as a process or under `docker run`), starts
// it in its own process group with size-capped logs, and polls its health
// path until it is ready. Stop sends SIGTERM to the process group and
// SIGKILL after a grace period.
package modelserver

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors; returned errors wrap one of them.
var (
	// ErrInvalidSpec means a Spec or Config is malformed.
	ErrInvalidSpec = errors.New("modelserver: invalid spec")
	// ErrNoGPUs means the allocator has fewer free GPUs than a spec asks for.
	ErrNoGPUs = errors.New("modelserver: not enough free GPUs")
	// ErrModelSource means the model could not be resolved or downloaded.
	ErrModelSource = errors.New("modelserver: model source")
	// ErrStart means the server process could not be started.
	ErrStart = errors.New("modelserver: start failed")
	// ErrNotReady means the server failed, exited or was stopped before it
	// became ready, or did not become ready in time.
	ErrNotReady = errors.New("modelserver: server not ready")
	// ErrUnknownServer means no server with that ID is tracked.
	ErrUnknownServer = errors.New("modelserver: unknown server")
	// ErrDuplicateID means a server with that ID is already tracked.
	ErrDuplicateID = errors.New("modelserver: duplicate server ID")
)

// Framework names a model server implementation.
type Framework string

// The frameworks a Spec can name.
const (
	FrameworkVLLM      Framework = "VLLM"      // vllm serve
	FrameworkSGLang    Framework = "SGLANG"    // python3 -m sglang.launch_server
	FrameworkTGI       Framework = "TGI"       // text-generation-launcher
	FrameworkTriton    Framework = "TRITON"    // tritonserver
	FrameworkLMI       Framework = "LMI"       // djl-serving (SageMaker LMI)
	FrameworkCommand   Framework = "COMMAND"   // the user's argv
	FrameworkSimulator Framework = "SIMULATOR" // perfleet-agent simulate
)

// Runtime says how a server is run.
type Runtime string

// The runtimes a Spec can name.
const (
	// RuntimeProcess runs the server as a child process (the default).
	RuntimeProcess Runtime = "process"
	// RuntimeDocker runs the server through `docker run --rm --network host`.
	RuntimeDocker Runtime = "docker"
)

// Defaults used when a Spec or Config leaves a field zero.
const (
	DefaultReadinessTimeout = 10 * time.Minute
	DefaultStopGrace        = 30 * time.Second
	DefaultProbeInterval    = 250 * time.Millisecond
	DefaultLogMaxBytes      = 16 << 20
	DefaultLogLines         = 50
	DefaultSimulatedGPU     = "H100-80GB"
	// MaxCopies bounds Spec.Copies.
	MaxCopies = 64
)

// Spec is one LaunchModelServer request: what to run and how to tell that it
// is ready. It mirrors the agent control-stream message that will carry it.
type Spec struct {
	// ID names the server within its Manager; empty picks "ms-N".
	ID string
	// Framework is the server implementation.
	Framework Framework
	// Model is the model source: "s3://bucket/key-or-prefix" (downloaded to
	// the cache), "file:///path" (used in place) or a hub ID such as
	// "meta-llama/Llama-3.1-8B" (passed through). Triton reads it as its
	// model repository; COMMAND substitutes it for {model}.
	Model string
	// ServedModelName is the name clients use (vLLM and SGLang
	// --served-model-name, the simulator's --model); empty keeps the
	// framework's default (the simulator uses the model's base name).
	ServedModelName string
	// Command is the argv of a COMMAND server. Each element may contain the
	// placeholders {port}, {model}, {gpus} (the number of devices assigned,
	// GPUs × Copies) and {devices} (the comma-separated device indexes).
	Command []string
	// Args are extra arguments appended to the framework's command line
	// (placeholders are substituted as in Command).
	Args []string
	// Env is extra environment for the server (placeholders substituted).
	Env map[string]string
	// GPUs is how many of the agent's GPUs each copy of the model gets (its
	// tensor-parallel degree); 0 gives the server none (CUDA_VISIBLE_DEVICES
	// is set empty) and a tensor-parallel degree of 1.
	GPUs int
	// Copies is the number of data-parallel copies of the model the server
	// holds, each on GPUs GPUs (SageMaker's copies per instance): the
	// server is assigned GPUs × Copies devices and runs with vLLM's
	// --data-parallel-size, SGLang's --dp-size or the simulator's --copies.
	// 0 means 1; at most MaxCopies. Only frameworks with a data-parallel
	// mode (see SupportsDataParallel) accept more than 1.
	Copies int
	// Port is the loopback HTTP port; 0 picks a free one.
	Port int
	// HealthPath is polled with GET until it answers 200; empty uses the
	// framework's default (see DefaultHealthPath).
	HealthPath string
	// ReadinessTimeout bounds process start → ready; 0 uses the Manager's
	// default (DefaultReadinessTimeout unless configured).
	ReadinessTimeout time.Duration
	// Runtime is RuntimeProcess (default) or RuntimeDocker.
	Runtime Runtime
	// Image overrides the framework's docker image (RuntimeDocker only).
	Image string
	// SimulatedGPU overrides the simulator's --gpu type (SIMULATOR only).
	SimulatedGPU string
}

// DefaultHealthPath returns the readiness path a framework answers 200 on
// once it can serve: /health for vLLM, SGLang, TGI, the simulator and
// commands, /v2/health/ready for Triton and /ping for LMI.
func DefaultHealthPath(f Framework) string {
	switch f {
	case FrameworkTriton:
		return "/v2/health/ready"
	case FrameworkLMI:
		return "/ping"
	default:
		return "/health"
	}
}

// SupportsDataParallel reports whether a framework can serve several
// data-parallel copies of a model in one server (Spec.Copies > 1): vLLM,
// SGLang and the simulator can; TGI, Triton, LMI and COMMAND cannot.
func SupportsDataParallel(f Framework) bool {
	switch f {
	case FrameworkVLLM, FrameworkSGLang, FrameworkSimulator:
		return true
	default:
		return false
	}
}

// GPUCount returns how many devices the spec needs: GPUs × Copies (a zero
// Copies counting as 1).
func (s *Spec) GPUCount() int { return s.GPUs * max(s.Copies, 1) }

// Validate checks the spec on its own, before any resource is taken.
func (s *Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	switch s.Framework {
	case FrameworkVLLM, FrameworkSGLang, FrameworkTGI, FrameworkTriton, FrameworkLMI, FrameworkSimulator:
		if s.Model == "" {
			return bad("framework %s needs a model", s.Framework)
		}
	case FrameworkCommand:
		if len(s.Command) == 0 || s.Command[0] == "" {
			return bad("framework COMMAND needs a command")
		}
	case "":
		return bad("framework is required")
	default:
		return bad("unknown framework %q", s.Framework)
	}
	if s.Model != "" && strings.Contains(s.Model, "://") &&
		!strings.HasPrefix(s.Model, "s3://") && !strings.HasPrefix(s.Model, "file://") {
		return bad("model %q: only s3://, file:// or a hub ID are supported", s.Model)
	}
	if strings.HasPrefix(s.Model, "file://") && !strings.HasPrefix(strings.TrimPrefix(s.Model, "file://"), "/") {
		return bad("model %q: a file:// path must be absolute", s.Model)
	}
	if s.GPUs < 0 {
		return bad("GPU count %d is negative", s.GPUs)
	}
	if s.Copies < 0 || s.Copies > MaxCopies {
		return bad("copies %d out of range (1 to %d; 0 means 1)", s.Copies, MaxCopies)
	}
	if s.Copies > 1 && !SupportsDataParallel(s.Framework) {
		return bad("framework %s has no data-parallel mode: it cannot serve %d copies in one server (use one server per copy)", s.Framework, s.Copies)
	}
	if s.Port < 0 || s.Port > 65535 {
		return bad("port %d is out of range", s.Port)
	}
	if s.HealthPath != "" && !strings.HasPrefix(s.HealthPath, "/") {
		return bad("health path %q must start with /", s.HealthPath)
	}
	if s.ReadinessTimeout < 0 {
		return bad("readiness timeout %v is negative", s.ReadinessTimeout)
	}
	switch s.Runtime {
	case "", RuntimeProcess, RuntimeDocker:
	default:
		return bad("unknown runtime %q", s.Runtime)
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return bad("environment variable name %q", k)
		}
		if k == "CUDA_VISIBLE_DEVICES" {
			return bad("CUDA_VISIBLE_DEVICES is assigned by the agent; set GPUs instead")
		}
	}
	return nil
}
