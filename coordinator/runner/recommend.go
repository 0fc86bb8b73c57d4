package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/report"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/llmsim"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/resultstore"
	"github.com/perfleet/perfleet/pkg/workload"
)

// ParentTag is the tag that links a child benchmark job to the
// recommendation job that created it.
const ParentTag = "perfleet:recommendation-job"

// recRun is one recommendation job being executed by this leader.
type recRun struct {
	r   *Runner
	key string
	job *state.Job
	// lead ends when this node loses leadership; ctx also ends on Stop, which
	// cuts short a deployment or a wait.
	lead   context.Context
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
}

func (rr *recRun) isStopped() bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.stopped
}

// stop is the user's Stop: running candidates stop their child jobs and
// tear their servers down, and execute then records Stopped.
func (rr *recRun) stop() {
	rr.mu.Lock()
	rr.stopped = true
	rr.mu.Unlock()
	rr.cancel()
}

// leaderLost reports whether this node is no longer the leader.
func (rr *recRun) leaderLost() bool { return rr.lead.Err() != nil }

// update records candidates, recommendations and/or an event in Raft.
func (rr *recRun) update(cmd *pb.UpdateRecommendationJobCommand) {
	cmd.AccountId, cmd.Name = rr.job.Account, rr.job.Name
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := rr.r.c.Apply(ctx, fsm.UpdateRecommendationJobType, cmd); err != nil {
		rr.r.log.Warn("recommendation progress not recorded", "job", rr.job.Name, "err", err)
	}
}

// event appends a line to the job's log.
func (rr *recRun) event(level, format string, args ...any) {
	rr.update(&pb.UpdateRecommendationJobCommand{Event: &pb.JobEvent{Time: timestamppb.New(rr.r.c.Now()), Level: level,
		Message: fmt.Sprintf(format, args...)}})
}

// setCandidate records a candidate's new state, with an event.
func (rr *recRun) setCandidate(c *pb.RecommendationCandidate, status, reason string) {
	c.Status, c.StatusReason = status, reason
	msg := fmt.Sprintf("candidate %s (%s): %s", c.GetName(), c.GetDeploymentConfiguration().GetInstanceType(), status)
	if reason != "" {
		msg += ": " + reason
	}
	level := "INFO"
	if status == CandidateFailed {
		level = "WARN"
	}
	rr.update(&pb.UpdateRecommendationJobCommand{Candidates: []*pb.RecommendationCandidate{proto.Clone(c).(*pb.RecommendationCandidate)},
		Event: &pb.JobEvent{Time: timestamppb.New(rr.r.c.Now()), Level: level, Message: msg}})
}

// current re-reads the job record.
func (rr *recRun) current() (*pb.RecommendationJobRecord, error) {
	j, err := rr.r.c.State().Job(state.KindRecommendation, rr.job.Account, rr.job.Name)
	if err != nil {
		return nil, err
	}
	return j.Recommend, nil
}

// execute plans (or resumes) the job's candidates, runs them, ranks the
// results and records the job's end.
func (rr *recRun) execute() {
	r, j, ctx := rr.r, rr.job, rr.ctx
	defer func() {
		r.mu.Lock()
		delete(r.recs, rr.key)
		r.mu.Unlock()
		rr.cancel()
	}()
	ctx, span := r.startJobSpan(ctx, SpanRecommendationJob, j)
	err := rr.run(ctx)
	defer func() { endSpan(span, err) }()
	now := timestamppb.New(r.c.Now())
	switch {
	case rr.leaderLost():
		r.log.Info("leadership lost; the next leader resumes the recommendation job", "job", j.Name)
	case rr.isStopped():
		r.setStatusWithEvent(context.Background(), j, state.StatusStopped, "", &pb.JobEvent{Time: now, Level: "INFO",
			Message: "stopped on request; every candidate's model server was torn down"}, state.StatusStopping, state.StatusInProgress)
	case err != nil:
		r.setStatusWithEvent(context.Background(), j, state.StatusFailed, err.Error(), &pb.JobEvent{Time: now, Level: "ERROR",
			Message: "failed: " + err.Error()}, state.StatusInProgress)
		r.log.Warn("recommendation job failed", "job", j.Name, "err", err)
	default:
		r.setStatusWithEvent(context.Background(), j, state.StatusCompleted, "", &pb.JobEvent{Time: now, Level: "INFO",
			Message: "completed"}, state.StatusInProgress)
		r.log.Info("recommendation job completed", "job", j.Name)
	}
}

// recContext is what every candidate of a job shares.
type recContext struct {
	rec      *pb.DescribeAIRecommendationJobResponse
	spec     *workload.Spec
	plan     []workload.Level
	slos     slos
	served   string   // the model name the server serves
	adapters []string // adapter IDs served beside it
	store    resultstore.Store
}

func (rr *recRun) run(ctx context.Context) error {
	r, j := rr.r, rr.job
	record, err := rr.current()
	if err != nil {
		return err
	}
	rec := record.GetJob()
	cfg, err := r.c.State().WorkloadConfig(j.Account, record.GetWorkloadConfigName())
	if err != nil {
		return fmt.Errorf("workload config: %w", err)
	}
	spec, _, err := r.specs.get(j.Account, cfg.GetConfig())
	if err != nil {
		return err
	}
	store, err := r.openOutput(ctx, j, rec.GetOutputConfig().GetS3OutputLocation())
	if err != nil {
		return err
	}
	rc := &recContext{rec: rec, spec: spec, plan: spec.Levels(), slos: slosFrom(spec), store: store}
	rc.served = servedModelName(spec, rec.GetModelSource().GetS3().GetS3Uri())
	for _, a := range rec.GetAdapterSource().GetS3Uris() {
		rc.adapters = append(rc.adapters, a.GetAdapterId())
	}
	for _, a := range rec.GetAdapterSource().GetModelPackageArns() {
		rc.adapters = append(rc.adapters, a.GetAdapterId())
	}

	cands := rec.GetCandidates()
	if len(cands) == 0 && rr.isStopped() {
		return nil
	}
	if len(cands) == 0 {
		agents, err := r.c.State().Agents(nil)
		if err != nil {
			return err
		}
		in := planInput{Goal: goalOf(rec), InstanceTypes: rec.GetComputeSpec().GetInstanceTypes(), Framework: rec.GetInferenceSpecification().GetFramework(),
			ModelURI: rec.GetModelSource().GetS3().GetS3Uri(), OptimizeModel: rec.GetOptimizeModel(), Adapters: rc.adapters, Agents: agents,
			Price: func(t string, a *pb.Agent) float64 {
				e, err := r.price(t, a)
				if err != nil {
					return math.NaN()
				}
				return e.USDPerHour
			}}
		in.CheckpointGiB, in.CheckpointNote = r.checkpointSize(ctx, in.ModelURI)
		var notes []string
		cands, notes = planCandidates(in)
		if len(cands) == 0 {
			return fmt.Errorf("no candidate deployment: the fleet has no live agent with an instance type that fits the model (%s)", strings.Join(notes, "; "))
		}
		var summary []string
		for _, c := range cands {
			s := fmt.Sprintf("%s=%s", c.GetName(), c.GetDeploymentConfiguration().GetInstanceType())
			if c.GetStatus() == CandidatePending {
				s += fmt.Sprintf(" tp%d x%d on %s", c.GetTensorParallelDegree(), c.GetDeploymentConfiguration().GetCopyCountPerInstance(), c.GetAgentId())
			} else {
				s += " (skipped: " + c.GetStatusReason() + ")"
			}
			summary = append(summary, s)
		}
		rr.update(&pb.UpdateRecommendationJobCommand{Candidates: cands, Event: &pb.JobEvent{Time: timestamppb.New(r.c.Now()), Level: "INFO",
			Message: fmt.Sprintf("goal %s; %s; feasible means %s; candidates: %s", goalOf(rec), strings.Join(notes, "; "), rc.slos.describe(),
				strings.Join(summary, ", "))}})
	} else {
		rr.event("INFO", "resuming after a leader change with %d candidate(s)", len(cands))
	}

	// Candidates on one agent run in turn; different agents run in parallel.
	byAgent := map[string][]*pb.RecommendationCandidate{}
	var order []string
	for _, c := range cands {
		c = proto.Clone(c).(*pb.RecommendationCandidate)
		switch c.GetStatus() {
		case CandidateCompleted, CandidateFailed, CandidateSkipped, CandidateStopped:
			continue
		}
		if byAgent[c.GetAgentId()] == nil {
			order = append(order, c.GetAgentId())
		}
		byAgent[c.GetAgentId()] = append(byAgent[c.GetAgentId()], c)
	}
	var wg sync.WaitGroup
	for _, agent := range order {
		wg.Add(1)
		go func(list []*pb.RecommendationCandidate) {
			defer wg.Done()
			for _, c := range list {
				if rr.leaderLost() {
					return
				}
				rr.runCandidate(ctx, rc, c)
			}
		}(byAgent[agent])
	}
	wg.Wait()
	if rr.leaderLost() || rr.isStopped() {
		return nil
	}
	return rr.finish(ctx, rc)
}

// checkpointSize lists a file:// or s3:// model checkpoint and sums its
// weight files; 0 when it cannot be listed (hub IDs, no access), and the
// planner then estimates from the name.
func (r *Runner) checkpointSize(ctx context.Context, uri string) (float64, string) {
	if !strings.HasPrefix(uri, "file://") && !strings.HasPrefix(uri, "s3://") {
		return 0, ""
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := resultstore.Open(lctx, uri, resultstore.Options{Region: r.Region})
	if err != nil {
		return 0, ""
	}
	files, err := store.List(lctx, "")
	if err != nil {
		return 0, ""
	}
	gib, n := checkpointGiB(files)
	if n == 0 {
		return 0, ""
	}
	// The weight files hold the weights as they will sit in GPU memory
	// (BF16/FP16 checkpoints), so their size is the requirement.
	return gib, fmt.Sprintf("model size: %.1f GiB in %d weight file(s) of the checkpoint", gib, n)
}

// goalOf returns the job's goal.
func goalOf(rec *pb.DescribeAIRecommendationJobResponse) string {
	if c := rec.GetPerformanceTarget().GetConstraints(); len(c) > 0 {
		return c[0].GetMetric()
	}
	return GoalThroughput
}

// servedModelName is the name the candidate servers serve: the workload's
// first model name, else the model source's last path element.
func servedModelName(spec *workload.Spec, uri string) string {
	if len(spec.Parameters.Models) > 0 {
		return spec.Parameters.Models[0]
	}
	name := strings.TrimRight(uri, "/")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// serverID is a candidate's model-server ID on its agent, the same on every
// leader so that a new leader can tear down what an old one launched.
func serverID(jobARN, cand string) string {
	h := sha256.Sum256([]byte(jobARN))
	return "rec-" + hex.EncodeToString(h[:5]) + "-" + cand
}

// childName is a candidate's benchmark job name: the parent's name (cut to
// fit the 63-character rule) and the candidate's.
func childName(parent, cand string) string {
	suffix := "-" + cand
	if len(parent)+len(suffix) > 63 {
		parent = strings.TrimRight(parent[:63-len(suffix)], "-")
	}
	return parent + suffix
}

// runCandidate deploys a candidate, benchmarks it with a child job and tears
// it down; the outcome is recorded on the candidate.
func (rr *recRun) runCandidate(ctx context.Context, rc *recContext, c *pb.RecommendationCandidate) {
	r := rr.r
	ctx, span := r.ins.tracer.Start(ctx, SpanCandidate, trace.WithAttributes(attribute.String("perfleet.candidate", c.GetName()),
		attribute.String("perfleet.agent", c.GetAgentId()), attribute.String("perfleet.instance_type", c.GetDeploymentConfiguration().GetInstanceType())))
	defer func() {
		span.SetAttributes(attribute.String("perfleet.candidate.status", c.GetStatus()))
		span.End()
	}()
	id := serverID(rr.job.ARN(), c.GetName())
	child := childName(rr.job.Name, c.GetName())
	childJob, _ := r.c.State().Job(state.KindBenchmark, rr.job.Account, child)
	defer rr.teardown(c, id)

	if rr.isStopped() && childJob == nil {
		rr.setCandidate(c, CandidateStopped, "stopped before it was benchmarked")
		return
	}
	if childJob == nil {
		// A launch an earlier leader started may still be running: start clean.
		if c.GetStatus() == CandidateDeploying {
			rr.teardown(c, id)
		}
		c.ModelServerId = id
		rr.setCandidate(c, CandidateDeploying, fmt.Sprintf("starting %s on agent %s", c.GetDeploymentConfiguration().GetImageUri(), c.GetAgentId()))
		status, err := rr.deploy(ctx, rc, c, id)
		if rr.leaderLost() {
			return
		}
		if rr.isStopped() {
			rr.setCandidate(c, CandidateStopped, "stopped while deploying")
			return
		}
		if err != nil {
			rr.setCandidate(c, CandidateFailed, "model server did not start: "+err.Error())
			return
		}
		c.SetupTime = status.GetSetupTime()
		c.ModelServerId = status.GetId()
		if err := rr.createChild(ctx, rc, c, child, status.GetUrl()); err != nil {
			rr.setCandidate(c, CandidateFailed, "child benchmark job not created: "+err.Error())
			return
		}
		c.AiBenchmarkJobArn = r.c.Scope().Build(rr.job.Account, state.KindBenchmark, child)
		rr.setCandidate(c, CandidateBenchmarking, fmt.Sprintf("server ready in %.1fs at %s; child job %s running", c.GetSetupTime().AsDuration().Seconds(),
			status.GetUrl(), child))
	}
	final, err := rr.waitChild(child)
	switch {
	case rr.leaderLost():
	case rr.isStopped():
		rr.setCandidate(c, CandidateStopped, "stopped with the job")
	case err != nil:
		rr.setCandidate(c, CandidateFailed, err.Error())
	case final.Status != state.StatusCompleted:
		reason := final.Benchmark.GetJob().GetFailureReason()
		if reason == "" {
			reason = "ended " + final.Status
		}
		rr.setCandidate(c, CandidateFailed, "child benchmark job "+strings.ToLower(final.Status)+": "+reason)
	default:
		rr.setCandidate(c, CandidateCompleted, fmt.Sprintf("measured %d level(s)", len(final.Benchmark.GetLevels())))
	}
}

// deploy launches the candidate's model server and waits until it is ready.
func (rr *recRun) deploy(ctx context.Context, rc *recContext, c *pb.RecommendationCandidate, id string) (*pb.ModelServerStatus, error) {
	fw := c.GetDeploymentConfiguration().GetEnvironmentVariables()[frameworkEnv]
	spec := &pb.ModelServerSpec{Id: id, Framework: fw, Model: rc.rec.GetModelSource().GetS3().GetS3Uri(), GpuCount: uint32(c.GetTensorParallelDegree()),
		Copies: uint32(c.GetDeploymentConfiguration().GetCopyCountPerInstance()), ServedModelName: rc.served}
	switch fw {
	case "SIMULATOR":
		spec.Model = rc.served
		if a, err := rr.r.c.State().Agent(c.GetAgentId()); err == nil {
			spec.SimulatedGpu = simulatorGPU(a.GetGpus().GetModel())
		}
		for _, a := range rc.adapters {
			spec.ExtraArgs = append(spec.ExtraArgs, "--model", a)
		}
		// The workload's seed also fixes the simulator's texts and lengths.
		spec.ExtraArgs = append(spec.ExtraArgs, "--seed", fmt.Sprint(rc.spec.Parameters.RandomSeed))
	case "VLLM":
		spec.ExtraArgs = append(spec.ExtraArgs, speculativeArgs(c)...)
		if len(rc.adapters) > 0 {
			spec.ExtraArgs = append(spec.ExtraArgs, "--enable-lora", "--lora-modules")
			for _, a := range rc.rec.GetAdapterSource().GetS3Uris() {
				spec.ExtraArgs = append(spec.ExtraArgs, a.GetAdapterId()+"="+a.GetS3Uri())
			}
		}
	}
	lctx, cancel := context.WithTimeout(ctx, rr.r.DeployTimeout)
	defer cancel()
	ev, err := rr.r.c.CallAgent(lctx, c.GetAgentId(), func(reqID uint64) *pb.ConnectResponse {
		return &pb.ConnectResponse{Body: &pb.ConnectResponse_LaunchModelServer{LaunchModelServer: &pb.LaunchModelServer{RequestId: reqID, Spec: spec}}}
	})
	if err != nil {
		return nil, err
	}
	if ev.GetError() != "" {
		return nil, errors.New(ev.GetError())
	}
	if st := ev.GetStatus(); st.GetState() != "ready" {
		reason := st.GetFailureReason()
		if reason == "" {
			reason = "state " + st.GetState()
		}
		return nil, errors.New(reason)
	}
	return ev.GetStatus(), nil
}

// simulatorGPU maps an agent's GPU model ("NVIDIA H100 80GB HBM3", "NVIDIA
// A100-SXM4-80GB") to the simulator's GPU type, so that a simulated
// candidate performs like its class; "" keeps the agent's default.
func simulatorGPU(model string) string {
	m := strings.TrimPrefix(strings.TrimSpace(model), "NVIDIA ")
	first := strings.FieldsFunc(m, func(r rune) bool { return r == ' ' || r == '-' })
	if len(first) == 0 {
		return ""
	}
	if _, err := llmsim.ProfileFor(first[0], 1); err != nil {
		return ""
	}
	return first[0]
}

// teardown stops the candidate's model server (a server that is already
// gone is fine).
func (rr *recRun) teardown(c *pb.RecommendationCandidate, id string) {
	// After a leadership loss the new leader owns the candidate: its child
	// job may still be measuring this server.
	if rr.leaderLost() || c.GetAgentId() == "" || !rr.r.c.AgentConnected(c.GetAgentId()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := rr.r.c.CallAgent(ctx, c.GetAgentId(), func(reqID uint64) *pb.ConnectResponse {
		return &pb.ConnectResponse{Body: &pb.ConnectResponse_StopModelServer{StopModelServer: &pb.StopModelServer{RequestId: reqID, Id: id}}}
	})
	if err == nil && ev.GetError() == "" {
		rr.r.log.Info("candidate torn down", "job", rr.job.Name, "candidate", c.GetName(), "server", id)
	}
}

// createChild records the candidate's benchmark job; the benchmark runner
// picks it up like any other.
func (rr *recRun) createChild(ctx context.Context, rc *recContext, c *pb.RecommendationCandidate, name, url string) error {
	r, rec := rr.r, rc.rec
	now := timestamppb.New(r.c.Now())
	models := []*pb.InferenceComponentRef{{Identifier: rc.served}}
	for _, a := range rc.adapters {
		models = append(models, &pb.InferenceComponentRef{Identifier: a})
	}
	tags := []*pb.Tag{{Key: ParentTag, Value: rr.job.Name}, {Key: "perfleet:candidate", Value: c.GetName()}}
	job := &pb.DescribeAIBenchmarkJobResponse{
		AiBenchmarkJobArn:          r.c.Scope().Build(rr.job.Account, state.KindBenchmark, name),
		AiBenchmarkJobName:         name,
		AiBenchmarkJobStatus:       state.StatusInProgress,
		AiWorkloadConfigIdentifier: rec.GetAiWorkloadConfigIdentifier(),
		BenchmarkTarget:            &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: url, InferenceComponents: models}},
		OutputConfig:               &pb.AIBenchmarkOutputConfig{S3OutputLocation: rec.GetOutputConfig().GetS3OutputLocation()},
		RoleArn:                    rec.GetRoleArn(),
		Tags:                       tags,
		CreationTime:               now,
		StartTime:                  now,
		LastModifiedTime:           now,
	}
	record := &pb.BenchmarkJobRecord{AccountId: rr.job.Account, WorkloadConfigName: rr.job.Recommend.GetWorkloadConfigName(), Job: job,
		PinnedAgentIds: []string{c.GetAgentId()}, ParentArn: rr.job.ARN()}
	_, err := r.c.Apply(ctx, fsm.CreateResourceType, &pb.CreateResourceCommand{BenchmarkJob: record})
	return err
}

// waitChild waits for a child job to end; a stopped parent stops it first.
func (rr *recRun) waitChild(name string) (*state.Job, error) {
	asked := false
	for {
		ws := memdb.NewWatchSet()
		st := rr.r.c.State()
		ws.Add(st.AbandonCh())
		if _, err := st.JobsInStatus(ws, state.KindBenchmark, state.StatusInProgress); err != nil {
			return nil, err
		}
		j, err := st.Job(state.KindBenchmark, rr.job.Account, name)
		if err != nil {
			return nil, fmt.Errorf("child benchmark job %s: %w", name, err)
		}
		if state.Terminal(j.Status) {
			return j, nil
		}
		if rr.isStopped() && !asked {
			asked = true
			rr.r.setStatus(context.Background(), j, state.StatusStopping, "", state.StatusInProgress)
		}
		if rr.leaderLost() {
			return nil, rr.lead.Err()
		}
		wctx, cancel := context.WithTimeout(rr.lead, time.Second)
		_ = ws.WatchCtx(wctx)
		cancel()
	}
}

// finish ranks the completed candidates, records the recommendations and
// writes recommendations.json and report.html.
func (rr *recRun) finish(ctx context.Context, rc *recContext) error {
	r := rr.r
	record, err := rr.current()
	if err != nil {
		return err
	}
	cands := record.GetJob().GetCandidates()
	var ms []*measured
	var problems []string
	all := map[string]*measured{}
	for _, c := range cands {
		if c.GetStatus() != CandidateCompleted {
			problems = append(problems, fmt.Sprintf("%s (%s): %s", c.GetName(), c.GetDeploymentConfiguration().GetInstanceType(), nonEmpty(c.GetStatusReason(), c.GetStatus())))
			continue
		}
		child, err := r.c.State().Job(state.KindBenchmark, rr.job.Account, childName(rr.job.Name, c.GetName()))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", c.GetName(), err))
			continue
		}
		m, why := operatingPoint(child.Benchmark.GetLevels(), rc.plan, rc.slos)
		m.cand = c
		all[c.GetName()] = m
		if why != "" {
			problems = append(problems, fmt.Sprintf("%s (%s): %s", c.GetName(), c.GetDeploymentConfiguration().GetInstanceType(), why))
			c = proto.Clone(c).(*pb.RecommendationCandidate)
			c.StatusReason = why
			rr.update(&pb.UpdateRecommendationJobCommand{Candidates: []*pb.RecommendationCandidate{c}})
			continue
		}
		agent, _ := r.c.State().Agent(c.GetAgentId())
		e, perr := r.price(c.GetDeploymentConfiguration().GetInstanceType(), agent)
		if perr != nil {
			m.usdHour, m.priceSource = math.NaN(), perr.Error()
		} else {
			m.usdHour, m.priceSource = e.USDPerHour, e.Source
		}
		m.costPerM = costPerMillion(m.usdHour, m.goodTPS)
		ms = append(ms, m)
	}
	goal := goalOf(rc.rec)
	if goal == GoalCost {
		var priced []*measured
		for _, m := range ms {
			if math.IsNaN(m.usdHour) {
				problems = append(problems, fmt.Sprintf("%s: not ranked for cost: %s", m.cand.GetName(), m.priceSource))
				continue
			}
			priced = append(priced, m)
		}
		ms = priced
	}
	rankMeasured(goal, ms)
	var recs []*pb.AIRecommendation
	var ranked []*pb.RecommendationCandidate
	for i, m := range ms {
		c := proto.Clone(m.cand).(*pb.RecommendationCandidate)
		c.Rank = int32(i + 1)
		ranked = append(ranked, c)
		recs = append(recs, recommendationOf(rc, m, i+1, goal))
	}
	rr.update(&pb.UpdateRecommendationJobCommand{Candidates: ranked, Recommendations: recs, Event: &pb.JobEvent{Time: timestamppb.New(r.c.Now()),
		Level: "INFO", Message: rankingSummary(goal, ms, problems)}})
	if err := rr.writeResults(ctx, rc, goal, all, ms); err != nil {
		rr.event("WARN", "results not written: %v", err)
	}
	if len(recs) == 0 {
		return fmt.Errorf("no candidate produced a recommendation: %s", strings.Join(problems, "; "))
	}
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// rankingSummary is the log line of the final ranking.
func rankingSummary(goal string, ms []*measured, problems []string) string {
	var parts []string
	for i, m := range ms {
		parts = append(parts, fmt.Sprintf("%d. %s (%s) TTFT p50 %.1f ms, %.0f tok/s, $%.3f/1M tokens", i+1, m.cand.GetName(),
			m.cand.GetDeploymentConfiguration().GetInstanceType(), m.ttftP50(), m.goodTPS, m.costPerM))
	}
	s := "ranked for " + goal + ": " + strings.Join(parts, "; ")
	if len(ms) == 0 {
		s = "no candidate could be ranked"
	}
	if len(problems) > 0 {
		s += "; not ranked: " + strings.Join(problems, "; ")
	}
	return s
}

// recommendationOf builds the SageMaker-shaped recommendation of a ranked
// candidate.
func recommendationOf(rc *recContext, m *measured, rank int, goal string) *pb.AIRecommendation {
	c := m.cand
	dc := proto.Clone(c.GetDeploymentConfiguration()).(*pb.DeploymentConfiguration)
	dc.S3 = []*pb.S3Channel{{ChannelName: "model", Uri: rc.rec.GetModelSource().GetS3().GetS3Uri()}}
	desc := fmt.Sprintf("#%d for %s: %s, tensor parallel %d x %d copies, at %s: TTFT p50 %.1f ms, %.0f output tokens/s, $%.2f/hour (%s), $%.3f per 1M output tokens. %s",
		rank, goal, dc.GetInstanceType(), c.GetTensorParallelDegree(), dc.GetCopyCountPerInstance(), levelLabel(m.op, rc.plan), m.ttftP50(), m.goodTPS,
		m.usdHour, m.priceSource, m.costPerM, c.GetExplanation())
	out := &pb.AIRecommendation{
		RecommendationDescription: desc,
		OptimizationDetails:       c.GetOptimizationDetails(),
		ModelDetails: &pb.ModelDetails{InferenceSpecificationName: c.GetName() + "-" + strings.ReplaceAll(dc.GetInstanceType(), ".", "-"),
			InstanceDetails: []*pb.InstanceDetail{{InstanceType: dc.GetInstanceType(), InstanceCount: dc.GetInstanceCount(), CopyCountPerInstance: dc.GetCopyCountPerInstance()}}},
		DeploymentConfiguration: dc,
		AiBenchmarkJobArn:       c.GetAiBenchmarkJobArn(),
		ExpectedPerformance:     expectedPerformance(m),
	}
	if s3, pk := rc.rec.GetAdapterSource().GetS3Uris(), rc.rec.GetAdapterSource().GetModelPackageArns(); len(s3)+len(pk) > 0 {
		out.AdapterDetails = &pb.AdapterDetails{}
		for _, a := range s3 {
			out.AdapterDetails.S3Uris = append(out.AdapterDetails.S3Uris, a.GetS3Uri())
		}
		for _, a := range pk {
			out.AdapterDetails.ModelPackageArns = append(out.AdapterDetails.ModelPackageArns, a.GetModelPackageArn())
		}
	}
	return out
}

// writeResults writes <job>/recommendations.json and <job>/report.html.
func (rr *recRun) writeResults(ctx context.Context, rc *recContext, goal string, all map[string]*measured, ranked []*measured) error {
	record, err := rr.current()
	if err != nil {
		return err
	}
	job := record.GetJob()
	type row struct {
		Rank                int               `json:"rank"`
		Candidate           string            `json:"candidate"`
		Status              string            `json:"status"`
		Reason              string            `json:"reason,omitempty"`
		InstanceType        string            `json:"instance_type"`
		Agent               string            `json:"agent,omitempty"`
		TensorParallel      int32             `json:"tensor_parallel_degree"`
		Copies              int32             `json:"copy_count_per_instance"`
		Explanation         string            `json:"explanation,omitempty"`
		NotApplied          []string          `json:"optimizations_not_applied,omitempty"`
		ChildJobARN         string            `json:"ai_benchmark_job_arn,omitempty"`
		SetupSeconds        float64           `json:"setup_seconds,omitempty"`
		OperatingPoint      string            `json:"operating_point,omitempty"`
		TTFTP50Ms           float64           `json:"time_to_first_token_p50_ms,omitempty"`
		TTFTP99Ms           float64           `json:"time_to_first_token_p99_ms,omitempty"`
		ITLP50Ms            float64           `json:"inter_token_latency_p50_ms,omitempty"`
		LatencyP50Ms        float64           `json:"request_latency_p50_ms,omitempty"`
		LatencyP99Ms        float64           `json:"request_latency_p99_ms,omitempty"`
		OutputTokensPerSec  float64           `json:"output_token_throughput,omitempty"`
		GoodputTokensPerSec float64           `json:"goodput_token_throughput,omitempty"`
		RequestsPerSec      float64           `json:"request_throughput,omitempty"`
		GPUUtilization      float64           `json:"gpu_utilization_percent,omitempty"`
		JoulesPerToken      float64           `json:"energy_joules_per_output_token,omitempty"`
		USDPerHour          *float64          `json:"usd_per_hour,omitempty"`
		USDPerMillionTokens *float64          `json:"usd_per_million_output_tokens,omitempty"`
		PriceSource         string            `json:"price_source,omitempty"`
		Env                 map[string]string `json:"environment_variables,omitempty"`
	}
	doc := struct {
		Job             string                 `json:"ai_recommendation_job_arn"`
		Goal            string                 `json:"goal"`
		Feasible        string                 `json:"feasible_means"`
		Candidates      []row                  `json:"candidates"`
		Recommendations []*pb.AIRecommendation `json:"-"`
	}{Job: job.GetAiRecommendationJobArn(), Goal: goal, Feasible: rc.slos.describe()}
	for _, c := range job.GetCandidates() {
		rw := row{Rank: int(c.GetRank()), Candidate: c.GetName(), Status: c.GetStatus(), Reason: c.GetStatusReason(),
			InstanceType: c.GetDeploymentConfiguration().GetInstanceType(), Agent: c.GetAgentId(), TensorParallel: c.GetTensorParallelDegree(),
			Copies: c.GetDeploymentConfiguration().GetCopyCountPerInstance(), Explanation: c.GetExplanation(), NotApplied: c.GetNotApplied(),
			ChildJobARN: c.GetAiBenchmarkJobArn(), SetupSeconds: c.GetSetupTime().AsDuration().Seconds(), Env: c.GetDeploymentConfiguration().GetEnvironmentVariables()}
		if m := all[c.GetName()]; m != nil && m.op != nil {
			rw.OperatingPoint = levelLabel(m.op, rc.plan)
			rw.TTFTP50Ms, rw.TTFTP99Ms = m.ttft.GetP50(), m.ttft.GetP99()
			rw.ITLP50Ms = m.itl.GetP50()
			rw.LatencyP50Ms, rw.LatencyP99Ms = m.latency.GetP50(), m.latency.GetP99()
			rw.OutputTokensPerSec, rw.GoodputTokensPerSec, rw.RequestsPerSec = m.outTPS, m.goodTPS, m.reqTPS
			rw.GPUUtilization, rw.JoulesPerToken = round3(m.gpuUtil), m.joulesPerToken
			if !math.IsNaN(m.usdHour) && m.priceSource != "" {
				h, c := round3(m.usdHour), round3(m.costPerM)
				rw.USDPerHour, rw.USDPerMillionTokens = &h, &c
			}
			rw.PriceSource = m.priceSource
		}
		doc.Candidates = append(doc.Candidates, rw)
	}
	sort.SliceStable(doc.Candidates, func(i, j int) bool {
		a, b := doc.Candidates[i].Rank, doc.Candidates[j].Rank
		return a != 0 && (b == 0 || a < b)
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	if err := rc.store.Put(ctx, rr.job.Name+"/recommendations.json", &buf, int64(buf.Len()), "application/json"); err != nil {
		return err
	}
	var html bytes.Buffer
	in := reportOf(job, rc, goal, all, record.GetEvents())
	in.Status, in.Ended = state.StatusCompleted, rr.r.c.Now() // the status this job is about to get
	if len(ranked) == 0 {
		in.Status, in.FailureReason = state.StatusFailed, "no candidate produced a recommendation"
	}
	if err := report.WriteRecommendation(&html, in); err != nil {
		return err
	}
	if err := rc.store.Put(ctx, rr.job.Name+"/report.html", &html, int64(html.Len()), "text/html"); err != nil {
		return err
	}
	rr.event("INFO", "results in %s", rc.store.URI(rr.job.Name))
	return nil
}

// reportOf turns a finished job into the report's input.
func reportOf(job *pb.DescribeAIRecommendationJobResponse, rc *recContext, goal string, all map[string]*measured, events []*pb.JobEvent) report.Recommendation {
	out := report.Recommendation{JobName: job.GetAiRecommendationJobName(), JobARN: job.GetAiRecommendationJobArn(),
		Status: job.GetAiRecommendationJobStatus(), FailureReason: job.GetFailureReason(), Goal: goal, Model: job.GetModelSource().GetS3().GetS3Uri(),
		Workload: job.GetAiWorkloadConfigIdentifier(), SLOs: rc.slos.describe(), PointLatency: "request latency p50",
		Created: job.GetCreationTime().AsTime()}
	if job.GetEndTime() != nil {
		out.Ended = job.GetEndTime().AsTime()
	}
	for _, ev := range events {
		if strings.HasPrefix(ev.GetMessage(), "goal ") {
			out.Notes = append(out.Notes, ev.GetMessage())
		}
	}
	for _, c := range job.GetCandidates() {
		dc := c.GetDeploymentConfiguration()
		cand := report.Candidate{Name: c.GetName(), InstanceType: dc.GetInstanceType(), Rank: int(c.GetRank()), Status: c.GetStatus(),
			Reason: c.GetStatusReason(), Explanation: c.GetExplanation(), TensorParallel: int(c.GetTensorParallelDegree()),
			Copies: int(dc.GetCopyCountPerInstance()), InstanceCount: int(dc.GetInstanceCount()), Framework: dc.GetEnvironmentVariables()[frameworkEnv],
			Env: dc.GetEnvironmentVariables(), NotApplied: c.GetNotApplied(), ChildJobARN: c.GetAiBenchmarkJobArn()}
		for _, o := range c.GetOptimizationDetails() {
			cand.Optimizations = append(cand.Optimizations, o.GetOptimizationType())
		}
		if m := all[c.GetName()]; m != nil {
			op := ""
			if m.op != nil {
				op = levelLabel(m.op, rc.plan)
				cand.OperatingPoint = op
				cand.TTFT, cand.ITL, cand.RequestLatency = reportStat(m.ttft), reportStat(m.itl), reportStat(m.latency)
				cand.OutputTokenThroughput, cand.RequestThroughput, cand.Goodput = m.outTPS, m.reqTPS, m.goodTPS
				cand.USDPerHour, cand.USDPerMillionTokens, cand.PriceSource = m.usdHour, m.costPerM, m.priceSource
				cand.EnergyJoulesPerToken = m.joulesPerToken
			}
			for _, p := range m.points {
				cand.Points = append(cand.Points, report.Point{Label: p.label, LatencyMs: p.latencyMs, TokensPerSecond: p.outTPS,
					Feasible: p.feasible, Operating: p.label == op})
			}
		}
		out.Candidates = append(out.Candidates, cand)
	}
	return out
}

// startRecommendation registers a recommendation job run unless one is
// running.
func (r *Runner) startRecommendation(ctx context.Context, j *state.Job) *recRun {
	key := j.Account + "/" + j.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recs[key] != nil {
		return nil
	}
	jctx, cancel := context.WithCancel(ctx)
	rr := &recRun{r: r, key: key, job: j, lead: ctx, ctx: jctx, cancel: cancel}
	r.recs[key] = rr
	return rr
}

// stopRecommendation stops a running recommendation job. A job no run
// holds (its leader changed while it was stopping) gets a run that only
// stops its children and tears its candidates down; it returns that run.
func (r *Runner) stopRecommendation(ctx context.Context, j *state.Job) *recRun {
	r.mu.Lock()
	rr := r.recs[j.Account+"/"+j.Name]
	r.mu.Unlock()
	if rr != nil {
		rr.stop()
		return nil
	}
	rr = r.startRecommendation(ctx, j)
	if rr != nil {
		rr.stop()
	}
	return rr
}
