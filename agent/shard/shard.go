// Package shard runs one shard of a benchmark level on an agent, apart from
// the transport that delivered it: agent/control receives a RunShard from
// the leader, turns it into an Assignment, calls Run, sends every window
// that Options.Emit hands it and keeps it in a Buffer until the leader acks
// it.
//
// A shard is the part of one level (workload.Spec.Levels) that the
// coordinator's scheduler gave one agent: its share of the concurrency,
// rate, spawn rate and request count, its own seed for arrivals, and a
// slice of the request index sequence. The shard's request i is the level's
// request Slice.Start + i×Slice.Stride, and that global index picks the
// prompt (dataset sampler seeded with the spec's random_seed, the same on
// every agent), the round-robin model, the trace offset and the request ID,
// so the shards of a level send the level's requests exactly once between
// them and never the same prompt index twice.
//
// Everything that comes from the spec (protocol, dataset, tokenizer,
// goodput, grace period, warmup, trace) is built by agent/runner.FromSpec,
// the same code as a standalone `perfleet-agent run`, so a one-shard level
// measures exactly what a standalone run measures.
package shard

import (
	"errors"
	"strconv"
	"time"

	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/coordinator/scheduler"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// Errors of this package; test them with errors.Is.
var (
	// ErrAssignment is wrapped by every error about an assignment that
	// cannot run: a spec that does not parse, a level or shard out of range,
	// a stage the load engine rejects.
	ErrAssignment = errors.New("shard: invalid assignment")
	// ErrStartPassed is returned when the assignment's start time lies more
	// than Options.MaxStartLag in the past: the agent's clock estimate is off
	// or the assignment arrived late. The shard sends nothing.
	ErrStartPassed = errors.New("shard: start time already passed")
)

// DefaultMaxStartLag is the default Options.MaxStartLag.
const DefaultMaxStartLag = time.Second

// Assignment is one shard of one level of a job, as the leader sends it.
type Assignment struct {
	// JobID identifies the job; it goes into the windows' Source.
	JobID string
	// LevelIndex is the level's position in workload.Spec.Levels().
	LevelIndex int
	// LevelName labels the level in the windows' Source; empty uses the
	// decimal LevelIndex.
	LevelName string
	// Shard is the scheduler's share of the level for this agent.
	Shard scheduler.Shard
	// Spec is the job's canonical workload spec (workload.Spec.Canonical).
	Spec []byte
	// TargetURL is the inference endpoint, e.g. http://10.0.0.7:8000.
	TargetURL string
	// Models are the model names to use when the spec names none.
	Models []string
	// StartAt is the leader's common start time of the level, already
	// converted to the agent's clock. The zero time starts at once.
	StartAt time.Time
	// Warmup marks a warmup assignment: the shard runs its share of the
	// spec's warmup stage (warmup_* parameters: concurrency, rate and request
	// count divided over Shard.Of like the measured level) instead of the
	// measured stage. Warmup records are not measured: no window is emitted
	// and Result carries only the counts. The leader sends the warmup of a
	// level first and the measured assignment, with a fresh common StartAt,
	// once every shard's warmup has ended, so that the measured stage starts
	// together everywhere.
	Warmup bool
}

// Options are the agent's settings for running shards.
type Options struct {
	// AgentID is this agent's ID; it goes into the windows' Source (empty:
	// the shard's AgentID).
	AgentID string
	// Emit receives every closed 1-second window of the measured stage, in
	// order, with the shard's sequence numbers 1, 2, 3, … without gaps (the
	// window's Seq is set to the same number). Emit is called from one
	// goroutine, never from the request path; it may block (a slow Emit
	// delays later windows, not the load) and owns the window it is given.
	// Nil drops the windows; Result still has the totals.
	Emit func(seq uint64, w *metrics.Window)
	// Grace is how long in-flight requests may run after ctx is cancelled
	// before they are cancelled too. Zero uses the spec's
	// benchmark_grace_period (default 30 s); negative cancels them at once.
	Grace time.Duration
	// MaxStartLag is how far in the past StartAt may lie before Run refuses
	// with ErrStartPassed; zero means DefaultMaxStartLag.
	MaxStartLag time.Duration
	// Secrets maps the spec's secret references to their values, resolved
	// by the agent (api_key becomes the bearer token).
	Secrets map[string]string
}

// Result is what a shard did.
type Result struct {
	// Source is the windows' source, "<agent>/<job>/<level>/<shard>".
	Source string
	// Total is the merge of every emitted window: the shard's totals
	// (histograms and counters). Nil for a warmup.
	Total *metrics.Window
	// Windows is how many windows were emitted, the last sequence number.
	Windows uint64
	// Sent, OK, Errors and Cancelled count requests: sent = ok + errors +
	// cancelled once the shard has ended.
	Sent, OK, Errors, Cancelled int64
	// LateSends counts sends later than 1 ms after their schedule, Dropped
	// open-loop sends skipped for lateness.
	LateSends, Dropped int64
	// Start and End bound the stage on the agent's clock.
	Start, End time.Time
	// Stage is the load engine's own account of the stage.
	Stage loadgen.StageResult
	// Saturation is the generator self-check: did this agent keep up with
	// its schedule?
	Saturation metrics.Saturation
	// Stopped is set when ctx was cancelled before the shard ended by
	// itself (the counts are then partial; the last window is flushed).
	Stopped bool
	// Warmup repeats Assignment.Warmup.
	Warmup bool
}

// Source returns the windows' source for an agent and an assignment:
// "<agent>/<job>/<level>/<shard index>", the level being LevelName or, when
// empty, LevelIndex; an empty agentID uses the shard's AgentID.
func Source(agentID string, a Assignment) string {
	if agentID == "" {
		agentID = a.Shard.AgentID
	}
	level := a.LevelName
	if level == "" {
		level = strconv.Itoa(a.LevelIndex)
	}
	return agentID + "/" + a.JobID + "/" + level + "/" + strconv.Itoa(a.Shard.Index)
}

// share is shard i's part of an integer total split over of shards, the
// scheduler's rule: total/of, plus one for the first total mod of shards.
func share(total, i, of int) int {
	n := total / of
	if i < total%of {
		n++
	}
	return n
}
