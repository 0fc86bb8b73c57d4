package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/perfleet/perfleet/agent/control"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/agent/shard"
	"github.com/perfleet/perfleet/coordinator/scheduler"
	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/secrets"
	"github.com/perfleet/perfleet/pkg/telemetry"
	"github.com/perfleet/perfleet/pkg/workload"
)

// Window buffer limits per running shard.
const (
	shardBufferMem  = 64 << 20
	shardBufferDisk = 1 << 30
)

// shardRunner runs the shards the leader assigns: each window is kept in a
// buffer until the leader acknowledges it and resent after a reconnect; the
// final report is resent too until the last window is acknowledged.
type shardRunner struct {
	agentID string
	dir     string
	client  func() *control.Client
	log     *slog.Logger
	// gpuStats, when set, returns the telemetry of the GPUs that serve a
	// target over a window (nil when the target is not served here).
	gpuStats func(target string, from, to time.Time) []gpu.WindowStats
	// secretsManager resolves arn:aws:secretsmanager references with the
	// agent's credentials; built from the default AWS configuration on
	// first use when nil.
	secretsManager secrets.Resolver
	smMu           sync.Mutex
	// secretsCreds is SecretsAsJobRole or SecretsAsAgent (Config's
	// SecretsCredentials); stsEndpoint overrides the STS endpoint.
	secretsCreds, stsEndpoint string
	// roles are the resolvers reading as job roles, by role ARN, each
	// keeping its role's credentials until they expire.
	rolesMu sync.Mutex
	roles   map[string]*secrets.SecretsManagerResolver

	// tracer traces each shard run on this agent (no-op by default).
	tracer trace.Tracer

	mu   sync.Mutex
	runs map[uint64]*shardRun
	// live are the shards generating load now, for the load metrics; ended
	// sums the counts of those that ended (see telemetry.go).
	live  map[uint64]*liveShard
	ended loadCounts
}

type shardRun struct {
	leader string // the leader that assigned it
	cancel context.CancelFunc
	buf    *shard.Buffer
	done   *pb.ShardDone // set when the shard ended
	acked  uint64
	log    *slog.Logger // with the job, level, shard and run IDs
}

var _ control.ShardHandler = (*shardRunner)(nil)

func newShardRunner(agentID, dir string, client func() *control.Client, log *slog.Logger) *shardRunner {
	return &shardRunner{agentID: agentID, dir: dir, client: client, log: log, runs: map[uint64]*shardRun{}, live: map[uint64]*liveShard{},
		tracer: telemetry.Tracer(nil), secretsCreds: SecretsAsJobRole}
}

// RunShard starts a shard in the background.
func (r *shardRunner) RunShard(ctx context.Context, m *pb.RunShard) {
	id := m.GetRunId()
	p := m.GetShard()
	log := r.log.With("job", jobName(m.GetJobArn()), "level", levelLabel(m), "shard", p.GetIndex(), "run", id)
	if m.GetWarmup() {
		log = log.With("warmup", true)
	}
	r.mu.Lock()
	if r.runs[id] != nil {
		r.mu.Unlock()
		return // a duplicate dispatch after a reconnect
	}
	buf, err := shard.NewBuffer(filepath.Join(r.dir, fmt.Sprintf("run-%d", id)), shardBufferMem, shardBufferDisk)
	if err != nil {
		r.mu.Unlock()
		r.report(&pb.ShardDone{RunId: id, Error: err.Error()})
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	leader, _ := r.client().Leader()
	run := &shardRun{leader: leader, cancel: cancel, buf: buf, log: log}
	r.runs[id] = run
	r.mu.Unlock()

	// The leader's start time, on this agent's clock. An offset smaller than
	// its own error bound says nothing (an early sample taken while either
	// side was busy can be off by seconds), so the clocks are then taken
	// as agreeing.
	startAt := time.Unix(0, m.GetStartUnixNano())
	if off, bound, ok := r.client().ClockOffset(); ok && off.Abs() > bound {
		startAt = startAt.Add(-off)
	}
	a := shard.Assignment{JobID: m.GetJobArn(), LevelIndex: int(m.GetLevelIndex()), LevelName: m.GetLevelName(),
		Shard: scheduler.Shard{AgentID: r.agentID, Index: int(p.GetIndex()), Of: int(p.GetOf()), Concurrency: int(p.GetConcurrency()),
			Rate: p.GetRate(), SpawnRate: p.GetSpawnRate(), RequestCount: int(p.GetRequestCount()), Seed: p.GetSeed(),
			Slice: scheduler.Slice{Start: int(p.GetSliceStart()), Stride: int(p.GetSliceStride())}},
		Spec: m.GetSpec(), TargetURL: m.GetTargetUrl(), Models: m.GetModels(), StartAt: startAt, Warmup: m.GetWarmup()}
	live := &liveShard{rate: p.GetRate()}
	opts := shard.Options{AgentID: r.agentID, Emit: func(seq uint64, w *metrics.Window) {
		if r.gpuStats != nil && !m.GetWarmup() {
			from := time.UnixMilli(w.StartMs)
			addGPUCounters(w, r.gpuStats(m.GetTargetUrl(), from, from.Add(time.Duration(w.DurationMs)*time.Millisecond)))
		}
		live.observe(w)
		b := metrics.MarshalWindow(w)
		if err := buf.Add(seq, b); err != nil {
			log.Warn("window buffer full; the leader will miss this window unless the stream is up", "seq", seq, "err", err)
		}
		_ = r.client().Send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ShardWindow{ShardWindow: &pb.ShardWindow{RunId: id, Seq: seq, Window: b}}})
	}}
	// The leader resolved the spec's perfleet:secret references for this
	// shard; Secrets Manager references are resolved here, as the job's
	// role. They live only as long as the shard runs.
	opts.Secrets = make(map[string]string, len(m.GetSecretValues()))
	for ref, v := range m.GetSecretValues() {
		opts.Secrets[ref] = string(v)
	}
	bundle, err := r.resolveAWSSecrets(sctx, m)
	if err != nil {
		cancel()
		wipeSecrets(m, opts.Secrets)
		r.mu.Lock()
		delete(r.runs, id)
		r.mu.Unlock()
		_ = buf.Close()
		r.report(&pb.ShardDone{RunId: id, Error: err.Error()})
		return
	}
	for param, ref := range bundle.refs {
		opts.Secrets[ref] = string(bundle.values.Get(param).Reveal())
	}
	log.Info("shard started", "start_at", startAt, "concurrency", p.GetConcurrency(), "rate", p.GetRate(), "requests", p.GetRequestCount())
	go func() {
		defer cancel()
		defer wipeSecrets(m, opts.Secrets)
		defer bundle.values.Wipe()
		done := &pb.ShardDone{RunId: id}
		res, err := r.run(sctx, m, a, opts, live)
		if err != nil {
			done.Error = err.Error()
		}
		if res != nil {
			done.Windows, done.Sent, done.Ok, done.Errors, done.Stopped = res.Windows, res.Sent, res.OK, res.Errors, res.Stopped
		}
		r.mu.Lock()
		run.done = done
		r.mu.Unlock()
		r.report(done)
		log.Info("shard ended", "sent", done.Sent, "ok", done.Ok, "errors", done.Errors, "windows", done.Windows, "stopped", done.Stopped, "err", done.Error)
	}()
}

func (r *shardRunner) report(d *pb.ShardDone) {
	_ = r.client().Send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ShardDone{ShardDone: d}})
}

// CancelShard stops a shard; it still reports and its windows still flow.
func (r *shardRunner) CancelShard(runID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run := r.runs[runID]; run != nil {
		run.cancel()
	}
}

// WindowAck forgets acknowledged windows; a finished shard whose last window
// is acknowledged is forgotten altogether.
func (r *shardRunner) WindowAck(runID, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run := r.runs[runID]
	if run == nil {
		return
	}
	run.buf.Ack(seq)
	run.acked = max(run.acked, seq)
	if run.done != nil && run.acked >= run.done.GetWindows() {
		_ = run.buf.Close()
		delete(r.runs, runID)
	}
}

// StreamUp resends every unacknowledged window, in order, and the reports of
// finished shards. Shards another leader assigned are stopped and forgotten:
// a new leader runs the interrupted level again.
func (r *shardRunner) StreamUp() {
	leader, _ := r.client().Leader()
	r.mu.Lock()
	ids := make([]uint64, 0, len(r.runs))
	for id, run := range r.runs {
		if run.leader != leader {
			run.cancel()
			_ = run.buf.Close()
			delete(r.runs, id)
			run.log.Info("dropping a shard of the previous leader", "leader", run.leader, "new_leader", leader)
			continue
		}
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.mu.Lock()
		run := r.runs[id]
		r.mu.Unlock()
		if run == nil {
			continue
		}
		pending, err := run.buf.Unacked()
		if err != nil {
			run.log.Warn("reading buffered windows", "err", err)
		}
		for _, p := range pending {
			if err := r.client().Send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ShardWindow{ShardWindow: &pb.ShardWindow{RunId: id, Seq: p.Seq, Window: p.Data}}}); err != nil {
				return
			}
		}
		r.mu.Lock()
		done := run.done
		r.mu.Unlock()
		if done != nil {
			r.report(done)
		}
	}
}

// stopAll cancels every shard (agent shutdown).
func (r *shardRunner) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, run := range r.runs {
		run.cancel()
	}
}

// shardDir is where an agent's window buffers live: DataDir/shards, or a
// per-agent folder in the temporary directory.
func shardDir(base, agentID string) string {
	if base == "" {
		base = filepath.Join(os.TempDir(), "perfleet-agent-data-"+agentID)
	}
	return filepath.Join(base, "shards")
}

// addGPUCounters adds the window's GPU telemetry as mergeable counters:
// windows and shards merge by summing, so the leader gets total energy and
// the mean utilisation and power over every device-window.
func addGPUCounters(w *metrics.Window, stats []gpu.WindowStats) {
	for _, st := range stats {
		if st.Lost || st.Samples == 0 {
			continue
		}
		w.Counters[metrics.CounterGPUWindows]++
		if st.Fields&gpu.FieldGPUUtil != 0 {
			w.Counters[metrics.CounterGPUUtilMilli] += int64(st.GPUUtilMean * 1000)
		}
		if st.Fields&gpu.FieldPower != 0 {
			w.Counters[metrics.CounterGPUPowerMilliW] += int64(st.PowerMeanWatts * 1000)
		}
		if st.EnergySource != "" {
			w.Counters[metrics.CounterGPUEnergyMilliJ] += int64(st.EnergyJoules * 1000)
			w.Counters[metrics.CounterGPUCoveredMs] += int64(st.CoveredSeconds * 1000)
		}
	}
}

// wipeSecrets zeroes the secret bytes a shard received and drops its map.
// (The strings built from them are left to the garbage collector: Go
// strings cannot be overwritten.)
func wipeSecrets(m *pb.RunShard, secrets map[string]string) {
	for _, v := range m.GetSecretValues() {
		clear(v)
	}
	clear(m.GetSecretValues())
	clear(secrets)
}

// awsSecrets are a shard's resolved Secrets Manager references.
type awsSecrets struct {
	refs   map[string]string // parameter -> reference
	values secrets.Bundle
}

// resolveAWSSecrets resolves the spec's arn:aws:secretsmanager references
// as the shard's job role (credentials from STS AssumeRole, called with
// this agent's), or with this agent's own AWS credentials when it runs
// with SecretsAsAgent or the shard has no role; a spec without any costs
// nothing. Errors name the parameter, and the role when one was used.
func (r *shardRunner) resolveAWSSecrets(ctx context.Context, m *pb.RunShard) (awsSecrets, error) {
	out := awsSecrets{refs: map[string]string{}}
	parsed, err := workload.Parse(m.GetSpec())
	if err != nil {
		return out, nil // the shard itself reports a bad spec
	}
	for param, ref := range parsed.Secrets {
		if strings.HasPrefix(ref, "arn:") {
			out.refs[param] = ref
		}
	}
	if len(out.refs) == 0 {
		return out, nil
	}
	base, err := r.baseSecretsManager()
	if err != nil {
		return out, fmt.Errorf("secrets: AWS Secrets Manager client: %v", err)
	}
	res, role := base, m.GetRoleArn()
	if r.secretsCreds == SecretsAsAgent {
		role = ""
	}
	if role != "" {
		if res, err = r.roleResolver(role, m.GetRunId(), out.refs); err != nil {
			return out, fmt.Errorf("secrets: job role %s: %v", role, err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out.values, err = secrets.ResolveBundle(rctx, res, out.refs)
	switch {
	case err == nil:
		return out, nil
	case role == "":
		return out, fmt.Errorf("secrets: %v", err)
	}
	var are *secrets.AssumeRoleError
	var re *secrets.ResolveError
	if errors.As(err, &are) && errors.As(err, &re) {
		return out, fmt.Errorf("secrets: %s: cannot assume job role %s: %s", re.Param, are.Role, are.Reason())
	}
	return out, fmt.Errorf("secrets: as job role %s: %v", role, err)
}

// baseSecretsManager is the resolver with the agent's own credentials,
// built from the default AWS configuration on first use. A failure (no
// configuration yet, a transient error) is not kept: the next shard tries
// again.
func (r *shardRunner) baseSecretsManager() (secrets.Resolver, error) {
	r.smMu.Lock()
	defer r.smMu.Unlock()
	if r.secretsManager != nil {
		return r.secretsManager, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := secrets.NewSecretsManagerResolver(ctx)
	if err != nil {
		return nil, err
	}
	r.secretsManager = res
	return res, nil
}

// maxRoleResolvers bounds the job roles whose credentials an agent keeps.
const maxRoleResolvers = 64

// roleResolver returns the resolver reading as role, made on first use
// from the agent's resolver. Its credentials come from one STS AssumeRole
// call, renewed shortly before they expire, so the shards of a role share
// them: the session is named after the agent and the run that first
// needed it (perfleet-<agent id>-<run id>). refs are the shard's
// references; STS is called in the region of the first when the agent's
// AWS configuration names none.
func (r *shardRunner) roleResolver(role string, runID uint64, refs map[string]string) (*secrets.SecretsManagerResolver, error) {
	r.rolesMu.Lock()
	defer r.rolesMu.Unlock()
	if res := r.roles[role]; res != nil {
		return res, nil
	}
	base, ok := r.secretsManager.(*secrets.SecretsManagerResolver)
	if !ok {
		return nil, fmt.Errorf("the agent's Secrets Manager resolver (%T) cannot assume roles; "+
			"run the agent with --secrets-credentials %s to read secrets with its own credentials", r.secretsManager, SecretsAsAgent)
	}
	region := ""
	params := slices.Sorted(maps.Keys(refs))
	for _, p := range params {
		if ref, err := secrets.ParseRef(refs[p]); err == nil && ref.Region != "" {
			region = ref.Region
			break
		}
	}
	res, err := base.AsRole(role, secrets.AssumeRoleOptions{SessionName: roleSessionName(r.agentID, runID),
		Region: region, STSEndpoint: r.stsEndpoint})
	if err != nil {
		return nil, err
	}
	if r.roles == nil || len(r.roles) >= maxRoleResolvers {
		r.roles = map[string]*secrets.SecretsManagerResolver{}
	}
	r.roles[role] = res
	return res, nil
}

// roleSessionName is "perfleet-<agent id>-<run id>" within STS's rules
// (64 characters of [\w+=,.@-]): the agent ID is cleaned and cut, the run
// ID kept.
func roleSessionName(agentID string, runID uint64) string {
	suffix := "-" + strconv.FormatUint(runID, 10)
	name := secrets.RoleSessionName("perfleet-" + agentID)
	if keep := secrets.MaxRoleSessionName - len(suffix); len(name) > keep {
		name = name[:keep]
	}
	return name + suffix
}
