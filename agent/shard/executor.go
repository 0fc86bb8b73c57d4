package shard

import (
	"fmt"
	"time"

	"github.com/perfleet/perfleet/agent/dataset"
	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/agent/runner"
	"github.com/perfleet/perfleet/pkg/metrics"
	"github.com/perfleet/perfleet/pkg/workload"
)

// Executor is one prepared shard: the assignment checked, the spec parsed,
// the stage, the protocol client and the dataset built. New does the work
// that can fail before the start time, so the agent can refuse a bad
// assignment at once; Run then only waits and runs.
type Executor struct {
	a      Assignment
	opts   Options
	source string
	stage  loadgen.Stage
	// empty is set when the shard's share has nothing to send (no users,
	// no rate, no trace offsets); Run then waits for the start and ends.
	empty bool
	// targetRate is the shard's open-loop rate for the self-check.
	targetRate float64
	goodput    metrics.Goodput
	doer       *doer
	prog       loadgen.Progress
}

// New prepares a shard. Errors wrap ErrAssignment, except those from
// runner.FromSpec (dataset, tokenizer), which are returned as they are.
func New(a Assignment, opts Options) (*Executor, error) {
	sh := a.Shard
	if sh.Of < 1 || sh.Index < 0 || sh.Index >= sh.Of || sh.Slice.Stride < 1 || sh.Slice.Start < 0 ||
		sh.Concurrency < 0 || sh.RequestCount < 0 || sh.Rate < 0 || sh.SpawnRate < 0 {
		return nil, fmt.Errorf("%w: shard %d of %d, slice %+v, concurrency %d, requests %d, rate %v",
			ErrAssignment, sh.Index, sh.Of, sh.Slice, sh.Concurrency, sh.RequestCount, sh.Rate)
	}
	spec, err := workload.Parse(a.Spec)
	if err != nil {
		return nil, fmt.Errorf("%w: spec: %w", ErrAssignment, err)
	}
	levels := spec.Levels()
	if a.LevelIndex < 0 || a.LevelIndex >= len(levels) {
		return nil, fmt.Errorf("%w: level %d of a %d-level plan", ErrAssignment, a.LevelIndex, len(levels))
	}
	wl := levels[a.LevelIndex]
	// A search runs on the coordinator, which sends each trial as a level
	// of its own; FromSpec refuses search specs, so hand it one without the
	// recipe (it then plans no levels) and build the trial stage here.
	forRunner := spec
	if wl.Mode == workload.ModeSearch {
		cp := *spec
		cp.Parameters.SearchRecipe = ""
		forRunner = &cp
	}
	cfg, err := runner.FromSpec(forRunner, runner.SpecOptions{Target: a.TargetURL, Secrets: opts.Secrets, Models: a.Models})
	if err != nil {
		return nil, err
	}
	e := &Executor{a: a, opts: opts, source: Source(opts.AgentID, a), goodput: cfg.Goodput}
	if err := e.buildStage(&cfg, spec, wl); err != nil {
		return nil, err
	}
	cfg.Protocol.KeepText = true
	client, err := protocol.New(cfg.API, cfg.Protocol)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAssignment, err)
	}
	sampler, err := dataset.NewSampler(cfg.Entries, cfg.Sampling, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAssignment, err)
	}
	e.doer = &doer{client: client, sampler: sampler, tok: cfg.Tokenizer, verify: cfg.VerifyTokens,
		models: cfg.Models, maxTokens: cfg.MaxTokensAt, start: int64(sh.Slice.Start), stride: int64(sh.Slice.Stride)}
	if cfg.ModelStrategy == string(workload.ModelRandom) {
		e.doer.random = protocol.NewModelSelector(cfg.Models, cfg.ModelStrategy, sh.Seed)
	}
	if opts.Grace == 0 {
		e.opts.Grace = e.stage.Grace
	}
	if opts.MaxStartLag <= 0 {
		e.opts.MaxStartLag = DefaultMaxStartLag
	}
	return e, nil
}

// Source returns the windows' source, "<agent>/<job>/<level>/<shard>".
func (e *Executor) Source() string { return e.source }

// Stage returns the load stage the shard runs (after its share is applied).
func (e *Executor) Stage() loadgen.Stage { return e.stage }

// Progress returns the live counters of the running stage (sent, done,
// errors, in flight, late, dropped), for heartbeats and status lines.
func (e *Executor) Progress() *loadgen.Progress { return &e.prog }

// buildStage applies the shard's share to the level's stage from FromSpec.
func (e *Executor) buildStage(cfg *runner.Config, spec *workload.Spec, wl workload.Level) error {
	sh := e.a.Shard
	var planned *loadgen.Level
	if wl.Index < len(cfg.Levels) {
		planned = &cfg.Levels[wl.Index]
	}
	if e.a.Warmup {
		if planned == nil || planned.Warmup == nil {
			return fmt.Errorf("%w: level %d has no warmup (warmup_request_count or warmup_duration)", ErrAssignment, wl.Index)
		}
		st := *planned.Warmup
		st.Concurrency = share(st.Concurrency, sh.Index, sh.Of)
		st.RequestCount = share(st.RequestCount, sh.Index, sh.Of)
		st.Rate /= float64(sh.Of)
		st.Seed = sh.Seed
		e.stage = st
		e.empty = (st.Mode == loadgen.ClosedLoop && st.Concurrency == 0) || (st.Mode == loadgen.OpenLoop && st.Rate == 0) ||
			(st.Duration == 0 && st.RequestCount == 0)
		return e.validate()
	}
	var st loadgen.Stage
	if wl.Mode == workload.ModeSearch || planned == nil {
		st = loadgen.Stage{Mode: loadgen.ClosedLoop, Duration: seconds(wl.DurationSeconds), Grace: runner.DefaultGrace}
		if g := spec.Parameters.BenchmarkGracePeriod; g != nil {
			st.Grace = seconds(*g)
		}
	} else {
		st = planned.Profile
	}
	st.Seed = sh.Seed
	if wl.RequestCount > 0 && st.Mode != loadgen.Replay {
		st.RequestCount = sh.RequestCount
	}
	switch st.Mode {
	case loadgen.ClosedLoop:
		st.Concurrency = sh.Concurrency
		e.empty = sh.Concurrency == 0
	case loadgen.OpenLoop:
		st.Rate, st.MaxConcurrency = sh.Rate, sh.Concurrency
		e.targetRate = sh.Rate
		e.empty = sh.Rate == 0
	case loadgen.Users:
		st.Profile = loadgen.PhaseProfile(loadgen.Phase{InitialUsers: sh.Concurrency, SpawnRate: sh.SpawnRate, Duration: st.Duration})
	case loadgen.Replay:
		var offs []time.Duration
		for i := sh.Slice.Start; i < len(st.Offsets); i += sh.Slice.Stride {
			offs = append(offs, st.Offsets[i])
		}
		st.Offsets = offs
		e.empty = len(offs) == 0
	}
	if wl.RequestCount > 0 && sh.RequestCount == 0 && st.Mode != loadgen.Replay {
		e.empty = true
	}
	e.stage = st
	return e.validate()
}

// validate checks the stage unless it is empty (which loadgen would refuse).
func (e *Executor) validate() error {
	if e.empty {
		return nil
	}
	if err := e.stage.Validate(); err != nil {
		return fmt.Errorf("%w: level %d shard %d: %w", ErrAssignment, e.a.LevelIndex, e.a.Shard.Index, err)
	}
	return nil
}

// seconds converts float seconds to a Duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
