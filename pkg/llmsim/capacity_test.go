package llmsim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCapacity measures how many concurrent streams one server process
// sustains at a fixed ITL. It is skipped unless LLMSIM_CAPACITY=1:
//
//	LLMSIM_CAPACITY=1 LLMSIM_STREAMS=5000,10000,20000 \
//	  go test -run '^TestCapacity$' -v -timeout 30m ./pkg/llmsim/
//
// Optional: LLMSIM_ITL (default 20ms), LLMSIM_WINDOW (measurement window,
// default 15s), LLMSIM_CPUPROFILE (a file for the server's CPU profile
// over the window), LLMSIM_DEBUG=1 (server stats every second). The server
// runs in this process; a raw HTTP/1.1 client (TestCapacityClient) runs in
// a child process on the same machine and reports the SSE frame gaps it saw
// (p50/p99 against the target ITL), the per-stream mean gap and the token
// rate. This process reports how late its writes left compared with the
// schedule, its writes/s (fewer than tokens/s means tokens were coalesced),
// its heap + stack and RSS growth per 1,000 streams and its CPU use. The
// stream count is capped by the hard RLIMIT_NOFILE of each process; the
// machine's load average is printed because other work skews every figure.
func TestCapacity(t *testing.T) {
	if os.Getenv("LLMSIM_CAPACITY") != "1" {
		t.Skip("set LLMSIM_CAPACITY=1 to run the capacity harness")
	}
	itl, window := 20*time.Millisecond, 15*time.Second
	if d, err := time.ParseDuration(os.Getenv("LLMSIM_ITL")); err == nil {
		itl = d
	}
	if d, err := time.ParseDuration(os.Getenv("LLMSIM_WINDOW")); err == nil {
		window = d
	}
	levels := os.Getenv("LLMSIM_STREAMS")
	if levels == "" {
		levels = "5000,10000,20000"
	}
	limit := int(raiseNoFile())
	fmt.Printf("GOMAXPROCS=%d NumCPU=%d RLIMIT_NOFILE=%d ITL=%v window=%v\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), limit, itl, window)
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("bad LLMSIM_STREAMS entry %q", f)
		}
		if n > limit-64 {
			fmt.Printf("streams %d capped to %d by RLIMIT_NOFILE %d\n", n, limit-64, limit)
			n = limit - 64
		}
		runCapacityLevel(t, n, itl, window)
	}
}

// memSample is the server process's memory at one moment.
type memSample struct{ heapStack, rss uint64 }

// sampleMem reads heap + stack in use and the RSS; with gc it first runs a
// GC and returns free memory to the OS (only for the idle baseline: under
// load a forced GC can take longer than the window).
func sampleMem(gc bool) memSample {
	if gc {
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heapStack: ms.HeapInuse + ms.StackInuse}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			s.rss = pages * uint64(os.Getpagesize())
		}
	}
	return s
}

// runCapacityLevel serves n streams at the given ITL and prints one line.
func runCapacityLevel(t *testing.T, n int, itl, window time.Duration) {
	prof := mustProfile(t, "H100-80GB", 1).WithFixedITL(itl)
	prof.MaxNumSeqs, prof.KVCacheTokens, prof.MaxModelLen, prof.PrefillTokensPerSec = 1<<30, 1<<40, 1<<30, 1e9
	sim, err := New(Config{Profile: prof, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: sim.Handler()}
	go func() { _ = hs.Serve(ln) }()
	goroutines := runtime.NumGoroutine()
	defer func() {
		_ = sim.Close()
		_ = hs.Close()
		// Let the handlers of this level exit before the next one starts.
		for end := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > goroutines+16 && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
	}()
	base := sampleMem(true)

	// The schedule is fixed here and passed to the client, so neither side
	// depends on the other's timing: ramp, settle (memory sampled 1 s before
	// the window), then the measurement window.
	ramp := max(time.Second, time.Duration(n)*time.Second/2500)
	settle := max(4*time.Second, ramp)
	start := time.Now().Add(300 * time.Millisecond)
	wStart := start.Add(ramp + settle)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCapacityClient$", "-test.v", "-test.timeout=0")
	cmd.Env = append(os.Environ(), "LLMSIM_CAPACITY_CLIENT="+ln.Addr().String(),
		"LLMSIM_CLIENT_STREAMS="+strconv.Itoa(n), "LLMSIM_CLIENT_START="+strconv.FormatInt(start.UnixNano(), 10),
		"LLMSIM_CLIENT_RAMP="+ramp.String(), "LLMSIM_CLIENT_SETTLE="+settle.String(),
		"LLMSIM_CLIENT_WINDOW="+window.String(), "LLMSIM_CLIENT_ITL="+itl.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	resc := make(chan clientResult, 1)
	go func() {
		var res clientResult
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "LLMSIM_RESULT "); ok {
				_ = json.Unmarshal([]byte(line), &res)
			}
		}
		resc <- res
	}()
	if os.Getenv("LLMSIM_DEBUG") != "" {
		go func() {
			for range 20 {
				time.Sleep(time.Second)
				fmt.Printf("debug %s: %+v goroutines=%d\n", ln.Addr(), sim.Stats(), runtime.NumGoroutine())
			}
		}()
	}
	time.Sleep(time.Until(wStart.Add(-time.Second)))
	debugf("woke %v after the memory sample time", time.Since(wStart.Add(-time.Second)))
	mem := sampleMem(false)
	debugf("memory sampled, %v after", time.Since(wStart.Add(-time.Second)))
	running := sim.Stats().Running
	debugf("stats read, %v after", time.Since(wStart.Add(-time.Second)))
	time.Sleep(time.Until(wStart))
	if path := os.Getenv("LLMSIM_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer f.Close()
		}
	}
	load, _ := os.ReadFile("/proc/loadavg") // other work on the machine skews the figures
	t0, cpu0, gen0, late0 := time.Now(), cpuSeconds(), sim.Stats().GenerationTokens, sim.lateness.snapshot()
	time.Sleep(time.Until(wStart.Add(window)))
	t1, cpu1, gen1, late1 := time.Now(), cpuSeconds(), sim.Stats().GenerationTokens, sim.lateness.snapshot()
	pprof.StopCPUProfile()
	res := <-resc
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client process: %v", err)
	}
	el := t1.Sub(t0).Seconds()
	if late := t0.Sub(wStart); late > 500*time.Millisecond || el < window.Seconds()/2 {
		fmt.Printf("warning: window sampled %v late for %.1fs (machine overloaded); server figures are unreliable\n", late, el)
	}
	per1k := func(v, b uint64) float64 { return float64(int64(v)-int64(b)) / float64(n) * 1000 / (1 << 20) }
	fmt.Printf("loadavg at window start: %s", load)
	fmt.Printf("streams=%d connected=%d broken=%d running=%d target_itl=%v | frame gap p50=%.1fms p90=%.1fms p99=%.1fms p99.9=%.1fms | per-stream mean gap p50=%.1fms p99=%.1fms | server write lateness p50<=%s p99<=%s | tokens/s client=%.0f engine=%.0f target=%.0f, server writes/s=%.0f | cpu server=%.2f client=%.2f cores | mem/1k streams heap+stack=%.1fMiB rss=%.1fMiB\n",
		n, res.Connected, res.Broken, running, itl, res.GapP50, res.GapP90, res.GapP99, res.GapP999, res.MeanP50, res.MeanP99,
		latenessQuantile(late0, late1, 0.5), latenessQuantile(late0, late1, 0.99),
		res.TokensPerSec, float64(gen1-gen0)/el, res.TargetTokensPerSec, float64(late1.n-late0.n)/el, (cpu1-cpu0)/el, res.CPUCores, per1k(mem.heapStack, base.heapStack), per1k(mem.rss, base.rss))
	if res.Connected < n*99/100 {
		t.Errorf("only %d of %d streams connected", res.Connected, n)
	}
}

// debugf prints a line when LLMSIM_DEBUG is set.
func debugf(format string, args ...any) {
	if os.Getenv("LLMSIM_DEBUG") != "" {
		fmt.Printf("debug: "+format+"\n", args...)
	}
}

// latenessQuantile returns the upper bound of the bucket holding quantile q
// of the observations made between snapshots a and b.
func latenessQuantile(a, b histogram, q float64) string {
	var total uint64
	for i := range b.counts {
		total += b.counts[i] - a.counts[i]
	}
	rank, cum := uint64(q*float64(total)), uint64(0)
	for i := range b.counts {
		cum += b.counts[i] - a.counts[i]
		if cum > rank {
			if i == len(b.bounds) {
				return "+Inf"
			}
			return (time.Duration(b.bounds[i] * 1e9)).String()
		}
	}
	return "n/a"
}

// BenchmarkEngineTokens measures the scheduler's cost per released token
// with 20,000 streaming sequences at a 20 ms ITL (virtual time, no I/O).
func BenchmarkEngineTokens(b *testing.B) {
	prof := mustProfileB(b).WithFixedITL(20 * time.Millisecond)
	prof.MaxNumSeqs, prof.KVCacheTokens, prof.MaxModelLen = 1<<30, 1<<40, 1<<30
	e := newEngine(prof, int64(time.Millisecond))
	const streams = 20000
	for i := range streams {
		s := newSeq(10, 1<<30)
		s.stream, s.arrival = true, int64(i)*int64(time.Millisecond)/1000
		e.submit(s)
	}
	b.ReportAllocs()
	b.ResetTimer()
	now, released := int64(0), uint64(0)
	for released < uint64(b.N) {
		now += int64(time.Millisecond)
		before := e.m.generationTokens.Load()
		e.advance(now, 0)
		released += e.m.generationTokens.Load() - before
	}
}

// BenchmarkAppendToken measures building one chat chunk frame.
func BenchmarkAppendToken(b *testing.B) {
	p := &plan{id: "0123456789abcdef", outLen: 100}
	rs := &responder{plan: p, chat: true, model: []byte(`"llama-3.1-8b"`), created: 1700000000, timestamps: true}
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = rs.appendToken(buf[:0], p.tokens.nextToken(), "", 1700000000123456789)
	}
}

func mustProfileB(b *testing.B) Profile {
	p, err := ProfileFor("H100-80GB", 1)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkEngineWake is BenchmarkEngineTokens plus the handler side: each
// of 20,000 goroutines sleeps on its sequence and wakes for every token,
// as stream handlers do, but writes nothing. It is the scheduling cost per
// token without the socket.
func BenchmarkEngineWake(b *testing.B) {
	prof := mustProfileB(b).WithFixedITL(20 * time.Millisecond)
	prof.MaxNumSeqs, prof.KVCacheTokens, prof.MaxModelLen = 1<<30, 1<<40, 1<<30
	e := newEngine(prof, int64(time.Millisecond))
	const streams = 20000
	var woken atomic.Uint64
	var stopped atomic.Bool
	for i := range streams {
		s := newSeq(10, 1<<30)
		s.stream, s.arrival = true, int64(i)*int64(time.Millisecond)/1000
		e.submit(s)
		go func() { // the handler's loop, minus the write
			for {
				<-s.notify
				if stopped.Load() {
					return
				}
				woken.Add(1)
			}
		}()
	}
	defer func() { stopped.Store(true); e.wakeAll() }()
	b.ReportAllocs()
	b.ResetTimer()
	now, released := int64(0), uint64(0)
	for released < uint64(b.N) {
		now += int64(time.Millisecond)
		before := e.m.generationTokens.Load()
		e.advance(now, 0)
		released += e.m.generationTokens.Load() - before
		runtime.Gosched()
	}
	b.ReportMetric(float64(woken.Load())/float64(released), "wakes/token")
}
