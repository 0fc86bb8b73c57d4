package shard

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/perfleet/perfleet/agent/dataset"
	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/coordinator/scheduler"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// TestStageTakesTheShardsShare checks the stage New builds for every load
// mode from the level's stage and the shard's share.
func TestStageTakesTheShardsShare(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	if err := os.WriteFile(trace, []byte(`{"timestamp":0}
{"timestamp":100}
{"timestamp":200}
{"timestamp":300}
{"timestamp":400}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	sh := scheduler.Shard{AgentID: "a1", Index: 1, Of: 2, Concurrency: 3, Rate: 2.5, SpawnRate: 30, RequestCount: 10, Seed: 99,
		Slice: scheduler.Slice{Start: 1, Stride: 2}}
	for _, tc := range []struct {
		name, params string
		warmup       bool
		check        func(st loadgen.Stage) bool
	}{
		{"concurrency", "concurrency: 6, request_count: 20", false, func(st loadgen.Stage) bool {
			return st.Mode == loadgen.ClosedLoop && st.Concurrency == 3 && st.RequestCount == 10 && st.Seed == 99
		}},
		{"request rate", "request_rate: 5, max_concurrency: 6, request_count: 20", false, func(st loadgen.Stage) bool {
			return st.Mode == loadgen.OpenLoop && st.Rate == 2.5 && st.MaxConcurrency == 3 && st.RequestCount == 10 && st.Seed == 99
		}},
		{"phase", "phases: [{initial_users: 6, spawn_rate: 60, duration_seconds: 10}]", false, func(st loadgen.Stage) bool {
			return st.Mode == loadgen.Users && st.Duration == 10*time.Second && reflect.DeepEqual(st.Profile[:2],
				[]loadgen.UserStep{{At: 0, Users: 3}, {At: 2 * time.Second, Users: 4}})
		}},
		{"stair", "stairs: {users_per_step: 3, step_duration_seconds: 5, number_of_steps: 2}", false, func(st loadgen.Stage) bool {
			return st.Mode == loadgen.ClosedLoop && st.Concurrency == 3 && st.RequestCount == 0 && st.Duration == 5*time.Second
		}},
		{"search trial", "search_recipe: max-concurrency-under-sla, e2e_sla_ms: 900, request_count: 20", false, func(st loadgen.Stage) bool {
			return st.Mode == loadgen.ClosedLoop && st.Concurrency == 3 && st.RequestCount == 10 && st.Grace == 30*time.Second
		}},
		{"trace", "trace_file: " + trace, false, func(st loadgen.Stage) bool {
			return st.Mode == loadgen.Replay && reflect.DeepEqual(st.Offsets, []time.Duration{100 * time.Millisecond, 300 * time.Millisecond})
		}},
		{"warmup", "concurrency: 6, request_count: 20, warmup_request_count: 5, warmup_concurrency: 3", true, func(st loadgen.Stage) bool {
			return st.Mode == loadgen.ClosedLoop && st.Concurrency == 1 && st.RequestCount == 2 && st.Seed == 99
		}},
	} {
		a := Assignment{JobID: "j", Shard: sh, Warmup: tc.warmup, TargetURL: "http://127.0.0.1:1", Models: []string{"m"},
			Spec: canonical(t, "benchmark: {type: aiperf}\nparameters: {isl: 16, osl: 3, num_conversations: 4, "+tc.params+"}\n")}
		e, err := New(a, Options{AgentID: "a1"})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if st := e.Stage(); !tc.check(st) {
			t.Errorf("%s: stage %+v", tc.name, st)
		}
	}
}

// TestEmptyShareEndsAtOnce: a shard whose share is nothing (a trace slice
// past the trace's end) waits for its start and ends without sending.
func TestEmptyShareEndsAtOnce(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	if err := os.WriteFile(trace, []byte(`{"timestamp":0}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := Assignment{JobID: "j", Shard: scheduler.Shard{Index: 1, Of: 2, Slice: scheduler.Slice{Start: 1, Stride: 2}},
		TargetURL: "http://127.0.0.1:1", Models: []string{"m"}, Spec: canonical(t, "benchmark: {type: aiperf}\nparameters: {trace_file: "+trace+"}\n")}
	var emitted int
	res, err := Run(t.Context(), a, Options{AgentID: "a1", Emit: func(uint64, *metrics.Window) { emitted++ }})
	if err != nil || res.Sent != 0 || res.Stopped || emitted != 0 || res.Total == nil || !res.Total.Empty() {
		t.Fatalf("result %+v, %d windows, err %v", res, emitted, err)
	}
}

// fakeClient answers every request at once and remembers it.
type fakeClient struct{ reqs []protocol.Request }

func (f *fakeClient) Do(_ context.Context, req *protocol.Request, rec *metrics.RequestRecord, out *protocol.Output) {
	f.reqs = append(f.reqs, *req)
	rec.SendNs, rec.EndNs = metrics.Now(), metrics.Now()
	out.Usage = &protocol.Usage{PromptTokens: 5, CompletionTokens: 2}
}

// TestDoerMapsToGlobalIndexes: shard request i is the level's request
// start + i×stride for the prompt, the round-robin model and the ID.
func TestDoerMapsToGlobalIndexes(t *testing.T) {
	var entries []dataset.Entry
	for i := 0; i < 10; i++ {
		entries = append(entries, dataset.Entry{Prompt: "p" + string(rune('0'+i))})
	}
	sampler, err := dataset.NewSampler(entries, "sequential", 1)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeClient{}
	d := &doer{client: fc, sampler: sampler, models: []string{"m0", "m1", "m2"}, start: 1, stride: 2, base: context.Background()}
	var got []string
	for seq := int64(0); seq < 4; seq++ {
		rec := d.Do(context.Background(), loadgen.Job{Seq: seq, Phase: metrics.PhaseProfiling})
		if !rec.OK() || rec.OutputTokens != 2 || rec.TokenSource != metrics.TokensServer {
			t.Fatalf("record %+v", rec)
		}
		r := fc.reqs[seq]
		got = append(got, r.RequestID+":"+r.Prompt+":"+r.Model)
	}
	if want := "1:p1:m1 3:p3:m0 5:p5:m2 7:p7:m1"; strings.Join(got, " ") != want {
		t.Fatalf("requests %v, want %s", got, want)
	}
	d.stopping.Store(true)
	if rec := d.Do(context.Background(), loadgen.Job{Seq: 4}); !rec.Cancelled || len(fc.reqs) != 4 || rec.EndNs == 0 {
		t.Fatalf("a request issued after the stop must not be sent: %+v", rec)
	}
}
