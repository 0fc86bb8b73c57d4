package state

import (
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// The write methods below are called only by the FSM, with values the leader
// put in the Raft command: they never read the clock or a random source.

// CreateResult is what a create produced.
type CreateResult struct {
	ARN string
	// Replayed is true when a client token matched an earlier identical
	// request and nothing new was created.
	Replayed bool
}

// Create inserts a new workload config or job, enforcing name uniqueness per
// account, the existence of the referenced workload config, the active job
// limit and client token idempotency.
func (s *Store) Create(cmd *pb.CreateResourceCommand) (CreateResult, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()

	if tok := cmd.GetClientToken(); tok != nil {
		key := tok.GetAccountId() + "/" + tok.GetOperation() + "/" + tok.GetToken()
		raw, err := txn.First(tableClientTokens, "id", key)
		if err != nil {
			return CreateResult{}, err
		}
		if raw != nil {
			prev := raw.(*ClientToken).Record
			if string(prev.GetRequestHash()) != string(tok.GetRequestHash()) {
				return CreateResult{}, fmt.Errorf("%w: token %q was first used for %s", ErrTokenReused, tok.GetToken(), prev.GetArn())
			}
			return CreateResult{ARN: prev.GetArn(), Replayed: true}, nil
		}
		tok = clone(tok)
		tok.Arn = createdARN(cmd)
		if err := txn.Insert(tableClientTokens, &ClientToken{Key: key, Record: tok}); err != nil {
			return CreateResult{}, err
		}
	}

	var arn string
	switch {
	case cmd.GetWorkloadConfig() != nil:
		row := newWorkloadConfig(cmd.GetWorkloadConfig())
		if err := insertUnique(txn, tableWorkloadConfigs, row.Key, row, KindWorkloadConfig, row.Name); err != nil {
			return CreateResult{}, err
		}
		arn = row.Record.GetConfig().GetAiWorkloadConfigArn()
	case cmd.GetBenchmarkJob() != nil || cmd.GetRecommendationJob() != nil:
		var row *Job
		if cmd.GetBenchmarkJob() != nil {
			row = newBenchmarkJob(cmd.GetBenchmarkJob())
		} else {
			row = newRecommendationJob(cmd.GetRecommendationJob())
		}
		if err := checkJobCreate(txn, row, cmd.GetMaxActiveJobs()); err != nil {
			return CreateResult{}, err
		}
		if err := insertUnique(txn, tableJobs, row.Key, row, row.Kind, row.Name); err != nil {
			return CreateResult{}, err
		}
		arn = row.ARN()
	default:
		return CreateResult{}, fmt.Errorf("create command carries no record")
	}
	txn.Commit()
	return CreateResult{ARN: arn}, nil
}

// createdARN is the ARN of the resource a create command carries.
func createdARN(cmd *pb.CreateResourceCommand) string {
	switch {
	case cmd.GetWorkloadConfig() != nil:
		return cmd.GetWorkloadConfig().GetConfig().GetAiWorkloadConfigArn()
	case cmd.GetBenchmarkJob() != nil:
		return cmd.GetBenchmarkJob().GetJob().GetAiBenchmarkJobArn()
	}
	return cmd.GetRecommendationJob().GetJob().GetAiRecommendationJobArn()
}

func insertUnique(txn *memdb.Txn, table, key string, row any, kind, name string) error {
	existing, err := txn.First(table, "id", key)
	if err != nil {
		return err
	}
	if existing != nil {
		return fmt.Errorf("%w: %s %q already exists in this account", ErrAlreadyExists, kind, name)
	}
	return txn.Insert(table, row)
}

func checkJobCreate(txn *memdb.Txn, row *Job, maxActive uint32) error {
	wl, err := txn.First(tableWorkloadConfigs, "id", row.WorkloadKey)
	if err != nil {
		return err
	}
	if wl == nil {
		return fmt.Errorf("%w: ai-workload-config %q does not exist", ErrNotFound, row.WorkloadKey[len(row.Account)+1:])
	}
	if maxActive == 0 {
		return nil
	}
	it, err := txn.Get(tableJobs, "account", row.AccountKey)
	if err != nil {
		return err
	}
	active := uint32(0)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !Terminal(raw.(*Job).Status) {
			active++
		}
	}
	if active >= maxActive {
		return fmt.Errorf("%w: the account already has %d active %ss (limit %d); stop or wait for one", ErrLimitExceeded, active, row.Kind, maxActive)
	}
	return nil
}

// Delete removes a workload config (refused while a job that is not terminal
// references it) or a job (refused unless it is terminal). It returns the
// deleted resource's ARN.
func (s *Store) Delete(cmd *pb.DeleteResourceCommand) (string, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	account, name := cmd.GetAccountId(), cmd.GetName()
	var arn string
	switch cmd.GetKind() {
	case KindWorkloadConfig:
		raw, err := txn.First(tableWorkloadConfigs, "id", account+"/"+name)
		if err != nil {
			return "", err
		}
		if raw == nil {
			return "", fmt.Errorf("%w: ai-workload-config %q does not exist", ErrNotFound, name)
		}
		it, err := txn.Get(tableJobs, "workload", account+"/"+name)
		if err != nil {
			return "", err
		}
		for j := it.Next(); j != nil; j = it.Next() {
			if job := j.(*Job); !Terminal(job.Status) {
				return "", fmt.Errorf("%w: ai-workload-config %q is referenced by %s %q, which is %s; stop it or wait until it ends", ErrConflict, name, job.Kind, job.Name, job.Status)
			}
		}
		arn = raw.(*WorkloadConfig).Record.GetConfig().GetAiWorkloadConfigArn()
		if err := txn.Delete(tableWorkloadConfigs, raw); err != nil {
			return "", err
		}
	case KindBenchmark, KindRecommendation:
		raw, err := txn.First(tableJobs, "id", jobKey(cmd.GetKind(), account, name))
		if err != nil {
			return "", err
		}
		if raw == nil {
			return "", fmt.Errorf("%w: %s %q does not exist", ErrNotFound, cmd.GetKind(), name)
		}
		job := raw.(*Job)
		if !Terminal(job.Status) {
			return "", fmt.Errorf("%w: %s %q is %s; only a Completed, Failed or Stopped job can be deleted (stop it first)", ErrConflict, job.Kind, name, job.Status)
		}
		arn = job.ARN()
		if err := txn.Delete(tableJobs, raw); err != nil {
			return "", err
		}
	case KindEndpoint:
		a, err := deleteEndpoint(txn, account, name)
		if err != nil {
			return "", err
		}
		arn = a
	default:
		return "", fmt.Errorf("delete command has unknown kind %q", cmd.GetKind())
	}
	txn.Commit()
	return arn, nil
}

// StatusResult is what a status change did.
type StatusResult struct {
	ARN     string
	Status  string // the job's status after the command
	Changed bool
}

// SetJobStatus moves a job to cmd.Status when it is in one of
// cmd.FromStatuses; otherwise it changes nothing.
func (s *Store) SetJobStatus(cmd *pb.SetJobStatusCommand) (StatusResult, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	raw, err := txn.First(tableJobs, "id", jobKey(cmd.GetKind(), cmd.GetAccountId(), cmd.GetName()))
	if err != nil {
		return StatusResult{}, err
	}
	if raw == nil {
		return StatusResult{}, fmt.Errorf("%w: %s %q does not exist", ErrNotFound, cmd.GetKind(), cmd.GetName())
	}
	job := raw.(*Job)
	if !slices.Contains(cmd.GetFromStatuses(), job.Status) {
		return StatusResult{ARN: job.ARN(), Status: job.Status}, nil
	}
	var next *Job
	at := cmd.GetTime()
	if job.Benchmark != nil {
		r := clone(job.Benchmark)
		j := r.GetJob()
		j.AiBenchmarkJobStatus = cmd.GetStatus()
		j.LastModifiedTime = at
		applyTimes(cmd, &j.StartTime, &j.EndTime, &j.FailureReason)
		if ev := cmd.GetEvent(); ev != nil {
			r.Events = appendEventTo(r.Events, ev)
		}
		next = newBenchmarkJob(r)
	} else {
		r := clone(job.Recommend)
		j := r.GetJob()
		j.AiRecommendationJobStatus = cmd.GetStatus()
		j.LastModifiedTime = at
		applyTimes(cmd, &j.StartTime, &j.EndTime, &j.FailureReason)
		if ev := cmd.GetEvent(); ev != nil {
			r.Events = appendEventTo(r.Events, ev)
		}
		next = newRecommendationJob(r)
	}
	if err := txn.Insert(tableJobs, next); err != nil {
		return StatusResult{}, err
	}
	txn.Commit()
	return StatusResult{ARN: next.ARN(), Status: next.Status, Changed: true}, nil
}

func applyTimes(cmd *pb.SetJobStatusCommand, start, end **timestamppb.Timestamp, reason *string) {
	if *start == nil && cmd.GetStatus() == StatusInProgress {
		*start = cmd.GetTime()
	}
	if Terminal(cmd.GetStatus()) {
		*end = cmd.GetTime()
	}
	if cmd.GetFailureReason() != "" {
		*reason = cmd.GetFailureReason()
	}
}

// RegisterServer records a coordinator server's addresses.
func (s *Store) RegisterServer(id *pb.ServerIdentity) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if err := txn.Insert(tableServers, &Server{ID: id.GetNodeId(), Record: id}); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// DeregisterServer forgets a server.
func (s *Store) DeregisterServer(nodeID string) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if _, err := txn.DeleteAll(tableServers, "id", nodeID); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// SetMeta sets the cluster meta once; later calls keep the first value.
func (s *Store) SetMeta(m *pb.ClusterMeta) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if raw, err := txn.First(tableMeta, "id", metaID); err != nil || raw != nil {
		return err
	}
	if err := txn.Insert(tableMeta, &Meta{ID: metaID, Record: m}); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// PruneClientTokens drops idempotency records created before the cutoff and
// returns how many it dropped.
func (s *Store) PruneClientTokens(before *timestamppb.Timestamp) (int, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	it, err := txn.Get(tableClientTokens, "id")
	if err != nil {
		return 0, err
	}
	var old []any
	cut := before.AsTime()
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if raw.(*ClientToken).Record.GetCreated().AsTime().Before(cut) {
			old = append(old, raw)
		}
	}
	for _, raw := range old {
		if err := txn.Delete(tableClientTokens, raw); err != nil {
			return 0, err
		}
	}
	txn.Commit()
	return len(old), nil
}

// UpsertAgent records an agent, keeping the first_seen time of the stored
// record.
func (s *Store) UpsertAgent(a *pb.Agent) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if raw, err := txn.First(tableAgents, "id", a.GetAgentId()); err != nil {
		return err
	} else if raw != nil && raw.(*Agent).Record.GetFirstSeen() != nil {
		a = clone(a)
		a.FirstSeen = raw.(*Agent).Record.GetFirstSeen()
	}
	if err := txn.Insert(tableAgents, &Agent{ID: a.GetAgentId(), Status: a.GetStatus(), Record: a}); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// updateBenchmarkJob applies change to a copy of a benchmark job's record
// and stores the copy.
func (s *Store) updateBenchmarkJob(account, name string, change func(r *pb.BenchmarkJobRecord)) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	raw, err := txn.First(tableJobs, "id", jobKey(KindBenchmark, account, name))
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: ai-benchmark-job %q does not exist", ErrNotFound, name)
	}
	r := clone(raw.(*Job).Benchmark)
	change(r)
	if err := txn.Insert(tableJobs, newBenchmarkJob(r)); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// RecordLevelResult adds a finished level to a benchmark job, replacing a
// record with the same index; levels stay in index order.
func (s *Store) RecordLevelResult(cmd *pb.RecordLevelResultCommand) error {
	return s.updateBenchmarkJob(cmd.GetAccountId(), cmd.GetName(), func(r *pb.BenchmarkJobRecord) {
		levels := r.GetLevels()[:0:0]
		for _, l := range r.GetLevels() {
			if l.GetIndex() != cmd.GetLevel().GetIndex() {
				levels = append(levels, l)
			}
		}
		levels = append(levels, cmd.GetLevel())
		slices.SortFunc(levels, func(a, b *pb.LevelResult) int { return int(a.GetIndex()) - int(b.GetIndex()) })
		r.Levels = levels
	})
}

// maxJobEvents bounds a job's replicated log.
const maxJobEvents = 500

// AppendJobEvent adds an event to a benchmark job's log, numbering it after
// the last one and keeping the newest maxJobEvents.
func (s *Store) AppendJobEvent(cmd *pb.AppendJobEventCommand) error {
	return s.updateBenchmarkJob(cmd.GetAccountId(), cmd.GetName(), func(r *pb.BenchmarkJobRecord) {
		r.Events = appendEventTo(r.Events, cmd.GetEvent())
	})
}

// appendEventTo numbers ev after the last of events and keeps the newest
// maxJobEvents; events must belong to a record copy the caller is about to
// insert.
func appendEventTo(events []*pb.JobEvent, ev *pb.JobEvent) []*pb.JobEvent {
	ev = clone(ev)
	ev.Index = 1
	if n := len(events); n > 0 {
		ev.Index = events[n-1].GetIndex() + 1
	}
	events = append(events, ev)
	if len(events) > maxJobEvents {
		events = events[len(events)-maxJobEvents:]
	}
	return events
}

// UpdateRecommendationJob records a recommendation job's progress: it
// inserts or replaces candidates by name (keeping planning order), replaces
// the recommendations when the command carries any, and appends an event.
func (s *Store) UpdateRecommendationJob(cmd *pb.UpdateRecommendationJobCommand) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	raw, err := txn.First(tableJobs, "id", jobKey(KindRecommendation, cmd.GetAccountId(), cmd.GetName()))
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: ai-recommendation-job %q does not exist", ErrNotFound, cmd.GetName())
	}
	r := clone(raw.(*Job).Recommend)
	j := r.GetJob()
	for _, c := range cmd.GetCandidates() {
		i := slices.IndexFunc(j.Candidates, func(x *pb.RecommendationCandidate) bool { return x.GetName() == c.GetName() })
		if i < 0 {
			j.Candidates = append(j.Candidates, clone(c))
		} else {
			j.Candidates[i] = clone(c)
		}
	}
	if len(cmd.GetRecommendations()) > 0 {
		j.Recommendations = cmd.GetRecommendations()
	}
	if ev := cmd.GetEvent(); ev != nil {
		r.Events = appendEventTo(r.Events, ev)
	}
	if err := txn.Insert(tableJobs, newRecommendationJob(r)); err != nil {
		return err
	}
	txn.Commit()
	return nil
}
