// Command loadgen benchmarks perfleet's load-generation engine (the same
// executor, protocol client and metric sink as `perfleet-agent run`)
// against a plain HTTP server, so its figures can be put beside vegeta and
// wrk run on the same server:
//
//	go run ./bench/loadgen/server -addr 127.0.0.1:8080 [-delay 10ms] &
//	go run ./bench/loadgen -target http://127.0.0.1:8080 -mode closed -c 64 -duration 10s
//	go run ./bench/loadgen -target http://127.0.0.1:8080 -mode open -rate 5000 -duration 10s
//	go run ./bench/loadgen -target http://127.0.0.1:8080 -mode stream -c 20000 -duration 20s
//
// closed: maximum request rate with c workers (compare wrk -c, vegeta -rate 0 -max-workers c);
// open: constant-rate accuracy (p50 latency, schedule lag p99);
// stream: c concurrent SSE streams against the server's /v1/chat/completions, checking
// client token timestamps against the server's stamp_ns and reporting memory per 1,000 streams.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/pkg/metrics"
)

func main() {
	target := flag.String("target", "http://127.0.0.1:8080", "server base URL")
	mode := flag.String("mode", "closed", "closed | open | stream")
	conc := flag.Int("c", 64, "workers (closed) / streams (stream) / in-flight cap (open, 0 = none)")
	rate := flag.Float64("rate", 5000, "open-loop rate (req/s)")
	dur := flag.Duration("duration", 10*time.Second, "duration")
	tokens := flag.Int("tokens", 50, "tokens per stream (stream mode)")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile")
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			panic(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	switch *mode {
	case "stream":
		streams(*target, *conc, *tokens, *dur)
		return
	}
	client, err := protocol.NewOpenAI(protocol.Config{BaseURL: *target, Path: "/"}, false)
	if err != nil {
		panic(err)
	}
	req := &protocol.Request{Model: "m", Prompt: "hi"}
	doer := loadgen.DoerFunc(func(ctx context.Context, job loadgen.Job) *metrics.RequestRecord {
		rec := &metrics.RequestRecord{ScheduledNs: job.ScheduledNs}
		var out protocol.Output
		client.Do(ctx, req, rec, &out)
		return rec
	})
	acc := metrics.NewAccumulator("bench", nil, 0)
	ex := &loadgen.Executor{Doer: doer, Sink: loadgen.SinkFunc(func(r *metrics.RequestRecord) { acc.Add(r) })}
	st := loadgen.Stage{Mode: loadgen.ClosedLoop, Concurrency: *conc, Duration: *dur, Grace: 5 * time.Second}
	if *mode == "open" {
		st = loadgen.Stage{Mode: loadgen.OpenLoop, Rate: *rate, Pattern: loadgen.Constant, MaxConcurrency: *conc,
			Duration: *dur, Grace: 5 * time.Second}
	}
	var ru0 runtime.MemStats
	runtime.ReadMemStats(&ru0)
	res, err := ex.Run(context.Background(), st, metrics.PhaseProfiling)
	if err != nil {
		panic(err)
	}
	s := metrics.Summarize(acc.Total(), nil, nil)
	lat, _ := s.Get(metrics.RequestLatency)
	lag, _ := s.Get(metrics.ScheduleLag)
	thr, _ := s.Get(metrics.RequestThroughput)
	errs, _ := s.Get(metrics.ErrorRequestCount)
	fmt.Printf("perfleet %s: sent %d, ok %.0f req/s, errors %.0f, late %d\n", *mode, res.Sent, thr.Value, errs.Value, res.Late)
	if lat.Stats != nil {
		fmt.Printf("  latency (from scheduled send) p50 %.3f ms p90 %.3f ms p99 %.3f ms max %.3f ms\n",
			lat.Stats.Pct(50), lat.Stats.Pct(90), lat.Stats.Pct(99), lat.Stats.Max)
		fmt.Printf("  schedule lag p50 %.3f ms p99 %.3f ms\n", lag.Stats.Pct(50), lag.Stats.Pct(99))
	}
}

// streams opens c concurrent SSE streams and compares each chunk's client
// arrival time with the server's stamp_ns.
func streams(target string, c, tokens int, dur time.Duration) {
	var mu sync.Mutex
	var diffs []float64
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	cfg := protocol.Config{BaseURL: target, Streaming: true}
	cl := protocol.NewHTTPClient(cfg)
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	sampled := false
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				d, err := oneStream(cl, target, tokens)
				if err != nil {
					fmt.Fprintln(os.Stderr, "stream:", err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				mu.Lock()
				diffs = append(diffs, d...)
				if !sampled && len(diffs) > c*tokens/4 {
					sampled = true
					runtime.ReadMemStats(&m1)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Float64s(diffs)
	if len(diffs) == 0 {
		fmt.Println("no chunks")
		return
	}
	p := func(q float64) float64 { return diffs[int(q*float64(len(diffs)-1))] }
	fmt.Printf("streams %d: %d chunks; client arrival − server stamp: p50 %.3f ms p99 %.3f ms max %.3f ms\n",
		c, len(diffs), p(0.5), p(0.99), diffs[len(diffs)-1])
	fmt.Printf("heap in use with %d open streams: %.1f MiB (%.2f MiB per 1,000 streams); goroutines %d\n",
		c, float64(m1.HeapInuse-m0.HeapInuse)/(1<<20), float64(m1.HeapInuse-m0.HeapInuse)/(1<<20)/float64(c)*1000, runtime.NumGoroutine())
}

// oneStream reads one SSE stream with the engine's SSE reader and returns
// (client arrival − server stamp) per chunk, in ms.
func oneStream(cl *http.Client, target string, tokens int) ([]float64, error) {
	body := fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":%d,"stream":true}`, tokens)
	resp, err := cl.Post(target+protocol.PathChat, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := protocol.NewSSEReader(resp.Body, 0)
	var out []float64
	var ev struct {
		StampNs int64 `json:"stamp_ns"`
	}
	for {
		_, data, err := r.Next()
		now := time.Now().UnixNano()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		ev.StampNs = 0
		if json.Unmarshal(data, &ev) == nil && ev.StampNs > 0 {
			out = append(out, float64(now-ev.StampNs)/1e6)
		}
	}
}
