package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perfleet/perfleet/coordinator/scheduler"
	"github.com/perfleet/perfleet/pkg/metrics"
	"github.com/perfleet/perfleet/pkg/workload"
)

// llm is a minimal OpenAI chat server on 127.0.0.1 that records each
// request's prompt and arrival time. It answers after delay with three
// streamed tokens and a usage chunk; with hang it answers nothing until the
// client goes away.
type llm struct {
	*httptest.Server
	delay time.Duration
	hang  bool

	mu      sync.Mutex
	prompts []string
	arrived []time.Time
}

func newLLM(t *testing.T, delay time.Duration, hang bool) *llm {
	s := &llm{delay: delay, hang: hang}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *llm) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var body struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	s.arrived = append(s.arrived, now)
	if len(body.Messages) > 0 {
		s.prompts = append(s.prompts, body.Messages[0].Content)
	}
	s.mu.Unlock()
	if s.hang {
		<-r.Context().Done()
		return
	}
	time.Sleep(s.delay)
	w.Header().Set("Content-Type", "text/event-stream")
	for i := 0; i < 3; i++ {
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\" tok\"}}]}\n\n")
		w.(http.Flusher).Flush()
	}
	fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":16,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")
}

// seen returns copies of the recorded prompts and arrival times.
func (s *llm) seen() ([]string, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.prompts...), append([]time.Time(nil), s.arrived...)
}

// canonical parses a spec document and returns its canonical JSON.
func canonical(t *testing.T, doc string) []byte {
	t.Helper()
	spec, err := workload.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := spec.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oneShard is the whole level as a single shard.
func oneShard(concurrency, requests int) scheduler.Shard {
	return scheduler.Shard{AgentID: "a1", Of: 1, Concurrency: concurrency, RequestCount: requests, Seed: 7,
		Slice: scheduler.Slice{Start: 0, Stride: 1}}
}

// collector gathers emitted windows and checks their numbering.
type collector struct {
	mu   sync.Mutex
	seqs []uint64
	ws   []*metrics.Window
}

func (c *collector) emit(seq uint64, w *metrics.Window) {
	c.mu.Lock()
	c.seqs = append(c.seqs, seq)
	c.ws = append(c.ws, w)
	c.mu.Unlock()
}

// check verifies seqs 1..N without gaps, the source, and that the windows
// merge to the result's totals.
func (c *collector) check(t *testing.T, res *Result) {
	t.Helper()
	if len(c.ws) == 0 || uint64(len(c.ws)) != res.Windows {
		t.Fatalf("%d windows emitted, result says %d", len(c.ws), res.Windows)
	}
	for i, seq := range c.seqs {
		if seq != uint64(i+1) || c.ws[i].Seq != seq || c.ws[i].Source != res.Source {
			t.Fatalf("window %d: seq %d, window seq %d, source %q (want %d, %q)", i, seq, c.ws[i].Seq, c.ws[i].Source, i+1, res.Source)
		}
	}
	merged := metrics.MergeWindows(c.ws...)
	for k, v := range res.Total.Counters {
		if merged.Counters[k] != v {
			t.Errorf("counter %s: windows %d, total %d", k, merged.Counters[k], v)
		}
	}
	for tag, h := range res.Total.Hists {
		if m := merged.Hists[tag]; m == nil || m.Count != h.Count || m.Sum != h.Sum {
			t.Errorf("histogram %s differs: windows %+v, total %+v", tag, m, h)
		}
	}
	if got := res.OK + res.Errors + res.Cancelled; got != res.Sent || merged.Counters[metrics.CounterSent] != res.Sent {
		t.Errorf("ok %d + errors %d + cancelled %d != sent %d (windows say sent %d)",
			res.OK, res.Errors, res.Cancelled, res.Sent, merged.Counters[metrics.CounterSent])
	}
}

const baseSpec = "benchmark: {type: aiperf}\nparameters:\n  isl: 16\n  osl: 3\n"

func TestWindowsMergeToTotals(t *testing.T) {
	srv := newLLM(t, 10*time.Millisecond, false)
	var c collector
	a := Assignment{JobID: "job1", LevelName: "concurrency_2", Shard: oneShard(2, 0), TargetURL: srv.URL, Models: []string{"m"},
		Spec: canonical(t, baseSpec+"  concurrency: 2\n  benchmark_duration: 1.2\n")}
	res, err := Run(context.Background(), a, Options{AgentID: "a1", Emit: c.emit})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != "a1/job1/concurrency_2/0" || res.Stopped || res.OK == 0 || res.Errors != 0 {
		t.Fatalf("result %+v", res)
	}
	c.check(t, res)
	if prompts, _ := srv.seen(); int64(len(prompts)) != res.Sent {
		t.Errorf("server saw %d requests, shard sent %d", len(prompts), res.Sent)
	}
	if res.Saturation.Verdict == "" || res.End.Before(res.Start) {
		t.Errorf("self-check %+v, start %v end %v", res.Saturation, res.Start, res.End)
	}
}

func TestTwoShardsSendTheLevelOnce(t *testing.T) {
	const n = 25
	// Prompt i of the dataset is "prompt i": the server's prompts name the
	// global request indexes that reached it.
	file := filepath.Join(t.TempDir(), "prompts.jsonl")
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, `{"messages":[{"role":"user","content":"prompt %d"}],"max_tokens":3}`+"\n", i)
	}
	if err := os.WriteFile(file, []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf("benchmark: {type: aiperf}\nparameters:\n  concurrency: 4\n  request_count: %d\n  input_file: %s\n"+
		"  dataset_sampling_strategy: sequential\n", n, file)
	spec, err := workload.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduler.Schedule(scheduler.Input{Seed: 42, Levels: spec.Levels(), Placement: workload.Placement{Agents: 2},
		Candidates: []scheduler.Candidate{{ID: "a0", Status: "alive", Connected: true}, {ID: "a1", Status: "alive", Connected: true}}})
	if err != nil || len(plan.Levels) != 1 || len(plan.Levels[0].Shards) != 2 {
		t.Fatalf("plan %+v, %v", plan, err)
	}
	start := time.Now().Add(300 * time.Millisecond)
	srvs := []*llm{newLLM(t, 2*time.Millisecond, false), newLLM(t, 2*time.Millisecond, false)}
	results := make([]*Result, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, sh := range plan.Levels[0].Shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := Assignment{JobID: "j", Shard: sh, Spec: canonical(t, doc), TargetURL: srvs[i].URL, Models: []string{"m"}, StartAt: start}
			results[i], errs[i] = Run(context.Background(), a, Options{AgentID: sh.AgentID, MaxStartLag: time.Minute})
		}()
	}
	wg.Wait()
	seen := map[int]int{}
	for i, sh := range plan.Levels[0].Shards {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		prompts, _ := srvs[i].seen()
		if len(prompts) != sh.RequestCount || results[i].Sent != int64(sh.RequestCount) || results[i].OK != int64(sh.RequestCount) {
			t.Errorf("shard %d: server saw %d, sent %d, ok %d, want %d", i, len(prompts), results[i].Sent, results[i].OK, sh.RequestCount)
		}
		for _, p := range prompts {
			var g int
			_, err := fmt.Sscanf(p, "prompt %d", &g)
			if err != nil || g%sh.Slice.Stride != sh.Slice.Start {
				t.Errorf("shard %d sent prompt %q (%v), outside its slice %+v", i, p, err, sh.Slice)
			}
			seen[g]++
		}
	}
	for g := 0; g < n; g++ {
		if seen[g] != 1 {
			t.Errorf("prompt index %d sent %d times", g, seen[g])
		}
	}
}

func TestStartAtDelaysFirstSend(t *testing.T) {
	srv := newLLM(t, time.Millisecond, false)
	start := time.Now().Add(400 * time.Millisecond)
	a := Assignment{JobID: "j", Shard: oneShard(1, 3), TargetURL: srv.URL, Models: []string{"m"}, StartAt: start,
		Spec: canonical(t, baseSpec+"  concurrency: 1\n  request_count: 3\n")}
	res, err := Run(context.Background(), a, Options{AgentID: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	_, arrived := srv.seen()
	if len(arrived) != 3 || arrived[0].Before(start) || res.Start.Before(start) {
		t.Fatalf("%d requests, first at %v, shard start %v; StartAt %v", len(arrived), arrived, res.Start, start)
	}
}

func TestStartAtPassedAndBadAssignments(t *testing.T) {
	srv := newLLM(t, time.Millisecond, false)
	// A shard that shares its level with others refuses a start long past:
	// it could not run in step with them.
	two := scheduler.Shard{AgentID: "a1", Index: 0, Of: 2, Concurrency: 1, RequestCount: 3, Seed: 7, Slice: scheduler.Slice{Start: 0, Stride: 2}}
	late := Assignment{JobID: "j", Shard: two, TargetURL: srv.URL, Models: []string{"m"},
		StartAt: time.Now().Add(-3 * time.Second), Spec: canonical(t, baseSpec+"  concurrency: 2\n  request_count: 6\n")}
	_, err := Run(context.Background(), late, Options{AgentID: "a1", MaxStartLag: 500 * time.Millisecond})
	if !errors.Is(err, ErrStartPassed) || !strings.Contains(err.Error(), "already passed by 3.") ||
		!strings.Contains(err.Error(), "clocks are off or the assignment was late") {
		t.Fatalf("err = %v", err)
	}
	if p, _ := srv.seen(); len(p) != 0 {
		t.Fatalf("late shard sent %d requests", len(p))
	}
	// A shard alone in its level starts late rather than not at all.
	a := Assignment{JobID: "j", Shard: oneShard(1, 3), TargetURL: srv.URL, Models: []string{"m"},
		StartAt: time.Now().Add(-3 * time.Second), Spec: canonical(t, baseSpec+"  concurrency: 1\n  request_count: 3\n")}
	res, err := Run(context.Background(), a, Options{AgentID: "a1", MaxStartLag: 500 * time.Millisecond})
	if err != nil || res.OK != 3 {
		t.Fatalf("late lone shard: %v %+v", err, res)
	}
	for name, mod := range map[string]func(*Assignment){
		"level out of range": func(a *Assignment) { a.LevelIndex = 3 },
		"index past of":      func(a *Assignment) { a.Shard.Index = 1 },
		"zero stride":        func(a *Assignment) { a.Shard.Slice.Stride = 0 },
		"bad spec":           func(a *Assignment) { a.Spec = []byte(`{"parameters":{"zzz":1}}`) },
		"no warmup in spec":  func(a *Assignment) { a.Warmup = true },
	} {
		b := a
		mod(&b)
		if _, err := New(b, Options{}); !errors.Is(err, ErrAssignment) {
			t.Errorf("%s: err = %v, want ErrAssignment", name, err)
		}
	}
}

func TestCancelLetsInFlightFinishAndFlushes(t *testing.T) {
	srv := newLLM(t, 100*time.Millisecond, false)
	var c collector
	a := Assignment{JobID: "j", Shard: oneShard(2, 0), TargetURL: srv.URL, Models: []string{"m"},
		Spec: canonical(t, baseSpec+"  concurrency: 2\n  benchmark_duration: 60\n")}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(350*time.Millisecond, cancel)
	res, err := Run(ctx, a, Options{AgentID: "a1", Emit: c.emit, Grace: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.OK == 0 || res.Errors != 0 {
		t.Fatalf("result %+v", res)
	}
	c.check(t, res)
	prompts, _ := srv.seen()
	if int64(len(prompts)) != res.OK {
		t.Errorf("server saw %d requests, %d finished ok: in-flight requests must finish within the grace", len(prompts), res.OK)
	}
	time.Sleep(150 * time.Millisecond)
	if later, _ := srv.seen(); len(later) != len(prompts) {
		t.Errorf("%d requests sent after Run returned", len(later)-len(prompts))
	}
}

func TestCancelGraceCutsHungRequests(t *testing.T) {
	srv := newLLM(t, 0, true)
	var c collector
	a := Assignment{JobID: "j", Shard: oneShard(2, 0), TargetURL: srv.URL, Models: []string{"m"},
		Spec: canonical(t, baseSpec+"  concurrency: 2\n  benchmark_duration: 60\n")}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if p, _ := srv.seen(); len(p) >= 2 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t0 := time.Now()
	res, err := Run(ctx, a, Options{AgentID: "a1", Emit: c.emit, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.Cancelled != 2 || res.OK != 0 || time.Since(t0) > 20*time.Second {
		t.Fatalf("after %v: result %+v", time.Since(t0), res)
	}
	c.check(t, res)
	if last := c.ws[len(c.ws)-1]; metrics.MergeWindows(c.ws...).Counters[metrics.CounterCancelled] != 2 || last.Empty() {
		t.Errorf("final window %+v", last.Counters)
	}
}
