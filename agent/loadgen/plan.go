package loadgen

import (
	"fmt"
	"time"
)

// Mode is how a stage generates load.
type Mode int

const (
	// ClosedLoop keeps Concurrency requests in flight: a worker sends its
	// next request as soon as the previous one completes.
	ClosedLoop Mode = iota
	// OpenLoop sends requests along an arrival schedule, whatever the
	// responses do (optionally capped by MaxConcurrency).
	OpenLoop
	// Users is a closed loop whose number of users follows a profile over
	// time (Inference Recommender phases).
	Users
	// Replay sends requests at the offsets of a trace.
	Replay
)

func (m Mode) String() string {
	return [...]string{"closed_loop", "open_loop", "users", "replay"}[m]
}

// UserStep says that from offset At the stage runs Users closed-loop users.
type UserStep struct {
	At    time.Duration
	Users int
}

// Stage is one phase of load (a warmup or a measured level).
type Stage struct {
	Mode Mode
	// Concurrency is the closed-loop worker count.
	Concurrency int
	// Open loop: rate (requests/s), arrival pattern, gamma shape, and an
	// optional in-flight cap (0 = none).
	Rate           float64
	Pattern        Pattern
	Smoothness     float64
	MaxConcurrency int
	// Profile is the user-count profile of a Users stage.
	Profile []UserStep
	// Offsets are the send offsets of a Replay stage.
	Offsets []time.Duration
	// Bounds: RequestCount requests (0 = unbounded), issuing stops after
	// Duration (0 = unbounded); in-flight requests then get Grace before
	// they are cancelled. At least one bound must be set (Replay and Users
	// stages are bounded by their offsets or profile).
	RequestCount int
	Duration     time.Duration
	Grace        time.Duration
	// Seed makes random arrivals reproducible.
	Seed uint64
	// LateThreshold is how late a send may be before it counts as late
	// (default 1 ms).
	LateThreshold time.Duration
	// MaxLateness, if > 0, drops (does not send) any open-loop request
	// that is later than this: the generator under-delivers and counts
	// the drops instead of bursting. 0 sends every request, late ones too
	// (latency still counts from the schedule).
	MaxLateness time.Duration
}

// Level is one measured benchmark level with its optional warmup.
type Level struct {
	// Name labels the level's results (e.g. "concurrency_8"); the
	// directory of a sweep level.
	Name    string
	Warmup  *Stage
	Profile Stage
}

// Validate checks a stage's parameters.
func (s *Stage) Validate() error {
	switch s.Mode {
	case ClosedLoop:
		if s.Concurrency < 1 {
			return fmt.Errorf("%w: concurrency %d must be ≥ 1", ErrSchedule, s.Concurrency)
		}
	case OpenLoop:
		if !(s.Rate > 0) {
			return fmt.Errorf("%w: request rate %v must be > 0", ErrSchedule, s.Rate)
		}
		if _, err := NewArrivals(s.Pattern, s.Rate, s.Smoothness, s.Seed); err != nil {
			return err
		}
	case Users:
		if len(s.Profile) == 0 {
			return fmt.Errorf("%w: empty user profile", ErrSchedule)
		}
		if s.Duration <= 0 {
			return fmt.Errorf("%w: a users stage needs a duration", ErrSchedule)
		}
	case Replay:
		if len(s.Offsets) == 0 {
			return fmt.Errorf("%w: empty trace", ErrSchedule)
		}
	default:
		return fmt.Errorf("%w: unknown mode %d", ErrSchedule, s.Mode)
	}
	if s.RequestCount < 0 || s.Duration < 0 || s.Grace < 0 || s.MaxConcurrency < 0 {
		return fmt.Errorf("%w: negative bound", ErrSchedule)
	}
	if s.Mode != Replay && s.RequestCount == 0 && s.Duration == 0 {
		return fmt.Errorf("%w: a stage needs request_count or benchmark_duration", ErrSchedule)
	}
	return nil
}

// ConcurrencySweep returns one closed-loop level per concurrency value,
// named concurrency_N as AIPerf names its sweep directories. base supplies
// the bounds; warmup (may be nil) is copied into each level.
func ConcurrencySweep(values []int, base Stage, warmup *Stage) []Level {
	out := make([]Level, 0, len(values))
	for _, c := range values {
		st := base
		st.Mode, st.Concurrency = ClosedLoop, c
		out = append(out, Level{Name: fmt.Sprintf("concurrency_%d", c), Warmup: cloneStage(warmup), Profile: st})
	}
	return out
}

func cloneStage(s *Stage) *Stage {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// Phase is an Inference Recommender traffic phase: InitialUsers users at
// the start, SpawnRate more users per minute, for Duration.
type Phase struct {
	InitialUsers int
	SpawnRate    float64 // users per minute
	Duration     time.Duration
}

// PhaseProfile returns a phase's user profile: users(t) = initial +
// ⌊spawn_rate · t / 60 s⌋, one step each time the count changes.
func PhaseProfile(p Phase) []UserStep {
	steps := []UserStep{{At: 0, Users: max(p.InitialUsers, 0)}}
	if p.SpawnRate <= 0 {
		return steps
	}
	every := time.Duration(float64(time.Minute) / p.SpawnRate)
	for i := 1; ; i++ {
		at := time.Duration(i) * every
		if at >= p.Duration {
			break
		}
		steps = append(steps, UserStep{At: at, Users: p.InitialUsers + i})
	}
	return steps
}

// PhaseLevels returns one Users level per phase, named phase_N (from 1).
func PhaseLevels(phases []Phase, base Stage) []Level {
	out := make([]Level, 0, len(phases))
	for i, p := range phases {
		st := base
		st.Mode, st.Profile, st.Duration = Users, PhaseProfile(p), p.Duration
		out = append(out, Level{Name: fmt.Sprintf("phase_%d", i+1), Profile: st})
	}
	return out
}

// Stairs is an Inference Recommender stairs pattern: step i (from 1) runs
// i × UsersPerStep users for StepDuration, NumberOfSteps times.
type Stairs struct {
	UsersPerStep  int
	StepDuration  time.Duration
	NumberOfSteps int
}

// StairsLevels returns one closed-loop level per step, named
// stairs_step_N with concurrency N × UsersPerStep.
func StairsLevels(s Stairs, base Stage) []Level {
	out := make([]Level, 0, s.NumberOfSteps)
	for i := 1; i <= s.NumberOfSteps; i++ {
		st := base
		st.Mode, st.Concurrency, st.Duration = ClosedLoop, i*s.UsersPerStep, s.StepDuration
		out = append(out, Level{Name: fmt.Sprintf("stairs_step_%d", i), Profile: st})
	}
	return out
}

// UsersAt returns the profile's user count at offset t.
func UsersAt(profile []UserStep, t time.Duration) int {
	u := 0
	for _, s := range profile {
		if s.At > t {
			break
		}
		u = s.Users
	}
	return u
}
