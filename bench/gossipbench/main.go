// Command gossipbench measures perfleet's gossip membership (pkg/gossip over
// hashicorp/memberlist) with many simulated members in one process, over
// memberlist's in-memory mock network (no sockets):
//
//  1. time to converge: from the first join until every member sees all N
//     members alive, members joining through a few seeds as agents join
//     the coordinators;
//  2. time to detect a kill: one member is taken off the network and shut
//     down without leaving; the time until the first, the median, the 99th
//     percentile and the last surviving member marks it failed;
//  3. Go heap after GC, goroutines and CPU seconds for N members.
//
// Usage: go run ./bench/gossipbench [-members 1000] [-profile lan|test] [-json]
//
// With -json the last stdout line is one JSON object with the figures.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// result is the JSON line the harness reads.
type result struct {
	Members      int     `json:"members"`
	Profile      string  `json:"profile"`
	ConvergeS    float64 `json:"converge_s"`
	DetectFirstS float64 `json:"detect_first_s"`
	DetectAllS   float64 `json:"detect_all_s"`
	DetectP50S   float64 `json:"detect_p50_s"`
	DetectP99S   float64 `json:"detect_p99_s"`
	HeapMiB      float64 `json:"heap_mib"`
	Goroutines   int     `json:"goroutines"`
	CPUS         float64 `json:"cpu_s"`
	Note         string  `json:"note"`
}

type options struct {
	members      int
	profile      string
	seeds        int
	joinParallel int
	settle       time.Duration
	timeout      time.Duration
	poll         time.Duration
	inbox        int
	jsonOut      bool
	cpuProfile   string
	memProfile   string
	gogc         int
	memLimitGiB  float64
}

const namePrefix = "member-"

func nodeName(i int) string { return fmt.Sprintf("%s%05d", namePrefix, i) }

func nodeIndex(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, namePrefix))
	if err != nil || !strings.HasPrefix(name, namePrefix) {
		return -1
	}
	return i
}

// observer is what one member knows, kept up to date from its pool's
// OnChange callback so that sampling a member's view costs O(1).
type observer struct {
	b     *bench
	mu    sync.Mutex
	seen  []bool // member i is alive (or suspect) in this member's view
	alive atomic.Int32
	// detected is when this member marked the killed member failed
	// (UnixNano; 0 while not).
	detected atomic.Int64
}

type bench struct {
	opt            options
	victim         int
	falseFailures  atomic.Int64 // a member other than the killed one marked failed
	falseNames     sync.Map
	observers      []*observer
	transports     []*simTransport
	pools          []*gossip.Pool
	net            *simNet
	stop           chan struct{}
	out            *os.File
	progressPeriod time.Duration
	joined         atomic.Int64
}

func (o *observer) onChange(m gossip.Member) {
	i := nodeIndex(m.Name)
	if i < 0 || i >= len(o.seen) {
		return
	}
	alive := m.State == gossip.StateAlive || m.State == gossip.StateSuspect
	o.mu.Lock()
	if alive != o.seen[i] {
		o.seen[i] = alive
		if alive {
			o.alive.Add(1)
		} else {
			o.alive.Add(-1)
		}
	}
	o.mu.Unlock()
	if m.State == gossip.StateFailed {
		if i == o.b.victim {
			o.detected.CompareAndSwap(0, m.Since.UnixNano())
		} else {
			o.b.falseFailures.Add(1)
			o.b.falseNames.Store(m.Name, true)
		}
	}
}

func main() {
	var opt options
	flag.IntVar(&opt.members, "members", 1000, "number of simulated members")
	flag.StringVar(&opt.profile, "profile", "lan", "gossip timings: lan (production: memberlist LAN, SuspicionMult 3) or test (pkg/gossip's Fast profile)")
	flag.IntVar(&opt.seeds, "seeds", 3, "members that act as coordinators; every other member joins through all of them")
	flag.IntVar(&opt.joinParallel, "join-parallel", 16, "members joining at once")
	flag.DurationVar(&opt.settle, "settle", 3*time.Second, "steady-state wait after convergence, before the kill")
	flag.DurationVar(&opt.timeout, "timeout", 300*time.Second, "bound on each phase (convergence, detection)")
	flag.DurationVar(&opt.poll, "poll", 100*time.Millisecond, "how often every member's view is sampled")
	flag.IntVar(&opt.inbox, "inbox", 2048, "packets each member's inbox holds before dropping (its socket buffer)")
	flag.BoolVar(&opt.jsonOut, "json", false, "print the figures as one JSON object on the last stdout line")
	flag.StringVar(&opt.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&opt.memProfile, "memprofile", "", "write a heap profile at steady state (after convergence) to this file")
	flag.IntVar(&opt.gogc, "gogc", 400, "GC percent for this process, unless GOGC is set (all members share one heap here; each agent has its own in production)")
	flag.Float64Var(&opt.memLimitGiB, "memlimit-gib", 12, "soft Go memory limit in GiB (0: none), unless GOMEMLIMIT is set")
	flag.Parse()

	res := result{Members: opt.members, Profile: opt.profile}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(opt.gogc)
	}
	gcPercent = debug.SetGCPercent(100)
	debug.SetGCPercent(gcPercent)
	if os.Getenv("GOMEMLIMIT") == "" && opt.memLimitGiB > 0 {
		debug.SetMemoryLimit(int64(opt.memLimitGiB * (1 << 30)))
	}
	err := validate(&opt)
	if err == nil {
		// Every phase is bounded by -timeout; this catches anything that
		// hangs outside those bounds (a join, a shutdown).
		limit := 3*opt.timeout + time.Minute
		time.AfterFunc(limit, func() {
			fail(opt, res, fmt.Errorf("watchdog: the run exceeded %s", limit))
		})
		err = startProfile(opt.cpuProfile)
	}
	if err == nil {
		err = run(opt, &res)
		pprof.StopCPUProfile()
	}
	if err != nil {
		fail(opt, res, err)
	}
	if opt.jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	}
	os.Exit(0)
}

var (
	failOnce  sync.Once
	gcPercent int // in effect
)

func fail(opt options, res result, err error) {
	failOnce.Do(func() {
		fmt.Fprintf(os.Stderr, "gossipbench: FAILED: %v\n", err)
		if opt.jsonOut {
			res.Note = "FAILED: " + err.Error()
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
		}
		os.Exit(1)
	})
}

func startProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f)
}

func validate(opt *options) error {
	switch {
	case opt.profile != "lan" && opt.profile != "test":
		return fmt.Errorf("-profile %q: want lan or test", opt.profile)
	case opt.members < 3:
		return fmt.Errorf("-members %d: want at least 3", opt.members)
	case opt.members > 30000:
		// The mock network numbers ports from 1 and memberlist parses
		// them as int16.
		return fmt.Errorf("-members %d: the mock network holds at most 30000", opt.members)
	case opt.seeds < 1 || opt.seeds >= opt.members-1:
		return fmt.Errorf("-seeds %d: want 1 to members-2", opt.seeds)
	case opt.joinParallel < 1:
		return fmt.Errorf("-join-parallel must be at least 1")
	case opt.timeout <= 0 || opt.poll <= 0 || opt.settle < 0 || opt.inbox < 1:
		return fmt.Errorf("-timeout and -poll must be positive, -settle not negative, -inbox at least 1")
	}
	return nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func secs(d time.Duration) float64 { return round3(d.Seconds()) }

func (b *bench) printf(format string, args ...any) {
	fmt.Fprintf(b.out, format+"\n", args...)
}

func run(opt options, res *result) error {
	n := opt.members
	b := &bench{opt: opt, victim: n - 1, net: newSimNet(opt.inbox), stop: make(chan struct{}), out: os.Stdout}
	b.progressPeriod = 2 * time.Second
	defer close(b.stop)
	fast := opt.profile == "test"
	timings := "memberlist LAN config with perfleet's SuspicionMult 3 (probe 1 s, probe timeout 500 ms, gossip 200 ms to 3, push/pull 30 s scaled)"
	if fast {
		timings = "pkg/gossip Fast (test) config (probe 200 ms, probe timeout 100 ms, gossip 20 ms, SuspicionMult 2, push/pull 2 s scaled)"
	}
	b.printf("gossipbench: %d members, profile %s: %s", n, opt.profile, timings)
	b.printf("  %d seed(s) acting as coordinators; members join through all of them, %d at a time; GOMAXPROCS %d, %d CPUs; GC percent %d, memory limit %.1f GiB",
		opt.seeds, opt.joinParallel, runtime.GOMAXPROCS(0), runtime.NumCPU(), debug.SetGCPercent(-1), float64(debug.SetMemoryLimit(-1))/(1<<30))
	debug.SetGCPercent(gcPercent) // SetGCPercent(-1) above read it (and turned GC off)

	cpu0 := cpuSeconds()
	wall0 := time.Now()

	// All transports first: the mock's tables are not safe to grow while
	// nodes run.
	b.transports = make([]*simTransport, n)
	for i := range b.transports {
		t, err := b.net.transport(nodeName(i))
		if err != nil {
			return err
		}
		b.transports[i] = t
	}
	b.observers = make([]*observer, n)
	b.pools = make([]*gossip.Pool, n)
	for i := range b.pools {
		o := &observer{b: b, seen: make([]bool, n)}
		b.observers[i] = o
		meta := &pb.GossipMeta{Role: gossip.RoleAgent, Id: nodeName(i), Version: "bench", InstanceType: "p5.48xlarge", Region: "us-east-1",
			Gpus: &pb.GPUSummary{Count: 8, Model: "NVIDIA H100 80GB HBM3", MemoryMib: 81559, Source: "simulated"}}
		if i < opt.seeds {
			meta = &pb.GossipMeta{Role: gossip.RoleServer, Id: nodeName(i), Version: "bench", GrpcAddr: fmt.Sprintf("10.0.0.%d:7070", i+1), Region: "us-east-1"}
		}
		p, err := gossip.Start(gossip.Config{Name: nodeName(i), BindAddr: "127.0.0.1:0", Meta: meta, Fast: fast,
			Transport: b.transports[i], OnChange: o.onChange})
		if err != nil {
			return fmt.Errorf("start member %d: %w", i, err)
		}
		b.pools[i] = p
	}
	cpuStart := cpuSeconds()
	b.printf("started %d members in %s (%.2f CPU s)", n, time.Since(wall0).Round(time.Millisecond), cpuStart-cpu0)

	// Phase 1: join and converge.
	began := time.Now()
	joinErr := make(chan error, 1)
	var joinedNs atomic.Int64
	go func() {
		err := b.join()
		joinedNs.Store(int64(time.Since(began)))
		joinErr <- err
	}()
	conv, err := b.converge(began, joinErr)
	if err != nil {
		return err
	}
	joined := time.Duration(joinedNs.Load())
	cpuConv := cpuSeconds()
	res.ConvergeS = secs(conv)
	b.printf("converged: every member sees all %d alive %s after the first join (joins took %s; %.2f CPU s)",
		n, conv.Round(time.Millisecond), joined.Round(time.Millisecond), cpuConv-cpuStart)

	// Steady state.
	if opt.settle > 0 {
		time.Sleep(opt.settle)
	}
	cpuSettle := cpuSeconds()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapMiB = round3(float64(ms.HeapAlloc) / (1 << 20))
	res.Goroutines = runtime.NumGoroutine()
	if opt.memProfile != "" {
		if f, err := os.Create(opt.memProfile); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	b.printf("steady state: heap after GC %.1f MiB (%.1f KiB per member), %d goroutines (%.1f per member), sys %.0f MiB",
		res.HeapMiB, res.HeapMiB*1024/float64(n), res.Goroutines, float64(res.Goroutines)/float64(n), float64(ms.Sys)/(1<<20))
	if opt.settle > 0 {
		b.printf("  CPU over the %s settle: %.2f cores", opt.settle, (cpuSettle-cpuConv)/opt.settle.Seconds())
	}
	falseBefore := b.falseFailures.Load()

	// Phase 2: kill one member and time its detection.
	det, err := b.killAndDetect()
	if err != nil {
		return err
	}
	cpuEnd := cpuSeconds()
	res.DetectFirstS, res.DetectP50S, res.DetectP99S, res.DetectAllS = det.first, det.p50, det.p99, det.all
	res.CPUS = round3(cpuEnd - cpu0)
	b.printf("kill detected (marked failed): first %.3f s, p50 %.3f s, p99 %.3f s, all %d survivors %.3f s (%.2f CPU s)",
		det.first, det.p50, det.p99, n-1, det.all, cpuEnd-cpuSettle)
	if det.suspect >= 0 {
		b.printf("  first suspect message about it on the wire %.3f s after the kill (from %s; sent at the suspector's next gossip or probe)", det.suspect, det.suspector)
	} else {
		b.printf("  no suspect message about it seen on the wire")
	}
	sent, dropped := b.net.sent.Load(), b.net.dropped.Load()
	b.printf("packets: %d sent, %d dropped (full inbox or the killed member)", sent, dropped)
	b.printf("CPU: %.2f s in all over %s wall (start %.2f, converge %.2f, settle %.2f, detect %.2f)",
		res.CPUS, time.Since(wall0).Round(time.Millisecond), cpuStart-cpu0, cpuConv-cpuStart, cpuSettle-cpuConv, cpuEnd-cpuSettle)
	var notes []string
	if ff := b.falseFailures.Load(); ff > 0 {
		var names []string
		b.falseNames.Range(func(k, _ any) bool { names = append(names, k.(string)); return len(names) < 5 })
		b.printf("WARNING: %d false failure marks (%d before the kill) of live members, e.g. %v", ff, falseBefore, names)
		notes = append(notes, fmt.Sprintf("%d false failure marks of live members", ff))
	}
	if opt.profile != "lan" {
		notes = append(notes, "test (Fast) timings, not production")
	}
	res.Note = strings.Join(notes, "; ")
	return nil
}

// join has the seeds meet, then every other member join through all seeds,
// as an agent does with its list of coordinators (retrying when none
// answers).
func (b *bench) join() error {
	seedAddrs := make([]string, b.opt.seeds)
	for i := range seedAddrs {
		seedAddrs[i] = b.pools[i].Addr()
	}
	joinOne := func(i int, addrs []string) error {
		var err error
		for try := 0; try < 5; try++ {
			var got int
			if got, err = b.pools[i].Join(addrs); got > 0 {
				b.joined.Add(1)
				return nil
			}
			time.Sleep(time.Duration(100<<try) * time.Millisecond)
		}
		return fmt.Errorf("member %d could not join through %v: %w", i, addrs, err)
	}
	for i := 1; i < b.opt.seeds; i++ {
		if err := joinOne(i, seedAddrs[:i]); err != nil {
			return err
		}
	}
	next := make(chan int)
	errs := make(chan error, b.opt.joinParallel)
	var wg sync.WaitGroup
	for range b.opt.joinParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := joinOne(i, seedAddrs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := b.opt.seeds; i < len(b.pools); i++ {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// converge waits, bounded by -timeout, until every member's view holds all
// members alive, sampling each member's count (O(1) each) every -poll.
func (b *bench) converge(began time.Time, joinErr <-chan error) (time.Duration, error) {
	n := int32(len(b.observers))
	deadline := began.Add(b.opt.timeout)
	nextReport := began.Add(b.progressPeriod)
	for {
		select {
		case err := <-joinErr:
			if err != nil {
				return 0, err
			}
			b.printf("  all %d joins returned after %s", n-1, time.Since(began).Round(time.Millisecond))
		default:
		}
		now := time.Now()
		done, minView := 0, n
		var sum int64
		for _, o := range b.observers {
			a := o.alive.Load()
			if a == n {
				done++
			}
			minView = min(minView, a)
			sum += int64(a)
		}
		if done == len(b.observers) {
			return now.Sub(began), nil
		}
		if now.After(nextReport) {
			b.printf("  %5.1f s: %d/%d members see all; smallest view %d, mean %.1f; %d joined; %.0f CPU s", now.Sub(began).Seconds(), done, n, minView, float64(sum)/float64(n), b.joined.Load(), cpuSeconds())
			nextReport = now.Add(b.progressPeriod)
		}
		if now.After(deadline) {
			return 0, fmt.Errorf("no convergence within -timeout %s: %d/%d members see all %d alive; smallest view %d, mean %.1f",
				b.opt.timeout, done, n, n, minView, float64(sum)/float64(n))
		}
		time.Sleep(b.opt.poll)
	}
}

type detection struct {
	first, p50, p99, all float64
	suspect              float64 // first suspect message on the wire; -1 when none seen
	suspector            string
}

// killAndDetect takes the victim off the network and shuts it down without
// a leave, then waits, bounded by -timeout, until every survivor has marked
// it failed.
func (b *bench) killAndDetect() (detection, error) {
	n := len(b.pools)
	det := detection{suspect: -1}
	victimName := nodeName(b.victim)
	b.net.watch(victimName)
	killedAt := time.Now()
	b.transports[b.victim].kill(b.stop)
	if err := b.pools[b.victim].Shutdown(); err != nil {
		return det, fmt.Errorf("shut down the killed member: %w", err)
	}
	b.printf("killed %s at %s (off the network, Shutdown without Leave)", victimName, killedAt.Format("15:04:05.000"))
	deadline := killedAt.Add(b.opt.timeout)
	nextReport := killedAt.Add(b.progressPeriod)
	for {
		now := time.Now()
		seen := 0
		for i, o := range b.observers {
			if i != b.victim && o.detected.Load() != 0 {
				seen++
			}
		}
		if seen == n-1 {
			break
		}
		if now.After(nextReport) {
			b.printf("  %5.1f s after the kill: %d/%d survivors marked it failed", now.Sub(killedAt).Seconds(), seen, n-1)
			nextReport = now.Add(b.progressPeriod)
		}
		if now.After(deadline) {
			return det, fmt.Errorf("kill not detected by all within -timeout %s: %d/%d survivors marked %s failed", b.opt.timeout, seen, n-1, victimName)
		}
		time.Sleep(b.opt.poll)
	}
	var d []float64
	for i, o := range b.observers {
		if i != b.victim {
			d = append(d, time.Unix(0, o.detected.Load()).Sub(killedAt).Seconds())
		}
	}
	sort.Float64s(d)
	pct := func(p float64) float64 { // nearest rank
		k := int(math.Ceil(p/100*float64(len(d)))) - 1
		return round3(d[min(max(k, 0), len(d)-1)])
	}
	det.first, det.p50, det.p99, det.all = round3(d[0]), pct(50), pct(99), round3(d[len(d)-1])
	if s := b.net.suspected.Load(); s != nil {
		det.suspect, det.suspector = secs(s.at.Sub(killedAt)), s.from
	}
	return det, nil
}
