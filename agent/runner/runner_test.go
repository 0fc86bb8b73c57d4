package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
	"github.com/perfleet/perfleet/pkg/workload"
)

// llmServer is a minimal OpenAI chat server: ttft, then n tokens itl apart,
// a usage chunk and [DONE]. Every 10th request fails with 503.
func llmServer(t *testing.T, ttft, itl time.Duration, tokens int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Stream bool   `json:"stream"`
			Model  string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if n.Add(1)%10 == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if !body.Stream {
			fmt.Fprintf(w, `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":10,"completion_tokens":%d}}`, tokens)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		time.Sleep(ttft)
		for i := 0; i < tokens; i++ {
			if i > 0 {
				time.Sleep(itl)
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\" tok\"}}]}\n\n")
			fl.Flush()
		}
		fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n")
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":%d}}\n\ndata: [DONE]\n\n", tokens)
	}))
	return srv, &n
}

func runSpec(t *testing.T, doc string, target, dir string) []LevelResult {
	t.Helper()
	spec, err := workload.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := FromSpec(spec, SpecOptions{Target: target, OutputDir: dir, Models: []string{"m"}})
	if err != nil {
		t.Fatal(err)
	}
	var sum strings.Builder
	cfg.Summary = &sum
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(sum.String())
	return res
}

func TestRunSweepEndToEnd(t *testing.T) {
	srv, _ := llmServer(t, 20*time.Millisecond, 2*time.Millisecond, 8)
	defer srv.Close()
	dir := t.TempDir()
	res := runSpec(t, `
benchmark: {type: aiperf}
parameters:
  concurrency: [1, 4]
  request_count: 40
  isl: 64
  osl: 8
  goodput: "time_to_first_token:1000 inter_token_latency:50"
  warmup_request_count: 3
`, srv.URL, dir)
	if len(res) != 2 {
		t.Fatalf("levels %d", len(res))
	}
	for _, lvl := range []string{"concurrency_1", "concurrency_4"} {
		d := filepath.Join(dir, lvl)
		checkJSON(t, filepath.Join(d, metrics.FileJSON))
		checkCSV(t, filepath.Join(d, metrics.FileCSV))
		checkJSONL(t, filepath.Join(d, metrics.FileJSONL), 40)
	}
}

func checkJSON(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	units := map[string]string{
		"time_to_first_token": "ms", "time_to_second_token": "ms", "inter_token_latency": "ms", "inter_chunk_latency": "ms",
		"request_latency": "ms", "output_token_throughput_per_user": "tokens/sec/user", "output_sequence_length": "tokens",
		"input_sequence_length": "tokens", "request_throughput": "requests/sec", "output_token_throughput": "tokens/sec",
		"total_token_throughput": "tokens/sec", "request_count": "requests", "error_request_count": "requests",
		"goodput": "requests/sec", "good_request_count": "requests", "benchmark_duration": "sec",
	}
	for k, u := range units {
		m, ok := doc[k].(map[string]any)
		if !ok {
			t.Errorf("%s: missing %s", path, k)
			continue
		}
		if m["unit"] != u {
			t.Errorf("%s unit %v, want %s", k, m["unit"], u)
		}
	}
	rc := doc["request_count"].(map[string]any)["avg"].(float64)
	ec := doc["error_request_count"].(map[string]any)["avg"].(float64)
	if rc+ec != 40 || ec < 3 {
		t.Errorf("request_count %v error_request_count %v", rc, ec)
	}
	osl := doc["output_sequence_length"].(map[string]any)
	if osl["avg"] != 8.0 {
		t.Errorf("OSL %v, want 8 from usage", osl["avg"])
	}
	ttft := doc["time_to_first_token"].(map[string]any)
	if p50 := ttft["p50"].(float64); p50 < 20 || p50 > 80 {
		t.Errorf("TTFT p50 %v ms, server sleeps 20 ms", p50)
	}
	pf := doc["perfleet"].(map[string]any)
	if pf["saturation"] == nil || pf["token_count_source"].(map[string]any)["server"].(float64) != rc {
		t.Errorf("perfleet section %v", pf)
	}
	if _, ok := doc["error_summary"].([]any); !ok {
		t.Error("error_summary must be a list")
	}
}

func checkCSV(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"Metric,avg,min,max,p1,p5,p10,p25,p50,p75,p90,p95,p99,std", "Time to First Token (ms),",
		"Inter Token Latency (ms),", "Metric,Value", "Request Throughput (requests/sec),", "Benchmark Duration (sec),"} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
}

func checkJSONL(t *testing.T, path string, want int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n, errs := 0, 0
	for sc.Scan() {
		var l struct {
			Metadata map[string]any `json:"metadata"`
			Metrics  map[string]struct {
				Value any    `json:"value"`
				Unit  string `json:"unit"`
			} `json:"metrics"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		n++
		if l.Metadata["benchmark_phase"] != "profiling" {
			t.Errorf("phase %v", l.Metadata["benchmark_phase"])
		}
		if l.Error != nil {
			errs++
			continue
		}
		if l.Metrics["time_to_first_token"].Unit != "ms" || l.Metrics["request_latency"].Value == nil {
			t.Errorf("record metrics %v", l.Metrics)
		}
	}
	if n != want || errs == 0 {
		t.Errorf("%s: %d lines (%d errors), want %d", path, n, errs, want)
	}
}

// TestRunCoordinatedOmissionHTTP is the coordinated-omission test over real
// HTTP: the server stalls every request for 1 s once, during an open-loop
// run capped at 2 in flight. The scheduled-send p99 shows the stall, the
// actual-send p99 does not.
func TestRunCoordinatedOmissionHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 4 s")
	}
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if el := time.Since(start); el > 1500*time.Millisecond && el < 2500*time.Millisecond {
			time.Sleep(2500*time.Millisecond - el)
		} else {
			time.Sleep(time.Millisecond)
		}
		fmt.Fprint(w, `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
	}))
	defer srv.Close()
	res := runSpec(t, `
benchmark: {type: aiperf}
parameters:
  request_rate: 200
  arrival_pattern: constant
  max_concurrency: 2
  benchmark_duration: 3.5
  streaming: false
  isl: 16
  osl: 1
`, srv.URL, t.TempDir())
	s := res[0].Summary
	sched, _ := s.Get(metrics.RequestLatency)
	actual, _ := s.Get(metrics.RequestLatencyActualSend)
	t.Logf("p99 from scheduled send %.1f ms, from actual send %.1f ms; verdict %s", sched.Stats.Pct(99), actual.Stats.Pct(99), s.Saturation.Verdict)
	if sched.Stats.Pct(99) < 500 || actual.Stats.Pct(99) > 100 {
		t.Fatalf("scheduled p99 %.1f (want ≥ 500), actual p99 %.1f (want < 100)", sched.Stats.Pct(99), actual.Stats.Pct(99))
	}
	if s.Saturation.Verdict != metrics.VerdictGeneratorBound || !s.Saturation.CapLimited {
		t.Fatalf("saturation %+v", s.Saturation)
	}
}
