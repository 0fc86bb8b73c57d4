package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/perfleet/perfleet/coordinator/endpoint"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

const testSpec = "benchmark:\n  type: aiperf\nparameters:\n  concurrency: [1, 4]\n  request_count: 20\n"

func testConn(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func client(t *testing.T, addr string) pb.InferenceOptimizationClient {
	return pb.NewInferenceOptimizationClient(testConn(t, addr))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func followers(servers []*Server) []*Server {
	var out []*Server
	for _, s := range servers {
		if !s.IsLeader() {
			out = append(out, s)
		}
	}
	return out
}

func benchReq(name, token string) *pb.CreateAIBenchmarkJobRequest {
	return &pb.CreateAIBenchmarkJobRequest{
		AiBenchmarkJobName:         name,
		AiWorkloadConfigIdentifier: "wl",
		BenchmarkTarget:            &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://127.0.0.1:8000"}},
		OutputConfig:               &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file:///tmp/perfleet-results"},
		RoleArn:                    "arn:aws:iam::000000000000:role/bench",
		ClientToken:                token,
	}
}

func reason(err error) string { return endpoint.Reason(err) }

// retry repeats an idempotent call while the cluster elects a leader.
func retry[T any](t *testing.T, f func() (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := f()
		if err == nil {
			return v
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("call failed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestThreeNodeClusterForwardsReadsAndSurvivesLeaderLoss(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	fs := followers(servers)
	if len(fs) != 2 {
		t.Fatalf("want 2 followers, got %d", len(fs))
	}
	ctx := ctxT(t)

	// A create sent to a follower is forwarded to the leader.
	c0 := client(t, fs[0].Addr())
	if _, err := c0.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatalf("create via follower: %v", err)
	}
	// A linearizable read on the other follower sees the write at once.
	c1 := client(t, fs[1].Addr())
	got, err := c1.DescribeAIWorkloadConfig(ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: "wl"})
	if err != nil {
		t.Fatalf("describe via follower: %v", err)
	}
	if got.GetAiWorkloadConfigArn() != "arn:aws:sagemaker:us-east-1:000000000000:ai-workload-config/wl" {
		t.Fatalf("unexpected ARN %q", got.GetAiWorkloadConfigArn())
	}

	first, err := c1.CreateAIBenchmarkJob(ctx, benchReq("job1", "tok-1"))
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	for i := 0; i < 20; i++ {
		if _, err := c0.CreateAIBenchmarkJob(ctx, benchReq("bulk-"+string(rune('a'+i)), "")); err != nil {
			t.Fatalf("bulk create: %v", err)
		}
	}
	acked := []string{"job1"}
	for i := 0; i < 20; i++ {
		acked = append(acked, "bulk-"+string(rune('a'+i)))
	}

	// Kill the leader: a new one is elected and every acknowledged write
	// survives.
	if err := leader.Shutdown(); err != nil {
		t.Fatalf("shutdown leader: %v", err)
	}
	newLeader := WaitForLeader(t, fs...)
	if newLeader == leader {
		t.Fatal("old leader still leads")
	}
	// Every acknowledged write is on the new leader. (Whole-state hashes
	// would differ: the job runner moves these agent-less jobs to Failed.)
	for _, name := range acked {
		if _, err := newLeader.State().Job("ai-benchmark-job", "000000000000", name); err != nil {
			t.Fatalf("acknowledged job %s lost: %v", name, err)
		}
	}
	if _, err := newLeader.State().WorkloadConfig("000000000000", "wl"); err != nil {
		t.Fatalf("acknowledged workload config lost: %v", err)
	}

	// The idempotent retry after failover returns the original ARN ...
	again := retry(t, func() (*pb.CreateAIBenchmarkJobResponse, error) {
		return c0.CreateAIBenchmarkJob(ctx, benchReq("job1", "tok-1"))
	})
	if again.GetAiBenchmarkJobArn() != first.GetAiBenchmarkJobArn() {
		t.Fatalf("retry returned %q, want %q", again.GetAiBenchmarkJobArn(), first.GetAiBenchmarkJobArn())
	}
	// ... and the same token with a different request is refused.
	_, err = c1.CreateAIBenchmarkJob(ctx, benchReq("job2", "tok-1"))
	if status.Code(err) != codes.InvalidArgument || reason(err) != "ValidationException" {
		t.Fatalf("token reuse: got %v (reason %q)", err, reason(err))
	}
	list, err := c1.ListAIBenchmarkJobs(ctx, &pb.ListAIBenchmarkJobsRequest{MaxResults: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetAiBenchmarkJobs()) != 21 {
		t.Fatalf("want 21 jobs after failover, got %d", len(list.GetAiBenchmarkJobs()))
	}

	// A stale read is answered locally by a follower.
	stale := metadata.AppendToOutgoingContext(ctx, ConsistencyHeader, "stale")
	if _, err := c0.DescribeAIBenchmarkJob(stale, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "job1"}); err != nil {
		t.Fatalf("stale read: %v", err)
	}
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	victim := followers(servers)[0]
	vcfg := victim.cfg
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	c := client(t, leader.Addr())
	if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "while-down",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatal(err)
	}
	// Restart with the same data dir and addresses: it rejoins with its state
	// and catches up on what it missed.
	vcfg.GRPCAddr, vcfg.GRPCAdvertise = victim.cfg.GRPCAdvertise, ""
	restarted, err := New(vcfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = restarted.Shutdown() })
	if !restarted.rparts.hasState {
		t.Fatal("restarted node found no raft state")
	}
	waitApplied(t, restarted, leader.State().Hash())
	if _, err := restarted.State().WorkloadConfig("000000000000", "while-down"); err != nil {
		t.Fatalf("restarted node lacks the write it missed: %v", err)
	}
}

// waitApplied waits until s's state hash equals want.
func waitApplied(t *testing.T, s *Server, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.State().Hash() == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %s state hash never reached %s", s.NodeID(), want)
}

func TestForwardedErrorKeepsItsCode(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	WaitForLeader(t, servers...)
	c := client(t, followers(servers)[0].Addr())
	_, err := c.DescribeAIBenchmarkJob(ctxT(t), &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "nope"})
	if status.Code(err) != codes.NotFound || reason(err) != "ResourceNotFound" {
		t.Fatalf("got %v (reason %q)", err, reason(err))
	}
	var st interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &st) {
		t.Fatal("not a status error")
	}
}

// A node restarted with its data but at a new Raft address (a pod with a
// new IP) asks the other servers for the leader and rejoins there; the
// leader records the new address and the node catches up.
func TestRestartedNodeAtNewRaftAddressRejoins(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	victim := followers(servers)[0]
	vcfg := victim.cfg
	old := victim.RaftAddr()
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	c := client(t, leader.Addr())
	if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "moved",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatal(err)
	}
	vcfg.GRPCAddr, vcfg.GRPCAdvertise = victim.cfg.GRPCAdvertise, ""
	vcfg.RaftAddr = "127.0.0.1:0" // a new port: a new address
	vcfg.Join = []string{leader.Addr()}
	restarted, err := New(vcfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = restarted.Shutdown() })
	if restarted.RaftAddr() == old {
		t.Fatalf("the restarted node kept raft address %s", old)
	}
	eventually(t, 20*time.Second, "the restarted node caught up", func() bool { return restarted.State().Hash() == leader.State().Hash() })
	eventually(t, 10*time.Second, "the leader's configuration names the new address", func() bool {
		f := leader.raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		for _, srv := range f.Configuration().Servers {
			if string(srv.ID) == restarted.NodeID() {
				return string(srv.Address) == restarted.RaftAddr()
			}
		}
		return false
	})
	if _, err := restarted.State().WorkloadConfig("000000000000", "moved"); err != nil {
		t.Fatalf("restarted node lacks the write it missed: %v", err)
	}
}
