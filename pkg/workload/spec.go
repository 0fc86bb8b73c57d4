package workload

import (
	"bytes"
	"encoding/json"
)

// BenchmarkTypeAIPerf is the only accepted benchmark.type: the benchmark
// engine mirrors NVIDIA AIPerf.
const BenchmarkTypeAIPerf = "aiperf"

// Spec is a parsed, validated workload spec with aliases resolved to their
// canonical names and defaults applied. Build one with Parse; a Spec built by
// hand is not validated.
type Spec struct {
	// Benchmark selects the benchmark engine.
	Benchmark Benchmark
	// Tooling names the API standard and the AIPerf version to mirror.
	Tooling Tooling
	// Parameters are the AIPerf-style knobs plus the perfleet extensions.
	Parameters Parameters
	// Secrets maps a parameter name (hf_token, api_key) to a secret
	// reference that agents resolve at shard start; nil when empty. Values
	// are references, never secret material.
	Secrets map[string]string
	// Placement is the perfleet extension that says which agents run the
	// load; the zero value lets the scheduler decide.
	Placement Placement
}

// Canonical returns the spec as canonical JSON: canonical key names only, no
// aliases, every default written out, object keys sorted, no insignificant
// whitespace. Equal specs give equal bytes, so the result suits hashing and
// storage, and Parse(Canonical()) gives back an equal Spec. Secrets appear
// as their references, which are not secret.
func (s *Spec) Canonical() ([]byte, error) {
	doc := map[string]any{
		keyBenchmark:  map[string]any{"type": s.Benchmark.Type},
		keyParameters: parametersCanonical(&s.Parameters),
	}
	tooling := map[string]any{}
	if s.Tooling.APIStandard != "" {
		tooling["api_standard"] = string(s.Tooling.APIStandard)
	}
	if s.Tooling.Version != "" {
		tooling["version"] = s.Tooling.Version
	}
	if len(tooling) > 0 {
		doc[keyTooling] = tooling
	}
	if len(s.Secrets) > 0 {
		doc[keySecrets] = s.Secrets
	}
	if pl := placementCanonical(s.Placement); pl != nil {
		doc[keyPlacement] = pl
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// parametersCanonical writes every set parameter under its canonical name.
func parametersCanonical(p *Parameters) map[string]any {
	out := make(map[string]any, len(parameters))
	for i := range parameters {
		def := &parameters[i]
		if def.encode == nil {
			continue
		}
		if v, ok := def.encode(p); ok {
			out[def.name] = v
		}
	}
	return out
}

// Benchmark is the `benchmark` section.
type Benchmark struct {
	// Type is the benchmark engine; always BenchmarkTypeAIPerf.
	Type string
}

// Tooling is the `tooling` section.
type Tooling struct {
	// APIStandard is the wire protocol family of the target (default
	// openai); it agrees with Parameters.API.
	APIStandard APIStandard
	// Version is the AIPerf version whose behaviour to mirror, as written
	// (e.g. "0.8.0"); empty means the latest.
	Version string
}

// Placement is the top-level `placement` section, a perfleet extension: how
// the coordinator spreads each load level over agents.
type Placement struct {
	// Agents is how many matching agents share each level; 0 when unset
	// (the scheduler decides) or when AllAgents is set.
	Agents int
	// AllAgents is true for `agents: all`: every matching agent takes part.
	AllAgents bool
	// Selector keeps only agents whose labels carry every key with the
	// given value; nil matches all agents.
	Selector map[string]string
	// StreamsPerAgent is how many independent load streams (sub-schedules
	// with their own seed) each agent runs; 0 lets the agent decide.
	StreamsPerAgent int
}

// Phase is one step of a `phases` traffic pattern, a perfleet extension
// shaped like SageMaker Inference Recommender's TrafficPattern.Phases.
type Phase struct {
	// InitialUsers is the number of closed-loop users when the phase starts.
	InitialUsers int
	// SpawnRate is how many users are added per minute during the phase.
	SpawnRate float64
	// DurationSeconds is how long the phase lasts.
	DurationSeconds int
}

// Stairs is a `stairs` traffic pattern, a perfleet extension shaped like
// SageMaker Inference Recommender's TrafficPattern.Stairs: step i (from 1)
// runs i×UsersPerStep closed-loop users for StepDurationSeconds.
type Stairs struct {
	// UsersPerStep is how many users each step adds.
	UsersPerStep int
	// StepDurationSeconds is how long each step lasts.
	StepDurationSeconds int
	// NumberOfSteps is how many steps the pattern has.
	NumberOfSteps int
}

// APIStandard is tooling.api_standard: the protocol family of the target.
type APIStandard string

// Accepted tooling.api_standard values.
const (
	// APIStandardOpenAI is an OpenAI-compatible server (the default).
	APIStandardOpenAI APIStandard = "openai"
	// APIStandardKServe is a KServe v2 / Triton inference server.
	APIStandardKServe APIStandard = "kserve"
	// APIStandardHTTP is any other HTTP server, driven by a payload template.
	APIStandardHTTP APIStandard = "http"
)

// API is the perfleet extension parameter `api`: the request format.
type API string

// Accepted `api` values.
const (
	// APIOpenAIChat is POST /v1/chat/completions (the default).
	APIOpenAIChat API = "openai-chat"
	// APIOpenAICompletions is POST /v1/completions.
	APIOpenAICompletions API = "openai-completions"
	// APIKServeV2 is the KServe v2 inference protocol.
	APIKServeV2 API = "kserve-v2"
	// APIHTTP is a generic HTTP request built from extra_inputs.payload_template.
	APIHTTP API = "http"
)

// ArrivalPattern is request_rate_mode (alias arrival_pattern): how AIPerf
// spaces request start times in a request-rate run.
type ArrivalPattern string

// Accepted arrival patterns (case-insensitive in the document).
const (
	// ArrivalConstant sends requests at fixed intervals of 1/request_rate.
	ArrivalConstant ArrivalPattern = "constant"
	// ArrivalPoisson draws exponential inter-arrival gaps (AIPerf's default).
	ArrivalPoisson ArrivalPattern = "poisson"
	// ArrivalGamma draws gamma gaps shaped by arrival_smoothness.
	ArrivalGamma ArrivalPattern = "gamma"
)

// ModelSelectionStrategy is model_selection_strategy: how a request picks
// one of several models (e.g. LoRA adapters).
type ModelSelectionStrategy string

// Accepted model selection strategies.
const (
	// ModelRoundRobin sends request n to model n mod N (the default).
	ModelRoundRobin ModelSelectionStrategy = "round_robin"
	// ModelRandom picks a model uniformly at random per request.
	ModelRandom ModelSelectionStrategy = "random"
)

// DatasetType is custom_dataset_type: the layout of input_file.
type DatasetType string

// Accepted dataset types: AIPerf's own plus the file formats that SageMaker
// names. Spellings are matched ignoring case and '-' versus '_'.
const (
	// DatasetSingleTurn is AIPerf JSONL with one request per line.
	DatasetSingleTurn DatasetType = "single_turn"
	// DatasetMultiTurn is AIPerf JSONL with one conversation per line.
	DatasetMultiTurn DatasetType = "multi_turn"
	// DatasetMooncakeTrace is a Mooncake trace (timestamp, lengths, hash_ids).
	DatasetMooncakeTrace DatasetType = "mooncake_trace"
	// DatasetRandomPool is a directory of prompts sampled at random.
	DatasetRandomPool DatasetType = "random_pool"
	// DatasetOpenAIChat is JSONL of OpenAI chat requests (`messages`).
	DatasetOpenAIChat DatasetType = "openai-chat"
	// DatasetOpenAICompletions is JSONL of OpenAI completion requests (`prompt`).
	DatasetOpenAICompletions DatasetType = "openai-completions"
	// DatasetShareGPT is ShareGPT JSONL (`conversations`).
	DatasetShareGPT DatasetType = "sharegpt"
)

// SamplingStrategy is dataset_sampling_strategy: how dataset entries are
// drawn. Empty means the engine's default (sequential for traces, shuffle
// otherwise, as in AIPerf).
type SamplingStrategy string

// Accepted sampling strategies.
const (
	// SamplingShuffle iterates a shuffled copy, reshuffling when exhausted.
	SamplingShuffle SamplingStrategy = "shuffle"
	// SamplingSequential iterates in file order, wrapping at the end.
	SamplingSequential SamplingStrategy = "sequential"
	// SamplingRandom draws with replacement.
	SamplingRandom SamplingStrategy = "random"
)

// SearchRecipe is search_recipe: an automatic search over load levels.
type SearchRecipe string

// SearchMaxConcurrencyUnderSLA finds the highest concurrency between
// concurrency_min and concurrency_max whose search_stat of every SLA metric
// stays under its threshold (AIPerf sweeping, SageMaker [DG-conc]).
const SearchMaxConcurrencyUnderSLA SearchRecipe = "max-concurrency-under-sla"

// SearchStat is search_stat: the statistic compared with the SLA thresholds.
type SearchStat string

// Accepted search statistics ("average" is read as avg).
const (
	// StatAvg is the mean (the default).
	StatAvg SearchStat = "avg"
	// StatP50 is the median.
	StatP50 SearchStat = "p50"
	// StatP90 is the 90th percentile.
	StatP90 SearchStat = "p90"
	// StatP95 is the 95th percentile.
	StatP95 SearchStat = "p95"
	// StatP99 is the 99th percentile.
	StatP99 SearchStat = "p99"
)
