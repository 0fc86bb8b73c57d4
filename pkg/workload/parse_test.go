package workload

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// mustParse parses doc and fails the test on error.
func mustParse(t *testing.T, doc string) *Spec {
	t.Helper()
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%q) = %v", doc, err)
	}
	return s
}

// params wraps a flow mapping of parameters into a minimal document.
func params(flow string) string {
	return "benchmark: {type: aiperf}\nparameters: {" + flow + "}\n"
}

func TestParseAcceptsValidExamples(t *testing.T) {
	for _, ex := range validExamples {
		t.Run(ex.name, func(t *testing.T) {
			s := mustParse(t, ex.doc)
			canon, err := s.Canonical()
			if err != nil {
				t.Fatalf("Canonical: %v", err)
			}
			again := mustParse(t, string(canon))
			if !reflect.DeepEqual(s, again) {
				t.Fatalf("re-parsed canonical differs:\n first %+v\nsecond %+v", s, again)
			}
			canon2, _ := again.Canonical()
			if string(canon) != string(canon2) {
				t.Fatalf("canonical not idempotent:\n%s\n%s", canon, canon2)
			}
		})
	}
}

func TestJSONAndYAMLGiveTheSameSpec(t *testing.T) {
	pairs := [][2]string{
		{`{"benchmark": {"type": "aiperf"}, "parameters": {"concurrency": [1, 8], "isl": 100, "goodput": "request_latency:300"}}`,
			"benchmark:\n  type: aiperf\nparameters:\n  concurrency:\n    - 1\n    - 8\n  isl: 100\n  goodput: request_latency:300\n"},
		{"{\n\t\"benchmark\": {\"type\": \"aiperf\"},\n\t\"secrets\": {\"hf_token\": \"perfleet:secret/hf\"},\n\t\"placement\": {\"agents\": \"all\"}\n}",
			"benchmark: {type: aiperf}\nsecrets:\n  hf_token: perfleet:secret/hf\nplacement:\n  agents: ALL\n"},
	}
	for _, pair := range pairs {
		j, y := mustParse(t, pair[0]), mustParse(t, pair[1])
		if !reflect.DeepEqual(j, y) {
			t.Errorf("JSON and YAML differ:\nJSON %+v\nYAML %+v", j, y)
		}
	}
}

// aliasCases pairs every alias with its canonical name and a valid value.
var aliasCases = []struct{ alias, canonical, value string }{
	{"synthetic_input_tokens_mean", "prompt_input_tokens_mean", "300"},
	{"isl", "prompt_input_tokens_mean", "300"},
	{"synthetic_input_tokens_stddev", "prompt_input_tokens_stddev", "12.5"},
	{"isl_stddev", "prompt_input_tokens_stddev", "12.5"},
	{"prompt_output_tokens_mean", "output_tokens_mean", "64"},
	{"osl", "output_tokens_mean", "64"},
	{"prompt_output_tokens_stddev", "output_tokens_stddev", "3"},
	{"osl_stddev", "output_tokens_stddev", "3"},
	{"num_requests", "request_count", "42"},
	{"arrival_pattern", "request_rate_mode", "constant, request_rate: 2"},
	{"vllm_burstiness", "arrival_smoothness", "2, request_rate: 2"},
	{"conversation_num", "num_conversations", "9"},
	{"num_sessions", "num_conversations", "9"},
	{"model_names", "model", "[a, b]"},
	{"num_warmup_requests", "warmup_request_count", "5"},
	{"batch_size_image", "image_batch_size", "2"},
	{"batch_size_video", "video_batch_size", "2"},
}

func TestAliasesResolveToCanonicalNames(t *testing.T) {
	for _, c := range aliasCases {
		viaAlias := mustParse(t, params(c.alias+": "+c.value))
		viaName := mustParse(t, params(c.canonical+": "+c.value))
		if !reflect.DeepEqual(viaAlias, viaName) {
			t.Errorf("%s differs from %s:\n%+v\n%+v", c.alias, c.canonical, viaAlias.Parameters, viaName.Parameters)
		}
		a, _ := viaAlias.Canonical()
		if strings.Contains(string(a), `"`+c.alias+`"`) {
			t.Errorf("canonical JSON still names alias %s: %s", c.alias, a)
		}
	}
}

func TestAliasCasesCoverEveryAlias(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range aliasCases {
		covered[c.alias] = true
	}
	for _, p := range parameters {
		for _, a := range p.aliases {
			if !covered[a] {
				t.Errorf("alias %s of %s has no test case", a, p.name)
			}
		}
	}
}

func TestDefaultsOfAMinimalSpec(t *testing.T) {
	s := mustParse(t, "benchmark: {type: aiperf}")
	p := s.Parameters
	switch {
	case s.Tooling.APIStandard != APIStandardOpenAI || p.API != APIOpenAIChat:
		t.Errorf("api defaults: %q %q", s.Tooling.APIStandard, p.API)
	case !reflect.DeepEqual(p.Concurrency, []int{1}) || p.ConcurrencySweep:
		t.Errorf("concurrency default: %v sweep=%v", p.Concurrency, p.ConcurrencySweep)
	case p.RequestCount == nil || *p.RequestCount != 100:
		t.Errorf("request_count default: %v", p.RequestCount)
	case p.PromptInputTokensMean == nil || *p.PromptInputTokensMean != 256 || p.OutputTokensMean == nil || *p.OutputTokensMean != 256:
		t.Errorf("token means: %v %v", p.PromptInputTokensMean, p.OutputTokensMean)
	case p.PromptInputTokensStddev != 0 || p.OutputTokensStddev != 0:
		t.Errorf("stddevs: %v %v", p.PromptInputTokensStddev, p.OutputTokensStddev)
	case !p.Streaming || p.RandomSeed != 42 || p.ModelSelectionStrategy != ModelRoundRobin:
		t.Errorf("streaming %v seed %v strategy %v", p.Streaming, p.RandomSeed, p.ModelSelectionStrategy)
	case p.RequestRate != nil || p.RequestRateMode != "" || p.SearchRecipe != "" || s.Secrets != nil:
		t.Errorf("unexpected values: %+v", s)
	}
	want := `{"benchmark":{"type":"aiperf"},"parameters":{"api":"openai-chat","concurrency":1,` +
		`"model_selection_strategy":"round_robin","output_tokens_mean":256,"output_tokens_stddev":0,` +
		`"prompt_input_tokens_mean":256,"prompt_input_tokens_stddev":0,"random_seed":42,"request_count":100,` +
		`"streaming":true,"verbose":false},"tooling":{"api_standard":"openai"}}`
	if got, _ := s.Canonical(); string(got) != want {
		t.Errorf("canonical:\n got %s\nwant %s", got, want)
	}
}

func TestDefaultsDependOnTheLoadShape(t *testing.T) {
	rate := mustParse(t, params("request_rate: 3")).Parameters
	if rate.Concurrency != nil || rate.RequestRateMode != ArrivalPoisson || *rate.RequestCount != 100 {
		t.Errorf("rate run: concurrency %v mode %q count %v", rate.Concurrency, rate.RequestRateMode, rate.RequestCount)
	}
	if m := mustParse(t, params("request_rate: 3, arrival_smoothness: 0.5")).Parameters.RequestRateMode; m != ArrivalGamma {
		t.Errorf("smoothness implies gamma, got %q", m)
	}
	timed := mustParse(t, params("benchmark_duration: 60")).Parameters
	if timed.RequestCount != nil {
		t.Errorf("benchmark_duration must leave request_count unset, got %d", *timed.RequestCount)
	}
	search := mustParse(t, params("search_recipe: max-concurrency-under-sla, e2e_sla_ms: 900")).Parameters
	if search.Concurrency != nil || *search.ConcurrencyMin != 1 || *search.ConcurrencyMax != 256 || search.SearchStat != StatAvg {
		t.Errorf("search defaults: %+v", search)
	}
	phases := mustParse(t, params("phases: [{initial_users: 2, duration_seconds: 60}]")).Parameters
	if phases.Concurrency != nil || phases.RequestCount != nil {
		t.Errorf("phases must not get concurrency or request_count defaults: %+v", phases)
	}
	dataset := mustParse(t, params("input_file: /d/x.jsonl, custom_dataset_type: single-turn")).Parameters
	if dataset.PromptInputTokensMean != nil || dataset.OutputTokensMean != nil || dataset.CustomDatasetType != DatasetSingleTurn {
		t.Errorf("dataset run must keep token means unset: %+v", dataset)
	}
	kserve := mustParse(t, "benchmark: {type: aiperf}\ntooling: {api_standard: kserve}")
	if kserve.Parameters.API != APIKServeV2 {
		t.Errorf("kserve standard implies kserve-v2, got %q", kserve.Parameters.API)
	}
	http := mustParse(t, params("api: http"))
	if http.Tooling.APIStandard != APIStandardHTTP {
		t.Errorf("api http implies api_standard http, got %q", http.Tooling.APIStandard)
	}
	explicit := mustParse(t, params("streaming: false, random_seed: 0")).Parameters
	if explicit.Streaming || explicit.RandomSeed != 0 {
		t.Errorf("explicit false/0 must survive defaults: %+v", explicit)
	}
}

func TestParsedValuesAreTyped(t *testing.T) {
	s := mustParse(t, validExamples[10].doc) // warmup and general parameters
	p := s.Parameters
	wantExtra := map[string]any{"ignore_eos": true, "max_tokens": int64(128), "temperature": 0.7,
		"stop": []any{"\n\n"}, "stream_options": map[string]any{"include_usage": true}}
	if !reflect.DeepEqual(p.ExtraInputs, wantExtra) {
		t.Errorf("extra_inputs = %#v", p.ExtraInputs)
	}
	if want := map[string]float64{"request_latency": 2500, "output_token_throughput_per_user": 30}; !reflect.DeepEqual(p.Goodput, want) {
		t.Errorf("goodput = %v", p.Goodput)
	}
	if *p.NumConversations != 50 || p.RandomSeed != 7 || !p.Verbose || p.WarmupArrivalPattern != ArrivalConstant {
		t.Errorf("general parameters: %+v", p)
	}
	pairs := mustParse(t, params(`extra_inputs: "ignore_eos:True max_tokens:64 top_p:0.9 seed:1.0 stop:END name:x:y"`)).Parameters.ExtraInputs
	wantPairs := map[string]any{"ignore_eos": true, "max_tokens": int64(64), "top_p": 0.9, "seed": int64(1), "stop": "END", "name": "x:y"}
	if !reflect.DeepEqual(pairs, wantPairs) {
		t.Errorf("key:value extra_inputs = %#v", pairs)
	}
	asJSON := mustParse(t, params(`extra_inputs: '{"max_tokens": 32}'`)).Parameters.ExtraInputs
	if !reflect.DeepEqual(asJSON, map[string]any{"max_tokens": int64(32)}) {
		t.Errorf("JSON-string extra_inputs = %#v", asJSON)
	}
	sweep := mustParse(t, validExamples[2].doc)
	if !sweep.Parameters.ConcurrencySweep || !reflect.DeepEqual(sweep.Parameters.Concurrency, []int{1, 10, 100}) || sweep.Tooling.Version != "0.8.0" {
		t.Errorf("sweep: %+v %+v", sweep.Parameters.Concurrency, sweep.Tooling)
	}
	one := mustParse(t, params("concurrency: [8]")).Parameters
	if !one.ConcurrencySweep {
		t.Error("a one-element list is still a sweep")
	}
	placed := mustParse(t, validExamples[12].doc)
	wantPlacement := Placement{AllAgents: true, Selector: map[string]string{"gpu": "h100", "zone": "us-west-2a"}, StreamsPerAgent: 4}
	if !reflect.DeepEqual(placed.Placement, wantPlacement) || placed.Parameters.Headers["X-Tenant"] != "perf" {
		t.Errorf("placement %+v headers %v", placed.Placement, placed.Parameters.Headers)
	}
	if v := mustParse(t, "benchmark: {type: aiperf}\ntooling: {version: 0.10}").Tooling.Version; v != "0.10" {
		t.Errorf("numeric version must keep its text, got %q", v)
	}
	moved := mustParse(t, params("hf_token: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:hf'"))
	if moved.Secrets["hf_token"] != "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hf" {
		t.Errorf("a reference in parameters.hf_token must move to secrets, got %v", moved.Secrets)
	}
	if typ := mustParse(t, "benchmark: {type: AIPerf}").Benchmark.Type; typ != BenchmarkTypeAIPerf {
		t.Errorf("benchmark.type = %q", typ)
	}
	if m := mustParse(t, params("model: llama")).Parameters.Models; !reflect.DeepEqual(m, []string{"llama"}) {
		t.Errorf("single model = %v", m)
	}
}

func TestErrorsAreSortedAndMatchErrInvalid(t *testing.T) {
	_, err := Parse([]byte("benchmark: {type: other}\nparameters: {request_count: -1, concurrency: 0}\nzzz: 1\n"))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want Errors", err)
	}
	paths := make([]string, len(list))
	for i, fe := range list {
		paths[i] = fe.Path
	}
	want := []string{"benchmark.type", "parameters.concurrency", "parameters.request_count", "zzz"}
	if !reflect.DeepEqual(paths, want) || !sort.StringsAreSorted(paths) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
	if !strings.HasPrefix(err.Error(), "invalid workload spec: benchmark.type: ") {
		t.Errorf("Error() = %q", err.Error())
	}
	fe := &FieldError{Path: "parameters.concurrency", Rule: "must not be set together with search_recipe"}
	if fe.Error() != "parameters.concurrency: must not be set together with search_recipe" {
		t.Errorf("FieldError.Error() = %q", fe.Error())
	}
}

func TestLevels(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []Level
	}{
		{"default single concurrency", bench, []Level{
			{Mode: ModeConcurrency, Concurrency: 1, RequestCount: 100},
		}},
		{"concurrency sweep keeps document order", params("concurrency: [8, 1, 32], benchmark_duration: 30"), []Level{
			{Index: 0, Name: "concurrency_8", Mode: ModeConcurrency, Concurrency: 8, DurationSeconds: 30},
			{Index: 1, Name: "concurrency_1", Mode: ModeConcurrency, Concurrency: 1, DurationSeconds: 30},
			{Index: 2, Name: "concurrency_32", Mode: ModeConcurrency, Concurrency: 32, DurationSeconds: 30},
		}},
		{"request rate capped by max_concurrency", params("request_rate: 2.5, arrival_pattern: gamma, arrival_smoothness: 0.5, max_concurrency: 16, request_count: 50"), []Level{
			{Mode: ModeRequestRate, RequestRate: 2.5, ArrivalPattern: ArrivalGamma, ArrivalSmoothness: 0.5, Concurrency: 16, RequestCount: 50},
		}},
		{"request rate capped by concurrency", params("request_rate: 4, concurrency: 3"), []Level{
			{Mode: ModeRequestRate, RequestRate: 4, ArrivalPattern: ArrivalPoisson, Concurrency: 3, RequestCount: 100},
		}},
		{"search", params("search_recipe: max-concurrency-under-sla, ttft_sla_ms: 300, concurrency_max: 64"), []Level{
			{Mode: ModeSearch, Concurrency: 1, ConcurrencyMax: 64, RequestCount: 100},
		}},
		{"phases", params("phases: [{initial_users: 1, spawn_rate: 2, duration_seconds: 60}, {initial_users: 5, duration_seconds: 120}]"), []Level{
			{Index: 0, Name: "phase_1", Mode: ModePhase, Concurrency: 1, SpawnRate: 2, DurationSeconds: 60},
			{Index: 1, Name: "phase_2", Mode: ModePhase, Concurrency: 5, DurationSeconds: 120},
		}},
		{"stairs", params("stairs: {users_per_step: 4, step_duration_seconds: 30, number_of_steps: 3}"), []Level{
			{Index: 0, Name: "stair_1", Mode: ModeStair, Concurrency: 4, DurationSeconds: 30},
			{Index: 1, Name: "stair_2", Mode: ModeStair, Concurrency: 8, DurationSeconds: 30},
			{Index: 2, Name: "stair_3", Mode: ModeStair, Concurrency: 12, DurationSeconds: 30},
		}},
		{"trace replay", params("trace_file: /data/t.jsonl, benchmark_duration: 600"), []Level{
			{Mode: ModeTrace, DurationSeconds: 600},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mustParse(t, c.doc).Levels()
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Levels() =\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

func TestEveryValidExampleHasLevels(t *testing.T) {
	for _, ex := range validExamples {
		levels := mustParse(t, ex.doc).Levels()
		if len(levels) == 0 {
			t.Errorf("%s: no levels", ex.name)
		}
		for i, l := range levels {
			if l.Index != i || l.Mode == "" {
				t.Errorf("%s: level %d = %+v", ex.name, i, l)
			}
		}
	}
}
