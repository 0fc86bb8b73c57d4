package scheduler

import (
	"slices"
	"strconv"
)

// splitInt splits total into k ≥ 1 parts that sum to it exactly: total/k
// each, plus one for the first total mod k parts. Part i is also how many of
// the indexes 0…total-1 are congruent to i modulo k, so a strided Slice and
// the request count agree.
func splitInt(total, k int) []int {
	base, extra := total/k, total%k
	out := make([]int, k)
	for i := range out {
		out[i] = base
		if i < extra {
			out[i]++
		}
	}
	return out
}

// splitFloat splits total ≥ 0 into k ≥ 1 parts whose sum, added in order,
// is total to the last bit: total/k each, and the last part is total minus
// the sum of the others. For k ≥ 2 that sum s lies within [total/2, total]
// (up to rounding far below a factor of two), so total−s is exact by
// Sterbenz's lemma and s + (total−s) rounds to total itself.
func splitFloat(total float64, k int) []float64 {
	out := make([]float64, k)
	share, sum := total/float64(k), 0.0
	for i := range k - 1 {
		out[i] = share
		sum += share
	}
	out[k-1] = total - sum
	return out
}

// ShardSeed derives shard index's seed from the job seed with splitmix64:
// the mix of jobSeed + (index+1)×γ. The mix is a bijection of uint64 and γ is
// odd, so different indexes (below 2⁶⁴) always get different seeds; the
// same job seed and index always give the same seed.
func ShardSeed(jobSeed uint64, index int) uint64 {
	z := jobSeed + uint64(index+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Reassign moves the shard of an agent lost mid-level to a spare agent and
// keeps everything else about it (index, concurrency, rates, request count,
// seed, slice), so the level's totals stay exact and no request index moves
// between shards. Spares should come from Eligible (live agents matching the
// job's selector and network); of those, agents that are not live or already
// hold a shard of the level are skipped, and the first left in preference
// order (fewest assigned streams, then ID) takes the shard. The level passed
// in is not modified. With no spare it fails with a *PlacementError naming
// the lost agent and the level; ErrInvalidInput when the agent holds no
// shard of the level.
func Reassign(level LevelPlan, lost string, spares []Candidate) (LevelPlan, error) {
	name := levelName(level.Name, level.Index)
	at := -1
	holds := make(map[string]int, len(level.Shards))
	for i, s := range level.Shards {
		holds[s.AgentID] = s.Index
		if s.AgentID == lost {
			at = i
		}
	}
	if at < 0 {
		return LevelPlan{}, invalidf("agent %s holds no shard of level %s", lost, name)
	}
	var free []Candidate
	var busy []string
	for _, c := range byID(spares) {
		idx, held := holds[c.ID]
		switch {
		case c.ID == lost:
		case held:
			busy = append(busy, c.ID+" runs shard "+strconv.Itoa(idx))
		case !c.live():
			busy = append(busy, c.ID+" "+liveness(c))
		default:
			free = append(free, c)
		}
	}
	if len(free) == 0 {
		s := level.Shards[at]
		reason := "agent " + lost + " was lost during level " + name + " and no spare agent can take its shard (index " +
			strconv.Itoa(s.Index) + " of " + strconv.Itoa(s.Of) + ")"
		return LevelPlan{}, &PlacementError{Reason: joinReason(reason, busy), Wanted: 1, Level: name, Agent: lost}
	}
	prefer(free)
	out := level
	out.Shards = slices.Clone(level.Shards)
	out.Shards[at].AgentID = free[0].ID
	return out, nil
}
