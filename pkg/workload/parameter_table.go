package workload

import (
	"math"
	"sort"

	"gopkg.in/yaml.v3"
)

// Limits shared by several parameters.
const (
	// maxConcurrency is the largest concurrency (or user count) accepted.
	maxConcurrency = 100000
	// unbounded marks an integer range with no upper limit.
	unbounded = math.MaxInt32
	// maxLevels is the most levels a concurrency list or phases may make.
	maxLevels = 1000
)

// parameter describes one key of the `parameters` section: its canonical
// name, its aliases, how to decode it into Parameters and how to write it
// back for Canonical.
type parameter struct {
	name    string
	aliases []string
	decode  func(d *decoder, n *yaml.Node, path string, p *Parameters)
	// encode returns the canonical value and whether to write it; nil for
	// keys that are never written back (hf_token).
	encode func(p *Parameters) (any, bool)
}

// optional is a parameter stored as a pointer: nil when absent.
func optional[T any](name string, aliases []string, read reader[T], field func(*Parameters) **T) parameter {
	return parameter{name: name, aliases: aliases,
		decode: func(d *decoder, n *yaml.Node, path string, p *Parameters) {
			if v, ok := read(d, n, path); ok {
				*field(p) = &v
			}
		},
		encode: func(p *Parameters) (any, bool) {
			if v := *field(p); v != nil {
				return *v, true
			}
			return nil, false
		}}
}

// valued is a parameter whose zero value is meaningful; it is always written.
func valued[T any](name string, aliases []string, read reader[T], field func(*Parameters) *T) parameter {
	return parameter{name: name, aliases: aliases,
		decode: func(d *decoder, n *yaml.Node, path string, p *Parameters) {
			if v, ok := read(d, n, path); ok {
				*field(p) = v
			}
		},
		encode: func(p *Parameters) (any, bool) { return *field(p), true }}
}

// named is a string-like parameter; the empty string means absent.
func named[T ~string](name string, aliases []string, read reader[T], field func(*Parameters) *T) parameter {
	return parameter{name: name, aliases: aliases,
		decode: func(d *decoder, n *yaml.Node, path string, p *Parameters) {
			if v, ok := read(d, n, path); ok {
				*field(p) = v
			}
		},
		encode: func(p *Parameters) (any, bool) { v := *field(p); return string(v), v != "" }}
}

// Readers shared by several parameters.
var (
	readCount       = intBetween(1, unbounded)
	readConcurrency = intBetween(1, maxConcurrency)
	readBatch       = intBetween(0, unbounded)
	readPositive    = numberIn(positive)
	readNonNegative = numberIn(nonNegative)
	readArrival     = oneOf[ArrivalPattern](nil, ArrivalConstant, ArrivalPoisson, ArrivalGamma)
)

// parameters is the table of every accepted parameter. Names follow AIPerf's
// CLI fields as SageMaker's workload spec uses them; see the Parameters
// field comments for meanings.
var parameters = []parameter{
	// Token distribution.
	optional("prompt_input_tokens_mean", []string{"synthetic_input_tokens_mean", "isl"}, readCount, func(p *Parameters) **int { return &p.PromptInputTokensMean }),
	valued("prompt_input_tokens_stddev", []string{"synthetic_input_tokens_stddev", "isl_stddev"}, readNonNegative, func(p *Parameters) *float64 { return &p.PromptInputTokensStddev }),
	optional("output_tokens_mean", []string{"prompt_output_tokens_mean", "osl"}, readCount, func(p *Parameters) **int { return &p.OutputTokensMean }),
	valued("output_tokens_stddev", []string{"prompt_output_tokens_stddev", "osl_stddev"}, readNonNegative, func(p *Parameters) *float64 { return &p.OutputTokensStddev }),

	// Traffic.
	{name: "concurrency", decode: decodeConcurrency, encode: encodeConcurrency},
	optional("request_count", []string{"num_requests"}, readCount, func(p *Parameters) **int { return &p.RequestCount }),
	optional("request_rate", nil, readPositive, func(p *Parameters) **float64 { return &p.RequestRate }),
	named("request_rate_mode", []string{"arrival_pattern"}, readArrival, func(p *Parameters) *ArrivalPattern { return &p.RequestRateMode }),
	optional("arrival_smoothness", []string{"vllm_burstiness"}, readPositive, func(p *Parameters) **float64 { return &p.ArrivalSmoothness }),
	optional("max_concurrency", nil, readConcurrency, func(p *Parameters) **int { return &p.MaxConcurrency }),
	optional("prefill_concurrency", nil, readConcurrency, func(p *Parameters) **int { return &p.PrefillConcurrency }),
	optional("benchmark_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.BenchmarkDuration }),
	optional("benchmark_grace_period", nil, readNonNegative, func(p *Parameters) **float64 { return &p.BenchmarkGracePeriod }),
	optional("concurrency_ramp_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.ConcurrencyRampDuration }),
	optional("prefill_concurrency_ramp_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.PrefillConcurrencyRampDuration }),
	optional("request_rate_ramp_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.RequestRateRampDuration }),

	// General.
	valued("streaming", nil, boolean, func(p *Parameters) *bool { return &p.Streaming }),
	named("tokenizer", nil, nonEmptyText, func(p *Parameters) *string { return &p.Tokenizer }),
	{name: "hf_token", decode: decodeHFToken},
	optional("request_timeout_seconds", nil, readPositive, func(p *Parameters) **float64 { return &p.RequestTimeoutSeconds }),
	{name: "goodput", decode: decodeGoodput, encode: encodeGoodput},
	{name: "extra_inputs", decode: decodeExtraInputs, encode: encodeExtraInputs},
	valued("random_seed", nil, seedInt, func(p *Parameters) *int64 { return &p.RandomSeed }),
	valued("verbose", nil, boolean, func(p *Parameters) *bool { return &p.Verbose }),
	optional("num_conversations", []string{"conversation_num", "num_sessions"}, readCount, func(p *Parameters) **int { return &p.NumConversations }),
	named("model_selection_strategy", nil, oneOf[ModelSelectionStrategy](nil, ModelRoundRobin, ModelRandom), func(p *Parameters) *ModelSelectionStrategy { return &p.ModelSelectionStrategy }),
	{name: "model", aliases: []string{"model_names"}, decode: decodeModels, encode: encodeModels},

	// Warmup.
	optional("warmup_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.WarmupDuration }),
	optional("warmup_request_count", []string{"num_warmup_requests"}, readCount, func(p *Parameters) **int { return &p.WarmupRequestCount }),
	optional("warmup_concurrency", nil, readConcurrency, func(p *Parameters) **int { return &p.WarmupConcurrency }),
	optional("warmup_prefill_concurrency", nil, readConcurrency, func(p *Parameters) **int { return &p.WarmupPrefillConcurrency }),
	optional("warmup_request_rate", nil, readPositive, func(p *Parameters) **float64 { return &p.WarmupRequestRate }),
	named("warmup_arrival_pattern", nil, readArrival, func(p *Parameters) *ArrivalPattern { return &p.WarmupArrivalPattern }),
	optional("warmup_grace_period", nil, readNonNegative, func(p *Parameters) **float64 { return &p.WarmupGracePeriod }),
	optional("num_warmup_sessions", nil, readCount, func(p *Parameters) **int { return &p.NumWarmupSessions }),
	optional("warmup_concurrency_ramp_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.WarmupConcurrencyRampDuration }),
	optional("warmup_prefill_concurrency_ramp_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.WarmupPrefillConcurrencyRampDuration }),
	optional("warmup_request_rate_ramp_duration", nil, readPositive, func(p *Parameters) **float64 { return &p.WarmupRequestRateRampDuration }),

	// Dataset.
	named("public_dataset", nil, readDatasetName, func(p *Parameters) *string { return &p.PublicDataset }),
	named("custom_dataset_type", nil, readDatasetType, func(p *Parameters) *DatasetType { return &p.CustomDatasetType }),
	named("input_file", nil, nonEmptyText, func(p *Parameters) *string { return &p.InputFile }),
	named("dataset_sampling_strategy", nil, oneOf[SamplingStrategy](nil, SamplingShuffle, SamplingSequential, SamplingRandom), func(p *Parameters) *SamplingStrategy { return &p.DatasetSamplingStrategy }),

	// Multimodal: images.
	optional("image_width_mean", nil, readNonNegative, func(p *Parameters) **float64 { return &p.ImageWidthMean }),
	optional("image_width_stddev", nil, readNonNegative, func(p *Parameters) **float64 { return &p.ImageWidthStddev }),
	optional("image_height_mean", nil, readNonNegative, func(p *Parameters) **float64 { return &p.ImageHeightMean }),
	optional("image_height_stddev", nil, readNonNegative, func(p *Parameters) **float64 { return &p.ImageHeightStddev }),
	optional("image_batch_size", []string{"batch_size_image"}, readBatch, func(p *Parameters) **int { return &p.ImageBatchSize }),
	named("image_format", nil, stringOf(oneOf[string](nil, "png", "jpeg", "random")), func(p *Parameters) *string { return &p.ImageFormat }),

	// Multimodal: video.
	optional("video_batch_size", []string{"batch_size_video"}, readBatch, func(p *Parameters) **int { return &p.VideoBatchSize }),
	optional("video_duration", nil, readNonNegative, func(p *Parameters) **float64 { return &p.VideoDuration }),
	optional("video_fps", nil, intBetween(1, 1000), func(p *Parameters) **int { return &p.VideoFPS }),
	optional("video_width", nil, intBetween(1, 16384), func(p *Parameters) **int { return &p.VideoWidth }),
	optional("video_height", nil, intBetween(1, 16384), func(p *Parameters) **int { return &p.VideoHeight }),
	named("video_synth_type", nil, stringOf(oneOf[string](nil, "moving_shapes", "grid_clock", "noise")), func(p *Parameters) *string { return &p.VideoSynthType }),
	named("video_format", nil, stringOf(oneOf[string](nil, "mp4", "webm")), func(p *Parameters) *string { return &p.VideoFormat }),
	named("video_codec", nil, nonEmptyText, func(p *Parameters) *string { return &p.VideoCodec }),
	optional("video_audio_sample_rate", nil, numberIn(numberRange{lo: 8, hi: 96000}), func(p *Parameters) **float64 { return &p.VideoAudioSampleRate }),
	optional("video_audio_num_channels", nil, intBetween(0, 2), func(p *Parameters) **int { return &p.VideoAudioNumChannels }),
	named("video_audio_codec", nil, stringOf(oneOf[string](nil, "aac", "libvorbis", "libopus")), func(p *Parameters) *string { return &p.VideoAudioCodec }),
	optional("video_audio_depth", nil, readAudioDepth, func(p *Parameters) **int { return &p.VideoAudioDepth }),

	// SLA search.
	named("search_recipe", nil, oneOf[SearchRecipe](nil, SearchMaxConcurrencyUnderSLA), func(p *Parameters) *SearchRecipe { return &p.SearchRecipe }),
	optional("ttft_sla_ms", nil, readPositive, func(p *Parameters) **float64 { return &p.TTFTSLAMs }),
	optional("tpot_sla_ms", nil, readPositive, func(p *Parameters) **float64 { return &p.TPOTSLAMs }),
	optional("e2e_sla_ms", nil, readPositive, func(p *Parameters) **float64 { return &p.E2ESLAMs }),
	optional("error_rate_sla", nil, numberIn(fraction), func(p *Parameters) **float64 { return &p.ErrorRateSLA }),
	named("search_stat", nil, oneOf(map[string]SearchStat{"average": StatAvg, "mean": StatAvg}, StatAvg, StatP50, StatP90, StatP95, StatP99), func(p *Parameters) *SearchStat { return &p.SearchStat }),
	optional("concurrency_min", nil, readConcurrency, func(p *Parameters) **int { return &p.ConcurrencyMin }),
	optional("concurrency_max", nil, readConcurrency, func(p *Parameters) **int { return &p.ConcurrencyMax }),
	optional("search_max_iterations", nil, intBetween(1, 1000), func(p *Parameters) **int { return &p.SearchMaxIterations }),

	// perfleet extensions.
	{name: "phases", decode: decodePhases, encode: encodePhases},
	{name: "stairs", decode: decodeStairs, encode: encodeStairs},
	named("trace_file", nil, nonEmptyText, func(p *Parameters) *string { return &p.TraceFile }),
	named("api", nil, oneOf[API](nil, APIOpenAIChat, APIOpenAICompletions, APIKServeV2, APIHTTP), func(p *Parameters) *API { return &p.API }),
	named("endpoint_path", nil, readEndpointPath, func(p *Parameters) *string { return &p.EndpointPath }),
	{name: "headers", decode: decodeHeaders, encode: encodeHeaders},
}

// parameterIndex maps every canonical name and alias to its parameter.
var parameterIndex = func() map[string]*parameter {
	m := make(map[string]*parameter, 2*len(parameters))
	for i := range parameters {
		p := &parameters[i]
		m[p.name] = p
		for _, a := range p.aliases {
			m[a] = p
		}
	}
	return m
}()

// parameterKeys lists every accepted key (names and aliases), sorted.
var parameterKeys = func() []string {
	keys := make([]string, 0, len(parameterIndex))
	for k := range parameterIndex {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}()

// parameterHomes maps parameter keys to their full path, to point a
// misplaced top-level key at the parameters section.
var parameterHomes = func() map[string]string {
	m := make(map[string]string, len(parameterKeys))
	for _, k := range parameterKeys {
		m[k] = "parameters." + k
	}
	return m
}()

// topLevelHomes points top-level keys written under parameters back up.
var topLevelHomes = map[string]string{
	keyPlacement: keyPlacement, keySecrets: keySecrets, keyTooling: keyTooling, keyBenchmark: keyBenchmark,
	"api_standard": "tooling.api_standard", "version": "tooling.version", "type": "benchmark.type",
}

// decodeParameters decodes the parameters section through the table,
// resolving aliases and rejecting an alias given beside its canonical name.
func (d *decoder) decodeParameters(n *yaml.Node, path string, p *Parameters) {
	entries, _ := d.mapping(n, path)
	for _, e := range entries {
		def, ok := parameterIndex[e.key]
		if !ok {
			d.unknownKey(e.path, e.key, parameterKeys, topLevelHomes)
			continue
		}
		if prev, dup := d.given[def.name]; dup {
			d.fail(e.path, aliasConflictRule(e.key, prev, def.name))
			continue
		}
		d.given[def.name] = e.key
		def.decode(d, e.value, e.path, p)
	}
}

// aliasConflictRule words the clash of two keys naming one parameter.
func aliasConflictRule(key, prev, canonical string) string {
	if key != canonical && prev != canonical {
		return "must not be set together with " + quote(prev) + ": both are aliases of " + quote(canonical)
	}
	alias := key
	if key == canonical {
		alias = prev
	}
	return "must not be set together with " + quote(prev) + ": " + quote(alias) + " is an alias of " + quote(canonical)
}

// quote wraps s in double quotes.
func quote(s string) string { return `"` + s + `"` }

// decodeHFToken reads parameters.hf_token. A secret reference is moved to
// secrets.hf_token (decodeTop does that once every section is read); a
// plaintext token is refused so it is never stored.
func decodeHFToken(d *decoder, n *yaml.Node, path string, _ *Parameters) {
	if n.Kind == yaml.ScalarNode && n.Tag == tagStr && IsSecretReference(n.Value) {
		d.hfTokenRef, d.hfTokenPath = n.Value, path
		return
	}
	d.fail(path, "must not hold a token in plain text; put a secret reference in secrets.hf_token instead "+
		"(arn:aws:secretsmanager:<region>:<account>:secret:<name> or perfleet:secret/<name>)")
}
