package runner

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// FuzzAgentMessage decodes arbitrary bytes as an agent's control-stream
// message and feeds any shard window and report it holds to a running
// shard, as the leader does: nothing may panic, a window is merged at most
// once and only in order, and the merged result still summarizes.
func FuzzAgentMessage(f *testing.F) {
	base := int64(1_700_000_000_000_000_000)
	acc := metrics.NewAccumulator("a1", nil, 0)
	var wins []*metrics.Window
	acc.OnWindow = func(w *metrics.Window) { wins = append(wins, w) }
	acc.Add(&metrics.RequestRecord{Phase: metrics.PhaseProfiling, Streaming: true, ScheduledNs: base, SendNs: base + 2e6,
		AckNs: base + 50e6, EndNs: base + 202e6, InputTokens: 500, OutputTokens: 3, TokenSource: metrics.TokensServer,
		ChunkNs: []int64{base + 102e6, base + 112e6, base + 122e6}})
	acc.Flush()
	for _, m := range []*pb.ConnectRequest{
		{Seq: 7, Body: &pb.ConnectRequest_ShardWindow{ShardWindow: &pb.ShardWindow{RunId: 1, Seq: 1, Window: metrics.MarshalWindow(wins[0])}}},
		{Seq: 8, Body: &pb.ConnectRequest_ShardDone{ShardDone: &pb.ShardDone{RunId: 1, Windows: 1}}},
		{Seq: 9, Body: &pb.ConnectRequest_Heartbeat{Heartbeat: &pb.Heartbeat{}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
	}
	f.Add([]byte{0x0a, 0xff, 0x01}, false)
	f.Fuzz(func(t *testing.T, b []byte, inOrder bool) {
		m := &pb.ConnectRequest{}
		if err := proto.Unmarshal(b, m); err != nil {
			return
		}
		sr := &shardRun{next: 1, merged: metrics.NewWindow("merged", 0, 0, 0), done: make(chan struct{})}
		if w := m.GetShardWindow(); w != nil {
			if inOrder {
				w.Seq = 1
			}
			_, decodeErr := metrics.UnmarshalWindow(w.GetWindow())
			ack, merged := sr.window(w)
			wantNext := uint64(1)
			if w.GetSeq() == 1 && decodeErr == nil {
				wantNext = 2
			}
			if sr.next != wantNext || ack != wantNext-1 || merged != (wantNext == 2) {
				t.Fatalf("seq %d (decodes: %v): next %d ack %d, want next %d", w.GetSeq(), decodeErr == nil, sr.next, ack, wantNext)
			}
			// The same window again is not merged twice.
			if _, again := sr.window(w); again || sr.next != wantNext {
				t.Fatalf("a resent window moved next to %d", sr.next)
			}
			metrics.Summarize(sr.merged, nil, nil)
		}
		if d := m.GetShardDone(); d != nil {
			sr.finish(d)
			select {
			case <-sr.done:
				if d.GetWindows() > sr.next-1 {
					t.Fatalf("report announcing %d windows accepted after %d", d.GetWindows(), sr.next-1)
				}
			default:
			}
		}
	})
}
