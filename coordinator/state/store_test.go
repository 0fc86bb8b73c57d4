package state

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

const acct = "123456789012"

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ts(sec int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
}

func arnOf(account, kind, name string) string {
	return "arn:aws:sagemaker:us-east-1:" + account + ":" + kind + "/" + name
}

func configCmd(account, name string) *pb.CreateResourceCommand {
	return &pb.CreateResourceCommand{WorkloadConfig: &pb.WorkloadConfigRecord{AccountId: account, Config: &pb.DescribeAIWorkloadConfigResponse{
		AiWorkloadConfigArn: arnOf(account, KindWorkloadConfig, name), AiWorkloadConfigName: name, CreationTime: ts(0)}}}
}

func benchCmd(account, name, workload string) *pb.CreateResourceCommand {
	return &pb.CreateResourceCommand{BenchmarkJob: &pb.BenchmarkJobRecord{AccountId: account, WorkloadConfigName: workload, Job: &pb.DescribeAIBenchmarkJobResponse{
		AiBenchmarkJobArn: arnOf(account, KindBenchmark, name), AiBenchmarkJobName: name, AiBenchmarkJobStatus: StatusInProgress, CreationTime: ts(1)}}}
}

func recCmd(account, name, workload string) *pb.CreateResourceCommand {
	return &pb.CreateResourceCommand{RecommendationJob: &pb.RecommendationJobRecord{AccountId: account, WorkloadConfigName: workload, Job: &pb.DescribeAIRecommendationJobResponse{
		AiRecommendationJobArn: arnOf(account, KindRecommendation, name), AiRecommendationJobName: name, AiRecommendationJobStatus: StatusInProgress, CreationTime: ts(2)}}}
}

func withToken(cmd *pb.CreateResourceCommand, op, token, hash string, created int) *pb.CreateResourceCommand {
	cmd.ClientToken = &pb.ClientTokenRecord{AccountId: acct, Operation: op, Token: token, RequestHash: []byte(hash), Created: ts(created)}
	return cmd
}

func mustCreate(t *testing.T, s *Store, cmd *pb.CreateResourceCommand) CreateResult {
	t.Helper()
	res, err := s.Create(cmd)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return res
}

func setStatus(s *Store, kind, name, to string, from ...string) (StatusResult, error) {
	return s.SetJobStatus(&pb.SetJobStatusCommand{Kind: kind, AccountId: acct, Name: name, Status: to, FromStatuses: from, Time: ts(60)})
}

func TestCreateEnforcesStoreRules(t *testing.T) {
	s := New()
	mustCreate(t, s, configCmd(acct, "wl"))
	if res := mustCreate(t, s, benchCmd(acct, "b1", "wl")); res.ARN != arnOf(acct, KindBenchmark, "b1") || res.Replayed {
		t.Fatalf("Create = %+v", res)
	}
	for _, tc := range []struct {
		name string
		cmd  *pb.CreateResourceCommand
		want error
	}{
		{"duplicate config", configCmd(acct, "wl"), ErrAlreadyExists},
		{"duplicate benchmark job", benchCmd(acct, "b1", "wl"), ErrAlreadyExists},
		{"missing workload config", benchCmd(acct, "b2", "nope"), ErrNotFound},
		{"workload config of another account", recCmd("210987654321", "r1", "wl"), ErrNotFound},
		{"empty command", &pb.CreateResourceCommand{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Hash()
			_, err := s.Create(tc.cmd)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Create = %v, want %v", err, tc.want)
			}
			if s.Hash() != before {
				t.Fatal("a refused create changed the store")
			}
		})
	}
	// Same name, other kind or other account: no conflict.
	mustCreate(t, s, recCmd(acct, "b1", "wl"))
	mustCreate(t, s, configCmd("210987654321", "wl"))
}

func TestCreateActiveJobLimitIsPerKindAndAccount(t *testing.T) {
	s := New()
	mustCreate(t, s, configCmd(acct, "wl"))
	limited := func(c *pb.CreateResourceCommand) *pb.CreateResourceCommand { c.MaxActiveJobs = 2; return c }
	mustCreate(t, s, limited(benchCmd(acct, "b1", "wl")))
	mustCreate(t, s, limited(benchCmd(acct, "b2", "wl")))
	if _, err := s.Create(limited(benchCmd(acct, "b3", "wl"))); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("third active job: %v, want ErrLimitExceeded", err)
	}
	mustCreate(t, s, limited(recCmd(acct, "r1", "wl"))) // another kind has its own count
	mustCreate(t, s, benchCmd(acct, "b3", "wl"))        // 0 means no limit
	// A Stopping job still counts; a terminal one does not.
	if _, err := setStatus(s, KindBenchmark, "b1", StatusStopping, StatusInProgress); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(limited(benchCmd(acct, "b4", "wl"))); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("with a Stopping job: %v, want ErrLimitExceeded", err)
	}
	for _, n := range []string{"b1", "b2"} {
		if _, err := setStatus(s, KindBenchmark, n, StatusStopped, StatusStopping, StatusInProgress); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, s, limited(benchCmd(acct, "b4", "wl")))
}

func TestClientTokens(t *testing.T) {
	s := New()
	first := mustCreate(t, s, withToken(configCmd(acct, "wl"), "CreateAIWorkloadConfig", "tok", "h1", 0))
	before := s.Hash()
	replay := mustCreate(t, s, withToken(configCmd(acct, "wl"), "CreateAIWorkloadConfig", "tok", "h1", 5))
	if !replay.Replayed || replay.ARN != first.ARN {
		t.Fatalf("replay = %+v, want the first ARN %s, replayed", replay, first.ARN)
	}
	if s.Hash() != before {
		t.Fatal("a replay changed the store")
	}
	if _, err := s.Create(withToken(configCmd(acct, "wl2"), "CreateAIWorkloadConfig", "tok", "h2", 5)); !errors.Is(err, ErrTokenReused) {
		t.Fatalf("reuse with another request: %v, want ErrTokenReused", err)
	}
	// The same token for another operation is independent.
	mustCreate(t, s, withToken(benchCmd(acct, "b1", "wl"), "CreateAIBenchmarkJob", "tok", "h3", 10))
	if rec := s.ClientToken(acct, "CreateAIBenchmarkJob", "tok"); rec.GetArn() != arnOf(acct, KindBenchmark, "b1") {
		t.Fatalf("token record = %v", rec)
	}
	// A refused create records no token.
	if _, err := s.Create(withToken(benchCmd(acct, "b9", "missing"), "CreateAIBenchmarkJob", "tok9", "h", 0)); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if s.ClientToken(acct, "CreateAIBenchmarkJob", "tok9") != nil {
		t.Fatal("refused create stored its token")
	}
	n, err := s.PruneClientTokens(ts(6))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if s.ClientToken(acct, "CreateAIWorkloadConfig", "tok") != nil || s.ClientToken(acct, "CreateAIBenchmarkJob", "tok") == nil {
		t.Fatal("prune dropped the wrong tokens")
	}
}

func TestDelete(t *testing.T) {
	s := New()
	mustCreate(t, s, configCmd(acct, "wl"))
	mustCreate(t, s, benchCmd(acct, "b1", "wl"))
	del := func(kind, name string) (string, error) {
		return s.Delete(&pb.DeleteResourceCommand{Kind: kind, AccountId: acct, Name: name})
	}
	for _, tc := range []struct {
		kind, name string
		want       error
	}{
		{KindWorkloadConfig, "wl", ErrConflict}, // referenced by InProgress b1
		{KindBenchmark, "b1", ErrConflict},      // InProgress
		{KindBenchmark, "nope", ErrNotFound},
		{KindRecommendation, "b1", ErrNotFound}, // other kind
		{KindWorkloadConfig, "nope", ErrNotFound},
	} {
		if _, err := del(tc.kind, tc.name); !errors.Is(err, tc.want) {
			t.Errorf("Delete(%s %s) = %v, want %v", tc.kind, tc.name, err, tc.want)
		}
	}
	if _, err := s.Delete(&pb.DeleteResourceCommand{Kind: "bogus", AccountId: acct, Name: "wl"}); err == nil {
		t.Error("Delete with unknown kind succeeded")
	}
	if _, err := setStatus(s, KindBenchmark, "b1", StatusCompleted, StatusInProgress); err != nil {
		t.Fatal(err)
	}
	if arn, err := del(KindWorkloadConfig, "wl"); err != nil || arn != arnOf(acct, KindWorkloadConfig, "wl") {
		t.Fatalf("Delete config after the job ended = %q, %v", arn, err)
	}
	if arn, err := del(KindBenchmark, "b1"); err != nil || arn != arnOf(acct, KindBenchmark, "b1") {
		t.Fatalf("Delete completed job = %q, %v", arn, err)
	}
	if c := s.Counts(); c[tableJobs] != 0 || c[tableWorkloadConfigs] != 0 {
		t.Fatalf("Counts after deletes = %v", c)
	}
}

func TestSetJobStatus(t *testing.T) {
	s := New()
	mustCreate(t, s, configCmd(acct, "wl"))
	mustCreate(t, s, recCmd(acct, "r1", "wl"))
	ws := memdb.NewWatchSet()
	if jobs, err := s.JobsInStatus(ws, KindRecommendation, StatusInProgress); err != nil || len(jobs) != 1 {
		t.Fatalf("JobsInStatus = %v, %v", jobs, err)
	}
	res, err := setStatus(s, KindRecommendation, "r1", StatusStopping, StatusInProgress)
	if err != nil || !res.Changed || res.Status != StatusStopping {
		t.Fatalf("stop = %+v, %v", res, err)
	}
	if !fired(ws) {
		t.Fatal("the status watch did not fire")
	}
	// Not in a from-status: a no-op that reports the current status.
	res, err = setStatus(s, KindRecommendation, "r1", StatusStopping, StatusInProgress)
	if err != nil || res.Changed || res.Status != StatusStopping || res.ARN != arnOf(acct, KindRecommendation, "r1") {
		t.Fatalf("repeat stop = %+v, %v", res, err)
	}
	res, err = s.SetJobStatus(&pb.SetJobStatusCommand{Kind: KindRecommendation, AccountId: acct, Name: "r1", Status: StatusFailed,
		FromStatuses: []string{StatusStopping}, Time: ts(90), FailureReason: "boom"})
	if err != nil || !res.Changed {
		t.Fatalf("fail = %+v, %v", res, err)
	}
	j, err := s.Job(KindRecommendation, acct, "r1")
	if err != nil {
		t.Fatal(err)
	}
	d := j.Recommend.GetJob()
	if d.GetAiRecommendationJobStatus() != StatusFailed || d.GetFailureReason() != "boom" || !d.GetEndTime().AsTime().Equal(ts(90).AsTime()) ||
		!d.GetLastModifiedTime().AsTime().Equal(ts(90).AsTime()) || j.StatusKey != KindRecommendation+"/"+StatusFailed {
		t.Fatalf("job after Failed = %+v", d)
	}
	if _, err := setStatus(s, KindBenchmark, "r1", StatusStopping, StatusInProgress); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status of a missing job: %v", err)
	}
}

// fired reports whether any channel of the watch set is closed.
func fired(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

func TestServersAndMeta(t *testing.T) {
	s := New()
	for _, id := range []string{"n2", "n1"} {
		if err := s.RegisterServer(&pb.ServerIdentity{NodeId: id, GrpcAddr: id + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	if srv, _ := s.Servers(); len(srv) != 2 || srv[0].GetNodeId() != "n1" {
		t.Fatalf("Servers = %v", srv)
	}
	if err := s.DeregisterServer("n1"); err != nil || s.Server("n1") != nil || s.Server("n2") == nil {
		t.Fatalf("Deregister: %v", err)
	}
	if err := s.RegisterServer(&pb.ServerIdentity{}); err == nil {
		t.Error("RegisterServer without a node ID succeeded")
	}
	if s.Meta() != nil {
		t.Fatal("fresh store has meta")
	}
	_ = s.SetMeta(&pb.ClusterMeta{ClusterId: "c1", PageTokenKey: []byte("k1")})
	_ = s.SetMeta(&pb.ClusterMeta{ClusterId: "c2", PageTokenKey: []byte("k2")})
	if m := s.Meta(); m.GetClusterId() != "c1" {
		t.Fatalf("Meta = %v, want the first value kept", m)
	}
}
