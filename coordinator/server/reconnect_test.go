package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/perfleet/perfleet/agent/daemon"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// TestAgentReconnectMidLevelLosesAndDuplicatesNoWindow cuts an agent's
// control stream twice in the middle of a level and keeps it out for 2 s
// each time (its windows pile up in its buffer), then lets it back: the
// level's merged request count must equal what the target served, exactly
// (a lost window would lower it, a window merged twice would raise it),
// and nothing may be merged while the agent is out, while what it measured
// then arrives after it reconnects.
func TestAgentReconnectMidLevelLosesAndDuplicatesNoWindow(t *testing.T) {
	sim, target := simTarget(t)
	s := TestCluster(t, 1, nil)[0]
	a := startL4Agent(t, s, "recon-a", t.TempDir())
	waitAgentsConnected(t, s, 1)
	c := client(t, s.Addr())
	// About 14 s of requests: 2 in flight, 112 requests of 128 tokens at 2 ms.
	const requests = 112
	createJob(t, c, "recon", "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 2\n  request_count: 112\n"+
		"  isl: 16\n  osl: 128\n  extra_inputs: \"ignore_eos:true\"\n", target, t.TempDir())

	refuse := func(id string) error {
		if id == "recon-a" {
			return status.Error(codes.Unavailable, "test: agent kept out")
		}
		return nil
	}
	for cut, after := range []int64{10, 50} {
		eventually(t, 30*time.Second, "level past the cut point", func() bool {
			_, lvl, ok := s.runner.Progress("000000000000", "recon")
			return ok && lvl != nil && lvl.GetRequestCount() >= after
		})
		before := a.Control().Connects()
		s.agentGate.Store(&refuse)
		sess := s.sessions.get("recon-a")
		if sess == nil {
			t.Fatalf("cut %d: no session for the agent", cut)
		}
		sess.cancel()
		eventually(t, 5*time.Second, "agent disconnected", func() bool { return !s.AgentConnected("recon-a") })
		merged := func() int64 {
			_, lvl, _ := s.runner.Progress("000000000000", "recon")
			return lvl.GetRequestCount()
		}
		atCut := merged()
		time.Sleep(2 * time.Second) // windows pile up on the agent
		if m := merged(); m != atCut {
			t.Fatalf("cut %d: %d requests merged while the agent was out (%d at the cut)", cut, m, atCut)
		}
		s.agentGate.Store(nil)
		eventually(t, 10*time.Second, "agent reconnected", func() bool {
			return s.AgentConnected("recon-a") && a.Control().Connects() > before
		})
		eventually(t, 10*time.Second, "the windows measured while out merged", func() bool { return merged() > atCut })
	}
	eventually(t, 60*time.Second, "job ended", func() bool {
		st := jobStatus(t, c, "recon").GetAiBenchmarkJobStatus()
		return st == "Completed" || st == "Failed"
	})
	if d := jobStatus(t, c, "recon"); d.GetAiBenchmarkJobStatus() != "Completed" {
		t.Fatalf("job %s: %s", d.GetAiBenchmarkJobStatus(), d.GetFailureReason())
	}
	res, err := c.GetAIBenchmarkJobResults(context.Background(), &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "recon"})
	if err != nil || len(res.GetLevels()) != 1 {
		t.Fatalf("results %v %v", res, err)
	}
	l := res.GetLevels()[0]
	st := sim.Stats()
	if l.GetRequestCount()+l.GetErrorRequestCount() != requests || uint64(l.GetRequestCount()) != st.RequestsCompleted ||
		uint64(l.GetErrorRequestCount()) != st.RequestsFailed || len(l.GetNotes()) != 0 {
		t.Fatalf("merged %d requests and %d errors (notes %q); the target completed %d and failed %d of %d",
			l.GetRequestCount(), l.GetErrorRequestCount(), l.GetNotes(), st.RequestsCompleted, st.RequestsFailed, requests)
	}
	dups, other := s.runner.WindowsNotMerged()
	t.Logf("%d requests merged exactly; leader declined %d resent and %d out-of-order windows; agent connected %d times",
		l.GetRequestCount(), dups, other, a.Control().Connects())
}

// TestAgentRestartedMidLevelHandsItsShardOn kills the agent running a
// level's only shard and starts it again at once under the same ID: it is
// back within a second, well inside LostAfter (set to a minute here), but
// as a new process that knows nothing of the shard. The leader must see
// the new instance and move the shard's remaining requests on, not wait
// for windows that will never come; the level's count stays exact.
func TestAgentRestartedMidLevelHandsItsShardOn(t *testing.T) {
	_, target := simTarget(t)
	s := TestCluster(t, 1, nil)[0]
	s.runner.LostAfter = time.Minute
	dirs := map[string]string{"rs-a": t.TempDir(), "rs-b": t.TempDir()}
	agents := map[string]*daemon.Agent{}
	for id, dir := range dirs {
		agents[id] = startL4Agent(t, s, id, dir)
	}
	waitAgentsConnected(t, s, 2)
	c := client(t, s.Addr())
	const requests = 80
	createJob(t, c, "restart", "benchmark:\n  type: aiperf\nplacement:\n  agents: 1\nparameters:\n  concurrency: 2\n  request_count: 80\n"+
		"  isl: 16\n  osl: 128\n  extra_inputs: \"ignore_eos:true\"\n", target, t.TempDir())
	var victim string
	eventually(t, 30*time.Second, "level running", func() bool {
		_, lvl, ok := s.runner.Progress("000000000000", "restart")
		if !ok || lvl == nil || lvl.GetRequestCount() < 4 {
			return false
		}
		for _, line := range logLines(t, c, "restart") {
			for id := range dirs {
				if strings.Contains(line, "starting at") && strings.Contains(line, id+" (") {
					victim = id
				}
			}
		}
		return victim != ""
	})
	agents[victim].Kill()
	agents[victim] = startL4Agent(t, s, victim, dirs[victim])
	restarted := time.Now()
	eventually(t, 45*time.Second, "job ended", func() bool {
		st := jobStatus(t, c, "restart").GetAiBenchmarkJobStatus()
		return st == "Completed" || st == "Failed"
	})
	took := time.Since(restarted)
	if d := jobStatus(t, c, "restart"); d.GetAiBenchmarkJobStatus() != "Completed" {
		t.Fatalf("job %s: %s", d.GetAiBenchmarkJobStatus(), d.GetFailureReason())
	}
	res, err := c.GetAIBenchmarkJobResults(context.Background(), &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "restart"})
	if err != nil || len(res.GetLevels()) != 1 {
		t.Fatalf("results %v %v", res, err)
	}
	l := res.GetLevels()[0]
	if l.GetRequestCount()+l.GetErrorRequestCount() != requests || len(l.GetNotes()) != 1 || !strings.Contains(l.GetNotes()[0], "agent "+victim+" lost") {
		t.Fatalf("level: %d requests, %d errors, notes %q", l.GetRequestCount(), l.GetErrorRequestCount(), l.GetNotes())
	}
	var warned bool
	for _, line := range logLines(t, c, "restart") {
		warned = warned || strings.Contains(line, "agent "+victim+" restarted")
	}
	if !warned {
		t.Error("the job log does not say the agent restarted")
	}
	t.Logf("job ended %s after the restart; %s", took.Round(time.Millisecond), l.GetNotes()[0])
}
