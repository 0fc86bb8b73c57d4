package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/pkg/llmsim"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// Stream mode: c concurrent SSE streams through perfleet's OpenAI client
// (the path `perfleet-agent run` uses) against llmsim at a fixed ITL. Every
// chunk carries llmsim's send stamp (llmsim_sent_ns); the client's chunk
// timestamp minus that stamp is the client's timing error plus the
// loopback delivery. A process may hold at most `ulimit -n` sockets, so
// the streams are split over -procs client processes and -sims llmsim
// processes (this binary re-executed in modes sim and stream-worker).

// streamOpts are the flags of the stream modes.
type streamOpts struct {
	Targets    []string      // llmsim base URLs (empty: spawn -sims)
	Streams    int           // concurrent streams in all
	Tokens     int           // output tokens per stream
	ITL        time.Duration // llmsim's fixed inter-token latency
	Duration   time.Duration // streams are started until then, then run to their end
	Ramp       time.Duration // the streams' first starts are spread over this
	Sims       int
	Procs      int
	Src        int  // source addresses 127.0.0.1..Src per process (0: kernel's choice)
	NetHTTP    bool // use net/http instead of the lean client
	Settle     time.Duration
	MemProfile string // stream-worker: heap profile when memory is sampled
	JSON       bool   // stream: end with one JSON line of the figures
}

// histogram of (client − server stamp) in 10 µs buckets up to 2 s.
const (
	histRes     = 10 * time.Microsecond
	histBuckets = 200_000
)

// workerResult is what one stream-worker reports (JSON on stdout).
type workerResult struct {
	Chunks, Streams, Errors int64
	ErrorCodes              map[string]int64
	Negative                int64         // chunks stamped before the server's stamp
	Hist                    map[int]int64 // bucket → count
	Open                    int64         // streams open when memory was sampled
	HeapStackBytes          int64         // Δ(HeapInuse+StackInuse) since start
	GoSysBytes              int64         // Δ(Sys−HeapReleased)
	RSSBytes                int64         // Δ VmRSS
	Goroutines              int
	Elapsed                 float64 // seconds
	CPU                     float64 // user+sys seconds
}

// runSim serves llmsim with a fixed ITL and send stamps on every chunk
// until stdin closes or a signal arrives; it prints "ready URL".
func runSim(listen string, itl time.Duration) {
	prof, err := llmsim.ProfileFor("H100-80GB", 1)
	must(err)
	prof = prof.WithFixedITL(itl)
	prof.PrefillTokensPerSec = 1e9
	prof.MaxNumSeqs = 10_000_000
	prof.KVCacheTokens = 1 << 40
	sim, err := llmsim.New(llmsim.Config{Profile: prof, Timestamps: true})
	must(err)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", listen)
	must(err)
	must(sim.Start(ctx))
	hs := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	fmt.Printf("ready http://%s\n", ln.Addr())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	<-ctx.Done()
	_ = sim.Close()
	_ = hs.Close()
}

// runStreamWorker runs o.Streams streams against o.Targets (round-robin)
// and prints a workerResult.
func runStreamWorker(o streamOpts) {
	var (
		hist     = make([]atomic.Int64, histBuckets+1)
		chunks   atomic.Int64
		negative atomic.Int64
		open     atomic.Int64
		streams  atomic.Int64
		errs     atomic.Int64
		codesMu  sync.Mutex
		codes    = map[string]int64{}
	)
	key := []byte(`"llmsim_sent_ns":`)
	onChunk := func(data []byte, ns int64) {
		i := bytes.Index(data, key)
		if i < 0 {
			return
		}
		var sent int64
		for _, c := range data[i+len(key):] {
			if c < '0' || c > '9' {
				break
			}
			sent = sent*10 + int64(c-'0')
		}
		d := ns - sent
		chunks.Add(1)
		if d < 0 {
			negative.Add(1)
			d = 0
		}
		b := min(d/int64(histRes), histBuckets)
		hist[b].Add(1)
	}
	var src []string
	for i := 1; i <= o.Src; i++ {
		src = append(src, fmt.Sprintf("127.0.0.%d", i))
	}
	clients := make([]*protocol.OpenAI, len(o.Targets))
	for i, t := range o.Targets {
		c, err := protocol.NewOpenAI(protocol.Config{BaseURL: t, Streaming: true, NoLeanClient: o.NetHTTP,
			Headers: map[string]string{"x-llmsim-timestamps": "1"}, LocalAddrs: src, OnChunk: onChunk,
			ExtraInputs: map[string]any{"ignore_eos": true}}, true)
		must(err)
		clients[i] = c
	}
	req := &protocol.Request{Model: llmsim.DefaultModel, Messages: []protocol.Message{{Role: "user", Content: "hi"}}, MaxTokens: o.Tokens}

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0 := rss(os.Getpid())
	cpu0 := cpuTime()
	start := time.Now()
	stop := start.Add(o.Duration)
	var wg sync.WaitGroup
	for i := 0; i < o.Streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := clients[i%len(clients)]
			time.Sleep(time.Duration(int64(o.Ramp) * int64(i) / int64(o.Streams)))
			var out protocol.Output
			for time.Now().Before(stop) {
				rec := &metrics.RequestRecord{}
				out.Reset()
				open.Add(1)
				c.Do(context.Background(), req, rec, &out)
				open.Add(-1)
				streams.Add(1)
				if rec.Error != "" {
					errs.Add(1)
					codesMu.Lock()
					codes[rec.Error]++
					if codes[rec.Error] <= 3 {
						fmt.Fprintln(os.Stderr, "stream error:", rec.Error, rec.ErrorMsg)
					}
					codesMu.Unlock()
					time.Sleep(100 * time.Millisecond)
				}
			}
		}(i)
	}
	// Sample memory once the ramp is over and the streams have settled.
	time.Sleep(o.Ramp + o.Settle)
	runtime.GC() // live memory, not garbage awaiting collection
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	if o.MemProfile != "" {
		f, err := os.Create(o.MemProfile)
		must(err)
		must(pprof.WriteHeapProfile(f))
		f.Close()
	}
	fmt.Fprintf(os.Stderr, "worker: open %d, heap in use +%.1f MiB, stacks +%.1f MiB\n", open.Load(),
		float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/(1<<20), float64(int64(m1.StackInuse)-int64(m0.StackInuse))/(1<<20))
	r := workerResult{Open: open.Load(), RSSBytes: rss(os.Getpid()) - rss0, Goroutines: runtime.NumGoroutine(),
		HeapStackBytes: int64(m1.HeapInuse+m1.StackInuse) - int64(m0.HeapInuse+m0.StackInuse),
		GoSysBytes:     int64(m1.Sys-m1.HeapReleased) - int64(m0.Sys-m0.HeapReleased)}
	wg.Wait()
	r.Elapsed = time.Since(start).Seconds()
	r.CPU = cpuTime() - cpu0
	r.Chunks, r.Negative, r.Streams, r.Errors, r.ErrorCodes = chunks.Load(), negative.Load(), streams.Load(), errs.Load(), codes
	r.Hist = map[int]int64{}
	for i := range hist {
		if n := hist[i].Load(); n > 0 {
			r.Hist[i] = n
		}
	}
	must(json.NewEncoder(os.Stdout).Encode(r))
}

// runStreams spawns the llmsim and client processes, merges their
// results and prints them.
func runStreams(o streamOpts) {
	self, err := os.Executable()
	must(err)
	var sims []*exec.Cmd
	targets := o.Targets
	if len(targets) == 0 {
		for i := 0; i < o.Sims; i++ {
			cmd := exec.Command(self, "-mode", "sim", "-listen", "127.0.0.1:0", "-itl", o.ITL.String())
			cmd.Stderr = os.Stderr
			in, err := cmd.StdinPipe()
			must(err)
			outp, err := cmd.StdoutPipe()
			must(err)
			must(cmd.Start())
			line, err := bufio.NewReader(outp).ReadString('\n')
			must(err)
			targets = append(targets, strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
			sims = append(sims, cmd)
			defer in.Close()
		}
	}
	fmt.Printf("stream bench: %d streams × %d tokens at ITL %v over %d client process(es) and %d llmsim process(es) %v, source addresses %d, transport %s\n",
		o.Streams, o.Tokens, o.ITL, o.Procs, len(targets), targets, max(o.Src, 1), map[bool]string{false: "lean", true: "net/http"}[o.NetHTTP])
	type proc struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	procs := make([]*proc, o.Procs)
	for i := range procs {
		n := o.Streams / o.Procs
		if i < o.Streams%o.Procs {
			n++
		}
		// Worker i talks to the targets i, i+procs, … (all of them when
		// there are fewer targets than workers).
		var tg []string
		for j := i % len(targets); j < len(targets); j += o.Procs {
			tg = append(tg, targets[j])
		}
		args := []string{"-mode", "stream-worker", "-target", strings.Join(tg, ","), "-c", strconv.Itoa(n),
			"-tokens", strconv.Itoa(o.Tokens), "-duration", o.Duration.String(), "-ramp", o.Ramp.String(),
			"-settle", o.Settle.String(), "-src", strconv.Itoa(o.Src), fmt.Sprintf("-nethttp=%v", o.NetHTTP)}
		p := &proc{cmd: exec.Command(self, args...)}
		p.cmd.Stdout, p.cmd.Stderr = &p.out, os.Stderr
		must(p.cmd.Start())
		procs[i] = p
	}
	// Sample the simulators' memory when the workers sample theirs.
	simRSS := make([]int64, len(sims))
	for i, s := range sims {
		simRSS[i] = rss(s.Process.Pid)
	}
	time.Sleep(o.Ramp + o.Settle)
	for i, s := range sims {
		simRSS[i] = rss(s.Process.Pid) - simRSS[i]
	}
	var all workerResult
	all.Hist, all.ErrorCodes = map[int]int64{}, map[string]int64{}
	for _, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		var r workerResult
		must(json.Unmarshal(p.out.Bytes(), &r))
		all.Chunks += r.Chunks
		all.Streams += r.Streams
		all.Errors += r.Errors
		all.Negative += r.Negative
		all.Open += r.Open
		all.HeapStackBytes += r.HeapStackBytes
		all.GoSysBytes += r.GoSysBytes
		all.RSSBytes += r.RSSBytes
		all.Goroutines += r.Goroutines
		all.Elapsed = max(all.Elapsed, r.Elapsed)
		all.CPU += r.CPU
		for k, v := range r.Hist {
			all.Hist[k] += v
		}
		for k, v := range r.ErrorCodes {
			all.ErrorCodes[k] += v
		}
	}
	simCPU := 0.0
	var late string
	if len(sims) > 0 {
		late = simLateness(targets)
	}
	for _, s := range sims {
		_ = s.Process.Signal(os.Interrupt)
		_ = s.Wait()
		if s.ProcessState != nil {
			simCPU += (s.ProcessState.UserTime() + s.ProcessState.SystemTime()).Seconds()
		}
	}
	pct := histPercentiles(all.Hist, all.Chunks, 50, 90, 99, 99.9, 100)
	expected := float64(o.Streams) / o.ITL.Seconds()
	fmt.Printf("  streams done %d, errors %d %v, token chunks %d (%.0f/s over %.1f s; ideal at full concurrency %.0f/s)\n",
		all.Streams, all.Errors, all.ErrorCodes, all.Chunks, float64(all.Chunks)/all.Elapsed, all.Elapsed, expected)
	fmt.Printf("  client chunk timestamp − llmsim send stamp: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  (negative %d)\n",
		pct[0], pct[1], pct[2], pct[3], pct[4], all.Negative)
	if late != "" {
		fmt.Printf("  llmsim write lateness vs schedule (its /metrics): %s\n", late)
	}
	per := func(b int64) float64 { return float64(b) / (1 << 20) / float64(max(all.Open, 1)) * 1000 }
	fmt.Printf("  client memory with %d open streams: RSS +%.1f MiB (%.1f MiB per 1,000), Go heap+stacks +%.1f MiB (%.1f MiB per 1,000), Go sys +%.1f MiB; goroutines %d\n",
		all.Open, float64(all.RSSBytes)/(1<<20), per(all.RSSBytes), float64(all.HeapStackBytes)/(1<<20), per(all.HeapStackBytes),
		float64(all.GoSysBytes)/(1<<20), all.Goroutines)
	var srss int64
	for _, v := range simRSS {
		srss += v
	}
	if len(sims) > 0 {
		fmt.Printf("  llmsim memory: RSS +%.1f MiB (%.1f MiB per 1,000 streams)\n", float64(srss)/(1<<20), per(srss))
	}
	fmt.Printf("  CPU: clients %.1f s, llmsim %.1f s over %.1f s wall (%.2f cores busy; nproc %d)\n",
		all.CPU, simCPU, all.Elapsed, (all.CPU+simCPU)/all.Elapsed, runtime.NumCPU())
	if o.JSON {
		printJSON(map[string]any{"mode": "stream", "streams": o.Streams, "itl_ms": o.ITL.Seconds() * 1000,
			"streams_done": all.Streams, "errors": all.Errors, "chunks": all.Chunks,
			"chunks_per_s": float64(all.Chunks) / all.Elapsed, "ideal_chunks_per_s": expected,
			"stamp_err_p50_ms": pct[0], "stamp_err_p90_ms": pct[1], "stamp_err_p99_ms": pct[2],
			"open": all.Open, "client_heap_stack_mib_per_1k": per(all.HeapStackBytes),
			"client_rss_mib_per_1k": per(all.RSSBytes), "sim_rss_mib_per_1k": per(srss),
			"client_cpu_s": all.CPU, "sim_cpu_s": simCPU, "elapsed_s": all.Elapsed})
	}
}

// printJSON prints v as one JSON line: the last line of the output, which
// bench/harness reads.
func printJSON(v any) {
	b, err := json.Marshal(v)
	must(err)
	fmt.Println(string(b))
}

// histPercentiles returns the given percentiles (ms) of a sparse 10 µs
// histogram; a bucket reports its upper edge.
func histPercentiles(h map[int]int64, total int64, ps ...float64) []float64 {
	keys := make([]int, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	out := make([]float64, len(ps))
	for i, p := range ps {
		rank := int64(float64(total)*p/100 + 0.5)
		rank = max(rank, 1)
		var seen int64
		for _, k := range keys {
			seen += h[k]
			if seen >= rank {
				out[i] = float64(k+1) * float64(histRes) / 1e6
				break
			}
		}
	}
	return out
}

// simLateness summarizes llmsim_stream_write_lateness_seconds over all
// targets as "≤0.5ms 97.1%, ≤1ms …".
func simLateness(targets []string) string {
	le := map[string]float64{}
	var count float64
	var order []string
	for _, t := range targets {
		resp, err := http.Get(t + "/metrics")
		if err != nil {
			return err.Error()
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "llmsim_stream_write_lateness_seconds_") {
				continue
			}
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			switch {
			case strings.Contains(line, "_bucket"):
				i := strings.Index(line, `le="`)
				j := strings.Index(line[i+4:], `"`)
				b := line[i+4 : i+4+j]
				if _, ok := le[b]; !ok {
					order = append(order, b)
				}
				le[b] += v
			case strings.Contains(line, "_count"):
				count += v
			}
		}
		resp.Body.Close()
	}
	if count == 0 {
		return "no samples"
	}
	var parts []string
	for _, b := range order {
		if b == "0.0005" || b == "0.001" || b == "0.002" || b == "0.005" || b == "0.02" || b == "0.1" {
			parts = append(parts, fmt.Sprintf("≤%sms %.1f%%", msLabel(b), 100*le[b]/count))
		}
	}
	return strings.Join(parts, ", ")
}

func msLabel(s string) string {
	v, _ := strconv.ParseFloat(s, 64)
	return strconv.FormatFloat(v*1000, 'g', -1, 64)
}

// rss returns a process's resident set size in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime returns this process's user+system CPU seconds.
func cpuTime() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
