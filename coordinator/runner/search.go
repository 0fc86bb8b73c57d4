package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/perfleet/perfleet/coordinator/scheduler"
	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/workload"
)

// Defaults of a max-concurrency-under-sla search (AIPerf's bounds).
const (
	defaultSearchMin  = 1
	defaultSearchMax  = 256
	defaultSearchIter = 10
)

// bounds are a search's concurrency range and trial budget.
type bounds struct{ lo, hi, iterations int }

func searchBounds(spec *workload.Spec) bounds {
	p := spec.Parameters
	b := bounds{lo: defaultSearchMin, hi: defaultSearchMax, iterations: defaultSearchIter}
	if p.ConcurrencyMin != nil {
		b.lo = *p.ConcurrencyMin
	}
	if p.ConcurrencyMax != nil {
		b.hi = *p.ConcurrencyMax
	}
	if p.SearchMaxIterations != nil {
		b.iterations = *p.SearchMaxIterations
	}
	b.lo = max(b.lo, 1)
	b.hi = max(b.hi, b.lo)
	return b
}

// trialLevel is trial i of a search at concurrency c.
func trialLevel(search workload.Level, c, i int) workload.Level {
	l := search
	l.Mode, l.Concurrency, l.ConcurrencyMax, l.Index = workload.ModeConcurrency, c, 0, i
	l.Name = fmt.Sprintf("search_iter_%04d", i)
	return l
}

// breach is the first SLA a trial broke.
type breach struct {
	MetricTag string  `json:"metric_tag"`
	Stat      string  `json:"stat"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	Observed  float64 `json:"observed"`
}

func (b *breach) String() string {
	return fmt.Sprintf("%s %s %.4g above %g", b.MetricTag, b.Stat, b.Observed, b.Threshold)
}

// searchSLOs are a search's thresholds: the *_sla_ms keys compared with
// search_stat, and error_rate_sla (1 % when unset, so that a trial whose
// requests fail cannot pass on the latency of the few that succeed).
func searchSLOs(spec *workload.Spec) slos {
	s := slosFrom(spec)
	s.goodput = false
	return s
}

// firstBreach checks a trial; nil means it met every threshold.
func firstBreach(s slos, l *pb.LevelResult) *breach {
	total := l.GetRequestCount()
	if total == 0 {
		return &breach{MetricTag: metrics.RequestCount, Stat: "value", Op: ">", Threshold: 0, Observed: 0}
	}
	if rate := float64(l.GetErrorRequestCount()) / float64(total); rate > s.maxErrorRate {
		return &breach{MetricTag: "error_rate", Stat: "value", Op: "<=", Threshold: s.maxErrorRate, Observed: rate}
	}
	return s.latencyBreach(l, true)
}

// trial is one measured point of a search.
type trial struct {
	Iteration   int                           `json:"iteration_idx"`
	Concurrency int                           `json:"concurrency"`
	Feasible    bool                          `json:"feasible"`
	FirstBreach *breach                       `json:"first_breach,omitempty"`
	Location    string                        `json:"location"`
	Metrics     map[string]map[string]float64 `json:"metrics"`
}

// nextConcurrency is the search's decision after its trials so far: double
// from the lower bound while trials pass, then bisect between the highest
// pass and the lowest failure. done is true when the boundary is found (or
// the lower bound already fails, or the upper bound passes).
func nextConcurrency(b bounds, trials []trial) (next int, done bool) {
	if len(trials) == 0 {
		return b.lo, false
	}
	passMax, failMin := 0, 0
	for _, t := range trials {
		if t.Feasible {
			passMax = max(passMax, t.Concurrency)
		} else if failMin == 0 || t.Concurrency < failMin {
			failMin = t.Concurrency
		}
	}
	switch {
	case failMin == 0 && passMax >= b.hi:
		return 0, true // the upper bound meets the SLAs
	case failMin == 0:
		return min(passMax*2, b.hi), false
	case passMax == 0 && failMin <= b.lo:
		return 0, true // even the lower bound breaks them
	case passMax == 0:
		return max(b.lo, failMin/2), false
	case failMin-passMax <= 1:
		return 0, true
	}
	return (passMax + failMin) / 2, false
}

// search runs a max-concurrency-under-sla search: one trial at a time,
// each a closed-loop level written under search_iter_NNNN/, until the
// boundary is found or search_max_iterations trials have run. Trials a
// previous leader recorded are reused, so the search resumes where it was.
func (jr *jobRun) search(ctx context.Context, m *measureEnv, level workload.Level, schedule func([]workload.Level) (scheduler.Plan, error)) (int, error) {
	j := jr.job
	b := searchBounds(m.spec)
	s := searchSLOs(m.spec)
	recorded := map[int]*pb.LevelResult{}
	for _, l := range j.Benchmark.GetLevels() {
		recorded[int(l.GetIndex())] = l
	}
	jr.mu.Lock()
	jr.total, jr.searching = b.iterations, true
	jr.mu.Unlock()
	jr.event("INFO", "searching the highest concurrency in [%d, %d] that meets %s, in at most %d trials", b.lo, b.hi, s.describe(), b.iterations)
	var trials []trial
	for i := 0; i < b.iterations; i++ {
		c, done := nextConcurrency(b, trials)
		if done {
			break
		}
		lr := recorded[i]
		if lr == nil || int(lr.GetConcurrency()) != c {
			plan, err := schedule([]workload.Level{trialLevel(level, c, i)})
			if err != nil {
				return i, err
			}
			lp := plan.Levels[0]
			m.check = func(lr *pb.LevelResult) {
				if br := firstBreach(s, lr); br != nil {
					lr.SlaBreach = br.String()
				} else {
					lr.SlaMet = true
				}
			}
			if lr, err = jr.measure(ctx, m, lp, fmt.Sprintf("%s/search_iter_%04d/profile_runs/run_0000", j.Name, i)); err != nil || ctx.Err() != nil {
				return i, err
			}
		}
		t := trial{Iteration: i, Concurrency: c, Location: lr.GetLocation(), Metrics: map[string]map[string]float64{}}
		t.FirstBreach = firstBreach(s, lr)
		t.Feasible = t.FirstBreach == nil
		for _, ms := range lr.GetMetrics() {
			if ms.GetCount() > 0 {
				t.Metrics[ms.GetTag()] = map[string]float64{"avg": ms.GetAvg(), "p50": ms.GetP50(), "p90": ms.GetP90(), "p95": ms.GetP95(), "p99": ms.GetP99()}
			} else {
				t.Metrics[ms.GetTag()] = map[string]float64{"value": ms.GetValue()}
			}
		}
		trials = append(trials, t)
		verdict := "meets the SLAs"
		if !t.Feasible {
			verdict = "breaks " + t.FirstBreach.String()
		}
		jr.event("INFO", "search trial %d at concurrency %d %s", i, c, verdict)
		if jr.isStopped() {
			break
		}
	}
	if err := jr.writeSearchHistory(ctx, m, s, b, trials); err != nil {
		return len(trials), err
	}
	return len(trials), nil
}

// writeSearchHistory writes <job>/search_history.json in AIPerf's shape:
// every trial, and a boundary_summary with the highest feasible
// concurrency and the lowest infeasible one with its first breach.
func (jr *jobRun) writeSearchHistory(ctx context.Context, m *measureEnv, s slos, b bounds, trials []trial) error {
	type feasibleMax struct {
		Value          int `json:"value"`
		IterationIdx   int `json:"iteration_idx"`
		ObjectiveValue int `json:"objective_value"`
	}
	type infeasibleMin struct {
		Value       int     `json:"value"`
		FirstBreach *breach `json:"first_breach"`
	}
	summary := struct {
		SweptDimPath  string         `json:"swept_dim_path"`
		FeasibleMax   *feasibleMax   `json:"feasible_max"`
		InfeasibleMin *infeasibleMin `json:"infeasible_min"`
	}{SweptDimPath: "concurrency"}
	for _, t := range trials {
		if t.Feasible && (summary.FeasibleMax == nil || t.Concurrency > summary.FeasibleMax.Value) {
			summary.FeasibleMax = &feasibleMax{Value: t.Concurrency, IterationIdx: t.Iteration, ObjectiveValue: t.Concurrency}
		}
		if !t.Feasible && (summary.InfeasibleMin == nil || t.Concurrency < summary.InfeasibleMin.Value) {
			summary.InfeasibleMin = &infeasibleMin{Value: t.Concurrency, FirstBreach: t.FirstBreach}
		}
	}
	thresholds := map[string]float64{"error_rate_sla": s.maxErrorRate}
	for k, v := range map[string]*float64{"ttft_sla_ms": s.ttft, "tpot_sla_ms": s.tpot, "e2e_sla_ms": s.e2e} {
		if v != nil {
			thresholds[k] = *v
		}
	}
	doc := map[string]any{
		"search_recipe":     string(workload.SearchMaxConcurrencyUnderSLA),
		"search_stat":       s.stat,
		"concurrency_min":   b.lo,
		"concurrency_max":   b.hi,
		"max_iterations":    b.iterations,
		"thresholds":        thresholds,
		"trials":            trials,
		"boundary_summary":  summary,
		"perfleet_job_arn":  jr.job.ARN(),
		"perfleet_finished": len(trials),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	if err := m.store.Put(ctx, jr.job.Name+"/search_history.json", &buf, int64(buf.Len()), "application/json"); err != nil {
		return fmt.Errorf("writing search_history.json: %w", err)
	}
	switch {
	case summary.FeasibleMax == nil && len(trials) > 0:
		jr.event("WARN", "search: no concurrency in [%d, %d] meets the SLAs; concurrency %d breaks %s", b.lo, b.hi, trials[0].Concurrency,
			trials[0].FirstBreach)
	case summary.FeasibleMax != nil:
		msg := fmt.Sprintf("search: max concurrency under the SLAs is %d", summary.FeasibleMax.Value)
		if summary.InfeasibleMin != nil {
			msg += fmt.Sprintf(" (%d breaks %s)", summary.InfeasibleMin.Value, summary.InfeasibleMin.FirstBreach)
		}
		jr.event("INFO", "%s", msg)
	}
	return nil
}
