package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/perfleet/perfleet/agent/dataset"
	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/pkg/metrics"
	"github.com/perfleet/perfleet/pkg/workload"
)

// SpecOptions are the command-line settings that complete a workload spec.
type SpecOptions struct {
	Target    string
	OutputDir string
	// Secrets maps a secret reference to its value (resolved by the
	// caller); api_key's value becomes the bearer token.
	Secrets map[string]string
	// Models overrides the spec's model names when the spec has none.
	Models []string
}

// DefaultGrace is AIPerf's benchmark_grace_period default (seconds).
const DefaultGrace = 30 * time.Second

// DefaultRequestTimeout is AIPerf's request_timeout_seconds default.
const DefaultRequestTimeout = 21600 * time.Second

func secs(p *float64, def time.Duration) time.Duration {
	if p == nil {
		return def
	}
	return time.Duration(*p * float64(time.Second))
}

// FromSpec turns a parsed workload spec into a run configuration: the plan
// from spec.Levels(), warmups, the protocol, the dataset and goodput.
func FromSpec(spec *workload.Spec, opt SpecOptions) (Config, error) {
	p := &spec.Parameters
	cfg := Config{API: string(p.API), Models: p.Models, ModelStrategy: string(p.ModelSelectionStrategy),
		Seed: uint64(p.RandomSeed), OutputDir: opt.OutputDir, Sampling: string(p.DatasetSamplingStrategy), VerifyTokens: true}
	if len(cfg.Models) == 0 {
		cfg.Models = opt.Models
	}
	if cfg.API == "" {
		cfg.API = string(workload.APIOpenAIChat)
	}
	if cfg.Sampling == "" {
		cfg.Sampling = "shuffle"
	}
	cfg.Protocol = protocol.Config{BaseURL: opt.Target, Path: p.EndpointPath, Streaming: p.Streaming, Headers: p.Headers,
		Timeout: secs(p.RequestTimeoutSeconds, DefaultRequestTimeout), ExtraInputs: p.ExtraInputs}
	if ref, ok := spec.Secrets["api_key"]; ok {
		v, ok := opt.Secrets[ref]
		if !ok {
			return cfg, fmt.Errorf("%w: secret %s for api_key is not resolved", ErrConfig, ref)
		}
		cfg.Protocol.APIKey = v
	}
	if len(p.Goodput) > 0 {
		g, err := metrics.GoodputFromMap(p.Goodput)
		if err != nil {
			return cfg, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		cfg.Goodput = g
	}
	tok, err := dataset.NewTokenizer(p.Tokenizer)
	if err != nil {
		return cfg, err
	}
	cfg.Tokenizer = tok
	if err := loadEntries(&cfg, p, tok); err != nil {
		return cfg, err
	}
	if err := planLevels(&cfg, spec); err != nil {
		return cfg, err
	}
	if doc, err := spec.Canonical(); err == nil {
		var v any
		if json.Unmarshal(doc, &v) == nil {
			cfg.InputConfig = v
		}
	}
	return cfg, nil
}

func loadEntries(cfg *Config, p *workload.Parameters, tok *dataset.Tokenizer) error {
	if p.InputFile != "" && p.TraceFile == "" {
		f, err := os.Open(p.InputFile)
		if err != nil {
			return fmt.Errorf("%w: input_file: %v", ErrConfig, err)
		}
		defer f.Close()
		format := string(p.CustomDatasetType)
		if format == "" {
			format = dataset.FormatOpenAIChat
		}
		es, err := dataset.LoadJSONL(f, format, tok)
		if err != nil {
			return err
		}
		cfg.Entries = es
		return nil
	}
	syn := dataset.Synthetic{ISLMean: 256, OSLMean: 256, Seed: uint64(p.RandomSeed), Count: 100,
		ISLStddev: p.PromptInputTokensStddev, OSLStddev: p.OutputTokensStddev}
	if p.PromptInputTokensMean != nil {
		syn.ISLMean = float64(*p.PromptInputTokensMean)
	}
	syn.OSLMean = 0
	if p.OutputTokensMean != nil {
		syn.OSLMean = float64(*p.OutputTokensMean)
	}
	if p.NumConversations != nil {
		syn.Count = *p.NumConversations
	}
	es, err := dataset.GenerateSynthetic(tok, syn)
	if err != nil {
		return err
	}
	cfg.Entries = es
	return nil
}

func planLevels(cfg *Config, spec *workload.Spec) error {
	p := &spec.Parameters
	grace := secs(p.BenchmarkGracePeriod, DefaultGrace)
	warm := warmupStage(p)
	for _, wl := range spec.Levels() {
		st := loadgen.Stage{RequestCount: wl.RequestCount, Duration: time.Duration(wl.DurationSeconds * float64(time.Second)),
			Grace: grace, Seed: cfg.Seed + uint64(wl.Index)}
		lv := loadgen.Level{Name: wl.Name, Warmup: cloneStage(warm)}
		switch wl.Mode {
		case workload.ModeConcurrency:
			st.Mode, st.Concurrency = loadgen.ClosedLoop, wl.Concurrency
		case workload.ModeRequestRate:
			st.Mode, st.Rate, st.Pattern, st.Smoothness = loadgen.OpenLoop, wl.RequestRate, loadgen.Pattern(wl.ArrivalPattern), wl.ArrivalSmoothness
			st.MaxConcurrency = wl.Concurrency
			if lv.Name == "" && len(spec.Levels()) > 1 {
				lv.Name = fmt.Sprintf("request_rate_%g", wl.RequestRate)
			}
		case workload.ModePhase:
			st.Mode = loadgen.Users
			st.Profile = loadgen.PhaseProfile(loadgen.Phase{InitialUsers: wl.Concurrency, SpawnRate: wl.SpawnRate, Duration: st.Duration})
			st.RequestCount = 0
		case workload.ModeStair:
			st.Mode, st.Concurrency, st.RequestCount = loadgen.ClosedLoop, wl.Concurrency, 0
		case workload.ModeTrace:
			if err := replayStage(cfg, p, &st); err != nil {
				return err
			}
		case workload.ModeSearch:
			return fmt.Errorf("%w: search_recipe runs on the coordinator (perfleet benchmark jobs), not in a standalone run", ErrConfig)
		default:
			return fmt.Errorf("%w: unsupported load mode %q", ErrConfig, wl.Mode)
		}
		lv.Profile = st
		if err := st.Validate(); err != nil {
			return fmt.Errorf("%w: level %q: %v", ErrConfig, wl.Name, err)
		}
		cfg.Levels = append(cfg.Levels, lv)
	}
	return nil
}

func cloneStage(s *loadgen.Stage) *loadgen.Stage {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

func warmupStage(p *workload.Parameters) *loadgen.Stage {
	if p.WarmupRequestCount == nil && p.WarmupDuration == nil {
		return nil
	}
	w := &loadgen.Stage{Mode: loadgen.ClosedLoop, Concurrency: 1, Grace: secs(p.WarmupGracePeriod, DefaultGrace)}
	if p.WarmupRequestCount != nil {
		w.RequestCount = *p.WarmupRequestCount
	}
	if p.WarmupDuration != nil {
		w.Duration = secs(p.WarmupDuration, 0)
	}
	switch {
	case p.WarmupRequestRate != nil:
		w.Mode, w.Rate = loadgen.OpenLoop, *p.WarmupRequestRate
		w.Pattern = loadgen.Pattern(p.WarmupArrivalPattern)
		if w.Pattern == "" {
			w.Pattern = loadgen.Poisson
		}
	case p.WarmupConcurrency != nil:
		w.Concurrency = *p.WarmupConcurrency
	case len(p.Concurrency) > 0:
		w.Concurrency = p.Concurrency[0]
	}
	return w
}

// replayStage reads trace_file: offsets from its millisecond timestamps,
// and per-request prompt and output lengths when the trace has them.
func replayStage(cfg *Config, p *workload.Parameters, st *loadgen.Stage) error {
	b, err := os.ReadFile(p.TraceFile)
	if err != nil {
		return fmt.Errorf("%w: trace_file: %v", ErrConfig, err)
	}
	tr, err := loadgen.ReadTrace(bytes.NewReader(b))
	if err != nil {
		return err
	}
	st.Mode, st.Offsets, st.RequestCount = loadgen.Replay, loadgen.TraceOffsets(tr), 0
	if tr[0].InputLength > 0 {
		entries := make([]dataset.Entry, len(tr))
		for i, e := range tr {
			one, err := dataset.GenerateSynthetic(cfg.Tokenizer, dataset.Synthetic{ISLMean: float64(max(e.InputLength, 1)),
				OSLMean: float64(e.OutputLength), Count: 1, Seed: cfg.Seed + uint64(i)})
			if err != nil {
				return err
			}
			entries[i] = one[0]
		}
		cfg.Entries, cfg.Sampling = entries, "sequential"
	}
	outLen := make([]int, len(tr))
	for i, e := range tr {
		outLen[i] = e.OutputLength
	}
	cfg.MaxTokensAt = func(seq int64) int {
		if seq < int64(len(outLen)) {
			return outLen[seq]
		}
		return 0
	}
	return nil
}

// ResolveSecrets resolves secret references for a standalone run:
// perfleet:secret/NAME reads the environment variable
// PERFLEET_SECRET_<NAME> (upper-cased, non-alphanumerics as _); any
// reference can be overridden with an explicit value in overrides.
func ResolveSecrets(spec *workload.Spec, overrides map[string]string) map[string]string {
	out := map[string]string{}
	for _, ref := range spec.Secrets {
		if v, ok := overrides[ref]; ok {
			out[ref] = v
			continue
		}
		if name, ok := strings.CutPrefix(ref, "perfleet:secret/"); ok {
			env := "PERFLEET_SECRET_" + strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' {
					return r - 32
				}
				if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
					return r
				}
				return '_'
			}, name)
			if v, ok := os.LookupEnv(env); ok {
				out[ref] = v
			}
		}
	}
	return out
}
