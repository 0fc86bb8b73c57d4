package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/perfleet/perfleet/agent/dataset"
	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("runner: invalid configuration")

// Config is a standalone benchmark run.
type Config struct {
	// API is the request format: openai-chat, openai-completions,
	// kserve-v2 or http.
	API      string
	Protocol protocol.Config
	// Models are the model names; ModelStrategy is round_robin or random.
	Models        []string
	ModelStrategy string
	// Levels is the plan. A single level writes its results at the root of
	// OutputDir, several write one sub-directory per level name.
	Levels []loadgen.Level
	// Entries are the prompts; Sampling picks them (shuffle, sequential,
	// random).
	Entries  []dataset.Entry
	Sampling string
	// MaxTokensAt, if set, overrides the output length of request seq
	// (trace replay).
	MaxTokensAt func(seq int64) int
	Tokenizer   *dataset.Tokenizer
	// VerifyTokens counts server/tokenizer output token mismatches.
	VerifyTokens bool
	Goodput      metrics.Goodput
	Seed         uint64
	OutputDir    string
	// InputConfig is echoed into profile_export_aiperf.json.
	InputConfig any
	// Progress receives the live progress line (nil: none); Summary the
	// table printed after each level (nil: none).
	Progress io.Writer
	Summary  io.Writer
	// KeepExact is how many raw values per metric are kept for exact
	// (numpy) statistics; past it, HDR estimates are used. Default 2e6.
	KeepExact int
	// OnWindow receives every closed 1-second metric window (optional).
	OnWindow func(level string, w *metrics.Window)
	Version  string
}

// LevelResult is the outcome of one level.
type LevelResult struct {
	Name    string
	Dir     string
	Summary *metrics.Summary
	Stage   loadgen.StageResult
}

// Run executes every level in order and writes its results.
func Run(ctx context.Context, cfg Config) ([]LevelResult, error) {
	if len(cfg.Levels) == 0 {
		return nil, fmt.Errorf("%w: no levels", ErrConfig)
	}
	if cfg.KeepExact == 0 {
		cfg.KeepExact = 2_000_000
	}
	cfg.Protocol.KeepText = true
	client, err := protocol.New(cfg.API, cfg.Protocol)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	sampler, err := dataset.NewSampler(cfg.Entries, cfg.Sampling, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	doer := &requestDoer{client: client, sampler: sampler, tok: cfg.Tokenizer, verify: cfg.VerifyTokens,
		models: protocol.NewModelSelector(cfg.Models, cfg.ModelStrategy, cfg.Seed), maxTokens: cfg.MaxTokensAt}
	var out []LevelResult
	for _, lv := range cfg.Levels {
		dir := cfg.OutputDir
		if len(cfg.Levels) > 1 && lv.Name != "" {
			dir = filepath.Join(cfg.OutputDir, lv.Name)
		}
		res, err := runLevel(ctx, &cfg, doer, lv, dir)
		if err != nil {
			return out, err
		}
		out = append(out, res)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runLevel(ctx context.Context, cfg *Config, doer *requestDoer, lv loadgen.Level, dir string) (LevelResult, error) {
	res := LevelResult{Name: lv.Name, Dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("runner: %w", err)
	}
	label := lv.Name
	if label == "" {
		label = "profile"
	}
	if lv.Warmup != nil {
		ex := &loadgen.Executor{Doer: doer, Sink: loadgen.SinkFunc(func(*metrics.RequestRecord) {}), Progress: &loadgen.Progress{}}
		stop := startProgress(cfg.Progress, label+" warmup", ex.Progress, nil, lv.Warmup)
		_, err := ex.Run(ctx, *lv.Warmup, metrics.PhaseWarmup)
		stop()
		if err != nil {
			return res, err
		}
	}
	f, err := os.Create(filepath.Join(dir, metrics.FileJSONL))
	if err != nil {
		return res, fmt.Errorf("runner: %w", err)
	}
	defer f.Close()
	rw := metrics.NewRecordWriter(f)
	acc := metrics.NewAccumulator(label, cfg.Goodput, cfg.KeepExact)
	if cfg.OnWindow != nil {
		acc.OnWindow = func(w *metrics.Window) { cfg.OnWindow(lv.Name, w) }
	}
	sink := loadgen.SinkFunc(func(r *metrics.RequestRecord) {
		v, _ := acc.Add(r)
		_ = rw.Write(r, &v)
	})
	ex := &loadgen.Executor{Doer: doer, Sink: sink, Progress: &loadgen.Progress{}}
	stop := startProgress(cfg.Progress, label, ex.Progress, acc, &lv.Profile)
	cpu0, wall0 := cpuTime(), time.Now()
	stage, runErr := ex.Run(ctx, lv.Profile, metrics.PhaseProfiling)
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	stop()
	acc.Flush()
	res.Stage = stage
	acc.Count(metrics.CounterSent, stage.Sent, metrics.Now())
	acc.Count(metrics.CounterLateSends, stage.Late, metrics.Now())
	acc.Count(metrics.CounterDroppedSends, stage.Dropped, metrics.Now())
	acc.Count(metrics.CounterGeneratorCPU, int64(cpu), metrics.Now())
	acc.Flush()
	if err := rw.Flush(); err != nil {
		return res, fmt.Errorf("runner: write %s: %w", metrics.FileJSONL, err)
	}
	s := metrics.Summarize(acc.Total(), acc.Exact(), cfg.Goodput)
	lagP99 := 0.0
	if m, ok := s.Get(metrics.ScheduleLag); ok {
		lagP99 = m.Stats.Pct(99)
	}
	target := 0.0
	if lv.Profile.Mode == loadgen.OpenLoop {
		target = lv.Profile.Rate
	}
	sat := metrics.CheckSaturation(metrics.SaturationInput{TargetRate: target, Sent: stage.Sent, SendSeconds: stage.SendSeconds(),
		LagP99Ms: lagP99, CPUSeconds: cpu.Seconds(), WallSeconds: wall.Seconds(), NumCPU: runtime.NumCPU(),
		LateSends: stage.Late, Dropped: stage.Dropped, CapLimited: stage.CapLimited})
	s.Saturation = &sat
	res.Summary = s
	meta := metrics.ExportMeta{PerfleetVersion: cfg.Version, InputConfig: cfg.InputConfig, WasCancelled: ctx.Err() != nil,
		StartTime: time.Unix(0, stage.StartNs), EndTime: time.Unix(0, stage.EndNs),
		RunInfo: map[string]any{"run_label": label, "random_seed": cfg.Seed, "load_mode": lv.Profile.Mode.String()},
		Extra:   map[string]any{"tokenizer": tokenizerInfo(cfg.Tokenizer)}}
	if err := writeFile(filepath.Join(dir, metrics.FileJSON), func(w io.Writer) error { return metrics.WriteJSON(w, s, meta) }); err != nil {
		return res, err
	}
	if err := writeFile(filepath.Join(dir, metrics.FileCSV), func(w io.Writer) error { return metrics.WriteCSV(w, s) }); err != nil {
		return res, err
	}
	if cfg.Summary != nil {
		PrintSummary(cfg.Summary, label, s)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return res, runErr
	}
	return res, nil
}

func tokenizerInfo(t *dataset.Tokenizer) map[string]string {
	if t == nil {
		return nil
	}
	return map[string]string{"library": "tiktoken-go", "encoding": t.Name, "requested": t.Requested}
}

func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("runner: write %s: %w", path, err)
	}
	return f.Close()
}
