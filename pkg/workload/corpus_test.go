package workload

import (
	"errors"
	"reflect"
	"sort"
	"testing"
)

// example is a valid workload spec used by several tests and as fuzz seed.
type example struct {
	name string
	doc  string
}

// validExamples are documents Parse must accept. The first ones are the
// examples of SageMaker's documentation as quoted in the reference notes.
var validExamples = []example{
	{"reference boto3 inline JSON", `{"benchmark": {"type": "aiperf"}, "parameters": {
		"prompt_input_tokens_mean": 550, "prompt_input_tokens_stddev": 150,
		"output_tokens_mean": 150, "output_tokens_stddev": 50}}`},
	{"reference CLI inline JSON", `{"benchmark": {"type": "aiperf"}, "parameters": {"prompt_input_tokens_mean": 550, "output_tokens_mean": 150}}`},
	{"reference concurrency sweep YAML", `
benchmark:
  type: aiperf
tooling:
  api_standard: openai
  version: 0.8.0
parameters:
  concurrency: [1, 10, 100]
  request_count: 200
  isl: 1024
  osl: 256
  streaming: true
`},
	{"reference goodput YAML", `
benchmark: {type: aiperf}
parameters:
  goodput: "time_to_first_token:100 inter_token_latency:10"
  extra_inputs: "ignore_eos:true max_tokens:128"
`},
	{"reference SLA search JSON", `{
  "benchmark": {"type": "aiperf"},
  "tooling": {"api_standard": "openai", "version": "0.8.0"},
  "parameters": {
    "search_recipe": "max-concurrency-under-sla",
    "ttft_sla_ms": 500, "tpot_sla_ms": 50, "e2e_sla_ms": 10000, "error_rate_sla": 0.01,
    "search_stat": "p90", "concurrency_min": 1, "concurrency_max": 64, "search_max_iterations": 8,
    "prompt_input_tokens_mean": 2048, "output_tokens_mean": 512
  }
}`},
	{"reference dataset with secret YAML", `
benchmark:
  type: aiperf
parameters:
  custom_dataset_type: openai-chat
  input_file: /opt/ml/input/data/dataset/prompts.jsonl
  dataset_sampling_strategy: shuffle
  tokenizer: meta-llama/Llama-3.1-8B-Instruct
  concurrency: 16
  benchmark_duration: 300
secrets:
  hf_token: arn:aws:secretsmanager:us-west-2:123456789012:secret:hf-token-AbCdEf
`},
	{"reference template mode YAML", `
benchmark: {type: aiperf}
parameters:
  extra_inputs: "payload_template:/opt/ml/input/data/template/payload.j2 response_field:choices[0].text"
  streaming: false
`},
	{"reference MLflow blog with model JSON", `{"benchmark": {"type": "aiperf"}, "tooling": {"version": "0.8.0"},
  "parameters": {"model": "qwen3-32b", "concurrency": [4, 16, 64], "num_requests": 500}}`},
	{"multi-LoRA round robin YAML", `
benchmark: {type: aiperf}
parameters:
  model: [adapter-a, adapter-b, adapter-c]
  model_selection_strategy: random
  concurrency: 8
`},
	{"request rate with gamma arrivals YAML", `
benchmark: {type: aiperf}
parameters:
  request_rate: 5.5
  arrival_pattern: GAMMA
  vllm_burstiness: 0.5
  max_concurrency: 32
  benchmark_duration: 60
  benchmark_grace_period: 10
  request_rate_ramp_duration: 5
`},
	{"warmup and general parameters JSON", `{"benchmark": {"type": "aiperf"}, "parameters": {
  "concurrency": 4, "warmup_duration": 10, "warmup_request_count": 20, "warmup_concurrency": 2,
  "warmup_prefill_concurrency": 1, "warmup_request_rate": 2, "warmup_arrival_pattern": "constant",
  "warmup_grace_period": 5, "num_warmup_sessions": 3, "warmup_concurrency_ramp_duration": 1,
  "warmup_prefill_concurrency_ramp_duration": 1, "warmup_request_rate_ramp_duration": 1,
  "prefill_concurrency": 2, "concurrency_ramp_duration": 3, "prefill_concurrency_ramp_duration": 2,
  "request_timeout_seconds": 600, "random_seed": 7, "verbose": true, "num_sessions": 50,
  "extra_inputs": {"ignore_eos": true, "max_tokens": 128, "temperature": 0.7, "stop": ["\n\n"],
                   "stream_options": {"include_usage": true}},
  "goodput": {"request_latency": 2500, "output_token_throughput_per_user": 30}}}`},
	{"multimodal YAML", `
benchmark: {type: aiperf}
parameters:
  public_dataset: sharegpt
  image_width_mean: 512
  image_width_stddev: 16
  image_height_mean: 512
  image_height_stddev: 0
  image_batch_size: 2
  image_format: jpeg
  video_batch_size: 1
  video_duration: 5
  video_fps: 4
  video_width: 640
  video_height: 480
  video_synth_type: grid_clock
  video_format: webm
  video_codec: libvpx-vp9
  video_audio_sample_rate: 44100
  video_audio_num_channels: 1
  video_audio_codec: libopus
  video_audio_depth: 16
`},
	{"perfleet phases with placement YAML", `
benchmark: {type: aiperf}
parameters:
  phases:
    - {initial_users: 1, spawn_rate: 1, duration_seconds: 120}
    - {initial_users: 4, spawn_rate: 2, duration_seconds: 300}
  headers: {X-Tenant: perf}
  endpoint_path: /v1/chat/completions
placement:
  agents: all
  selector: {gpu: h100, zone: us-west-2a}
  streams_per_agent: 4
`},
	{"perfleet stairs on KServe JSON", `{"benchmark": {"type": "aiperf"}, "tooling": {"api_standard": "kserve"},
  "parameters": {"stairs": {"users_per_step": 2, "step_duration_seconds": 60, "number_of_steps": 5},
                 "api": "kserve-v2", "streaming": false},
  "placement": {"agents": 3}}`},
	{"perfleet trace replay YAML", `
benchmark: {type: aiperf}
parameters:
  trace_file: /data/trace.jsonl
  api: openai-completions
secrets:
  api_key: perfleet:secret/team-a/endpoint-key
`},
}

// FuzzParse checks that Parse never panics, that a rejection is always a
// sorted, non-empty Errors matching ErrInvalid, and that an accepted spec
// survives Canonical → Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, ex := range validExamples {
		f.Add([]byte(ex.doc))
	}
	for _, c := range invalidCases {
		if len(c.doc) < 4096 {
			f.Add([]byte(c.doc))
		}
	}
	f.Add([]byte(params(`extra_inputs: {a: [1, 2.5, {b: null}], c: 1e300, d: -0.0}, goodput: {request_latency: 1e-9}`)))
	f.Add([]byte(bench + "tooling: {version: 1.20}\nparameters: {isl_stddev: -0.0, random_seed: 9223372036854775807}"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		spec, err := Parse(doc)
		if err != nil {
			checkRejection(t, err)
			return
		}
		canon, err := spec.Canonical()
		if err != nil {
			t.Fatalf("Canonical of an accepted spec failed: %v", err)
		}
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form rejected: %v\ncanonical: %s", err, canon)
		}
		if !reflect.DeepEqual(spec, again) {
			t.Fatalf("canonical round trip changed the spec:\n%+v\n%+v\ncanonical: %s", spec, again, canon)
		}
		if canon2, _ := again.Canonical(); string(canon2) != string(canon) {
			t.Fatalf("canonical form not stable:\n%s\n%s", canon, canon2)
		}
		if len(spec.Levels()) == 0 {
			t.Fatalf("accepted spec has no levels: %s", canon)
		}
	})
}

// checkRejection asserts the shape of a Parse error.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	var list Errors
	if !errors.As(err, &list) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse error %T %v is not Errors/ErrInvalid", err, err)
	}
	if len(list) == 0 {
		t.Fatal("empty Errors")
	}
	paths := make([]string, len(list))
	for i, fe := range list {
		if fe == nil || fe.Rule == "" {
			t.Fatalf("problem %d has no rule: %v", i, err)
		}
		paths[i] = fe.Path
	}
	if !sort.StringsAreSorted(paths) {
		t.Fatalf("problems not sorted by path: %v", paths)
	}
}
