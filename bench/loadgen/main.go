// Command loadgen benchmarks perfleet's load-generation engine (the same
// executor, protocol client and metric sink as `perfleet-agent run`)
// against a plain HTTP server, so its figures can be put beside vegeta and
// wrk run on the same server:
//
//	go run ./bench/loadgen/server -addr 127.0.0.1:8080 [-delay 10ms] &
//	go run ./bench/loadgen -target http://127.0.0.1:8080 -mode closed -c 64 -duration 10s
//	go run ./bench/loadgen -target http://127.0.0.1:8080 -mode open -rate 5000 -duration 10s
//	go build -o /tmp/loadgen ./bench/loadgen && /tmp/loadgen -mode stream -c 20000 -itl 20ms -tokens 250 -sims 2 -procs 2 -duration 30s
//
// closed: maximum request rate with c workers (compare wrk -c, vegeta -rate 0 -max-workers c);
// open: constant-rate accuracy (p50 latency, schedule lag p99);
// stream: c concurrent SSE streams through the OpenAI client against llmsim
// (spawned, -sims processes, or -target URLs of `perfleet-agent simulate
// --timestamps`) at a fixed ITL, checking each client chunk timestamp
// against llmsim's send stamp and reporting memory per 1,000 open streams
// (see stream.go).
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/pkg/metrics"
)

func main() {
	target := flag.String("target", "http://127.0.0.1:8080", "server base URL")
	mode := flag.String("mode", "closed", "closed | open | sse | sse-raw (reference reader) | stream | sim (llmsim server) | stream-worker (internal)")
	path := flag.String("path", "", "request path (closed, open: /; sse: /v1/chat/completions)")
	asJSON := flag.Bool("json", false, "end with one JSON line of the figures (for make bench)")
	conc := flag.Int("c", 64, "workers (closed) / streams (stream) / in-flight cap (open, 0 = none)")
	rate := flag.Float64("rate", 5000, "open-loop rate (req/s)")
	dur := flag.Duration("duration", 10*time.Second, "duration")
	tokens := flag.Int("tokens", 250, "output tokens per stream (stream mode)")
	itl := flag.Duration("itl", 20*time.Millisecond, "llmsim inter-token latency (stream, sim)")
	listen := flag.String("listen", "127.0.0.1:0", "listen address (sim)")
	ramp := flag.Duration("ramp", 5*time.Second, "spread the streams' starts over this (stream)")
	settle := flag.Duration("settle", 3*time.Second, "after the ramp, wait this long before sampling memory (stream)")
	sims := flag.Int("sims", 1, "llmsim processes to spawn when -target is not set (stream)")
	procs := flag.Int("procs", 1, "client processes (stream; one process holds at most `ulimit -n` sockets)")
	src := flag.Int("src", 0, "spread connections over source addresses 127.0.0.1..N (stream; 0: kernel's choice)")
	nethttp := flag.Bool("nethttp", false, "use net/http instead of perfleet's lean HTTP/1.1 client")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile")
	memprof := flag.String("memprofile", "", "stream-worker: write a heap profile when memory is sampled")
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			panic(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	rateSet := false
	flag.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "rate" })
	targetSet := false
	flag.Visit(func(f *flag.Flag) { targetSet = targetSet || f.Name == "target" })
	so := streamOpts{Streams: *conc, Tokens: *tokens, ITL: *itl, Duration: *dur, Ramp: *ramp, Settle: *settle,
		Sims: *sims, Procs: max(*procs, 1), Src: *src, NetHTTP: *nethttp, MemProfile: *memprof, JSON: *asJSON}
	if targetSet {
		so.Targets = strings.Split(*target, ",")
	}
	switch *mode {
	case "sim":
		runSim(*listen, *itl)
		return
	case "stream":
		runStreams(so)
		return
	case "stream-worker":
		runStreamWorker(so)
		return
	case "sse-raw":
		if !rateSet {
			*rate = 0
		}
		runSSERaw(*target, cmp.Or(*path, "/v1/chat/completions"), *conc, *tokens, *rate, *dur, *asJSON)
		return
	}
	cfg := protocol.Config{BaseURL: *target, Path: "/", NoLeanClient: *nethttp}
	req := &protocol.Request{Model: "m", Prompt: "hi"}
	if *mode == "sse" {
		// Closed loop over c streams against any OpenAI chat endpoint that
		// streams (e.g. nginx's echo module with known sleeps): TTFT, ITL
		// and E2E as perfleet's metrics compute them.
		cfg.Path, cfg.Streaming = "/v1/chat/completions", true
		req = &protocol.Request{Model: "m", Messages: []protocol.Message{{Role: "user", Content: "hi"}}, MaxTokens: *tokens}
	}
	if *path != "" {
		cfg.Path = *path
	}
	client, err := protocol.NewOpenAI(cfg, *mode == "sse")
	if err != nil {
		panic(err)
	}
	doer := loadgen.DoerFunc(func(ctx context.Context, job loadgen.Job) *metrics.RequestRecord {
		rec := &metrics.RequestRecord{ScheduledNs: job.ScheduledNs}
		var out protocol.Output
		client.Do(ctx, req, rec, &out)
		if out.Usage != nil { // as the agent's doer does: the server's count
			rec.OutputTokens = out.Usage.CompletionTokens
		}
		return rec
	})
	acc := metrics.NewAccumulator("bench", nil, 0)
	ex := &loadgen.Executor{Doer: doer, Sink: loadgen.SinkFunc(func(r *metrics.RequestRecord) { acc.Add(r) })}
	st := loadgen.Stage{Mode: loadgen.ClosedLoop, Concurrency: *conc, Duration: *dur, Grace: 5 * time.Second}
	if *mode == "open" || (*mode == "sse" && rateSet) { // sse: open loop when -rate is given
		st = loadgen.Stage{Mode: loadgen.OpenLoop, Rate: *rate, Pattern: loadgen.Constant, MaxConcurrency: *conc,
			Duration: *dur, Grace: 5 * time.Second}
	}
	cpu0 := cpuTime()
	res, err := ex.Run(context.Background(), st, metrics.PhaseProfiling)
	cpu := cpuTime() - cpu0
	if err != nil {
		panic(err)
	}
	s := metrics.Summarize(acc.Total(), nil, nil)
	lat, _ := s.Get(metrics.RequestLatency)
	lag, _ := s.Get(metrics.ScheduleLag)
	thr, _ := s.Get(metrics.RequestThroughput)
	errs, _ := s.Get(metrics.ErrorRequestCount)
	cnt, _ := s.Get(metrics.RequestCount)
	fmt.Printf("perfleet %s: sent %d, ok %.0f req/s, errors %.0f, late %d, CPU %.1f s\n", *mode, res.Sent, thr.Value, errs.Value, res.Late, cpu)
	out := map[string]any{"mode": *mode, "sent": res.Sent, "ok": cnt.Value, "rate": thr.Value, "errors": errs.Value,
		"late": res.Late, "cpu_s": cpu}
	if lat.Stats != nil {
		fmt.Printf("  latency (from scheduled send) p50 %.3f ms p90 %.3f ms p99 %.3f ms max %.3f ms\n",
			lat.Stats.Pct(50), lat.Stats.Pct(90), lat.Stats.Pct(99), lat.Stats.Max)
		fmt.Printf("  schedule lag p50 %.3f ms p99 %.3f ms\n", lag.Stats.Pct(50), lag.Stats.Pct(99))
		out["p50_ms"], out["p90_ms"], out["p99_ms"], out["max_ms"] = lat.Stats.Pct(50), lat.Stats.Pct(90), lat.Stats.Pct(99), lat.Stats.Max
		out["lag_p99_ms"] = lag.Stats.Pct(99)
		if as, ok := s.Get(metrics.RequestLatencyActualSend); ok && as.Stats != nil {
			out["actual_send_p50_ms"], out["actual_send_p99_ms"] = as.Stats.Pct(50), as.Stats.Pct(99)
		}
	}
	if *mode == "sse" {
		for _, m := range []string{metrics.TimeToFirstToken, metrics.InterTokenLatency} {
			if v, ok := s.Get(m); ok && v.Stats != nil {
				fmt.Printf("  %s p50 %.3f ms p99 %.3f ms\n", m, v.Stats.Pct(50), v.Stats.Pct(99))
				out[m+"_p50_ms"], out[m+"_p99_ms"] = v.Stats.Pct(50), v.Stats.Pct(99)
			}
		}
	}
	if *asJSON {
		printJSON(out)
	}
}
