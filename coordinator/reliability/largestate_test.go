package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/reliability"
	"github.com/perfleet/perfleet/coordinator/server"
	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// bigState builds a state machine holding n finished benchmark jobs with
// realistic records (target, output, role, tags, times, failure reason).
func bigState(t *testing.T, n int) *fsm.FSM {
	t.Helper()
	f := fsm.New(nil)
	must := func(typ fsm.MessageType, cmd proto.Message) {
		b, err := fsm.Encode(typ, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if res := f.ApplyBytes(b); res != nil {
			if err, ok := res.(error); ok {
				t.Fatal(err)
			}
		}
	}
	must(fsm.SetClusterMetaType, &pb.SetClusterMetaCommand{Meta: &pb.ClusterMeta{ClusterId: "big", PageTokenKey: make([]byte, 32)}})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	must(fsm.CreateResourceType, &pb.CreateResourceCommand{WorkloadConfig: &pb.WorkloadConfigRecord{AccountId: account, Config: &pb.DescribeAIWorkloadConfigResponse{
		AiWorkloadConfigArn: "arn:aws:sagemaker:us-east-1:" + account + ":ai-workload-config/wl", AiWorkloadConfigName: "wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}, CreationTime: timestamppb.New(base)}}})
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("job-%07d", i)
		at := timestamppb.New(base.Add(time.Duration(i) * time.Second))
		must(fsm.CreateResourceType, &pb.CreateResourceCommand{BenchmarkJob: &pb.BenchmarkJobRecord{AccountId: account, WorkloadConfigName: "wl",
			Job: &pb.DescribeAIBenchmarkJobResponse{
				AiBenchmarkJobArn:          "arn:aws:sagemaker:us-east-1:" + account + ":ai-benchmark-job/" + name,
				AiBenchmarkJobName:         name,
				AiBenchmarkJobStatus:       state.StatusCompleted,
				AiWorkloadConfigIdentifier: "wl",
				BenchmarkTarget:            &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://10.0.0.1:8000"}},
				OutputConfig:               &pb.AIBenchmarkOutputConfig{S3OutputLocation: "s3://results/" + name},
				RoleArn:                    "arn:aws:iam::" + account + ":role/bench",
				Tags:                       []*pb.Tag{{Key: "team", Value: "capacity"}, {Key: "run", Value: fmt.Sprint(i % 97)}},
				CreationTime:               at, StartTime: at, EndTime: at,
			}}})
	}
	return f
}

// A snapshot with 1,000,000 jobs (20,000 in the short profile) restores
// within 60 s with bounded memory, and a fresh cluster restored from it has
// the same state hash.
func TestLargeSnapshotRestoresIntoAFreshCluster(t *testing.T) {
	n := pick(20_000, 1_000_000)
	built := time.Now()
	f := bigState(t, n)
	buildTook := time.Since(built)
	want := f.State().Hash()
	path := filepath.Join(t.TempDir(), "big.snap")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.State().Snapshot().WriteBackup(out)
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	f = nil
	runtime.GC()

	// Restore into a bare state machine: time and peak heap.
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	restored := fsm.New(nil)
	if err := restored.Restore(rf); err != nil {
		t.Fatal(err)
	}
	restoreTook := time.Since(began)
	close(stop)
	<-sampled
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if got := restored.State().Hash(); got != want {
		t.Fatalf("restored hash %s, want %s", got, want)
	}
	if restoreTook > 60*time.Second {
		t.Errorf("restore took %s, want within 60 s", restoreTook)
	}
	live := after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	peakOver := peak.Load() - min(peak.Load(), before.HeapAlloc)
	// Bounded: the restore's transient memory stays within a small multiple
	// of the state it builds (it streams the file; it never holds it whole).
	if live > 0 && peakOver > 4*live+64<<20 {
		t.Errorf("restore peaked %d MiB over the start for %d MiB of live state", peakOver>>20, live>>20)
	}
	restored = nil

	// A fresh 3-node cluster restored from the backup holds the same state.
	// Installing a large snapshot keeps the nodes busy for seconds (on this
	// 2-core machine, three of them in one process): use the default Raft
	// timings rather than the tests' short ones, as a real cluster would.
	c := newCluster(t, 3, func(cfg *server.Config) {
		def := server.DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = def.HeartbeatTimeout, def.ElectionTimeout, def.LeaderLeaseTimeout
	})
	li := c.leader()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up, err := pb.NewOperatorServiceClient(c.conns[(li+1)%3]).SnapshotRestore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clusterBegan := time.Now()
	resp, err := state.UploadBackup(up, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("cluster restore: %v", err)
	}
	if resp.GetHash() != want {
		t.Fatalf("cluster restored hash %s, want %s", resp.GetHash(), want)
	}
	// Every node holds the restored jobs (the server records are the
	// cluster's own, so compare the jobs table, then the nodes' hashes).
	waitConverged(t, c)
	clusterTook := time.Since(clusterBegan)
	for _, s := range c.nodes() {
		if got := s.State().Counts()["jobs"]; got != uint64(n) {
			t.Errorf("%s holds %d jobs, want %d (counts %v)", s.NodeID(), got, n, s.State().Counts())
		}
	}
	report.Add(reliability.Row{Test: fmt.Sprintf("recovery: snapshot with %d jobs", n),
		Criterion: "restores within 60 s with bounded memory; a fresh cluster restored from it has the same state",
		Measured: fmt.Sprintf("backup %d MiB (built in %s); restore %s, live heap %d MiB, peak %d MiB over the start; fresh 3-node cluster restored through a follower, all nodes converged in %s; hash %s",
			size>>20, buildTook.Round(time.Second), restoreTook.Round(time.Millisecond), live>>20, peakOver>>20, clusterTook.Round(time.Millisecond), want[:12]),
		Pass: !t.Failed()})
}
