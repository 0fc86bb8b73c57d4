package modelserver

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
)

// DefaultImages are the docker images used per framework under
// RuntimeDocker unless Config.Images or Spec.Image names another. COMMAND has
// none: a docker COMMAND spec must name its image.
var DefaultImages = map[Framework]string{
	FrameworkVLLM:      "vllm/vllm-openai:latest",
	FrameworkSGLang:    "lmsysorg/sglang:latest",
	FrameworkTGI:       "ghcr.io/huggingface/text-generation-inference:latest",
	FrameworkTriton:    "nvcr.io/nvidia/tritonserver:24.12-py3",
	FrameworkLMI:       "deepjavalibrary/djl-serving:0.33.0-lmi",
	FrameworkSimulator: "perfleet/perfleet-agent:latest",
}

// Placement is what a launch resolved for a spec: where the model is on
// this machine, which port the server listens on and which GPUs it owns.
type Placement struct {
	// Model is the local path of an s3:// or file:// model, or the hub ID.
	Model string
	// Port is the loopback HTTP port.
	Port int
	// Devices are the host GPU indexes assigned to the server.
	Devices []int
}

// Invocation is the program a launch runs: its argv and the variables added
// to the agent's environment.
type Invocation struct {
	// Argv is the command line; Argv[0] is the program.
	Argv []string
	// Env holds "KEY=VALUE" entries, sorted by key. Under docker they are set
	// on the docker client and forwarded with `-e KEY`, so values never
	// appear on a command line.
	Env []string
}

// BuildInvocation builds the command line and environment of spec placed at
// p, as a process or (RuntimeDocker) as a `docker run` command. The
// tensor-parallel degree is spec.GPUs (at least 1); with spec.Copies > 1 the
// framework's data-parallel flag follows it (vLLM --data-parallel-size,
// SGLang --dp-size, the simulator's --copies), and a framework without one
// is an ErrInvalidSpec. p.Devices holds the devices of every copy. It reads
// cfg's Executable, SimulatedGPU, Programs, Images, Docker and CacheDir. It
// is pure: it starts nothing and touches no file.
func BuildInvocation(cfg Config, spec Spec, p Placement) (Invocation, error) {
	docker := spec.Runtime == RuntimeDocker
	argv, env, err := frameworkCommand(cfg, spec, p, docker)
	if err != nil {
		return Invocation{}, err
	}
	for k, v := range spec.Env {
		env[k] = substitute(v, p)
	}
	if !docker {
		env["CUDA_VISIBLE_DEVICES"] = joinInts(p.Devices) // empty hides every GPU
		return Invocation{Argv: argv, Env: envList(env)}, nil
	}
	image := spec.Image
	if image == "" {
		image = cfg.Images[spec.Framework]
	}
	if image == "" {
		image = DefaultImages[spec.Framework]
	}
	if image == "" {
		return Invocation{}, fmt.Errorf("%w: no docker image for framework %s", ErrInvalidSpec, spec.Framework)
	}
	dockerBin := cfg.Docker
	if dockerBin == "" {
		dockerBin = "docker"
	}
	d := []string{dockerBin, "run", "--rm", "--name", containerName(spec.ID), "--network", "host", "--ipc", "host"}
	if len(p.Devices) > 0 {
		// docker splits --gpus on commas unless the value is quoted.
		d = append(d, "--gpus", `"device=`+joinInts(p.Devices)+`"`)
	}
	if cfg.CacheDir != "" {
		d = append(d, "-v", cfg.CacheDir+":"+cfg.CacheDir)
	}
	if local, ok := strings.CutPrefix(spec.Model, "file://"); ok {
		d = append(d, "-v", local+":"+local+":ro")
	}
	list := envList(env)
	for _, kv := range list {
		k, _, _ := strings.Cut(kv, "=")
		d = append(d, "-e", k)
	}
	d = append(d, "--entrypoint", argv[0], image)
	d = append(d, argv[1:]...)
	return Invocation{Argv: d, Env: list}, nil
}

// frameworkCommand returns the framework's argv (extra args appended) and
// its own environment variables.
func frameworkCommand(cfg Config, spec Spec, p Placement, docker bool) ([]string, map[string]string, error) {
	tp := strconv.Itoa(max(spec.GPUs, 1))
	copies := max(spec.Copies, 1)
	if copies > 1 && !SupportsDataParallel(spec.Framework) {
		return nil, nil, fmt.Errorf("%w: framework %s has no data-parallel mode: it cannot serve %d copies in one server",
			ErrInvalidSpec, spec.Framework, copies)
	}
	dp := strconv.Itoa(copies)
	port := strconv.Itoa(p.Port)
	env := map[string]string{}
	prog := func(def ...string) []string {
		if o := cfg.Programs[spec.Framework]; len(o) > 0 {
			return slices.Clone(o)
		}
		return def
	}
	var argv []string
	switch spec.Framework {
	case FrameworkVLLM:
		argv = append(prog("vllm", "serve"), p.Model, "--tensor-parallel-size", tp, "--port", port, "--host", "127.0.0.1")
		if copies > 1 {
			argv = append(argv, "--data-parallel-size", dp)
		}
		if spec.ServedModelName != "" {
			argv = append(argv, "--served-model-name", spec.ServedModelName)
		}
	case FrameworkSGLang:
		argv = append(prog("python3", "-m", "sglang.launch_server"), "--model-path", p.Model, "--tp", tp, "--port", port, "--host", "127.0.0.1")
		if copies > 1 {
			argv = append(argv, "--dp-size", dp)
		}
		if spec.ServedModelName != "" {
			argv = append(argv, "--served-model-name", spec.ServedModelName)
		}
	case FrameworkTGI:
		argv = append(prog("text-generation-launcher"), "--model-id", p.Model, "--num-shard", tp, "--port", port, "--hostname", "127.0.0.1")
	case FrameworkTriton:
		// gRPC and metrics are off so that several servers share a machine
		// without port clashes; Args can turn them on with explicit ports.
		argv = append(prog("tritonserver"), "--model-repository", p.Model, "--http-port", port, "--http-address", "127.0.0.1",
			"--allow-grpc=false", "--allow-metrics=false")
	case FrameworkLMI:
		argv = append(prog("djl-serving"), "-m", p.Model)
		addr := "http://127.0.0.1:" + port // the same address serves both APIs on one port
		env["SERVING_INFERENCE_ADDRESS"] = addr
		env["SERVING_MANAGEMENT_ADDRESS"] = addr
		env["OPTION_TENSOR_PARALLEL_DEGREE"] = tp
	case FrameworkCommand:
		argv = make([]string, len(spec.Command))
		for i, a := range spec.Command {
			argv[i] = substitute(a, p)
		}
	case FrameworkSimulator:
		self := cfg.Executable
		if docker {
			self = "perfleet-agent"
		}
		if self == "" {
			return nil, nil, fmt.Errorf("%w: the simulator needs Config.Executable", ErrInvalidSpec)
		}
		gpuType := spec.SimulatedGPU
		if gpuType == "" {
			gpuType = cfg.SimulatedGPU
		}
		if gpuType == "" {
			gpuType = DefaultSimulatedGPU
		}
		name := spec.ServedModelName
		if name == "" {
			name = modelName(spec.Model)
		}
		argv = append(prog(self, "simulate"), "--listen", "127.0.0.1:"+port, "--gpu", gpuType, "--gpus", tp, "--model", name)
		if copies > 1 {
			argv = append(argv, "--copies", dp)
		}
	default:
		return nil, nil, fmt.Errorf("%w: unknown framework %q", ErrInvalidSpec, spec.Framework)
	}
	for _, a := range spec.Args {
		argv = append(argv, substitute(a, p))
	}
	return argv, env, nil
}

// substitute replaces {port}, {model}, {gpus} and {devices} in s.
func substitute(s string, p Placement) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return strings.NewReplacer("{port}", strconv.Itoa(p.Port), "{model}", p.Model,
		"{gpus}", strconv.Itoa(len(p.Devices)), "{devices}", joinInts(p.Devices)).Replace(s)
}

// modelName is the name a model source is served under by default: a hub
// ID as is, a path or URI by its last element.
func modelName(src string) string {
	if rest, ok := strings.CutPrefix(src, "s3://"); ok {
		src = rest
	} else if rest, ok := strings.CutPrefix(src, "file://"); ok {
		src = rest
	} else {
		return src
	}
	if b := path.Base(strings.TrimRight(src, "/")); b != "." && b != "/" {
		return b
	}
	return src
}

// containerName is the docker container name of a server.
func containerName(id string) string { return "perfleet-ms-" + id }

// joinInts joins ints with commas.
func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// envList turns a map into sorted "KEY=VALUE" entries.
func envList(m map[string]string) []string {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return out
}
