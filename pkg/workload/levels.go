package workload

import (
	"fmt"
	"strconv"
)

// LoadMode says how a Level generates load.
type LoadMode string

// Load modes of a Level.
const (
	// ModeConcurrency is closed loop: Concurrency requests in flight.
	ModeConcurrency LoadMode = "concurrency"
	// ModeRequestRate is open loop: RequestRate requests per second with
	// ArrivalPattern, at most Concurrency in flight when that is non-zero.
	ModeRequestRate LoadMode = "request_rate"
	// ModePhase is one SageMaker IR phase: Concurrency users at the start,
	// SpawnRate more per minute, for DurationSeconds.
	ModePhase LoadMode = "phase"
	// ModeStair is one step of a stairs pattern: Concurrency users for
	// DurationSeconds.
	ModeStair LoadMode = "stair"
	// ModeTrace replays trace_file at its recorded timestamps.
	ModeTrace LoadMode = "trace"
	// ModeSearch is a max-concurrency-under-sla search between Concurrency
	// and ConcurrencyMax; the runner picks the trial levels at run time.
	ModeSearch LoadMode = "search"
)

// Level is one level of the benchmark plan: a load setting measured and
// summarised on its own. The coordinator shards each level across agents.
type Level struct {
	// Index is the level's position in the plan, from 0.
	Index int
	// Name is the output sub-directory of the level: concurrency_{N} for a
	// sweep (AIPerf's layout), phase_{i} and stair_{i} (from 1); empty when
	// the plan has a single level whose results sit at the root.
	Name string
	// Mode says how the level generates load.
	Mode LoadMode
	// Concurrency is the in-flight requests (closed loop), the cap of a
	// request-rate level (0 = none), the users of a phase or stair, or the
	// lower bound of a search.
	Concurrency int
	// ConcurrencyMax is the upper bound of a search; 0 otherwise.
	ConcurrencyMax int
	// RequestRate is the target rate of a request-rate level, per second.
	RequestRate float64
	// ArrivalPattern is how a request-rate level spaces its requests.
	ArrivalPattern ArrivalPattern
	// ArrivalSmoothness is the gamma shape of a gamma arrival pattern.
	ArrivalSmoothness float64
	// SpawnRate is the users a phase adds per minute.
	SpawnRate float64
	// RequestCount bounds the requests of the level; 0 = no count bound.
	RequestCount int
	// DurationSeconds bounds the level's time; 0 = no time bound.
	DurationSeconds float64
}

// Levels returns the benchmark plan: one level per concurrency of a sweep,
// per phase or per stair step; a single level for a fixed concurrency, a
// request rate, a trace replay or a search. Call it on a Spec from Parse.
func (s *Spec) Levels() []Level {
	p := &s.Parameters
	base := Level{}
	if p.RequestCount != nil {
		base.RequestCount = *p.RequestCount
	}
	if p.BenchmarkDuration != nil {
		base.DurationSeconds = *p.BenchmarkDuration
	}
	var levels []Level
	switch {
	case p.SearchRecipe != "":
		l := base
		l.Mode = ModeSearch
		l.Concurrency, l.ConcurrencyMax = derefInt(p.ConcurrencyMin), derefInt(p.ConcurrencyMax)
		levels = append(levels, l)
	case len(p.Phases) > 0:
		for i, ph := range p.Phases {
			levels = append(levels, Level{Name: "phase_" + strconv.Itoa(i+1), Mode: ModePhase,
				Concurrency: ph.InitialUsers, SpawnRate: ph.SpawnRate, DurationSeconds: float64(ph.DurationSeconds)})
		}
	case p.Stairs != nil:
		for i := 0; i < p.Stairs.NumberOfSteps; i++ {
			levels = append(levels, Level{Name: "stair_" + strconv.Itoa(i+1), Mode: ModeStair,
				Concurrency: (i + 1) * p.Stairs.UsersPerStep, DurationSeconds: float64(p.Stairs.StepDurationSeconds)})
		}
	case p.TraceFile != "":
		l := base
		l.Mode = ModeTrace
		levels = append(levels, l)
	case p.RequestRate != nil:
		l := base
		l.Mode, l.RequestRate, l.ArrivalPattern = ModeRequestRate, *p.RequestRate, p.RequestRateMode
		if p.ArrivalSmoothness != nil {
			l.ArrivalSmoothness = *p.ArrivalSmoothness
		}
		if p.MaxConcurrency != nil {
			l.Concurrency = *p.MaxConcurrency
		} else if len(p.Concurrency) == 1 {
			l.Concurrency = p.Concurrency[0]
		}
		levels = append(levels, l)
	default:
		for _, c := range p.Concurrency {
			l := base
			l.Mode, l.Concurrency = ModeConcurrency, c
			if p.ConcurrencySweep {
				l.Name = fmt.Sprintf("concurrency_%d", c)
			}
			levels = append(levels, l)
		}
	}
	for i := range levels {
		levels[i].Index = i
	}
	return levels
}

// derefInt returns *v, or 0 for nil.
func derefInt(v *int) int {
	if v == nil {
		return 0
	}
	return *v
}
