// Package runner executes jobs on the leader.
//
// Benchmark jobs: it plans each job
// with coordinator/scheduler, sends every agent its shard of a level over
// the control stream with a common start time, merges the agents' 1-second
// windows, writes AIPerf's result files to the job's output location and
// completes, fails or stops the job through Raft.
//
// Live windows do not go through Raft. This first version keeps a job's
// progress in the leader's memory: a new leader restarts an InProgress job
// from its first level, and an agent lost mid-level fails the job.
package runner

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/arn"
	"github.com/perfleet/perfleet/pkg/atrest"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/pricing"
	"github.com/perfleet/perfleet/pkg/resultstore"
	"github.com/perfleet/perfleet/pkg/workload"
)

// Cluster is what the runner needs from the leader.
type Cluster interface {
	State() *state.Store
	Apply(ctx context.Context, t fsm.MessageType, msg proto.Message) (any, error)
	Now() time.Time
	// SendToAgent sends a message on an agent's control stream.
	SendToAgent(agentID string, m *pb.ConnectResponse) error
	// AgentConnected reports whether an agent holds a control stream.
	AgentConnected(agentID string) bool
	// AgentInstance returns the instance ID of the agent process holding
	// the control stream (new at every agent start), and whether one does.
	AgentInstance(agentID string) (string, bool)
	// CallAgent sends a request built around a request ID on an agent's
	// control stream and waits for the agent's answer (model servers).
	CallAgent(ctx context.Context, agentID string, build func(id uint64) *pb.ConnectResponse) (*pb.ModelServerEvent, error)
	// Scope builds ARNs.
	Scope() arn.Scope
}

// price looks an instance type up for an agent of that type.
func (r *Runner) price(instanceType string, a *pb.Agent) (pricing.Entry, error) {
	if r.Prices == nil {
		return pricing.Entry{}, fmt.Errorf("no price catalog configured")
	}
	return r.Prices.Lookup(instanceType, r.Region, a.GetGpus().GetModel(), int(a.GetGpus().GetCount()))
}

// Runner runs the leader's benchmark jobs.
type Runner struct {
	c   Cluster
	log *slog.Logger

	// StartDelay is how far ahead of dispatch a level's common start lies.
	StartDelay time.Duration
	// LostAfter is how long an agent may be disconnected mid-level before
	// the job fails.
	LostAfter time.Duration
	// Region is used for s3:// output locations.
	Region string
	// ErrorWindow is how long a level's error rate must stay above the
	// spec's error_rate_sla (50 % when unset) before the job fails.
	ErrorWindow time.Duration
	// Prices prices recommendation candidates.
	Prices *pricing.Catalog
	// DeployTimeout bounds a recommendation candidate's model-server launch.
	DeployTimeout time.Duration

	nextRun atomic.Uint64
	// Windows not merged: those that arrived again (an agent resending
	// after a reconnect what was already merged), and the others (ahead
	// of a missing one, which the agent resends in order, or undecodable).
	dupWindows, otherWindows atomic.Int64
	specs                    specCache
	mu                       sync.Mutex
	jobs                     map[string]*jobRun   // by job key (account/name)
	recs                     map[string]*recRun   // recommendation jobs, by key
	shards                   map[uint64]*shardRun // by run ID
	// SecretAccess decides whether a job may read a stored secret (its
	// role's policies, when ACLs are on); nil allows every job.
	SecretAccess func(job *state.Job, name string) error
	// OutputAccess decides whether a job may write its results to an
	// output location (its role's policies, when ACLs are on); nil allows
	// every job.
	OutputAccess func(job *state.Job, location string) error
	// ResultsKMSKeyID makes results written to S3 use SSE-KMS with this key;
	// empty means SSE-S3.
	ResultsKMSKeyID string
	// SealResults, when set, encrypts every result file the job writes
	// with this keyring (--encrypt-results).
	SealResults *atrest.Keyring

	ins *instruments // tracer and meters (Instrument)
}

// New returns a runner.
func New(c Cluster, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{c: c, log: log, StartDelay: time.Second, LostAfter: 10 * time.Second, ErrorWindow: 30 * time.Second,
		DeployTimeout: 20 * time.Minute, jobs: map[string]*jobRun{}, recs: map[string]*recRun{}, shards: map[uint64]*shardRun{},
		ins: newInstruments()}
	// Run IDs start from the clock so that a later leader's never repeat an
	// earlier leader's, which agents may still hold.
	r.nextRun.Store(uint64(time.Now().UnixNano()))
	return r
}

// Run starts InProgress jobs, stops Stopping ones, until ctx ends (the node
// lost leadership); running jobs are abandoned to the next leader.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		ws := memdb.NewWatchSet()
		st := r.c.State()
		ws.Add(st.AbandonCh())
		inProgress, err1 := st.JobsInStatus(ws, state.KindBenchmark, state.StatusInProgress)
		stopping, err2 := st.JobsInStatus(ws, state.KindBenchmark, state.StatusStopping)
		if err1 == nil && err2 == nil {
			for _, j := range inProgress {
				if jr := r.startJob(ctx, j); jr != nil {
					wg.Add(1)
					go func() { defer wg.Done(); jr.execute(ctx) }()
				}
			}
			for _, j := range stopping {
				r.stopJob(ctx, j)
			}
		}
		recs, err1 := st.JobsInStatus(ws, state.KindRecommendation, state.StatusInProgress)
		recStopping, err2 := st.JobsInStatus(ws, state.KindRecommendation, state.StatusStopping)
		if err1 == nil && err2 == nil {
			for _, j := range recs {
				if rr := r.startRecommendation(ctx, j); rr != nil {
					wg.Add(1)
					go func() { defer wg.Done(); rr.execute() }()
				}
			}
			for _, j := range recStopping {
				if rr := r.stopRecommendation(ctx, j); rr != nil {
					wg.Add(1)
					go func() { defer wg.Done(); rr.execute() }()
				}
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = ws.WatchCtx(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// startJob registers a job run unless one is running.
func (r *Runner) startJob(ctx context.Context, j *state.Job) *jobRun {
	key := j.Account + "/" + j.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs[key] != nil {
		return nil
	}
	jctx, cancel := context.WithCancel(ctx)
	jr := &jobRun{r: r, key: key, job: j, ctx: jctx, cancel: cancel}
	r.jobs[key] = jr
	return jr
}

// stopJob cancels a running job (it finishes as Stopped itself) or moves a
// job no run holds straight to Stopped.
func (r *Runner) stopJob(ctx context.Context, j *state.Job) {
	r.mu.Lock()
	jr := r.jobs[j.Account+"/"+j.Name]
	r.mu.Unlock()
	if jr != nil {
		jr.stop()
		return
	}
	r.setStatus(ctx, j, state.StatusStopped, "", state.StatusStopping)
}

func (r *Runner) setStatus(ctx context.Context, j *state.Job, status, reason string, from ...string) {
	r.setStatusWithEvent(ctx, j, status, reason, nil, from...)
}

// setStatusWithEvent changes a job's status and appends ev to its log in the
// same Raft entry.
func (r *Runner) setStatusWithEvent(ctx context.Context, j *state.Job, status, reason string, ev *pb.JobEvent, from ...string) {
	if len(reason) > 1024 {
		reason = reason[:1021] + "..."
	}
	_, err := r.c.Apply(ctx, fsm.SetJobStatusType, &pb.SetJobStatusCommand{Kind: j.Kind, AccountId: j.Account, Name: j.Name,
		Status: status, FromStatuses: from, Time: timestamppb.New(r.c.Now()), FailureReason: reason, Event: ev})
	if err != nil {
		r.log.Warn("job status not recorded", "job", j.Name, "status", status, "err", err)
	}
}

// OnWindow takes a window an agent sent and returns the sequence number to
// acknowledge: the highest received in order (duplicates after a resend are
// dropped).
func (r *Runner) OnWindow(agentID string, w *pb.ShardWindow) uint64 {
	r.mu.Lock()
	sr := r.shards[w.GetRunId()]
	r.mu.Unlock()
	if sr == nil || sr.agentID != agentID {
		return w.GetSeq() // a run this leader does not hold: let the agent forget it
	}
	start := time.Now()
	seq, merged := sr.window(w)
	r.ins.merge.Record(context.Background(), time.Since(start).Seconds())
	switch {
	case merged:
	case w.GetSeq() < seq+1:
		r.dupWindows.Add(1)
	default:
		r.otherWindows.Add(1)
	}
	return seq
}

// WindowsNotMerged returns how many windows since the runner started were
// not merged because they had been already (duplicates) or for another
// reason (ahead of a missing one, or undecodable).
func (r *Runner) WindowsNotMerged() (duplicates, other int64) {
	return r.dupWindows.Load(), r.otherWindows.Load()
}

// OnDone takes an agent's report of a finished shard.
func (r *Runner) OnDone(agentID string, d *pb.ShardDone) {
	r.mu.Lock()
	sr := r.shards[d.GetRunId()]
	r.mu.Unlock()
	if sr != nil && sr.agentID == agentID {
		sr.finish(d)
	}
}

// Progress returns a running job's plan size and its running level's live
// state; ok is false when this node runs no such job.
func (r *Runner) Progress(account, name string) (levels int, level *pb.LevelProgress, ok bool) {
	r.mu.Lock()
	jr := r.jobs[account+"/"+name]
	r.mu.Unlock()
	if jr == nil {
		return 0, nil, false
	}
	levels, level = jr.progress(r.c.Now())
	return levels, level, true
}

// specCache keeps parsed workload specs: workload configs are immutable, so
// a config is parsed once however many jobs use it. The key includes the
// creation time, so a config deleted and created again under the same name
// is parsed anew. At most specCacheSize entries are kept.
type specCache struct {
	mu sync.Mutex
	m  map[string]parsedSpec
}

type parsedSpec struct {
	spec      *workload.Spec
	canonical []byte
}

const specCacheSize = 256

func (c *specCache) get(account string, cfg *pb.DescribeAIWorkloadConfigResponse) (*workload.Spec, []byte, error) {
	key := fmt.Sprintf("%s/%s/%d", account, cfg.GetAiWorkloadConfigName(), cfg.GetCreationTime().AsTime().UnixNano())
	c.mu.Lock()
	p, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return p.spec, p.canonical, nil
	}
	spec, err := workload.Parse([]byte(cfg.GetAiWorkloadConfigs().GetWorkloadSpec().GetInline()))
	if err != nil {
		return nil, nil, fmt.Errorf("workload spec: %w", err)
	}
	canonical, err := spec.Canonical()
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= specCacheSize {
		c.m = map[string]parsedSpec{}
	}
	c.m[key] = parsedSpec{spec: spec, canonical: canonical}
	c.mu.Unlock()
	return spec, canonical, nil
}

// openOutput checks that the job may write to its output location and opens
// it with the configured server-side encryption.
func (r *Runner) openOutput(ctx context.Context, j *state.Job, location string) (resultstore.Store, error) {
	if r.OutputAccess != nil {
		if err := r.OutputAccess(j, location); err != nil {
			return nil, fmt.Errorf("output location %s: %w", location, err)
		}
	}
	store, err := resultstore.Open(ctx, location, resultstore.Options{Region: r.Region, KMSKeyID: r.ResultsKMSKeyID})
	if err != nil {
		return nil, fmt.Errorf("output location: %w", err)
	}
	if r.SealResults != nil {
		store = resultstore.Sealed(store, r.SealResults)
	}
	return store, nil
}
