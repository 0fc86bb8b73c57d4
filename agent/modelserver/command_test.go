package modelserver

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// words splits a command line written with single spaces.
func words(s string) []string { return strings.Fields(s) }

func TestBuildInvocation(t *testing.T) {
	cfg := Config{Executable: "/opt/perfleet/perfleet-agent", SimulatedGPU: "L4", CacheDir: "/var/cache/perfleet"}
	hub := "meta-llama/Llama-3.1-8B"
	tests := []struct {
		name string
		cfg  *Config // nil: cfg
		spec Spec
		p    Placement
		argv string
		env  []string
	}{
		{name: "vllm",
			spec: Spec{Framework: FrameworkVLLM, Model: hub, GPUs: 2, ServedModelName: "llama", Args: []string{"--max-model-len", "8192"}},
			p:    Placement{Model: hub, Port: 8000, Devices: []int{2, 3}},
			argv: "vllm serve meta-llama/Llama-3.1-8B --tensor-parallel-size 2 --port 8000 --host 127.0.0.1 --served-model-name llama --max-model-len 8192",
			env:  []string{"CUDA_VISIBLE_DEVICES=2,3"}},
		{name: "sglang",
			spec: Spec{Framework: FrameworkSGLang, Model: "s3://b/m", GPUs: 4},
			p:    Placement{Model: "/var/cache/perfleet/s3/ab/model", Port: 9000, Devices: []int{0, 1, 2, 3}},
			argv: "python3 -m sglang.launch_server --model-path /var/cache/perfleet/s3/ab/model --tp 4 --port 9000 --host 127.0.0.1",
			env:  []string{"CUDA_VISIBLE_DEVICES=0,1,2,3"}},
		{name: "tgi",
			spec: Spec{Framework: FrameworkTGI, Model: hub, GPUs: 1, Env: map[string]string{"HF_TOKEN": "secret"}},
			p:    Placement{Model: hub, Port: 8080, Devices: []int{5}},
			argv: "text-generation-launcher --model-id meta-llama/Llama-3.1-8B --num-shard 1 --port 8080 --hostname 127.0.0.1",
			env:  []string{"CUDA_VISIBLE_DEVICES=5", "HF_TOKEN=secret"}},
		{name: "triton",
			spec: Spec{Framework: FrameworkTriton, Model: "file:///models/repo", GPUs: 1},
			p:    Placement{Model: "/models/repo", Port: 8001, Devices: []int{0}},
			argv: "tritonserver --model-repository /models/repo --http-port 8001 --http-address 127.0.0.1 --allow-grpc=false --allow-metrics=false",
			env:  []string{"CUDA_VISIBLE_DEVICES=0"}},
		{name: "lmi",
			spec: Spec{Framework: FrameworkLMI, Model: hub, GPUs: 2, Env: map[string]string{"OPTION_ROLLING_BATCH": "vllm"}},
			p:    Placement{Model: hub, Port: 8081, Devices: []int{0, 1}},
			argv: "djl-serving -m meta-llama/Llama-3.1-8B",
			env: []string{"CUDA_VISIBLE_DEVICES=0,1", "OPTION_ROLLING_BATCH=vllm", "OPTION_TENSOR_PARALLEL_DEGREE=2",
				"SERVING_INFERENCE_ADDRESS=http://127.0.0.1:8081", "SERVING_MANAGEMENT_ADDRESS=http://127.0.0.1:8081"}},
		{name: "command placeholders",
			spec: Spec{Framework: FrameworkCommand, Command: []string{"my-server", "--port={port}", "--weights", "{model}", "--gpus", "{gpus}"},
				Args: []string{"--devices={devices}"}, Env: map[string]string{"SERVER_PORT": "{port}"}, GPUs: 2},
			p:    Placement{Model: "/data/w", Port: 7000, Devices: []int{1, 3}},
			argv: "my-server --port=7000 --weights /data/w --gpus 2 --devices=1,3",
			env:  []string{"CUDA_VISIBLE_DEVICES=1,3", "SERVER_PORT=7000"}},
		{name: "simulator",
			spec: Spec{Framework: FrameworkSimulator, Model: hub, GPUs: 2, Args: []string{"--seed", "7"}},
			p:    Placement{Model: hub, Port: 8100, Devices: []int{0, 1}},
			argv: "/opt/perfleet/perfleet-agent simulate --listen 127.0.0.1:8100 --gpu L4 --gpus 2 --model meta-llama/Llama-3.1-8B --seed 7",
			env:  []string{"CUDA_VISIBLE_DEVICES=0,1"}},
		{name: "simulator s3 model, spec GPU type",
			spec: Spec{Framework: FrameworkSimulator, Model: "s3://bucket/models/qwen-7b/", SimulatedGPU: "A100-80GB"},
			p:    Placement{Model: "/c/s3/x/model", Port: 8101},
			argv: "/opt/perfleet/perfleet-agent simulate --listen 127.0.0.1:8101 --gpu A100-80GB --gpus 1 --model qwen-7b",
			env:  []string{"CUDA_VISIBLE_DEVICES="}},
		{name: "vllm data-parallel copies",
			spec: Spec{Framework: FrameworkVLLM, Model: hub, GPUs: 1, Copies: 8, ServedModelName: "llama"},
			p:    Placement{Model: hub, Port: 8000, Devices: []int{0, 1, 2, 3, 4, 5, 6, 7}},
			argv: "vllm serve meta-llama/Llama-3.1-8B --tensor-parallel-size 1 --port 8000 --host 127.0.0.1 --data-parallel-size 8 --served-model-name llama",
			env:  []string{"CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7"}},
		{name: "vllm one copy adds no flag",
			spec: Spec{Framework: FrameworkVLLM, Model: hub, GPUs: 8, Copies: 1},
			p:    Placement{Model: hub, Port: 8000, Devices: []int{0, 1, 2, 3, 4, 5, 6, 7}},
			argv: "vllm serve meta-llama/Llama-3.1-8B --tensor-parallel-size 8 --port 8000 --host 127.0.0.1",
			env:  []string{"CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7"}},
		{name: "sglang data-parallel copies",
			spec: Spec{Framework: FrameworkSGLang, Model: hub, GPUs: 2, Copies: 2, ServedModelName: "llama"},
			p:    Placement{Model: hub, Port: 9000, Devices: []int{4, 5, 6, 7}},
			argv: "python3 -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B --tp 2 --port 9000 --host 127.0.0.1 --dp-size 2 --served-model-name llama",
			env:  []string{"CUDA_VISIBLE_DEVICES=4,5,6,7"}},
		{name: "simulator copies",
			spec: Spec{Framework: FrameworkSimulator, Model: hub, GPUs: 2, Copies: 4, Args: []string{"--seed", "7"}},
			p:    Placement{Model: hub, Port: 8100, Devices: []int{0, 1, 2, 3, 4, 5, 6, 7}},
			argv: "/opt/perfleet/perfleet-agent simulate --listen 127.0.0.1:8100 --gpu L4 --gpus 2 --model meta-llama/Llama-3.1-8B --copies 4 --seed 7",
			env:  []string{"CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7"}},
		{name: "no GPUs hides all",
			spec: Spec{Framework: FrameworkVLLM, Model: hub},
			p:    Placement{Model: hub, Port: 8000},
			argv: "vllm serve meta-llama/Llama-3.1-8B --tensor-parallel-size 1 --port 8000 --host 127.0.0.1",
			env:  []string{"CUDA_VISIBLE_DEVICES="}},
		{name: "program override",
			cfg:  &Config{Programs: map[Framework][]string{FrameworkVLLM: {"/opt/venv/bin/vllm", "serve"}}},
			spec: Spec{Framework: FrameworkVLLM, Model: hub, GPUs: 1},
			p:    Placement{Model: hub, Port: 8000, Devices: []int{7}},
			argv: "/opt/venv/bin/vllm serve meta-llama/Llama-3.1-8B --tensor-parallel-size 1 --port 8000 --host 127.0.0.1",
			env:  []string{"CUDA_VISIBLE_DEVICES=7"}},
		{name: "docker vllm",
			spec: Spec{ID: "a1", Framework: FrameworkVLLM, Model: "s3://b/m", GPUs: 2, Runtime: RuntimeDocker,
				Env: map[string]string{"HF_TOKEN": "secret"}},
			p: Placement{Model: "/var/cache/perfleet/s3/ab/model", Port: 8000, Devices: []int{0, 1}},
			argv: `docker run --rm --name perfleet-ms-a1 --network host --ipc host --gpus "device=0,1" ` +
				`-v /var/cache/perfleet:/var/cache/perfleet -e HF_TOKEN --entrypoint vllm vllm/vllm-openai:latest ` +
				`serve /var/cache/perfleet/s3/ab/model --tensor-parallel-size 2 --port 8000 --host 127.0.0.1`,
			env: []string{"HF_TOKEN=secret"}},
		{name: "docker lmi file model, configured image",
			cfg:  &Config{CacheDir: "/c", Docker: "/usr/bin/docker", Images: map[Framework]string{FrameworkLMI: "lmi:dev"}},
			spec: Spec{ID: "l", Framework: FrameworkLMI, Model: "file:///models/m", GPUs: 1, Runtime: RuntimeDocker},
			p:    Placement{Model: "/models/m", Port: 8080, Devices: []int{3}},
			argv: `/usr/bin/docker run --rm --name perfleet-ms-l --network host --ipc host --gpus "device=3" -v /c:/c ` +
				`-v /models/m:/models/m:ro -e OPTION_TENSOR_PARALLEL_DEGREE -e SERVING_INFERENCE_ADDRESS -e SERVING_MANAGEMENT_ADDRESS ` +
				`--entrypoint djl-serving lmi:dev -m /models/m`,
			env: []string{"OPTION_TENSOR_PARALLEL_DEGREE=1", "SERVING_INFERENCE_ADDRESS=http://127.0.0.1:8080",
				"SERVING_MANAGEMENT_ADDRESS=http://127.0.0.1:8080"}},
		{name: "docker sglang, spec image, no GPUs",
			spec: Spec{ID: "s", Framework: FrameworkSGLang, Model: hub, Runtime: RuntimeDocker, Image: "sglang:nightly"},
			p:    Placement{Model: hub, Port: 30000},
			argv: `docker run --rm --name perfleet-ms-s --network host --ipc host -v /var/cache/perfleet:/var/cache/perfleet ` +
				`--entrypoint python3 sglang:nightly -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B --tp 1 --port 30000 --host 127.0.0.1`,
			env: []string{}},
		{name: "docker vllm copies",
			spec: Spec{ID: "dp", Framework: FrameworkVLLM, Model: hub, GPUs: 1, Copies: 2, Runtime: RuntimeDocker},
			p:    Placement{Model: hub, Port: 8000, Devices: []int{2, 3}},
			argv: `docker run --rm --name perfleet-ms-dp --network host --ipc host --gpus "device=2,3" ` +
				`-v /var/cache/perfleet:/var/cache/perfleet --entrypoint vllm vllm/vllm-openai:latest ` +
				`serve meta-llama/Llama-3.1-8B --tensor-parallel-size 1 --port 8000 --host 127.0.0.1 --data-parallel-size 2`,
			env: []string{}},
		{name: "docker simulator",
			spec: Spec{ID: "sim", Framework: FrameworkSimulator, Model: "m", GPUs: 1, Runtime: RuntimeDocker},
			p:    Placement{Model: "m", Port: 8000, Devices: []int{0}},
			argv: `docker run --rm --name perfleet-ms-sim --network host --ipc host --gpus "device=0" -v /var/cache/perfleet:/var/cache/perfleet ` +
				`--entrypoint perfleet-agent perfleet/perfleet-agent:latest simulate --listen 127.0.0.1:8000 --gpu L4 --gpus 1 --model m`,
			env: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				c = *tc.cfg
			}
			inv, err := BuildInvocation(c, tc.spec, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if want := words(tc.argv); !slices.Equal(inv.Argv, want) {
				t.Errorf("argv\n got %q\nwant %q", inv.Argv, want)
			}
			if !slices.Equal(inv.Env, tc.env) && !(len(inv.Env) == 0 && len(tc.env) == 0) {
				t.Errorf("env\n got %q\nwant %q", inv.Env, tc.env)
			}
		})
	}
}

func TestBuildInvocationErrors(t *testing.T) {
	p := Placement{Port: 1}
	for name, tc := range map[string]struct {
		cfg  Config
		spec Spec
	}{
		"docker command without image": {spec: Spec{Framework: FrameworkCommand, Command: []string{"x"}, Runtime: RuntimeDocker}},
		"simulator without executable": {spec: Spec{Framework: FrameworkSimulator, Model: "m"}},
		"unknown framework":            {spec: Spec{Framework: "NOPE"}},
	} {
		if _, err := BuildInvocation(tc.cfg, tc.spec, p); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: err = %v, want ErrInvalidSpec", name, err)
		}
	}
	cfg := Config{Executable: "/x"}
	for _, spec := range []Spec{
		{Framework: FrameworkTGI, Model: "m", GPUs: 1, Copies: 2},
		{Framework: FrameworkTriton, Model: "m", Copies: 2},
		{Framework: FrameworkLMI, Model: "m", GPUs: 2, Copies: 4},
		{Framework: FrameworkCommand, Command: []string{"x"}, Copies: 2},
	} {
		_, err := BuildInvocation(cfg, spec, p)
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), string(spec.Framework)) ||
			!strings.Contains(err.Error(), "no data-parallel mode") {
			t.Errorf("%s with %d copies: err = %v, want ErrInvalidSpec naming the framework", spec.Framework, spec.Copies, err)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	ok := []Spec{
		{Framework: FrameworkVLLM, Model: "meta-llama/Llama-3.1-8B", GPUs: 1},
		{Framework: FrameworkTriton, Model: "s3://bucket/repo/"},
		{Framework: FrameworkLMI, Model: "file:///models/x", Runtime: RuntimeDocker},
		{Framework: FrameworkCommand, Command: []string{"sh", "-c", "x"}, Port: 65535, HealthPath: "/ok"},
		{Framework: FrameworkVLLM, Model: "m", GPUs: 1, Copies: 8},
		{Framework: FrameworkSGLang, Model: "m", GPUs: 2, Copies: MaxCopies},
		{Framework: FrameworkSimulator, Model: "m", Copies: 3},
		{Framework: FrameworkTGI, Model: "m", GPUs: 4, Copies: 1},
		{Framework: FrameworkCommand, Command: []string{"x"}, Copies: 1},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := map[string]Spec{
		"no framework":      {Model: "m"},
		"unknown framework": {Framework: "ollama", Model: "m"},
		"no model":          {Framework: FrameworkVLLM},
		"no command":        {Framework: FrameworkCommand},
		"http model":        {Framework: FrameworkVLLM, Model: "https://example.com/m"},
		"relative file":     {Framework: FrameworkVLLM, Model: "file://models/m"},
		"negative GPUs":     {Framework: FrameworkVLLM, Model: "m", GPUs: -1},
		"port":              {Framework: FrameworkVLLM, Model: "m", Port: 70000},
		"health path":       {Framework: FrameworkVLLM, Model: "m", HealthPath: "health"},
		"timeout":           {Framework: FrameworkVLLM, Model: "m", ReadinessTimeout: -1},
		"runtime":           {Framework: FrameworkVLLM, Model: "m", Runtime: "podman"},
		"env name":          {Framework: FrameworkVLLM, Model: "m", Env: map[string]string{"A=B": "c"}},
		"devices in env":    {Framework: FrameworkVLLM, Model: "m", Env: map[string]string{"CUDA_VISIBLE_DEVICES": "0"}},
		"negative copies":   {Framework: FrameworkVLLM, Model: "m", Copies: -1},
		"too many copies":   {Framework: FrameworkVLLM, Model: "m", Copies: MaxCopies + 1},
		"TGI copies":        {Framework: FrameworkTGI, Model: "m", GPUs: 1, Copies: 2},
		"Triton copies":     {Framework: FrameworkTriton, Model: "m", Copies: 2},
		"LMI copies":        {Framework: FrameworkLMI, Model: "m", Copies: 2},
		"COMMAND copies":    {Framework: FrameworkCommand, Command: []string{"x"}, Copies: 2},
	}
	for name, s := range bad {
		if err := s.Validate(); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: err = %v, want ErrInvalidSpec", name, err)
		}
	}
	s := Spec{Framework: FrameworkLMI, Model: "m", Copies: 2}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "framework LMI has no data-parallel mode") {
		t.Errorf("LMI copies: %v, want the framework named", err)
	}
}

func TestSupportsDataParallelAndGPUCount(t *testing.T) {
	want := map[Framework]bool{FrameworkVLLM: true, FrameworkSGLang: true, FrameworkSimulator: true,
		FrameworkTGI: false, FrameworkTriton: false, FrameworkLMI: false, FrameworkCommand: false}
	for f, w := range want {
		if got := SupportsDataParallel(f); got != w {
			t.Errorf("SupportsDataParallel(%s) = %v, want %v", f, got, w)
		}
	}
	for _, tc := range []struct{ gpus, copies, want int }{{0, 0, 0}, {2, 0, 2}, {1, 1, 1}, {1, 8, 8}, {2, 4, 8}, {0, 3, 0}} {
		s := Spec{GPUs: tc.gpus, Copies: tc.copies}
		if got := s.GPUCount(); got != tc.want {
			t.Errorf("GPUs %d × copies %d: %d devices, want %d", tc.gpus, tc.copies, got, tc.want)
		}
	}
}

func TestDefaultHealthPath(t *testing.T) {
	want := map[Framework]string{FrameworkVLLM: "/health", FrameworkSGLang: "/health", FrameworkTGI: "/health",
		FrameworkSimulator: "/health", FrameworkCommand: "/health", FrameworkTriton: "/v2/health/ready", FrameworkLMI: "/ping"}
	for f, p := range want {
		if got := DefaultHealthPath(f); got != p {
			t.Errorf("%s: %q, want %q", f, got, p)
		}
	}
}
