package workload

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// Defaults from the SageMaker Python SDK (Workload.synthetic) and AIPerf.
const (
	// DefaultTokensMean is the default input and output token mean.
	DefaultTokensMean = 256
	// DefaultConcurrency is the concurrency of a spec with no load shape.
	DefaultConcurrency = 1
	// DefaultRequestCount is the request count of a run with no other bound.
	DefaultRequestCount = 100
	// DefaultRandomSeed is the default random_seed.
	DefaultRandomSeed = 42
	// DefaultConcurrencyMin is the default lower bound of a search.
	DefaultConcurrencyMin = 1
	// DefaultConcurrencyMax is the default upper bound of a search.
	DefaultConcurrencyMax = 256
)

// searchOnly are the parameters that only mean something in a search.
var searchOnly = []string{"concurrency_max", "concurrency_min", "e2e_sla_ms", "error_rate_sla",
	"search_max_iterations", "search_stat", "tpot_sla_ms", "ttft_sla_ms"}

// has reports whether the document gave the parameter (under any alias).
func (d *decoder) has(name string) bool { _, ok := d.given[name]; return ok }

// param is the path of a parameter as the document wrote it.
func (d *decoder) param(name string) string {
	if key, ok := d.given[name]; ok {
		return "parameters." + key
	}
	return "parameters." + name
}

// streamingOff reports whether the document turned streaming off.
func (d *decoder) streamingOff(p *Parameters) bool {
	return d.has("streaming") && !d.at(d.param("streaming")) && !p.Streaming
}

// checkRules enforces the rules that involve more than one key. Presence
// rules look at which keys were given, so a value that failed to decode
// still counts as given.
func (d *decoder) checkRules(s *Spec) {
	p := &s.Parameters
	d.checkLoadShape(p)
	d.checkSearch(p)
	d.requires("max_concurrency", "request_rate")
	d.requires("request_rate_mode", "request_rate")
	d.requires("arrival_smoothness", "request_rate")
	if d.has("arrival_smoothness") && p.RequestRateMode != "" && p.RequestRateMode != ArrivalGamma {
		d.fail(d.param("arrival_smoothness"), "requires request_rate_mode gamma")
	}
	if d.has("max_concurrency") && d.has("concurrency") && d.has("request_rate") && !p.ConcurrencySweep {
		d.fail(d.param("max_concurrency"), "must not be set together with concurrency: both cap the in-flight requests of a request_rate run")
	}
	if d.streamingOff(p) {
		metrics := make([]string, 0, len(p.Goodput))
		for m := range p.Goodput {
			metrics = append(metrics, m)
		}
		sort.Strings(metrics)
		for _, m := range metrics {
			if GoodputMetrics[m].NeedsStreaming {
				d.fail(d.param("goodput")+"."+m, "requires streaming: true")
			}
		}
	}
	d.requires("custom_dataset_type", "input_file")
	d.excludes("public_dataset", "input_file", "custom_dataset_type")
	d.excludes("trace_file", "input_file", "public_dataset", "custom_dataset_type")
	d.requires("video_width", "video_height")
	d.requires("video_height", "video_width")
	d.requires("benchmark_grace_period", "benchmark_duration")
	d.requires("warmup_grace_period", "warmup_duration")
	if p.API != "" && s.Tooling.APIStandard != "" && standardOf(p.API) != s.Tooling.APIStandard {
		d.fail(d.param("api"), fmt.Sprintf("does not match tooling.api_standard %q (expected %s)",
			s.Tooling.APIStandard, apisOf(s.Tooling.APIStandard)))
	}
}

// checkLoadShape keeps the load shapes apart: phases, stairs and trace_file
// each define the whole load and exclude each other and the AIPerf shapes.
func (d *decoder) checkLoadShape(p *Parameters) {
	var first string
	for _, shape := range []string{"phases", "stairs", "trace_file"} {
		if !d.has(shape) {
			continue
		}
		if first != "" {
			d.fail(d.param(shape), "must not be set together with "+first)
		} else {
			first = shape
		}
		d.excludes(shape, "concurrency", "request_rate", "search_recipe")
		if shape != "trace_file" {
			d.excludes(shape, "benchmark_duration", "request_count")
		}
	}
	if d.has("request_rate") && p.ConcurrencySweep {
		d.fail(d.param("concurrency"), "a list (a concurrency sweep) must not be combined with request_rate")
	}
}

// checkSearch enforces the search_recipe rules.
func (d *decoder) checkSearch(p *Parameters) {
	if !d.has("search_recipe") {
		for _, name := range searchOnly {
			d.requires(name, "search_recipe")
		}
		return
	}
	for _, name := range []string{"concurrency", "request_rate"} {
		if d.has(name) {
			d.fail(d.param(name), "must not be set together with search_recipe")
		}
	}
	if !d.has("ttft_sla_ms") && !d.has("tpot_sla_ms") && !d.has("e2e_sla_ms") && !d.has("error_rate_sla") {
		d.fail(d.param("search_recipe"), "requires at least one SLA threshold: ttft_sla_ms, tpot_sla_ms, e2e_sla_ms or error_rate_sla")
	}
	if d.streamingOff(p) {
		for _, name := range []string{"ttft_sla_ms", "tpot_sla_ms"} {
			if d.has(name) {
				d.fail(d.param(name), "requires streaming: true")
			}
		}
	}
	lo, hi, hiNote := DefaultConcurrencyMin, DefaultConcurrencyMax, " (the default)"
	if p.ConcurrencyMin != nil {
		lo = *p.ConcurrencyMin
	}
	if p.ConcurrencyMax != nil {
		hi, hiNote = *p.ConcurrencyMax, ""
	}
	if lo > hi {
		d.fail(d.param("concurrency_min"), fmt.Sprintf("must not exceed concurrency_max, %d%s", hi, hiNote))
	}
}

// requires records that name, when given, needs other.
func (d *decoder) requires(name, other string) {
	if d.has(name) && !d.has(other) {
		d.fail(d.param(name), "requires "+other)
	}
}

// excludes records that name, when given, must not come with any of others.
func (d *decoder) excludes(name string, others ...string) {
	if !d.has(name) {
		return
	}
	for _, o := range others {
		if d.has(o) {
			d.fail(d.param(name), "must not be set together with "+o)
		}
	}
}

// standardOf is the api_standard an api belongs to.
func standardOf(a API) APIStandard {
	switch a {
	case APIKServeV2:
		return APIStandardKServe
	case APIHTTP:
		return APIStandardHTTP
	default:
		return APIStandardOpenAI
	}
}

// apisOf words the api values an api_standard allows.
func apisOf(s APIStandard) string {
	switch s {
	case APIStandardKServe:
		return string(APIKServeV2)
	case APIStandardHTTP:
		return string(APIHTTP)
	default:
		return string(APIOpenAIChat) + " or " + string(APIOpenAICompletions)
	}
}

// applyDefaults fills what the document left out; see the package
// documentation for the list. It runs only on a valid document.
func (d *decoder) applyDefaults(s *Spec) {
	p := &s.Parameters
	s.Benchmark.Type = BenchmarkTypeAIPerf
	if s.Tooling.APIStandard == "" {
		s.Tooling.APIStandard = APIStandardOpenAI
		if p.API != "" {
			s.Tooling.APIStandard = standardOf(p.API)
		}
	}
	if p.API == "" {
		p.API = map[APIStandard]API{APIStandardOpenAI: APIOpenAIChat, APIStandardKServe: APIKServeV2, APIStandardHTTP: APIHTTP}[s.Tooling.APIStandard]
	}
	if !d.has("streaming") {
		p.Streaming = true
	}
	if !d.has("random_seed") {
		p.RandomSeed = DefaultRandomSeed
	}
	if p.ModelSelectionStrategy == "" {
		p.ModelSelectionStrategy = ModelRoundRobin
	}
	if p.PublicDataset == "" && p.InputFile == "" && p.TraceFile == "" {
		p.PromptInputTokensMean = defaultInt(p.PromptInputTokensMean, DefaultTokensMean)
		p.OutputTokensMean = defaultInt(p.OutputTokensMean, DefaultTokensMean)
	}
	shaped := len(p.Phases) > 0 || p.Stairs != nil || p.TraceFile != ""
	if len(p.Concurrency) == 0 && p.RequestRate == nil && p.SearchRecipe == "" && !shaped {
		p.Concurrency = []int{DefaultConcurrency}
	}
	if p.RequestCount == nil && p.BenchmarkDuration == nil && !shaped {
		p.RequestCount = defaultInt(nil, DefaultRequestCount)
	}
	if p.RequestRate != nil && p.RequestRateMode == "" {
		p.RequestRateMode = ArrivalPoisson
		if p.ArrivalSmoothness != nil {
			p.RequestRateMode = ArrivalGamma
		}
	}
	if p.SearchRecipe != "" {
		if p.SearchStat == "" {
			p.SearchStat = StatAvg
		}
		p.ConcurrencyMin = defaultInt(p.ConcurrencyMin, DefaultConcurrencyMin)
		p.ConcurrencyMax = defaultInt(p.ConcurrencyMax, DefaultConcurrencyMax)
	}
}

// defaultInt returns v, or a pointer to def when v is nil.
func defaultInt(v *int, def int) *int {
	if v != nil {
		return v
	}
	return &def
}

// StandardOf is the API standard an API belongs to.
func StandardOf(a API) APIStandard { return standardOf(a) }

// APIGiven reports whether a workload document names its API itself
// (parameters.api or tooling.api_standard) rather than leaving it to the
// default. A target that knows its API (a registered endpoint) fills in
// only what the document left out.
func APIGiven(doc []byte) bool {
	top, err := decodeOneNode(doc)
	if err != nil {
		return true // unreadable: claim nothing
	}
	has := func(m *yaml.Node, key string) *yaml.Node {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		return nil
	}
	return has(has(top, keyParameters), "api") != nil || has(has(top, keyTooling), "api_standard") != nil
}
