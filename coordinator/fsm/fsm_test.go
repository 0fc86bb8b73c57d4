package fsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

const acct = "123456789012"

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ts(sec int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
}

func arnOf(kind, name string) string {
	return "arn:aws:sagemaker:us-east-1:" + acct + ":" + kind + "/" + name
}

func createConfig(name string, at int) *pb.CreateResourceCommand {
	return &pb.CreateResourceCommand{WorkloadConfig: &pb.WorkloadConfigRecord{AccountId: acct, Config: &pb.DescribeAIWorkloadConfigResponse{
		AiWorkloadConfigArn: arnOf(state.KindWorkloadConfig, name), AiWorkloadConfigName: name, CreationTime: ts(at)}}}
}

func createBench(name, workload string, at int) *pb.CreateResourceCommand {
	return &pb.CreateResourceCommand{BenchmarkJob: &pb.BenchmarkJobRecord{AccountId: acct, WorkloadConfigName: workload, Job: &pb.DescribeAIBenchmarkJobResponse{
		AiBenchmarkJobArn: arnOf(state.KindBenchmark, name), AiBenchmarkJobName: name, AiBenchmarkJobStatus: state.StatusInProgress, CreationTime: ts(at)}}}
}

func createRec(name, workload string, at int) *pb.CreateResourceCommand {
	return &pb.CreateResourceCommand{RecommendationJob: &pb.RecommendationJobRecord{AccountId: acct, WorkloadConfigName: workload, Job: &pb.DescribeAIRecommendationJobResponse{
		AiRecommendationJobArn: arnOf(state.KindRecommendation, name), AiRecommendationJobName: name, AiRecommendationJobStatus: state.StatusInProgress, CreationTime: ts(at)}}}
}

func setStatus(kind, name, to string, at int, from ...string) *pb.SetJobStatusCommand {
	return &pb.SetJobStatusCommand{Kind: kind, AccountId: acct, Name: name, Status: to, FromStatuses: from, Time: ts(at)}
}

func encode(t testing.TB, msg proto.Message) []byte {
	t.Helper()
	typ, err := fsm.TypeOf(msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fsm.Encode(typ, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apply applies a command and fails the test when the FSM refuses it.
func apply(t testing.TB, f *fsm.FSM, msg proto.Message) any {
	t.Helper()
	res := f.ApplyBytes(encode(t, msg))
	if err, ok := res.(error); ok {
		t.Fatalf("apply %T: %v", msg, err)
	}
	return res
}

func TestApplyEachCommandType(t *testing.T) {
	f := fsm.New(nil)
	if res := apply(t, f, createConfig("wl", 0)); res.(state.CreateResult).ARN != arnOf(state.KindWorkloadConfig, "wl") {
		t.Fatalf("create config = %v", res)
	}
	if res := apply(t, f, createBench("b1", "wl", 1)); res.(state.CreateResult).ARN != arnOf(state.KindBenchmark, "b1") {
		t.Fatalf("create benchmark job = %v", res)
	}
	if res := apply(t, f, createRec("r1", "wl", 2)); res.(state.CreateResult).ARN != arnOf(state.KindRecommendation, "r1") {
		t.Fatalf("create recommendation job = %v", res)
	}
	res := apply(t, f, setStatus(state.KindBenchmark, "b1", state.StatusCompleted, 3, state.StatusInProgress)).(state.StatusResult)
	if !res.Changed || res.Status != state.StatusCompleted {
		t.Fatalf("set status = %+v", res)
	}
	if arn := apply(t, f, &pb.DeleteResourceCommand{Kind: state.KindBenchmark, AccountId: acct, Name: "b1"}); arn != arnOf(state.KindBenchmark, "b1") {
		t.Fatalf("delete = %v", arn)
	}
	if res := apply(t, f, &pb.RegisterServerCommand{Server: &pb.ServerIdentity{NodeId: "n1", GrpcAddr: "h:1"}}); res != nil {
		t.Fatalf("register = %v", res)
	}
	if f.State().Server("n1").GetGrpcAddr() != "h:1" {
		t.Fatal("server not registered")
	}
	apply(t, f, &pb.DeregisterServerCommand{NodeId: "n1"})
	if f.State().Server("n1") != nil {
		t.Fatal("server not deregistered")
	}
	apply(t, f, &pb.SetClusterMetaCommand{Meta: &pb.ClusterMeta{ClusterId: "c1", PageTokenKey: []byte("k")}})
	if f.State().Meta().GetClusterId() != "c1" {
		t.Fatal("meta not set")
	}
	apply(t, f, &pb.UpsertAgentCommand{Agent: &pb.Agent{AgentId: "gpu-1", Status: "alive", FirstSeen: ts(1)}})
	apply(t, f, &pb.UpsertAgentCommand{Agent: &pb.Agent{AgentId: "gpu-1", Status: "failed", FirstSeen: ts(2)}})
	if a, err := f.State().Agent("gpu-1"); err != nil || a.GetStatus() != "failed" || !a.GetFirstSeen().AsTime().Equal(ts(1).AsTime()) {
		t.Fatalf("agent after two upserts = %v, %v", a, err)
	}
	tok := createConfig("wl2", 4)
	tok.ClientToken = &pb.ClientTokenRecord{AccountId: acct, Operation: "CreateAIWorkloadConfig", Token: "t", RequestHash: []byte("h"), Created: ts(4)}
	apply(t, f, tok)
	if n := apply(t, f, &pb.PruneClientTokensCommand{Before: ts(5)}); n != 1 {
		t.Fatalf("prune = %v, want 1", n)
	}
}

func TestApplyReturnsStoreErrorsAsValues(t *testing.T) {
	f := fsm.New(nil)
	res := f.ApplyBytes(encode(t, createBench("b1", "missing", 0)))
	if err, ok := res.(error); !ok || !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Apply = %v, want ErrNotFound", res)
	}
}

func TestApplyUnknownAndMalformed(t *testing.T) {
	valid := encode(t, createConfig("wl", 0))
	for _, tc := range []struct {
		name string
		data []byte
		want error // nil: the entry is skipped
	}{
		{"empty entry", nil, fsm.ErrBadCommand},
		{"unknown type", []byte{99, 1, 2}, fsm.ErrUnknownCommand},
		{"zero type", []byte{0}, fsm.ErrUnknownCommand},
		{"unknown type, ignore flag", []byte{99 | byte(fsm.IgnoreUnknownTypeFlag), 0xff, 0xff}, nil},
		{"only the ignore flag", []byte{byte(fsm.IgnoreUnknownTypeFlag)}, nil},
		{"bad payload", []byte{byte(fsm.CreateResourceType), 0xff, 0xff, 0xff}, fsm.ErrBadCommand},
		{"truncated payload", valid[:len(valid)/2], fsm.ErrBadCommand},
		{"known type, bad payload, ignore flag", append([]byte{byte(fsm.CreateResourceType | fsm.IgnoreUnknownTypeFlag)}, 0xff), fsm.ErrBadCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fsm.New(nil)
			before := f.State().Hash()
			res := f.ApplyBytes(tc.data)
			if tc.want == nil {
				if res != nil {
					t.Fatalf("Apply = %v, want nil", res)
				}
			} else if err, ok := res.(error); !ok || !errors.Is(err, tc.want) {
				t.Fatalf("Apply = %v, want %v", res, tc.want)
			}
			if f.State().Hash() != before {
				t.Fatal("a refused or skipped entry changed the state")
			}
		})
	}
}

func TestKnownTypeWithIgnoreFlagIsApplied(t *testing.T) {
	f := fsm.New(nil)
	data := encode(t, createConfig("wl", 0))
	data[0] |= byte(fsm.IgnoreUnknownTypeFlag)
	if _, ok := f.ApplyBytes(data).(state.CreateResult); !ok {
		t.Fatal("a known command with the ignore flag was not applied")
	}
}

func TestApplyRaftLog(t *testing.T) {
	f := fsm.New(nil)
	if res := f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: encode(t, createConfig("wl", 0))}); res.(state.CreateResult).ARN == "" {
		t.Fatalf("Apply = %v", res)
	}
	if f.AppliedIndex() != 7 {
		t.Fatalf("AppliedIndex = %d, want 7", f.AppliedIndex())
	}
	if res := f.Apply(&raft.Log{Index: 8, Type: raft.LogNoop}); res != nil || f.AppliedIndex() != 8 {
		t.Fatalf("no-op entry: %v, index %d", res, f.AppliedIndex())
	}
	if _, ok := f.Apply(&raft.Log{Index: 9, Type: raft.LogCommand, Data: []byte{42}}).(error); !ok || f.AppliedIndex() != 9 {
		t.Fatal("a refused entry must still advance the applied index")
	}
}

func TestTypeOfAndEncode(t *testing.T) {
	for want, msg := range map[fsm.MessageType]proto.Message{
		fsm.CreateResourceType:    &pb.CreateResourceCommand{},
		fsm.DeleteResourceType:    &pb.DeleteResourceCommand{},
		fsm.SetJobStatusType:      &pb.SetJobStatusCommand{},
		fsm.RegisterServerType:    &pb.RegisterServerCommand{},
		fsm.DeregisterServerType:  &pb.DeregisterServerCommand{},
		fsm.SetClusterMetaType:    &pb.SetClusterMetaCommand{},
		fsm.PruneClientTokensType: &pb.PruneClientTokensCommand{},
		fsm.UpsertAgentType:       &pb.UpsertAgentCommand{},
	} {
		got, err := fsm.TypeOf(msg)
		if err != nil || got != want {
			t.Errorf("TypeOf(%T) = %d, %v; want %d", msg, got, err, want)
		}
		b, err := fsm.Encode(want, msg)
		if err != nil || len(b) == 0 || fsm.MessageType(b[0]) != want {
			t.Errorf("Encode(%d) = %x, %v", want, b, err)
		}
	}
	if _, err := fsm.TypeOf(&pb.ClusterMeta{}); !errors.Is(err, fsm.ErrUnknownCommand) {
		t.Fatalf("TypeOf(non-command) = %v", err)
	}
}
