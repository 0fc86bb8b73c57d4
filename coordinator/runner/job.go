package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/report"
	"github.com/perfleet/perfleet/coordinator/scheduler"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/resultstore"
	"github.com/perfleet/perfleet/pkg/workload"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jobRun is one benchmark job being executed by this leader.
type jobRun struct {
	r      *Runner
	key    string
	job    *state.Job
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
	active  []*shardRun // the current level's shards
	total   int         // levels in the plan
	level   *scheduler.LevelPlan
	start   time.Time // the current level's common start
	maxErr  float64   // the error rate that fails a level (error_rate_sla)
	// spares lists the agents that may take over a lost agent's shard.
	spares func() []scheduler.Candidate
	// notes are the current level's events for its result (reassignments).
	notes []string
	// searching is set while an SLA search runs: level plans are trials,
	// numbered by trial, of the spec's single search level.
	searching bool
	store     resultstore.Store
	// secrets are the values of the spec's perfleet:secret references,
	// sent with each shard.
	secrets map[string][]byte
	// span is the job's span, the parent of its event log writes.
	span trace.SpanContext
	// target is the resolved benchmark target (set when the job is planned).
	target *jobTarget
}

// shardURL is the URL shard index of a level sends to: the target's URLs
// in turn; fallback when the job has no resolved target.
func (jr *jobRun) shardURL(fallback string, index int) string {
	if jr.target == nil {
		return fallback
	}
	return jr.target.url(index)
}

// newEvent builds a log line stamped with the leader's clock.
func (jr *jobRun) newEvent(level, format string, args ...any) *pb.JobEvent {
	return &pb.JobEvent{Time: timestamppb.New(jr.r.c.Now()), Level: level, Message: fmt.Sprintf(format, args...)}
}

// event appends a line to the job's replicated log.
func (jr *jobRun) event(level, format string, args ...any) {
	ev := jr.newEvent(level, format, args...)
	ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), jr.span), 5*time.Second)
	defer cancel()
	j := jr.job
	if _, err := jr.r.c.Apply(ctx, fsm.AppendJobEventType, &pb.AppendJobEventCommand{AccountId: j.Account, Name: j.Name, Event: ev}); err != nil {
		jr.r.log.Warn("job event not recorded", "job", j.Name, "event", ev.GetMessage(), "err", err)
	}
}

// writeLog writes the job's event log to <job>/job.log.
func (jr *jobRun) writeLog(ctx context.Context) {
	if jr.store == nil {
		return
	}
	j, err := jr.r.c.State().Job(jr.job.Kind, jr.job.Account, jr.job.Name)
	if err != nil {
		return
	}
	var b bytes.Buffer
	for _, ev := range j.Benchmark.GetEvents() {
		fmt.Fprintf(&b, "%s %-5s %s\n", ev.GetTime().AsTime().Format(time.RFC3339Nano), ev.GetLevel(), ev.GetMessage())
	}
	if err := jr.store.Put(ctx, j.Name+"/job.log", &b, int64(b.Len()), "text/plain"); err != nil {
		jr.r.log.Warn("job log not written", "job", j.Name, "err", err)
	}
}

// pinned keeps the agents a job may run on: all of them, or only those it
// is pinned to (a recommendation candidate's load runs beside its model
// server).
func (jr *jobRun) pinned(agents []*pb.Agent) []*pb.Agent {
	pins := jr.job.Benchmark.GetPinnedAgentIds()
	if len(pins) == 0 {
		return agents
	}
	return slices.DeleteFunc(agents, func(a *pb.Agent) bool { return !slices.Contains(pins, a.GetAgentId()) })
}

// reportStat is a summary's latency statistics as the reports show them.
func reportStat(m *pb.MetricSummary) report.Stat {
	return report.Stat{Avg: m.GetAvg(), P50: m.GetP50(), P90: m.GetP90(), P99: m.GetP99()}
}

// writeReport writes <job>/report.html: the levels side by side with
// throughput and latency charts.
func (jr *jobRun) writeReport(ctx context.Context) {
	if jr.store == nil {
		return
	}
	j, err := jr.r.c.State().Job(jr.job.Kind, jr.job.Account, jr.job.Name)
	if err != nil {
		return
	}
	d := j.Benchmark.GetJob()
	b := report.Benchmark{JobName: d.GetAiBenchmarkJobName(), JobARN: d.GetAiBenchmarkJobArn(), Status: d.GetAiBenchmarkJobStatus(),
		FailureReason: d.GetFailureReason(), Target: d.GetBenchmarkTarget().GetEndpoint().GetIdentifier(),
		WorkloadConfig: d.GetAiWorkloadConfigIdentifier(), Created: d.GetCreationTime().AsTime()}
	if d.GetEndTime() != nil {
		b.Ended = d.GetEndTime().AsTime()
	}
	var plan []workload.Level
	if cfg, err := jr.r.c.State().WorkloadConfig(j.Account, j.Benchmark.GetWorkloadConfigName()); err == nil {
		if spec, _, err := jr.r.specs.get(j.Account, cfg.GetConfig()); err == nil {
			plan = spec.Levels()
			if len(spec.Parameters.Goodput) > 0 {
				var slo []string
				for k, v := range spec.Parameters.Goodput {
					slo = append(slo, fmt.Sprintf("%s <= %g", k, v))
				}
				sort.Strings(slo)
				b.SLOs = strings.Join(slo, ", ")
			}
		}
	}
	for _, l := range j.Benchmark.GetLevels() {
		lv := report.Level{Name: levelLabel(l, plan), Requests: l.GetRequestCount(), Errors: l.GetErrorRequestCount(), Location: l.GetLocation(),
			RequestThroughput: metricOf(l, metrics.RequestThroughput).GetValue(), OutputTokenThroughput: metricOf(l, metrics.OutputTokenThroughput).GetValue(),
			TTFT: reportStat(metricOf(l, metrics.TimeToFirstToken)), ITL: reportStat(metricOf(l, metrics.InterTokenLatency)),
			RequestLatency: reportStat(metricOf(l, metrics.RequestLatency)), Goodput: metricOf(l, metrics.GoodputTag).GetValue()}
		if int(l.GetIndex()) < len(plan) {
			lv.Concurrency, lv.RequestRate = plan[l.GetIndex()].Concurrency, plan[l.GetIndex()].RequestRate
		}
		b.Levels = append(b.Levels, lv)
	}
	for _, ev := range j.Benchmark.GetEvents() {
		b.Events = append(b.Events, fmt.Sprintf("%s %-5s %s", ev.GetTime().AsTime().Format("15:04:05.000"), ev.GetLevel(), ev.GetMessage()))
	}
	var buf bytes.Buffer
	if err := report.WriteBenchmark(&buf, b); err != nil {
		jr.r.log.Warn("report not rendered", "job", j.Name, "err", err)
		return
	}
	if err := jr.store.Put(ctx, j.Name+"/report.html", &buf, int64(buf.Len()), "text/html"); err != nil {
		jr.r.log.Warn("report not written", "job", j.Name, "err", err)
	}
}

// stop is the user's Stop: it cancels the job's shards, and execute then
// records Stopped.
func (jr *jobRun) stop() {
	jr.mu.Lock()
	if jr.stopped {
		jr.mu.Unlock()
		return
	}
	jr.stopped = true
	jr.mu.Unlock()
	jr.cancelShards()
}

// cancelShards cancels the current level's shards on their agents.
func (jr *jobRun) cancelShards() {
	jr.mu.Lock()
	active := jr.active
	jr.mu.Unlock()
	for _, sr := range active {
		_ = jr.r.c.SendToAgent(sr.agentID, &pb.ConnectResponse{Body: &pb.ConnectResponse_CancelShard{CancelShard: &pb.CancelShard{RunId: sr.id}}})
	}
}

func (jr *jobRun) isStopped() bool {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.stopped
}

// errLost marks a job failed because an agent went away.
var errLost = errors.New("agent lost")

// execute runs every level in order and records the job's end.
func (jr *jobRun) execute(ctx context.Context) {
	r, j := jr.r, jr.job
	defer func() {
		r.mu.Lock()
		delete(r.jobs, jr.key)
		r.mu.Unlock()
		jr.cancel()
	}()
	ctx, span := r.startJobSpan(ctx, SpanBenchmarkJob, j)
	jr.span = span.SpanContext()
	levels, err := jr.run(ctx)
	outcome := state.StatusCompleted
	switch {
	case ctx.Err() != nil:
		r.log.Info("leadership lost; the next leader restarts the job", "job", j.Name)
		span.SetAttributes(attribute.String("perfleet.job.outcome", "leadership lost"))
		span.End()
		return
	case jr.isStopped():
		outcome = state.StatusStopped
		r.setStatusWithEvent(context.Background(), j, state.StatusStopped, "", jr.newEvent("INFO", "stopped on request after %d level(s)", levels),
			state.StatusStopping, state.StatusInProgress)
		r.log.Info("job stopped", "job", j.Name, "levels_done", levels)
	case err != nil:
		outcome = state.StatusFailed
		r.setStatusWithEvent(ctx, j, state.StatusFailed, err.Error(), jr.newEvent("ERROR", "failed: %v", err), state.StatusInProgress)
		r.log.Warn("job failed", "job", j.Name, "levels_done", levels, "err", err)
	default:
		r.setStatusWithEvent(ctx, j, state.StatusCompleted, "", jr.newEvent("INFO", "completed %d level(s)", levels), state.StatusInProgress)
		r.log.Info("job completed", "job", j.Name, "levels", levels)
	}
	span.SetAttributes(attribute.String("perfleet.job.outcome", outcome), attribute.Int("perfleet.job.levels_done", levels))
	_, report := r.ins.tracer.Start(ctx, SpanReport)
	jr.writeLog(context.Background())
	jr.writeReport(context.Background())
	if jr.store != nil {
		if err := writeManifest(context.Background(), jr.store, j.Name); err != nil {
			r.log.Warn("manifest not written", "job", j.Name, "err", err)
		}
	}
	report.End()
	endSpan(span, err)
}

// run plans the job and runs its levels; it returns how many levels ended.
func (jr *jobRun) run(jobCtx context.Context) (int, error) {
	ctx, plan := jr.r.ins.tracer.Start(jobCtx, SpanPlan)
	planned := false
	n, err := jr.planAndRun(ctx, func(levels, agents int) {
		plan.SetAttributes(attribute.Int("perfleet.levels", levels), attribute.Int("perfleet.agents", agents))
		plan.End()
		planned = true
	}, jobCtx)
	if !planned {
		endSpan(plan, err) // planning failed
	}
	return n, err
}

// planAndRun plans the job under ctx, calls onPlanned once the plan is made
// and its inputs are written, and then runs its levels under runCtx; it
// returns how many levels ended.
func (jr *jobRun) planAndRun(ctx context.Context, onPlanned func(levels, agents int), runCtx context.Context) (int, error) {
	r, j := jr.r, jr.job
	rec := j.Benchmark.GetJob()
	cfg, err := r.c.State().WorkloadConfig(j.Account, j.Benchmark.GetWorkloadConfigName())
	if err != nil {
		return 0, fmt.Errorf("workload config: %w", err)
	}
	spec, canonical, err := r.specs.get(j.Account, cfg.GetConfig())
	if err != nil {
		return 0, err
	}
	if jr.secrets, err = r.jobSecrets(j, spec); err != nil {
		return 0, err
	}
	apiGiven := workload.APIGiven([]byte(cfg.GetConfig().GetAiWorkloadConfigs().GetWorkloadSpec().GetInline()))
	tgt, err := resolveTarget(r.c.State(), j.Account, rec.GetBenchmarkTarget().GetEndpoint(), spec, canonical, apiGiven)
	if err != nil {
		return 0, err
	}
	spec, canonical, models := tgt.spec, tgt.canonical, tgt.models
	jr.target = tgt
	target := tgt.label
	agents, err := r.c.State().Agents(nil)
	if err != nil {
		return 0, err
	}
	agents = jr.pinned(agents)
	if pins := j.Benchmark.GetPinnedAgentIds(); len(pins) > 0 && len(agents) == 0 {
		return 0, fmt.Errorf("the job runs only on agent(s) %s, which the fleet no longer has", strings.Join(pins, ", "))
	}
	levels := spec.Levels()
	jr.mu.Lock()
	jr.total, jr.maxErr = len(levels), 0.5
	if spec.Parameters.ErrorRateSLA != nil {
		jr.maxErr = *spec.Parameters.ErrorRateSLA
	}
	jr.mu.Unlock()
	schedule := func(levels []workload.Level) (scheduler.Plan, error) {
		return scheduler.Schedule(scheduler.Input{Seed: uint64(spec.Parameters.RandomSeed), Levels: levels, Placement: spec.Placement,
			VPC: rec.GetNetworkConfig().GetVpcConfig(), Candidates: scheduler.FromAgents(agents)})
	}
	jr.spares = func() []scheduler.Candidate {
		all, err := r.c.State().Agents(nil)
		if err != nil {
			return nil
		}
		cands := scheduler.FromAgents(jr.pinned(all))
		for i := range cands {
			cands[i].Connected = r.c.AgentConnected(cands[i].ID)
		}
		return scheduler.Eligible(spec.Placement, rec.GetNetworkConfig().GetVpcConfig(), cands)
	}
	search := len(levels) == 1 && levels[0].Mode == workload.ModeSearch
	planned := levels
	if search {
		// A search's trials are planned one at a time; plan its largest one
		// now to check that the fleet can run it.
		planned = []workload.Level{trialLevel(levels[0], searchBounds(spec).hi, 0)}
	}
	plan, err := schedule(planned)
	// Right after a leader change the agents are alive but still
	// reconnecting their control streams to this leader: give them a few
	// seconds before calling the fleet too small.
	for wait := time.Now().Add(reconnectGrace); err != nil && strings.Contains(err.Error(), "alive but not connected") && time.Now().Before(wait); {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if all, aerr := r.c.State().Agents(nil); aerr == nil {
			agents = jr.pinned(all)
		}
		plan, err = schedule(planned)
	}
	if err != nil {
		return 0, err
	}
	store, err := r.openOutput(ctx, j, rec.GetOutputConfig().GetS3OutputLocation())
	if err != nil {
		return 0, err
	}
	jr.store = store
	var agentsUsed []string
	seen := map[string]bool{}
	for _, lp := range plan.Levels {
		for _, sh := range lp.Shards {
			if !seen[sh.AgentID] {
				seen[sh.AgentID] = true
				agentsUsed = append(agentsUsed, sh.AgentID)
			}
		}
	}
	jr.event("INFO", "planned %d level(s) on agent(s) %s against %s; results to %s", len(plan.Levels), strings.Join(agentsUsed, ", "),
		target, store.URI(j.Name))
	if n := len(tgt.urls); n > 1 && len(agentsUsed) < n {
		jr.event("WARN", "%s has %d URLs but the job runs on %d agent(s): each agent's share goes to one URL, so %d URL(s) get no load; raise placement.agents",
			target, n, len(agentsUsed), n-len(agentsUsed))
	}
	goodput, err := metrics.GoodputFromMap(spec.Parameters.Goodput)
	if err != nil {
		return 0, fmt.Errorf("goodput: %w", err)
	}
	warmup := spec.Parameters.WarmupRequestCount != nil || spec.Parameters.WarmupDuration != nil
	done := map[uint32]bool{} // levels an earlier leader finished
	for _, l := range j.Benchmark.GetLevels() {
		done[l.GetIndex()] = true
	}
	if err := store.Put(ctx, j.Name+"/inputs.json", bytes.NewReader(canonical), int64(len(canonical)), "application/json"); err != nil {
		return 0, fmt.Errorf("writing inputs.json: %w", err)
	}
	m := &measureEnv{spec: spec, canonical: canonical, target: target, models: models, warmup: warmup, goodput: goodput, store: store}
	onPlanned(len(plan.Levels), len(agentsUsed))
	ctx = runCtx
	if search {
		return jr.search(ctx, m, levels[0], schedule)
	}
	for i, lp := range plan.Levels {
		if done[uint32(lp.Index)] {
			r.log.Info("level already finished before a leader change; skipping", "job", j.Name, "level", levelName(lp))
			jr.event("INFO", "level %s: finished before a leader change; kept", levelName(lp))
			continue
		}
		dir := j.Name
		if len(plan.Levels) > 1 && lp.Name != "" {
			dir += "/" + lp.Name
		}
		if _, err := jr.measure(ctx, m, lp, dir); err != nil || ctx.Err() != nil {
			return i, err
		}
		if jr.isStopped() {
			return i + 1, nil
		}
	}
	return len(plan.Levels), nil
}

// measureEnv is what measuring a level needs.
type measureEnv struct {
	spec      *workload.Spec
	canonical []byte
	target    string
	models    []string
	warmup    bool
	goodput   metrics.Goodput
	store     resultstore.Store
	// check, when set, annotates a level's result before it is recorded.
	check func(lr *pb.LevelResult)
}

// measure runs a planned level, writes its AIPerf files under dir and
// records its result in Raft.
func (jr *jobRun) measure(ctx context.Context, m *measureEnv, lp scheduler.LevelPlan, dir string) (lr *pb.LevelResult, err error) {
	r := jr.r
	ctx, span := r.ins.tracer.Start(ctx, SpanLevel, trace.WithAttributes(attribute.Int("perfleet.level.index", lp.Index),
		attribute.String("perfleet.level.name", levelName(lp)), attribute.Int("perfleet.shards", len(lp.Shards))))
	defer func() {
		if lr != nil {
			span.SetAttributes(attribute.Int64("perfleet.requests", lr.GetRequestCount()), attribute.Int64("perfleet.errors", lr.GetErrorRequestCount()))
		}
		endSpan(span, err)
	}()
	merged, err := jr.runLevel(ctx, lp, m.canonical, m.target, m.models, m.warmup)
	if err != nil || ctx.Err() != nil {
		return nil, err
	}
	return jr.recordLevel(ctx, m, lp, dir, merged)
}

// recordLevel writes a measured level's AIPerf files under dir and records
// its result in Raft.
func (jr *jobRun) recordLevel(ctx context.Context, m *measureEnv, lp scheduler.LevelPlan, dir string, merged *metrics.Window) (_ *pb.LevelResult, err error) {
	r, j := jr.r, jr.job
	ctx, span := r.ins.tracer.Start(ctx, SpanResults, trace.WithAttributes(attribute.String("perfleet.results.location", m.store.URI(dir))))
	defer func() { endSpan(span, err) }()
	sum, err := writeLevel(ctx, m.store, dir, merged, m.goodput, m.spec, j)
	if err != nil {
		return nil, fmt.Errorf("writing results of level %s: %w", levelName(lp), err)
	}
	lr := levelResult(sum, lp, m.store.URI(dir), r.c.Now())
	lr.Metrics = append(lr.Metrics, gpuMetrics(merged, lr)...)
	jr.mu.Lock()
	lr.Notes, jr.notes = jr.notes, nil
	jr.mu.Unlock()
	if m.check != nil {
		m.check(lr)
	}
	if _, err := r.c.Apply(ctx, fsm.RecordLevelResultType, &pb.RecordLevelResultCommand{AccountId: j.Account, Name: j.Name,
		Level: lr}); err != nil {
		return nil, fmt.Errorf("recording level %s: %w", levelName(lp), err)
	}
	jr.event("INFO", "level %s: done, %d requests, %d errors; results in %s", levelName(lp), lr.GetRequestCount(), lr.GetErrorRequestCount(), lr.GetLocation())
	r.log.Info("level done", "job", j.Name, "level", levelName(lp), "requests", lr.GetRequestCount(), "errors", lr.GetErrorRequestCount(), "results", lr.GetLocation())
	return lr, nil
}

// runLevel runs a level's warmup, when the spec has one, and then the
// measured stage, and returns the merge of every shard's windows.
func (jr *jobRun) runLevel(ctx context.Context, lp scheduler.LevelPlan, spec []byte, target string, models []string, warmup bool) (*metrics.Window, error) {
	if warmup {
		if _, err := jr.dispatch(ctx, lp, spec, target, models, true); err != nil {
			return nil, err
		}
	}
	shards, err := jr.dispatch(ctx, lp, spec, target, models, false)
	if err != nil {
		return nil, err
	}
	merged := metrics.NewWindow("", 0, 0, 0)
	for _, sr := range shards {
		for x := sr; x != nil; x = x.replacedBy {
			merged.Merge(x.merged)
		}
	}
	return merged, nil
}

// dispatch sends every agent its shard of a level (or of its warmup) with a
// common start time and waits until every shard has reported.
func (jr *jobRun) dispatch(ctx context.Context, lp scheduler.LevelPlan, spec []byte, target string, models []string, warmup bool) ([]*shardRun, error) {
	r, j := jr.r, jr.job
	stage := levelName(lp)
	if warmup {
		stage += " warmup"
	}
	// After a leader change agents take a moment to reconnect to this node.
	for _, sh := range lp.Shards {
		if err := jr.waitConnected(ctx, sh.AgentID, lp); err != nil {
			return nil, err
		}
	}
	start := r.c.Now().Add(r.StartDelay)
	shards := make([]*shardRun, len(lp.Shards))
	for i, sh := range lp.Shards {
		shards[i] = &shardRun{id: r.nextRun.Add(1), agentID: sh.AgentID, plan: sh, next: 1, done: make(chan struct{}),
			merged: metrics.NewWindow("", 0, 0, 0)}
		shards[i].instance, _ = r.c.AgentInstance(sh.AgentID)
	}
	r.mu.Lock()
	for _, sr := range shards {
		r.shards[sr.id] = sr
	}
	r.mu.Unlock()
	registered := slices.Clone(shards) // replacements are added as they start
	defer func() {
		r.mu.Lock()
		for _, sr := range registered {
			delete(r.shards, sr.id)
		}
		r.mu.Unlock()
	}()
	jr.mu.Lock()
	jr.active, jr.level, jr.start, jr.notes = slices.Clone(shards), &lp, start, nil
	stopped := jr.stopped
	jr.mu.Unlock()
	if stopped {
		return nil, nil
	}
	// Each shard run has a span from its dispatch to its report (or its
	// agent's loss); those still open when the level ends are ended here.
	var traced []*shardRun
	defer func() {
		for _, sr := range traced {
			sr.endSpan()
		}
	}()
	send := func(sr *shardRun, at time.Time) error {
		sh := sr.plan
		_, span := r.ins.tracer.Start(ctx, SpanShard, trace.WithAttributes(attribute.String("perfleet.agent", sh.AgentID),
			attribute.Int("perfleet.shard.index", sh.Index), attribute.Int("perfleet.shard.of", sh.Of), attribute.Int64("perfleet.run_id", int64(sr.id)),
			attribute.Bool("perfleet.warmup", warmup), attribute.Int("perfleet.shard.concurrency", sh.Concurrency),
			attribute.Float64("perfleet.shard.rate", sh.Rate), attribute.Int("perfleet.shard.request_count", sh.RequestCount)))
		sr.mu.Lock()
		sr.span = span
		sr.mu.Unlock()
		traced = append(traced, sr)
		r.log.Debug("shard dispatched", "job", j.Name, "level", stage, "shard", sh.Index, "of", sh.Of, "agent", sh.AgentID, "run", sr.id)
		specLevel := uint32(lp.Index)
		if jr.searching {
			specLevel = 0 // a trial runs the spec's one search level at the shard's concurrency
		}
		m := &pb.RunShard{RunId: sr.id, JobArn: j.ARN(), LevelIndex: specLevel, LevelName: lp.Name, Warmup: warmup,
			Shard: &pb.ShardPlan{Index: uint32(sh.Index), Of: uint32(sh.Of), Concurrency: uint32(sh.Concurrency), Rate: sh.Rate,
				SpawnRate: sh.SpawnRate, RequestCount: uint64(sh.RequestCount), Seed: sh.Seed,
				SliceStart: uint64(sh.Slice.Start), SliceStride: uint64(sh.Slice.Stride)},
			Spec: spec, TargetUrl: jr.shardURL(target, sh.Index), Models: models, StartUnixNano: at.UnixNano(), SecretValues: jr.secrets, RoleArn: j.RoleARN()}
		return r.c.SendToAgent(sh.AgentID, &pb.ConnectResponse{Body: &pb.ConnectResponse_RunShard{RunShard: m}})
	}
	for _, sr := range shards {
		if err := send(sr, start); err != nil {
			jr.cancelShards()
			return nil, fmt.Errorf("level %s: could not send agent %s its shard: %v", stage, sr.agentID, err)
		}
	}
	replace := func(lost *shardRun) (*shardRun, error) {
		nsr, err := jr.replace(lost, lp, stage, send)
		if nsr != nil {
			r.mu.Lock()
			registered = append(registered, nsr)
			r.mu.Unlock()
		}
		return nsr, err
	}
	r.log.Info("level started", "job", j.Name, "level", stage, "shards", len(shards), "start", start)
	var who []string
	for _, sh := range lp.Shards {
		share := fmt.Sprintf("concurrency %d", sh.Concurrency)
		if sh.Rate > 0 {
			share = fmt.Sprintf("rate %.4g/s, max concurrency %d", sh.Rate, sh.Concurrency)
		}
		if sh.RequestCount > 0 {
			share += fmt.Sprintf(", %d requests", sh.RequestCount)
		}
		who = append(who, sh.AgentID+" ("+share+")")
	}
	jr.event("INFO", "level %s: starting at %s on %s", stage, start.UTC().Format("15:04:05.000"), strings.Join(who, "; "))
	for _, sr := range shards {
		if err := jr.waitShard(ctx, sr, lp, replace); err != nil {
			jr.cancelShards()
			return nil, err
		}
	}
	var failures []string
	for _, sr := range shards {
		last := sr.last()
		if e := last.report.GetError(); e != "" && !last.report.GetStopped() {
			failures = append(failures, last.agentID+": "+e)
		}
	}
	if len(failures) > 0 && !jr.isStopped() {
		return nil, fmt.Errorf("level %s: %s", stage, strings.Join(failures, "; "))
	}
	return shards, nil
}

// waitConnected waits up to LostAfter for an agent's control stream.
func (jr *jobRun) waitConnected(ctx context.Context, agentID string, lp scheduler.LevelPlan) error {
	deadline := time.Now().Add(jr.r.LostAfter)
	for !jr.r.c.AgentConnected(agentID) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: agent %s has no control stream to the leader for level %s", errLost, agentID, levelName(lp))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// waitShard waits for a shard's report. When its agent has been
// disconnected for LostAfter, replace hands the rest of the shard to a spare
// agent and waiting goes on with that one; without a spare the level fails
// naming the agent, the level and the time.
func (jr *jobRun) waitShard(ctx context.Context, sr *shardRun, lp scheduler.LevelPlan, replace func(*shardRun) (*shardRun, error)) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var gone time.Time
	for {
		select {
		case <-sr.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := jr.checkErrorRate(lp); err != nil {
				return err
			}
			inst, connected := jr.r.c.AgentInstance(sr.agentID)
			restarted := connected && sr.instance != "" && inst != sr.instance
			if connected && !restarted {
				gone = time.Time{}
				continue
			}
			if gone.IsZero() {
				gone = time.Now()
			}
			// An agent back as another process has lost the shard for good:
			// no window of it will come, so do not wait out LostAfter.
			if !restarted && (time.Since(gone) <= jr.r.LostAfter || jr.isStopped()) {
				continue
			}
			if restarted {
				jr.event("WARN", "agent %s restarted while running its shard of level %s; its share moves on", sr.agentID, levelName(lp))
			}
			sr.lostAt = gone
			next, err := replace(sr)
			if err != nil {
				return err
			}
			if next == nil {
				return nil // the lost agent had finished its share
			}
			sr, gone = next, time.Time{}
		}
	}
}

// last is the shard that finally ran sr's share.
func (sr *shardRun) last() *shardRun {
	for sr.replacedBy != nil {
		sr = sr.replacedBy
	}
	return sr
}

// replace moves the rest of a lost agent's shard to a spare agent: the same
// shard (index, concurrency, rate, seed, slice), minus the requests the lost
// agent completed when the level is bounded by a request count, starting
// StartDelay from now. It returns nil, nil when nothing was left to run, and
// an error naming the agent, the level and the time when no spare exists.
func (jr *jobRun) replace(lost *shardRun, lp scheduler.LevelPlan, stage string, send func(*shardRun, time.Time) error) (*shardRun, error) {
	r := jr.r
	now := r.c.Now()
	lostAt := lost.lostAt
	if lostAt.IsZero() {
		lostAt = now.Add(-r.LostAfter)
	}
	lost.mu.Lock()
	done := lost.merged.Counters[metrics.CounterOK] + lost.merged.Counters[metrics.CounterError]
	lastEnd := time.UnixMilli(lost.merged.StartMs + lost.merged.DurationMs)
	if lost.merged.StartMs == 0 {
		lastEnd = jr.start
	}
	lost.mu.Unlock()
	// The level as it runs now: earlier replacements hold their shards.
	cur := lp
	cur.Shards = slices.Clone(lp.Shards)
	jr.mu.Lock()
	for i, a := range jr.active {
		if i < len(cur.Shards) {
			cur.Shards[i].AgentID = a.agentID
		}
	}
	jr.mu.Unlock()
	var spares []scheduler.Candidate
	if jr.spares != nil {
		spares = jr.spares()
	}
	np, err := scheduler.Reassign(cur, lost.agentID, spares)
	if err != nil {
		return nil, fmt.Errorf("%w: %v, at %s (the results of the finished levels are kept)", errLost, err, lostAt.UTC().Format(time.RFC3339))
	}
	sh := lost.plan
	for _, s := range np.Shards {
		if s.Index == sh.Index {
			sh.AgentID = s.AgentID
		}
	}
	if sh.RequestCount > 0 {
		left := int64(sh.RequestCount) - done
		if left <= 0 {
			r.mu.Lock()
			delete(r.shards, lost.id)
			r.mu.Unlock()
			lost.mu.Lock()
			if lost.report == nil {
				lost.report = &pb.ShardDone{RunId: lost.id}
				close(lost.done)
			}
			lost.endSpanLocked()
			lost.mu.Unlock()
			return nil, nil
		}
		sh.RequestCount = int(left)
		sh.Slice.Start += int(done) * max(sh.Slice.Stride, 1)
	}
	nsr := &shardRun{id: r.nextRun.Add(1), agentID: sh.AgentID, plan: sh, next: 1, done: make(chan struct{}), merged: metrics.NewWindow("", 0, 0, 0)}
	nsr.instance, _ = r.c.AgentInstance(sh.AgentID)
	r.mu.Lock()
	r.shards[nsr.id] = nsr
	delete(r.shards, lost.id) // late windows of the lost run would double-count
	r.mu.Unlock()
	lost.replacedBy = nsr
	lost.endSpan()
	jr.mu.Lock()
	for i, a := range jr.active {
		if a == lost {
			jr.active[i] = nsr
		}
	}
	jr.mu.Unlock()
	_ = r.c.SendToAgent(lost.agentID, &pb.ConnectResponse{Body: &pb.ConnectResponse_CancelShard{CancelShard: &pb.CancelShard{RunId: lost.id}}})
	start := now.Add(r.StartDelay)
	if err := send(nsr, start); err != nil {
		return nil, fmt.Errorf("%w: agent %s was lost during level %s at %s and spare agent %s could not take its shard: %v",
			errLost, lost.agentID, stage, lostAt.UTC().Format(time.RFC3339), sh.AgentID, err)
	}
	share := "for the level's duration"
	if sh.RequestCount > 0 {
		share = fmt.Sprintf("with the %d requests left of %d", sh.RequestCount, lost.plan.RequestCount)
	}
	note := fmt.Sprintf("agent %s lost at %s (its last window ended %s); shard %d/%d reassigned to %s from %s %s: %.1f s of the level ran without it",
		lost.agentID, lostAt.UTC().Format("15:04:05"), lastEnd.UTC().Format("15:04:05"), sh.Index+1, sh.Of, sh.AgentID,
		start.UTC().Format("15:04:05"), share, start.Sub(lastEnd).Seconds())
	jr.mu.Lock()
	jr.notes = append(jr.notes, note)
	jr.mu.Unlock()
	jr.event("WARN", "level %s: %s", stage, note)
	r.log.Warn("shard reassigned", "job", jr.job.Name, "level", stage, "shard", sh.Index, "lost", lost.agentID, "run", lost.id,
		"to", sh.AgentID, "new_run", nsr.id)
	return nsr, nil
}

// checkErrorRate fails a level whose error rate over the last ErrorWindow,
// across all its shards, exceeds error_rate_sla: target errors are measured
// as errors, but a target that fails most requests for that long makes the
// level meaningless. Window times are the agents' own, so the span is taken
// from the newest window back.
func (jr *jobRun) checkErrorRate(lp scheduler.LevelPlan) error {
	jr.mu.Lock()
	active, limit := jr.active, jr.maxErr
	jr.mu.Unlock()
	span := jr.r.ErrorWindow.Milliseconds()
	var recent []errSample
	var newest, oldest int64
	for _, sr := range active {
		sr.mu.Lock()
		for _, e := range sr.recent {
			recent = append(recent, e)
			newest = max(newest, e.startMs)
			if oldest == 0 || e.startMs < oldest {
				oldest = e.startMs
			}
		}
		sr.mu.Unlock()
	}
	if len(recent) == 0 || newest-oldest+1000 < span {
		return nil // the level has not run for a whole window yet
	}
	var ok, bad int64
	byCode := map[string]int64{}
	for _, e := range recent {
		if e.startMs > newest-span {
			ok, bad = ok+e.ok, bad+e.bad
			for c, n := range e.codes {
				byCode[c] += n
			}
		}
	}
	if bad == 0 || float64(bad)/float64(ok+bad) <= limit {
		return nil
	}
	var codes []metrics.CodeCount
	for c, n := range byCode {
		codes = append(codes, metrics.CodeCount{Code: c, Count: n})
	}
	sort.Slice(codes, func(i, j int) bool {
		return codes[i].Count > codes[j].Count || codes[i].Count == codes[j].Count && codes[i].Code < codes[j].Code
	})
	var top []string
	for i, c := range codes {
		if i == 3 {
			break
		}
		top = append(top, fmt.Sprintf("%s x%d", c.Code, c.Count))
	}
	return fmt.Errorf("level %s: %.0f%% of requests failed over the last %v (%d of %d), above error_rate_sla %.2f; top errors: %s",
		levelName(lp), 100*float64(bad)/float64(ok+bad), jr.r.ErrorWindow, bad, ok+bad, limit, strings.Join(top, ", "))
}

func levelName(lp scheduler.LevelPlan) string {
	if lp.Name != "" {
		return lp.Name
	}
	return fmt.Sprint(lp.Index)
}

// shardRun is one dispatched shard whose windows the leader merges.
type shardRun struct {
	id       uint64
	agentID  string
	instance string          // the agent process the shard was sent to ("": not known)
	lostAt   time.Time       // when waitShard first saw its agent gone or restarted
	plan     scheduler.Shard // what the agent runs
	// replacedBy is the shard that took over when this one's agent was lost.
	replacedBy *shardRun

	mu     sync.Mutex
	next   uint64 // next window seq expected
	merged *metrics.Window
	recent []errSample // the last minute of windows, for the error rate
	// lastGPU holds the GPU counters of the newest window, for live views.
	lastGPU map[string]int64
	report  *pb.ShardDone
	done    chan struct{}
	span    trace.Span // from dispatch to report; nil once ended
}

// endSpan ends the shard's span, once.
func (sr *shardRun) endSpan() {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.endSpanLocked()
}

// endSpanLocked ends the shard's span with its report's counts, or why it
// has none; the caller holds sr.mu.
func (sr *shardRun) endSpanLocked() {
	if sr.span == nil {
		return
	}
	switch d := sr.report; {
	case d != nil:
		sr.span.SetAttributes(attribute.Int64("perfleet.sent", d.GetSent()), attribute.Int64("perfleet.ok", d.GetOk()),
			attribute.Int64("perfleet.errors", d.GetErrors()), attribute.Int64("perfleet.windows", int64(d.GetWindows())),
			attribute.Bool("perfleet.stopped", d.GetStopped()))
		if d.GetError() != "" {
			sr.span.SetStatus(codes.Error, d.GetError())
		}
	case sr.replacedBy != nil:
		sr.span.SetStatus(codes.Error, "agent "+sr.agentID+" lost; shard reassigned to "+sr.replacedBy.agentID)
	default:
		sr.span.SetStatus(codes.Error, "ended without a report")
	}
	sr.span.End()
	sr.span = nil
}

// window merges an in-order window and returns the seq to acknowledge and
// whether it merged this one.
func (sr *shardRun) window(w *pb.ShardWindow) (ack uint64, merged bool) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if w.GetSeq() == sr.next {
		if win, err := metrics.UnmarshalWindow(w.GetWindow()); err == nil {
			sr.merged.Merge(win)
			sr.next++
			merged = true
			if win.Counters[metrics.CounterGPUWindows] > 0 {
				sr.lastGPU = map[string]int64{metrics.CounterGPUWindows: win.Counters[metrics.CounterGPUWindows],
					metrics.CounterGPUUtilMilli: win.Counters[metrics.CounterGPUUtilMilli]}
			}
			sr.recent = append(sr.recent, newErrSample(win))
			for len(sr.recent) > 0 && sr.recent[0].startMs < win.StartMs-60_000 {
				sr.recent = sr.recent[1:]
			}
		}
	}
	return sr.next - 1, merged
}

// finish records the report once every window it announces has arrived.
func (sr *shardRun) finish(d *pb.ShardDone) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.report != nil || sr.next-1 < d.GetWindows() {
		return // windows still missing: the agent resends the report after them
	}
	sr.report = d
	close(sr.done)
	sr.endSpanLocked()
}

// writeLevel writes a level's AIPerf files under dir and returns its
// summary.
func writeLevel(ctx context.Context, store resultstore.Store, dir string, merged *metrics.Window, goodput metrics.Goodput,
	spec *workload.Spec, j *state.Job) (*metrics.Summary, error) {
	sum := metrics.Summarize(merged, nil, goodput)
	var js, csv bytes.Buffer
	meta := metrics.ExportMeta{PerfleetVersion: "0.1.0", BenchmarkID: j.ARN(), InputConfig: spec}
	if err := metrics.WriteJSON(&js, sum, meta); err != nil {
		return nil, err
	}
	if err := metrics.WriteCSV(&csv, sum); err != nil {
		return nil, err
	}
	if err := store.Put(ctx, dir+"/"+metrics.FileJSON, &js, int64(js.Len()), "application/json"); err != nil {
		return nil, err
	}
	return sum, store.Put(ctx, dir+"/"+metrics.FileCSV, &csv, int64(csv.Len()), "text/csv")
}

// levelResult is the replicated record of a finished level.
func levelResult(sum *metrics.Summary, lp scheduler.LevelPlan, location string, now time.Time) *pb.LevelResult {
	lr := &pb.LevelResult{Index: uint32(lp.Index), Name: lp.Name, Location: location, EndTime: timestamppb.New(now)}
	for _, sh := range lp.Shards {
		lr.Concurrency += uint32(sh.Concurrency)
		lr.RequestRate += sh.Rate
	}
	for _, m := range sum.Metrics {
		ms := &pb.MetricSummary{Tag: m.Tag, Unit: m.Unit, Value: finite(m.Value)}
		if st := m.Stats; st != nil {
			ms.Avg, ms.Min, ms.Max, ms.Std, ms.Count = finite(st.Avg), finite(st.Min), finite(st.Max), finite(st.Std), st.Count
			ms.P50, ms.P90, ms.P95, ms.P99 = finite(st.Pct(50)), finite(st.Pct(90)), finite(st.Pct(95)), finite(st.Pct(99))
		}
		switch m.Tag {
		case "request_count":
			lr.RequestCount = int64(m.Value)
		case "error_request_count":
			lr.ErrorRequestCount = int64(m.Value)
		}
		lr.Metrics = append(lr.Metrics, ms)
	}
	return lr
}

// GPU telemetry tags of a level (perfleet additions; present only when the
// agents serve the target themselves and sampled its GPUs).
const (
	TagGPUUtilization = "gpu_utilization"
	TagGPUPower       = "gpu_power_usage"
	TagGPUEnergy      = "gpu_energy_consumption"
	TagEnergyPerToken = "energy_per_output_token"
)

// gpuMetrics summarises the GPU counters the agents added to their windows:
// mean utilisation and power over every device-window, the energy, and the
// energy per output token.
func gpuMetrics(merged *metrics.Window, lr *pb.LevelResult) []*pb.MetricSummary {
	c := merged.Counters
	n := c[metrics.CounterGPUWindows]
	if n == 0 {
		return nil
	}
	out := []*pb.MetricSummary{
		{Tag: TagGPUUtilization, Unit: "%", Value: float64(c[metrics.CounterGPUUtilMilli]) / 1000 / float64(n)},
		{Tag: TagGPUPower, Unit: "W", Value: float64(c[metrics.CounterGPUPowerMilliW]) / 1000 / float64(n)},
	}
	if mj := c[metrics.CounterGPUEnergyMilliJ]; mj > 0 {
		j := float64(mj) / 1000
		out = append(out, &pb.MetricSummary{Tag: TagGPUEnergy, Unit: "J", Value: j})
		for _, m := range lr.GetMetrics() {
			if m.GetTag() == metrics.TotalOutputTokens && m.GetValue() > 0 {
				out = append(out, &pb.MetricSummary{Tag: TagEnergyPerToken, Unit: "J/token", Value: j / m.GetValue()})
			}
		}
	}
	return out
}

// finite maps NaN and infinities, which JSON cannot carry, to 0.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// progress is the running level's live state, merged over the windows
// received so far.
func (jr *jobRun) progress(now time.Time) (int, *pb.LevelProgress) {
	jr.mu.Lock()
	total, lp, start, active := jr.total, jr.level, jr.start, jr.active
	jr.mu.Unlock()
	if lp == nil {
		return total, nil
	}
	merged := metrics.NewWindow("", 0, 0, 0)
	gpus := map[string]float64{}
	for _, sr := range active {
		sr.mu.Lock()
		merged.Merge(sr.merged)
		if n := sr.lastGPU[metrics.CounterGPUWindows]; n > 0 {
			gpus[sr.agentID] = float64(sr.lastGPU[metrics.CounterGPUUtilMilli]) / 1000 / float64(n)
		}
		sr.mu.Unlock()
	}
	p := &pb.LevelProgress{Index: uint32(lp.Index), Name: lp.Name, Agents: uint32(len(lp.Shards)),
		ElapsedSeconds: max(0, now.Sub(start).Seconds())}
	for _, sh := range lp.Shards {
		p.PlannedRequestCount += int64(sh.RequestCount)
	}
	if len(gpus) > 0 {
		p.GpuUtilization = gpus
	}
	for _, m := range metrics.Summarize(merged, nil, metrics.Goodput{}).Metrics {
		st := metrics.Stats{}
		if m.Stats != nil {
			st = *m.Stats
		}
		switch m.Tag {
		case "request_count":
			p.RequestCount = int64(m.Value)
		case "error_request_count":
			p.ErrorRequestCount = int64(m.Value)
		case "request_throughput":
			p.RequestThroughput = finite(m.Value)
		case "output_token_throughput":
			p.OutputTokenThroughput = finite(m.Value)
		case "time_to_first_token":
			p.TimeToFirstTokenP50, p.TimeToFirstTokenP99 = finite(st.Pct(50)), finite(st.Pct(99))
		case "inter_token_latency":
			p.InterTokenLatencyP50 = finite(st.Pct(50))
		case "request_latency":
			p.RequestLatencyP50, p.RequestLatencyP99 = finite(st.Pct(50)), finite(st.Pct(99))
		}
	}
	return total, p
}

// writeManifest lists every result file of the job, with its size and
// SHA-256, in <job>/MANIFEST.txt.
func writeManifest(ctx context.Context, store resultstore.Store, dir string) error {
	files, err := store.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("listing results: %w", err)
	}
	if err := resultstore.WriteManifest(ctx, store, dir, files); err != nil {
		return fmt.Errorf("writing MANIFEST.txt: %w", err)
	}
	return nil
}

// errSample is the part of a window the error-rate rule needs.
type errSample struct {
	startMs int64
	ok, bad int64
	codes   map[string]int64
}

func newErrSample(w *metrics.Window) errSample {
	e := errSample{startMs: w.StartMs, ok: w.Counters[metrics.CounterOK], bad: w.Counters[metrics.CounterError]}
	for _, c := range w.ErrorCounts() {
		if e.codes == nil {
			e.codes = map[string]int64{}
		}
		e.codes[c.Code] = c.Count
	}
	return e
}

// reconnectGrace is how long a job waits for alive agents to reconnect
// their control streams before its placement fails.
const reconnectGrace = 15 * time.Second

// secretRefPrefix starts a reference to perfleet's own secret store.
const secretRefPrefix = "perfleet:secret/"

// jobSecrets resolves the spec's perfleet:secret references from the
// replicated store, as the job may read them. References to AWS Secrets
// Manager are resolved by the agents themselves.
func (r *Runner) jobSecrets(j *state.Job, spec *workload.Spec) (map[string][]byte, error) {
	var out map[string][]byte
	for param, ref := range spec.Secrets {
		name, ok := strings.CutPrefix(ref, secretRefPrefix)
		if !ok {
			continue
		}
		if r.SecretAccess != nil {
			if err := r.SecretAccess(j, name); err != nil {
				return nil, fmt.Errorf("secrets.%s (%s): %w", param, ref, err)
			}
		}
		rec, err := r.c.State().Secret(j.Account, name)
		if err != nil {
			return nil, fmt.Errorf("secrets.%s: %s does not exist in account %s; store it with 'perfleet secret put %s'", param, ref, j.Account, name)
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[ref] = rec.GetValue()
	}
	return out, nil
}
