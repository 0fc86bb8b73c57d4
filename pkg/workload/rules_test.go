package workload

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// invalidCase is a document that breaks one rule, the path it must be
// reported at and a substring of the rule.
type invalidCase struct {
	name, doc, path, rule string
}

// bench is the valid benchmark section the cases build on.
const bench = "benchmark: {type: aiperf}\n"

var invalidCases = []invalidCase{
	// Document.
	{"document over 1 MiB", bench + "# " + strings.Repeat("x", MaxDocumentBytes), "", "limit is 1048576"},
	{"syntax error", `{"benchmark": {"type": "aiperf"`, "", "invalid JSON or YAML"},
	{"empty document", "  \n# nothing\n", "", "document is empty"},
	{"two documents", bench + "---\n" + bench, "", "exactly one"},
	{"top level is a list", "[1, 2]", "", "must be a mapping"},
	{"YAML alias", "benchmark: {type: aiperf}\nparameters: {isl: &n 5, osl: *n}", "parameters.osl", "aliases are not supported"},
	{"duplicate JSON key", `{"benchmark": {"type": "aiperf"}, "benchmark": {"type": "aiperf"}}`, "benchmark", "duplicate key"},
	{"duplicate parameter", params("concurrency: 1, concurrency: 2"), "parameters.concurrency", "duplicate key"},
	{"non-string key", bench + "parameters: {? [a]: 1}", "parameters", "keys must be strings"},

	// Top level and fixed sections.
	{"unknown top-level key", bench + "extras: {}", "extras", "unknown key"},
	{"parameter at top level", bench + "concurrency: 4", "concurrency", `did you mean "parameters.concurrency"?`},
	{"misspelt section", bench + "parameter: {isl: 5}", "parameter", `did you mean "parameters"?`},
	{"benchmark missing", "parameters: {isl: 5}", "benchmark.type", "is required"},
	{"benchmark.type missing", "benchmark: {}", "benchmark.type", "is required"},
	{"benchmark.type not aiperf", "benchmark: {type: genai-perf}", "benchmark.type", `must be "aiperf"`},
	{"benchmark not a mapping", "benchmark: aiperf", "benchmark", "must be a mapping"},
	{"unknown benchmark key", "benchmark: {type: aiperf, tool: x}", "benchmark.tool", "unknown key"},
	{"bad api_standard", bench + "tooling: {api_standard: grpc}", "tooling.api_standard", "must be one of openai, kserve, http"},
	{"bad version", bench + "tooling: {version: 'latest please'}", "tooling.version", "must be a version"},
	{"parameters not a mapping", bench + "parameters: [1]", "parameters", "must be a mapping"},

	// Unknown and aliased parameters.
	{"typo suggests", params("concurreny: 4"), "parameters.concurreny", `unknown key; did you mean "concurrency"?`},
	{"unknown parameter", params("warp_speed: 9"), "parameters.warp_speed", "unknown key"},
	{"placement under parameters", params("placement: {agents: 2}"), "parameters.placement", `did you mean "placement"?`},
	{"alias beside canonical", params("prompt_input_tokens_mean: 5, isl: 6"), "parameters.isl", `"isl" is an alias of "prompt_input_tokens_mean"`},
	{"canonical after alias", params("osl: 5, output_tokens_mean: 6"), "parameters.output_tokens_mean", `"osl" is an alias of "output_tokens_mean"`},
	{"two aliases", params("num_sessions: 5, conversation_num: 6"), "parameters.conversation_num", `both are aliases of "num_conversations"`},

	// Types and ranges.
	{"string for integer", params(`request_count: "100"`), "parameters.request_count", "must be an integer"},
	{"float for integer", params("request_count: 1.5"), "parameters.request_count", "must be an integer"},
	{"whole float for integer", params("num_requests: 10.0"), "parameters.num_requests", "must be an integer"},
	{"hex integer", params("request_count: 0x10"), "parameters.request_count", "must be a decimal integer"},
	{"negative count", params("request_count: -1"), "parameters.request_count", "must be at least 1"},
	{"null value", params("tokenizer: null"), "parameters.tokenizer", "must not be null"},
	{"empty string", params("tokenizer: ''"), "parameters.tokenizer", "must not be empty"},
	{"number for string", params("tokenizer: 7"), "parameters.tokenizer", "must be a string"},
	{"string for boolean", params("streaming: 'yes'"), "parameters.streaming", "must be a boolean"},
	{"string for number", params("request_rate: fast"), "parameters.request_rate", "must be a number"},
	{"NaN", params("request_rate: .nan"), "parameters.request_rate", "must be a finite number"},
	{"zero concurrency", params("concurrency: 0"), "parameters.concurrency", "must be between 1 and 100000"},
	{"concurrency over limit", params("concurrency: 100001"), "parameters.concurrency", "must be between 1 and 100000"},
	{"concurrency mapping", params("concurrency: {a: 1}"), "parameters.concurrency", "must be an integer or a list of integers"},
	{"empty concurrency list", params("concurrency: []"), "parameters.concurrency", "must be a list of 1 to 1000 values"},
	{"concurrency list too long", params("concurrency: [" + strings.Repeat("1, ", 1000) + "2]"), "parameters.concurrency", "must be a list of 1 to 1000 values"},
	{"duplicate in concurrency list", params("concurrency: [1, 8, 8]"), "parameters.concurrency[2]", "duplicate concurrency 8"},
	{"non-positive in concurrency list", params("concurrency: [4, -2]"), "parameters.concurrency[1]", "must be between 1 and 100000"},
	{"string in concurrency list", params("concurrency: [4, '8']"), "parameters.concurrency[1]", "must be an integer"},
	{"negative input stddev", params("isl_stddev: -1"), "parameters.isl_stddev", "must be at least 0"},
	{"negative output stddev", params("output_tokens_stddev: -0.5"), "parameters.output_tokens_stddev", "must be at least 0"},
	{"input mean below 1", params("prompt_input_tokens_mean: 0"), "parameters.prompt_input_tokens_mean", "must be at least 1"},
	{"output mean below 1", params("osl: 0"), "parameters.osl", "must be at least 1"},
	{"zero request rate", params("request_rate: 0"), "parameters.request_rate", "must be greater than 0"},
	{"zero arrival smoothness", params("request_rate: 1, arrival_smoothness: 0"), "parameters.arrival_smoothness", "must be greater than 0"},
	{"error rate over 1", params("search_recipe: max-concurrency-under-sla, error_rate_sla: 1.5"), "parameters.error_rate_sla", "must be between 0 and 1"},
	{"negative random seed", params("random_seed: -3"), "parameters.random_seed", "must be at least 0"},
	{"zero search iterations", params("search_recipe: max-concurrency-under-sla, e2e_sla_ms: 9, search_max_iterations: 0"), "parameters.search_max_iterations", "must be between 1 and 1000"},
	{"bad arrival pattern", params("request_rate: 1, request_rate_mode: burst"), "parameters.request_rate_mode", "must be one of constant, poisson, gamma"},
	{"bad model selection", params("model_selection_strategy: weighted"), "parameters.model_selection_strategy", "must be one of round_robin, random"},
	{"empty model list", params("model: []"), "parameters.model", "must not be an empty list"},
	{"duplicate model", params("model: [a, a]"), "parameters.model[1]", `duplicate model "a"`},

	// Secrets.
	{"plaintext hf_token", params("hf_token: hf_abcdef"), "parameters.hf_token", "put a secret reference in secrets.hf_token"},
	{"hf_token reference in both places", params("hf_token: perfleet:secret/a") + "secrets: {hf_token: perfleet:secret/b}", "parameters.hf_token", "must not be set together with secrets.hf_token"},
	{"secret is not a reference", bench + "secrets: {hf_token: hf_abcdef}", "secrets.hf_token", "must be a secret reference"},
	{"ARN with short account", bench + "secrets: {hf_token: 'arn:aws:secretsmanager:us-east-1:12345:secret:hf'}", "secrets.hf_token", "must be a secret reference"},
	{"ARN of another service", bench + "secrets: {api_key: 'arn:aws:ssm:us-east-1:123456789012:parameter/x'}", "secrets.api_key", "must be a secret reference"},
	{"unknown secret name", bench + "secrets: {password: perfleet:secret/x}", "secrets.password", "secrets may be given for api_key, hf_token"},

	// SLA search.
	{"bad search recipe", params("search_recipe: min-latency"), "parameters.search_recipe", "must be one of max-concurrency-under-sla"},
	{"search with concurrency", params("search_recipe: max-concurrency-under-sla, ttft_sla_ms: 200, concurrency: 8"), "parameters.concurrency", "must not be set together with search_recipe"},
	{"search with request rate", params("search_recipe: max-concurrency-under-sla, ttft_sla_ms: 200, request_rate: 8"), "parameters.request_rate", "must not be set together with search_recipe"},
	{"search without threshold", params("search_recipe: max-concurrency-under-sla"), "parameters.search_recipe", "requires at least one SLA threshold"},
	{"search min above max", params("search_recipe: max-concurrency-under-sla, e2e_sla_ms: 900, concurrency_min: 64, concurrency_max: 8"), "parameters.concurrency_min", "must not exceed concurrency_max, 8"},
	{"search min above default max", params("search_recipe: max-concurrency-under-sla, e2e_sla_ms: 900, concurrency_min: 300"), "parameters.concurrency_min", "256 (the default)"},
	{"ttft SLA without streaming", params("search_recipe: max-concurrency-under-sla, ttft_sla_ms: 200, streaming: false"), "parameters.ttft_sla_ms", "requires streaming: true"},
	{"tpot SLA without streaming", params("search_recipe: max-concurrency-under-sla, tpot_sla_ms: 20, streaming: false"), "parameters.tpot_sla_ms", "requires streaming: true"},
	{"SLA without search", params("ttft_sla_ms: 200"), "parameters.ttft_sla_ms", "requires search_recipe"},
	{"search bound without search", params("concurrency_max: 20"), "parameters.concurrency_max", "requires search_recipe"},
	{"bad search stat", params("search_recipe: max-concurrency-under-sla, e2e_sla_ms: 9, search_stat: p42"), "parameters.search_stat", "must be one of avg, p50, p90, p95, p99"},

	// Load shapes.
	{"rate with concurrency sweep", params("request_rate: 5, concurrency: [1, 2]"), "parameters.concurrency", "must not be combined with request_rate"},
	{"max_concurrency without rate", params("max_concurrency: 8"), "parameters.max_concurrency", "requires request_rate"},
	{"max_concurrency beside concurrency", params("request_rate: 5, concurrency: 4, max_concurrency: 8"), "parameters.max_concurrency", "must not be set together with concurrency"},
	{"arrival pattern without rate", params("arrival_pattern: poisson"), "parameters.arrival_pattern", "requires request_rate"},
	{"smoothness with constant arrivals", params("request_rate: 5, request_rate_mode: constant, vllm_burstiness: 2"), "parameters.vllm_burstiness", "requires request_rate_mode gamma"},
	{"phases and stairs", params("phases: [{initial_users: 1, duration_seconds: 9}], stairs: {users_per_step: 1, step_duration_seconds: 9, number_of_steps: 2}"), "parameters.stairs", "must not be set together with phases"},
	{"phases and trace", params("phases: [{initial_users: 1, duration_seconds: 9}], trace_file: t.jsonl"), "parameters.trace_file", "must not be set together with phases"},
	{"stairs and trace", params("stairs: {users_per_step: 1, step_duration_seconds: 9, number_of_steps: 2}, trace_file: t.jsonl"), "parameters.trace_file", "must not be set together with stairs"},
	{"phases with request rate", params("phases: [{initial_users: 1, duration_seconds: 9}], request_rate: 3"), "parameters.phases", "must not be set together with request_rate"},
	{"stairs with concurrency sweep", params("stairs: {users_per_step: 1, step_duration_seconds: 9, number_of_steps: 2}, concurrency: [1, 2]"), "parameters.stairs", "must not be set together with concurrency"},
	{"trace with search", params("trace_file: t.jsonl, search_recipe: max-concurrency-under-sla, e2e_sla_ms: 9"), "parameters.trace_file", "must not be set together with search_recipe"},
	{"phases with duration", params("phases: [{initial_users: 1, duration_seconds: 9}], benchmark_duration: 60"), "parameters.phases", "must not be set together with benchmark_duration"},
	{"empty phases", params("phases: []"), "parameters.phases", "must be a list of 1 to 1000 phases"},
	{"phase without duration", params("phases: [{initial_users: 1}]"), "parameters.phases[0].duration_seconds", "is required"},
	{"phase with unknown key", params("phases: [{initial_users: 1, duration_seconds: 9, users: 3}]"), "parameters.phases[0].users", "unknown key"},
	{"phase negative spawn rate", params("phases: [{initial_users: 1, duration_seconds: 9, spawn_rate: -1}]"), "parameters.phases[0].spawn_rate", "must be at least 0"},
	{"stairs missing steps", params("stairs: {users_per_step: 1, step_duration_seconds: 9}"), "parameters.stairs.number_of_steps", "is required"},
	{"stairs over user limit", params("stairs: {users_per_step: 1000, step_duration_seconds: 9, number_of_steps: 101}"), "parameters.stairs", "the limit is 100000"},
	{"trace with input file", params("trace_file: t.jsonl, input_file: d.jsonl"), "parameters.trace_file", "must not be set together with input_file"},

	// Goodput.
	{"goodput ITL without streaming", params(`goodput: "inter_token_latency:10", streaming: false`), "parameters.goodput.inter_token_latency", "requires streaming: true"},
	{"goodput TTFT without streaming", params(`goodput: {time_to_first_token: 100}, streaming: false`), "parameters.goodput.time_to_first_token", "requires streaming: true"},
	{"goodput unknown metric", params(`goodput: "time_to_first_tokn:100"`), "parameters.goodput.time_to_first_tokn", `did you mean "time_to_first_token"?`},
	{"goodput zero value", params(`goodput: "request_latency:0"`), "parameters.goodput.request_latency", "must be greater than 0"},
	{"goodput non-number", params(`goodput: "request_latency:fast"`), "parameters.goodput.request_latency", "must be a number"},
	{"goodput without colon", params(`goodput: "request_latency"`), "parameters.goodput", "must be metric:value"},
	{"goodput duplicate metric", params(`goodput: "request_latency:5 request_latency:6"`), "parameters.goodput.request_latency", "duplicate goodput metric"},

	// Extra inputs.
	{"extra input without colon", params(`extra_inputs: "ignore_eos"`), "parameters.extra_inputs", "must be key:value"},
	{"extra input ignore_eos not bool", params(`extra_inputs: "ignore_eos:maybe"`), "parameters.extra_inputs.ignore_eos", "must be a boolean"},
	{"extra input max_tokens not int", params(`extra_inputs: {max_tokens: 1.5}`), "parameters.extra_inputs.max_tokens", "must be an integer of at least 1"},
	{"extra input stream", params(`extra_inputs: {stream: false}`), "parameters.extra_inputs.stream", "use parameters.streaming"},
	{"extra input duplicate", params(`extra_inputs: "max_tokens:1 max_tokens:2"`), "parameters.extra_inputs.max_tokens", "duplicate key"},
	{"extra inputs broken JSON string", params(`extra_inputs: '{"max_tokens": 3'`), "parameters.extra_inputs", "must be key:value pairs or a JSON object"},
	{"extra input empty template", params(`extra_inputs: {payload_template: ""}`), "parameters.extra_inputs.payload_template", "must be a non-empty string"},

	// Dataset and multimodal.
	{"dataset type without file", params("custom_dataset_type: single_turn"), "parameters.custom_dataset_type", "requires input_file"},
	{"bad dataset type", params("custom_dataset_type: csv, input_file: x"), "parameters.custom_dataset_type", "must be one of single_turn"},
	{"public dataset with file", params("public_dataset: sharegpt, input_file: x.jsonl"), "parameters.public_dataset", "must not be set together with input_file"},
	{"bad public dataset name", params("public_dataset: 'share gpt!'"), "parameters.public_dataset", "must be a dataset name"},
	{"bad sampling strategy", params("dataset_sampling_strategy: zigzag"), "parameters.dataset_sampling_strategy", "must be one of shuffle, sequential, random"},
	{"video width alone", params("video_width: 640"), "parameters.video_width", "requires video_height"},
	{"bad audio depth", params("video_audio_depth: 12"), "parameters.video_audio_depth", "must be one of 8, 16, 24, 32"},
	{"bad image format", params("image_format: gif"), "parameters.image_format", "must be one of png, jpeg, random"},
	{"negative image batch", params("image_batch_size: -1"), "parameters.image_batch_size", "must be at least 0"},
	{"audio channels over 2", params("video_audio_num_channels: 3"), "parameters.video_audio_num_channels", "must be between 0 and 2"},

	// Grace periods.
	{"grace period without duration", params("benchmark_grace_period: 5"), "parameters.benchmark_grace_period", "requires benchmark_duration"},
	{"warmup grace without warmup duration", params("warmup_grace_period: 5"), "parameters.warmup_grace_period", "requires warmup_duration"},

	// perfleet request extensions.
	{"api against api_standard", bench + "tooling: {api_standard: openai}\nparameters: {api: kserve-v2}", "parameters.api", `does not match tooling.api_standard "openai"`},
	{"bad api", params("api: grpc"), "parameters.api", "must be one of openai-chat, openai-completions, kserve-v2, http"},
	{"relative endpoint path", params("endpoint_path: v1/chat"), "parameters.endpoint_path", `must be a URL path starting with "/"`},
	{"credential header", params("headers: {Authorization: Bearer abc}"), "parameters.headers.Authorization", "put a secret reference in secrets.api_key"},
	{"bad header name", params(`headers: {"X Bad": v}`), "parameters.headers.X Bad", "must be a valid HTTP header name"},
	{"header value not string", params("headers: {X-Count: 3}"), "parameters.headers.X-Count", "must be a string"},

	// Placement.
	{"placement agents word", bench + "placement: {agents: many}", "placement.agents", `must be a positive integer or "all"`},
	{"placement zero agents", bench + "placement: {agents: 0}", "placement.agents", "must be between 1 and 10000"},
	{"placement bad label", bench + "placement: {selector: {-gpu: h100}}", "placement.selector.-gpu", "must be a label name"},
	{"placement label value not string", bench + "placement: {selector: {gpus: 8}}", "placement.selector.gpus", "must be a string"},
	{"placement zero streams", bench + "placement: {streams_per_agent: 0}", "placement.streams_per_agent", "must be between 1 and 100000"},
	{"placement typo", bench + "placement: {agent: 2}", "placement.agent", `did you mean "agents"?`},
}

func TestParseRejectsEachRule(t *testing.T) {
	for _, c := range invalidCases {
		t.Run(c.name, func(t *testing.T) {
			spec, err := Parse([]byte(c.doc))
			if err == nil {
				t.Fatalf("Parse accepted the document: %+v", spec)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want Errors", err)
			}
			for _, fe := range list {
				if fe.Path == c.path && strings.Contains(fe.Rule, c.rule) {
					return
				}
			}
			t.Fatalf("no problem at %q containing %q; got:\n%v", c.path, c.rule, strings.ReplaceAll(err.Error(), "; ", "\n"))
		})
	}
}

func TestParseCollectsEveryProblem(t *testing.T) {
	doc := params("concurrency: [0, 2, 2], isl: -1, streaming: 1, extra: x") + "secrets: {hf_token: plain}\n"
	_, err := Parse([]byte(doc))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want Errors", err)
	}
	want := []string{"parameters.concurrency[0]", "parameters.concurrency[2]", "parameters.extra",
		"parameters.isl", "parameters.streaming", "secrets.hf_token"}
	if len(list) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(list), len(want), err)
	}
	for i, fe := range list {
		if fe.Path != want[i] {
			t.Errorf("problem %d at %q, want %q", i, fe.Path, want[i])
		}
	}
}

func TestParseBoundsTheProblemList(t *testing.T) {
	var b strings.Builder
	b.WriteString(bench + "parameters:\n")
	for i := 0; b.Len() < MaxDocumentBytes-64; i++ {
		fmt.Fprintf(&b, "  concurrenc%d: 1\n", i)
	}
	_, err := Parse([]byte(b.String()))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want Errors", err)
	}
	if len(list) != MaxProblems+1 || list[0].Path != "" || !strings.HasSuffix(list[0].Rule, "more problems not listed") {
		t.Fatalf("got %d problems, first %v", len(list), list[0])
	}
}

func TestAPIGiven(t *testing.T) {
	for doc, want := range map[string]bool{
		"benchmark: {type: aiperf}\nparameters: {concurrency: 1}\n":                      false,
		"benchmark: {type: aiperf}\nparameters: {api: kserve-v2}\n":                      true,
		"benchmark: {type: aiperf}\ntooling: {api_standard: http}\n":                     true,
		`{"benchmark": {"type": "aiperf"}, "parameters": {"api": "openai-completions"}}`: true,
		`{"benchmark": {"type": "aiperf"}}`:                                              false,
	} {
		if got := APIGiven([]byte(doc)); got != want {
			t.Errorf("APIGiven(%q) = %v, want %v", doc, got, want)
		}
	}
}
