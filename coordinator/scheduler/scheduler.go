// Package scheduler splits a benchmark job's load plan across agents. It is
// pure, like k6's lib/executor: no I/O, no clock, no goroutines and no
// randomness beyond the job seed, so the same Input always gives the same
// Plan and every rule is table-tested.
//
// # Choosing agents
//
// An agent is a candidate only while its gossip status is "alive" and it
// holds a control stream to the leader (connected). A candidate matches when
//
//   - network: with a VPC config, its "subnet" label is one of the job's
//     subnets AND its "security-group" label is one of the job's security
//     groups. Each label holds one ID and is compared exactly; an empty list
//     restricts nothing on its side, a missing label never matches a
//     non-empty list. No VPC config (or both lists empty) matches every agent;
//   - selector: its labels carry every selector key with exactly that value.
//
// Matching agents are ordered by fewest AssignedStreams (streams the agent
// already runs for other jobs), then by agent ID. The job's pool is a prefix
// of that order, chosen once for the whole plan: the first N for `agents: N`
// (fewer than N matching fails), all of them for `agents: all`, and when the
// placement leaves the count unset the fewest agents that give the most
// demanding level room under streams_per_agent (one agent without a budget,
// as a single AIPerf process would run it).
//
// # Splitting a level
//
// A level's demand is its peak concurrency: Concurrency, plus ceil(spawn
// rate × duration / 60) users for a phase, ConcurrencyMax for a search; and
// never more than RequestCount when that bounds the level. A level uses the
// first k = min(pool, demand) agents of the pool (all of them when demand is
// 0: an uncapped request rate or a trace), so a concurrency smaller than the
// pool never makes zero-concurrency shards. Only a phase or a search, whose
// demand grows past Concurrency, may give a shard zero starting users; the
// runner schedules each search trial as a level of its own.
//
// Shard i of k (pool order) gets
//
//   - Concurrency and RequestCount: the total divided by k, plus one for the
//     first total mod k shards, so the shards sum to the level exactly;
//   - Rate and SpawnRate: total/k, the last shard taking total minus the sum
//     of the others, so the shards summed in order equal the target to the
//     last bit (the subtraction is exact by Sterbenz's lemma);
//   - Seed: ShardSeed(job seed, i), distinct for every i. Levels reuse the
//     seeds, as AIPerf reuses random_seed at every level;
//   - Slice{Start: i, Stride: k}: the request indexes i, i+k, i+2k, …; shard
//     i's RequestCount is exactly how many of 0…RequestCount-1 fall there, so
//     no request index is sent twice or skipped.
//
// With streams_per_agent set, a level whose demand exceeds k × budget fails.
package scheduler

import (
	"math"
	"strconv"

	"github.com/perfleet/perfleet/pkg/workload"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Input is everything Schedule needs to plan one job.
type Input struct {
	// Seed is the job's random seed (the spec's random_seed).
	Seed uint64
	// Levels is the load plan, from workload.Spec.Levels.
	Levels []workload.Level
	// Placement is the spec's placement section.
	Placement workload.Placement
	// VPC is the job's network_config.vpc_config; nil restricts nothing.
	VPC *pb.VpcConfig
	// Candidates are the fleet's agents, in any order; see FromAgents.
	Candidates []Candidate
}

// Plan is a job's load plan split across agents.
type Plan struct {
	// Levels holds one LevelPlan per input level, in order.
	Levels []LevelPlan
}

// LevelPlan is one level split into shards.
type LevelPlan struct {
	// Name is the level's name (workload.Level.Name; may be empty).
	Name string
	// Index is the level's position in the plan, from 0.
	Index int
	// Shards are the level's shards, ordered by Shard.Index.
	Shards []Shard
}

// Shard is the part of one level that one agent runs.
type Shard struct {
	// AgentID is the agent that runs the shard.
	AgentID string
	// Index is the shard's position in the level, from 0.
	Index int
	// Of is the number of shards in the level.
	Of int
	// Concurrency is the shard's share of the level's concurrency (in-flight
	// requests, request-rate cap or starting users; 0 = no cap).
	Concurrency int
	// Rate is the shard's share of the level's request rate, per second.
	Rate float64
	// SpawnRate is the shard's share of a phase's users added per minute.
	SpawnRate float64
	// RequestCount is the shard's share of the level's request bound; 0 when
	// the level has none.
	RequestCount int
	// Seed seeds the shard's random streams (arrivals, sampling).
	Seed uint64
	// Slice is the shard's part of the request index sequence.
	Slice Slice
}

// Slice is an arithmetic part of the request index sequence: the indexes
// Start, Start+Stride, Start+2×Stride, …
type Slice struct {
	// Start is the first request index, the shard's index.
	Start int
	// Stride is the step between indexes, the level's shard count.
	Stride int
}

// Schedule chooses agents for the job and splits every level across them.
// It fails with a *PlacementError (errors.Is ErrPlacement) when the agents
// cannot carry the plan, and with ErrInvalidInput on malformed input.
func Schedule(in Input) (Plan, error) {
	if err := validate(in); err != nil {
		return Plan{}, err
	}
	if len(in.Levels) == 0 {
		return Plan{}, nil
	}
	pool, err := choosePool(in)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Levels: make([]LevelPlan, 0, len(in.Levels))}
	for _, l := range in.Levels {
		lp, err := splitLevel(in, l, pool)
		if err != nil {
			return Plan{}, err
		}
		plan.Levels = append(plan.Levels, lp)
	}
	return plan, nil
}

// splitLevel shards one level over the first agents of pool.
func splitLevel(in Input, l workload.Level, pool []Candidate) (LevelPlan, error) {
	d := demand(l)
	k := len(pool)
	if d > 0 && d < k {
		k = d
	}
	if budget := in.Placement.StreamsPerAgent; budget > 0 && d > k*budget {
		return LevelPlan{}, &PlacementError{
			Reason: "level " + levelName(l.Name, l.Index) + " needs " + strconv.Itoa(d) +
				" concurrent streams but " + agentCount(k) + " matching " + formatSelector(in.Placement.Selector) +
				" × streams_per_agent " + strconv.Itoa(budget) + " allow " + strconv.Itoa(k*budget),
			Selector: in.Placement.Selector, Wanted: ceilDiv(d, budget), Found: k, Level: levelName(l.Name, l.Index),
		}
	}
	conc := splitInt(l.Concurrency, k)
	counts := splitInt(l.RequestCount, k)
	rates := splitFloat(l.RequestRate, k)
	spawns := splitFloat(l.SpawnRate, k)
	lp := LevelPlan{Name: l.Name, Index: l.Index, Shards: make([]Shard, k)}
	for i := range lp.Shards {
		lp.Shards[i] = Shard{
			AgentID: pool[i].ID, Index: i, Of: k,
			Concurrency: conc[i], Rate: rates[i], SpawnRate: spawns[i], RequestCount: counts[i],
			Seed: ShardSeed(in.Seed, i), Slice: Slice{Start: i, Stride: k},
		}
	}
	return lp, nil
}

// demand is a level's peak concurrency, bounded by its request count.
func demand(l workload.Level) int {
	d := l.Concurrency
	switch l.Mode {
	case workload.ModePhase:
		if grow := l.SpawnRate * l.DurationSeconds / 60; grow > 0 {
			d += int(math.Ceil(grow))
		}
	case workload.ModeSearch:
		d = max(d, l.ConcurrencyMax)
	}
	if l.RequestCount > 0 && l.RequestCount < d {
		d = l.RequestCount
	}
	return d
}

// poolSize is how many agents an unset placement count takes: enough for
// the most demanding level under the budget, at least one.
func poolSize(levels []workload.Level, budget int) int {
	n := 1
	if budget <= 0 {
		return n
	}
	for _, l := range levels {
		n = max(n, ceilDiv(demand(l), budget))
	}
	return n
}

// validate rejects input no validated spec or fleet produces.
func validate(in Input) error {
	p := in.Placement
	if p.Agents < 0 || p.StreamsPerAgent < 0 {
		return invalidf("placement agents %d, streams_per_agent %d: must not be negative", p.Agents, p.StreamsPerAgent)
	}
	for _, l := range in.Levels {
		if l.Concurrency < 0 || l.ConcurrencyMax < 0 || l.RequestCount < 0 {
			return invalidf("level %s: negative concurrency or request count", levelName(l.Name, l.Index))
		}
		for _, f := range []float64{l.RequestRate, l.SpawnRate, l.DurationSeconds} {
			if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
				return invalidf("level %s: rate or duration %v is not a finite non-negative number", levelName(l.Name, l.Index), f)
			}
		}
	}
	seen := make(map[string]bool, len(in.Candidates))
	for _, c := range in.Candidates {
		if c.ID == "" || seen[c.ID] {
			return invalidf("candidate agent ID %q is empty or repeated", c.ID)
		}
		if c.AssignedStreams < 0 {
			return invalidf("candidate %s: negative assigned streams", c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}

// levelName names a level in reasons: its name, or "#<index>" when it has
// none (a single-level plan).
func levelName(name string, index int) string {
	if name != "" {
		return name
	}
	return "#" + strconv.Itoa(index)
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0.
func ceilDiv(a, b int) int {
	return (a + b - 1) / b
}
