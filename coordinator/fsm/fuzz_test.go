package fsm_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// script is a command sequence touching every command type, with commands
// the store refuses (duplicates, missing references, token reuse) among them.
func script() []proto.Message {
	tok := func(cmd *pb.CreateResourceCommand, token, hash string) *pb.CreateResourceCommand {
		cmd.ClientToken = &pb.ClientTokenRecord{AccountId: acct, Operation: "op", Token: token, RequestHash: []byte(hash), Created: ts(1)}
		return cmd
	}
	limited := createBench("b-limit", "wl", 9)
	limited.MaxActiveJobs = 1
	in := []string{state.StatusInProgress}
	return []proto.Message{
		&pb.SetClusterMetaCommand{Meta: &pb.ClusterMeta{ClusterId: "c", PageTokenKey: []byte("k")}},
		&pb.RegisterServerCommand{Server: &pb.ServerIdentity{NodeId: "n1", GrpcAddr: "a:1"}},
		tok(createConfig("wl", 0), "t1", "h1"),
		tok(createConfig("wl", 0), "t1", "h1"),   // replay
		tok(createConfig("wl-x", 0), "t1", "h2"), // token reuse: refused
		createConfig("wl", 0),                    // duplicate: refused
		createBench("b1", "wl", 2),
		createBench("b2", "nope", 3), // missing config: refused
		createRec("r1", "wl", 4),
		limited, // over the active limit: refused
		setStatus(state.KindBenchmark, "b1", state.StatusStopping, 5, in...),
		setStatus(state.KindBenchmark, "b1", state.StatusStopping, 6, in...),              // no-op
		&pb.DeleteResourceCommand{Kind: state.KindBenchmark, AccountId: acct, Name: "b1"}, // not terminal: refused
		setStatus(state.KindBenchmark, "b1", state.StatusStopped, 7, state.StatusStopping),
		&pb.DeleteResourceCommand{Kind: state.KindBenchmark, AccountId: acct, Name: "b1"},
		&pb.RegisterServerCommand{Server: &pb.ServerIdentity{NodeId: "n2", GrpcAddr: "b:1"}},
		&pb.DeregisterServerCommand{NodeId: "n1"},
		&pb.UpsertAgentCommand{Agent: &pb.Agent{AgentId: "a1", Status: "alive", Labels: map[string]string{"k": "v", "a": "b"}, FirstSeen: ts(1)}},
		&pb.UpsertAgentCommand{Agent: &pb.Agent{AgentId: "a1", Status: "suspect", FirstSeen: ts(9)}}, // keeps first_seen
		&pb.PruneClientTokensCommand{Before: ts(2)},
	}
}

func TestSameCommandsSameState(t *testing.T) {
	a, b := fsm.New(nil), fsm.New(nil)
	for i, msg := range script() {
		data := encode(t, msg)
		ra, rb := a.ApplyBytes(data), b.ApplyBytes(bytes.Clone(data))
		if fmt.Sprint(ra) != fmt.Sprint(rb) {
			t.Fatalf("command %d: results differ: %v vs %v", i, ra, rb)
		}
		if a.State().Hash() != b.State().Hash() {
			t.Fatalf("command %d (%T): hashes differ", i, msg)
		}
	}
	// A follower that restored a snapshot half-way ends in the same state.
	msgs := script()
	c := fsm.New(nil)
	for _, msg := range msgs[:len(msgs)/2] {
		c.ApplyBytes(encode(t, msg))
	}
	d := fsm.New(nil)
	if err := d.Restore(reader(persist(t, c))); err != nil {
		t.Fatal(err)
	}
	for _, msg := range msgs[len(msgs)/2:] {
		d.ApplyBytes(encode(t, msg))
	}
	if d.State().Hash() != a.State().Hash() {
		t.Fatal("snapshot + tail gives another state than the full log")
	}
}

// FuzzApply feeds arbitrary entries to an FSM that already holds some state:
// Apply must never panic, must return nil, an error or a known result, must
// leave the state untouched when it returns an error, and the state must
// survive a snapshot round trip.
func FuzzApply(f *testing.F) {
	for _, msg := range script() {
		f.Add(encode(f, msg))
	}
	f.Add([]byte{})
	f.Add([]byte{byte(fsm.IgnoreUnknownTypeFlag) | 77})
	f.Add([]byte{byte(fsm.CreateResourceType), 0x0a, 0x00}) // config record with no fields
	f.Add([]byte{byte(fsm.CreateResourceType), 0x12, 0x00}) // benchmark record with no fields
	f.Add([]byte{byte(fsm.SetClusterMetaType)})

	base := script()
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fsm.New(nil)
		for _, msg := range base[:9] {
			m.ApplyBytes(encode(t, msg))
		}
		before := m.State().Hash()
		res := m.ApplyBytes(data)
		switch r := res.(type) {
		case nil, state.CreateResult, state.StatusResult, string, int:
		case error:
			if m.State().Hash() != before {
				t.Fatalf("Apply returned %v but changed the state", r)
			}
		default:
			t.Fatalf("Apply returned %T %v", res, res)
		}
		restored := fsm.New(nil)
		if err := restored.Restore(reader(persist(t, m))); err != nil {
			t.Fatalf("restore after applying %x: %v", data, err)
		}
		if restored.State().Hash() != m.State().Hash() {
			t.Fatalf("snapshot round trip after %x changed the state", data)
		}
		if !reflect.DeepEqual(restored.State().Counts(), m.State().Counts()) {
			t.Fatalf("snapshot round trip after %x changed the counts", data)
		}
	})
}
