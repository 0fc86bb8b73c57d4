package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perfleet/perfleet/coordinator/reliability"
	"github.com/perfleet/perfleet/coordinator/server"
	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// The same client token replayed 1,000 times, from many clients and across
// a leader kill, creates exactly one job; every answered replay names it.
func TestClientTokenReplayedAcrossLeaderChangeCreatesOneJob(t *testing.T) {
	c := newCluster(t, 3, nil)
	w := c.watch()
	ctx := context.Background()
	li := c.leader()
	if _, err := createConfig("wl")(ctx, c.cli[li]); err != nil {
		t.Fatal(err)
	}
	req := &pb.CreateAIBenchmarkJobRequest{
		AiBenchmarkJobName:         "replayed",
		AiWorkloadConfigIdentifier: "wl",
		BenchmarkTarget:            &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://127.0.0.1:9"}},
		OutputConfig:               &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file://" + t.TempDir()},
		RoleArn:                    "arn:aws:iam::000000000000:role/bench",
		ClientToken:                "replay-token-0001",
	}
	const replays, clients = 1000, 20
	var next, answered, unknown atomic.Int64
	var arns sync.Map
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := i
			for next.Add(1) <= replays {
				// A client retries a call whose outcome it does not know
				// with the same token, as the SDKs do.
				for try := 0; ; try++ {
					cctx, cancel := context.WithTimeout(ctx, callTimeout)
					resp, err := c.cli[node%3].CreateAIBenchmarkJob(cctx, req)
					cancel()
					if err == nil {
						answered.Add(1)
						arns.Store(resp.GetAiBenchmarkJobArn(), true)
						break
					}
					if !unavailable(err) || try == 100 {
						t.Errorf("replay: %v", err)
						return
					}
					unknown.Add(1)
					node++
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// Kill the leader once a third of the replays are out.
	for next.Load() < replays/3 {
		time.Sleep(time.Millisecond)
	}
	term, _ := w.CurrentTerm()
	killed := time.Now()
	c.kill(li)
	var o outcome
	checkLeaderTime(t, w, killed, term, &o, c.cfgs[li].NodeID)
	wg.Wait()
	c.restart(li)
	waitConverged(t, c)

	if answered.Load() != replays {
		t.Errorf("%d of %d replays answered", answered.Load(), replays)
	}
	distinct := 0
	arns.Range(func(any, any) bool { distinct++; return true })
	if distinct != 1 {
		t.Errorf("replays answered with %d different ARNs, want 1", distinct)
	}
	var jobs int
	for _, s := range c.nodes() {
		recs, err := s.State().Jobs(state.KindBenchmark, account)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Errorf("%s holds %d jobs, want 1", s.NodeID(), len(recs))
		}
		jobs = len(recs)
	}
	report.Add(reliability.Row{Test: "idempotency: one client token replayed 1,000 times across a leader kill",
		Criterion: "exactly one job; every answer names it",
		Measured: fmt.Sprintf("%d replays from %d clients: %d answered (%d distinct ARNs), %d retried after Unavailable during the kill; %d job stored on each node; new leader after %s",
			replays, clients, answered.Load(), distinct, unknown.Load(), jobs, o.leaderTime.Round(time.Millisecond)),
		Pass: !t.Failed()})
}

// A follower that is down while more than TrailingLogs entries are written
// catches up with at most 2 snapshot installs.
func TestFollowerBehindTrailingLogsCatchesUpBySnapshot(t *testing.T) {
	const trailing = 32
	c := newCluster(t, 3, func(cfg *server.Config) {
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = trailing
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.RaftSegmentSize = 16 << 10 // so the log is truncated after a snapshot
	})
	li := c.leader()
	victim := (li + 1) % 3
	c.kill(victim)
	writes := pick(500, 5000)
	ctx := context.Background()
	for i := 0; i < writes; i++ {
		if _, err := createConfig(fmt.Sprintf("behind-%05d", i))(ctx, c.cli[li]); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// Wait for the leader to compact its log past what the victim has.
	leader := c.up[li]
	deadline := time.Now().Add(10 * time.Second)
	for leader.Raft().Stats()["last_snapshot_index"] == "0" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	snapIndex := leader.Raft().Stats()["last_snapshot_index"]
	began := time.Now()
	c.restart(victim)
	s := c.up[victim]
	hash := waitConverged(t, c)
	installs := s.SnapshotInstalls()
	if installs == 0 {
		t.Errorf("the follower caught up without a snapshot install; the test did not exercise catch-up by snapshot (leader snapshot index %s)", snapIndex)
	}
	if installs > 2 {
		t.Errorf("%d snapshot installs, want at most 2", installs)
	}
	report.Add(reliability.Row{Test: "catch-up: follower down while more than TrailingLogs entries are written",
		Criterion: "at most 2 snapshot installs; same state hash",
		Measured: fmt.Sprintf("%d writes with TrailingLogs %d (leader snapshot at index %s); %d snapshot install(s); caught up in %s; hash %s",
			writes, trailing, snapIndex, installs, time.Since(began).Round(time.Millisecond), hash[:12]),
		Pass: !t.Failed()})
}
