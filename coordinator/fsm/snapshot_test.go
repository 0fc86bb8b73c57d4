package fsm_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// sink is an in-memory raft.SnapshotSink.
type sink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *sink) ID() string          { return "test" }
func (s *sink) Close() error        { s.closed = true; return nil }
func (s *sink) Cancel() error       { s.cancelled = true; return nil }
func (s *sink) data() []byte        { return s.Bytes() }
func reader(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// fullFSM returns an FSM holding every kind of record: configs, both job
// kinds in several statuses, client tokens, servers, agents and the cluster
// meta.
func fullFSM(t *testing.T) *fsm.FSM {
	t.Helper()
	f := fsm.New(nil)
	apply(t, f, &pb.SetClusterMetaCommand{Meta: &pb.ClusterMeta{ClusterId: "c1", PageTokenKey: []byte("page-key")}})
	apply(t, f, &pb.RegisterServerCommand{Server: &pb.ServerIdentity{NodeId: "n1", RaftAddr: "10.0.0.1:7000", GrpcAddr: "10.0.0.1:7001"}})
	apply(t, f, &pb.RegisterServerCommand{Server: &pb.ServerIdentity{NodeId: "n2", RaftAddr: "10.0.0.2:7000", GrpcAddr: "10.0.0.2:7001"}})
	apply(t, f, &pb.UpsertAgentCommand{Agent: &pb.Agent{AgentId: "gpu-1", InstanceType: "lab-8xH100", Status: "alive",
		Labels: map[string]string{"rack": "a", "zone": "1"}, FirstSeen: ts(0)}})
	withTok := createConfig("wl", 0)
	withTok.ClientToken = &pb.ClientTokenRecord{AccountId: acct, Operation: "CreateAIWorkloadConfig", Token: "tok-1", RequestHash: []byte{1, 2, 3}, Created: ts(0)}
	apply(t, f, withTok)
	apply(t, f, createConfig("wl-2", 1))
	for i, name := range []string{"b-run", "b-done", "b-failed", "b-stopping", "b-stopped"} {
		apply(t, f, createBench(name, "wl", 10+i))
	}
	for i, name := range []string{"r-run", "r-done", "r-stopped"} {
		apply(t, f, createRec(name, "wl-2", 20+i))
	}
	in := []string{state.StatusInProgress}
	apply(t, f, setStatus(state.KindBenchmark, "b-done", state.StatusCompleted, 30, in...))
	failed := setStatus(state.KindBenchmark, "b-failed", state.StatusFailed, 31, in...)
	failed.FailureReason = "model server exited"
	apply(t, f, failed)
	apply(t, f, setStatus(state.KindBenchmark, "b-stopping", state.StatusStopping, 32, in...))
	apply(t, f, setStatus(state.KindBenchmark, "b-stopped", state.StatusStopping, 33, in...))
	apply(t, f, setStatus(state.KindBenchmark, "b-stopped", state.StatusStopped, 34, state.StatusStopping))
	apply(t, f, setStatus(state.KindRecommendation, "r-done", state.StatusCompleted, 35, in...))
	apply(t, f, setStatus(state.KindRecommendation, "r-stopped", state.StatusStopped, 36, in...))
	return f
}

func persist(t *testing.T, f *fsm.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !s.closed || s.cancelled {
		t.Fatalf("Persist closed=%v cancelled=%v, want a closed sink", s.closed, s.cancelled)
	}
	return s.data()
}

func TestSnapshotRestoreKeepsEveryRecord(t *testing.T) {
	orig := fullFSM(t)
	counts := orig.State().Counts()
	for _, table := range []string{"workload_configs", "jobs", "client_tokens", "servers", "meta", "agents"} {
		if counts[table] == 0 {
			t.Fatalf("the fixture has no %s: %v", table, counts)
		}
	}
	restored := fsm.New(nil)
	if err := restored.Restore(reader(persist(t, orig))); err != nil {
		t.Fatal(err)
	}
	if got, want := restored.State().Hash(), orig.State().Hash(); got != want {
		t.Fatalf("restored hash %s, want %s", got, want)
	}
	j, err := restored.State().Job(state.KindBenchmark, acct, "b-failed")
	if err != nil || j.Benchmark.GetJob().GetFailureReason() != "model server exited" {
		t.Fatalf("restored job = %v, %v", j, err)
	}
	// A change on either side makes the hashes differ.
	apply(t, restored, setStatus(state.KindBenchmark, "b-run", state.StatusStopping, 40, state.StatusInProgress))
	if restored.State().Hash() == orig.State().Hash() {
		t.Fatal("a status change left the hash unchanged")
	}
}

func TestRestoreSwapsAndAbandonsTheOldStore(t *testing.T) {
	f := fsm.New(nil)
	apply(t, f, createConfig("old", 0))
	old := f.State()
	if err := f.Restore(reader(persist(t, fullFSM(t)))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.AbandonCh():
	default:
		t.Fatal("the replaced store was not abandoned")
	}
	if _, err := f.State().WorkloadConfig(acct, "old"); !errors.Is(err, state.ErrNotFound) {
		t.Fatal("restore merged into the old state instead of replacing it")
	}
}

func TestBadRestoreKeepsTheExistingStore(t *testing.T) {
	good := persist(t, fullFSM(t))
	corrupt := append([]byte(nil), good...)
	corrupt[len("perfleet-state v1\n")] = 99 // unknown record type
	cases := map[string][]byte{
		"empty":          nil,
		"header only":    good[:len("perfleet-state v1\n")],
		"truncated half": good[:len(good)/2],
		"no end record":  good[:len(good)-1],
		"unknown record": corrupt,
		"not a snapshot": []byte("hello world, this is not a snapshot"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			f := fsm.New(nil)
			apply(t, f, createConfig("keep-me", 0))
			before, store := f.State().Hash(), f.State()
			if err := f.Restore(reader(data)); !errors.Is(err, state.ErrBadSnapshot) {
				t.Fatalf("Restore = %v, want ErrBadSnapshot", err)
			}
			if f.State() != store || f.State().Hash() != before {
				t.Fatal("a failed restore replaced the store")
			}
			select {
			case <-store.AbandonCh():
				t.Fatal("a failed restore abandoned the live store")
			default:
			}
		})
	}
}
