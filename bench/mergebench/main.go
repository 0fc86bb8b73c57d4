// Command mergebench measures what live benchmark windows cost the
// coordinator leader: its CPU (% of one core), resident memory and Go heap
// while N agents each stream one metrics window a second into one job, the
// windows merged per second, and the Watch lag: how long after every agent
// has sent window k a WatchAIBenchmarkJob update reflects it.
//
// What is real. The leader is a real `perfleet server` process (one node,
// --insecure-loopback, loopback ports): by default this program re-executes
// itself as `perfleet` (it links coordinator/cli and calls cli.Main, exactly
// what coordinator/main.go does, GOGC 400 included), or -perfleet names a
// built binary. Its CPU and RSS come from /proc/<pid>/stat and status, its
// Go heap from go_memstats_heap_alloc_bytes on its Prometheus endpoint.
// Each simulated agent speaks the real control-stream protocol through the
// agent's own client, agent/control.Client (hello, welcome, heartbeats every
// second both ways, seq/ack, RunShard, ShardWindow, WindowAck, ShardDone,
// resend on reconnect), over its own gRPC connection. Windows are built by
// pkg/metrics.Accumulator from -records realistic streaming request records
// (ISL, OSL, TTFT, ITL per token, 0.5 % errors) and sent in the wire format
// at each second boundary after the level's common start, so the leader
// decodes and merges full-sized histograms in bursts as in production. The
// job is a real benchmark job (placement.agents = N, concurrency 4N,
// benchmark_duration = -duration) planned by the scheduler, dispatched,
// merged by coordinator/runner, finished through Raft; Watch is the real
// RPC, served once a second by coordinator/endpoint.
//
// Membership. The scheduler places only agents the leader's state records
// as alive and connected, and the leader writes those records from its
// gossip pool (coordinator/server/fleet.go reconcileAgents): an agent that
// is not a gossip member would be marked failed within a second. So every
// simulated agent is a real hashicorp/memberlist node, with agent metadata
// encoded by pkg/gossip, that joins the leader's pool. To make 5,000 of
// them affordable in one process they only answer: they do not probe,
// gossip or push-pull, and an alive delegate keeps each one's member list
// to itself and the servers (otherwise 5,000 nodes x 5,000 peers). The
// leader itself runs its normal gossip (probing, gossiping, push-pull over
// all N members, reconciling N agent records each second); what it misses
// compared with a real fleet is the ~1 probe and ~15 gossip packets a
// second it would receive from peers, which is small next to N heartbeats.
// Joining costs O(N^2) (each join pulls the leader's full member list), so
// the 5,000 setup takes a while; it is not measured.
//
// Measuring. Per row a fresh leader is started and the fleet joins and
// connects; the leader's CPU is first read for a few seconds with the fleet
// idle (heartbeats, gossip, reconcile: leader_idle_cpu_pct), then the job
// runs -duration seconds. The steady period is from 2 s after the level's
// start (1 s when -duration is under 4 s) to its last window; CPU, merged
// windows (the leader's cumulative WindowAcks) and the bench's own CPU are
// taken over it; RSS and heap are their peaks over it. The Watch lag of
// window k is the time from the moment the last agent sent window k to the
// first Watch update whose request_count reaches the requests of windows
// 1..k of all agents; Watch sends once a second, so lag includes up to 1 s
// of that period. The bench and the leader share the machine's cores: the
// bench's CPU is printed so a saturated machine is visible.
//
// Usage:
//
//	go run ./bench/mergebench -agents 100,1000,5000 -duration 20s -json
//	go run ./bench/mergebench -agents 20 -duration 3s -json   # quick check
//
// Human-readable progress goes to stdout; with -json the last stdout line is
// {"rows":[{"agents":..,"windows_per_s":..,"leader_cpu_pct":..,
// "leader_rss_mib":..,"leader_heap_mib":..,"watch_lag_p50_ms":..,
// "watch_lag_p99_ms":..,"note":"",...}]}. A figure that could not be
// measured is 0 with a note. It exits 1 when a row fails.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/perfleet/perfleet/coordinator/cli"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// roleEnv set to "leader" makes this binary run as `perfleet`.
const roleEnv = "MERGEBENCH_ROLE"

var leaderLogLevel = "warn"

type row struct {
	Agents        int     `json:"agents"`
	WindowsPerS   float64 `json:"windows_per_s"`
	LeaderCPUPct  float64 `json:"leader_cpu_pct"`
	LeaderRSSMiB  float64 `json:"leader_rss_mib"`
	LeaderHeapMiB float64 `json:"leader_heap_mib"`
	WatchLagP50   float64 `json:"watch_lag_p50_ms"`
	WatchLagP99   float64 `json:"watch_lag_p99_ms"`
	Note          string  `json:"note"`
	// Context for the figures above.
	LeaderIdleCPUPct float64 `json:"leader_idle_cpu_pct"`
	BenchCPUPct      float64 `json:"bench_cpu_pct"`
	MergeLagP50      float64 `json:"merge_lag_p50_ms"`
	MergeLagP99      float64 `json:"merge_lag_p99_ms"`
	SetupS           float64 `json:"setup_s"`
}

func main() {
	if os.Getenv(roleEnv) == "leader" {
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(400) // as coordinator/main.go
		}
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	agentsFlag := flag.String("agents", "100,1000,5000", "comma-separated agent counts, one row each")
	duration := flag.Duration("duration", 20*time.Second, "how long each job's level runs (whole seconds, at least 2s)")
	jsonOut := flag.Bool("json", false, "print the rows as one JSON object on the last stdout line")
	records := flag.Int("records", 300, "request records per window")
	variants := flag.Int("variants", 16, "distinct window contents (agent i sends variant i mod this)")
	perfleetBin := flag.String("perfleet", "", "perfleet binary to run as the leader (default: this program re-executed)")
	workers := flag.Int("join-workers", 8, "agents started in parallel")
	keep := flag.Bool("keep", false, "keep the work directory (leader log) of each row")
	flag.StringVar(&leaderLogLevel, "leader-log-level", "warn", "the leader's --log-level (its log is in the work directory; see -keep)")
	watch := flag.Bool("watch", true, "run a Watch client on the job (it costs the leader a merge of every shard each second)")
	noMicro := flag.Bool("no-micro", false, "skip the in-process decode+merge measurement")
	drain := flag.Duration("drain", 60*time.Second, "how long a leader that fell behind may catch up after the last window")
	maxRSS := flag.Float64("max-leader-rss-gib", 8, "cut a row short when the leader's RSS passes this (protects the machine)")
	flag.Parse()

	var counts []int
	for _, s := range strings.Split(*agentsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf("bad -agents %q", *agentsFlag)
		}
		counts = append(counts, n)
	}
	secs := int(duration.Round(time.Second) / time.Second)
	if secs < 2 {
		fatalf("-duration must be at least 2s")
	}
	bin := *perfleetBin
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			fatalf("cannot find this program's binary: %v", err)
		}
		bin = self
	}
	t0 := time.Now()
	cache := &windowCache{variants: makeVariants(*variants, *records, 7), m: map[[2]uint64]*cachedWindow{}}
	fmt.Printf("mergebench: %d window variants of %d records each (%d bytes on the wire) built in %s\n",
		*variants, *records, len(cache.get(0, 1, 0)), time.Since(t0).Round(time.Millisecond))
	if !*noMicro {
		fmt.Printf("mergebench: in-process, one core: %s\n", microMerge(cache))
	}
	cache.m = map[[2]uint64]*cachedWindow{}

	var rows []row
	failed := false
	for _, n := range counts {
		start := time.Now()
		r, err := runRow(bin, n, secs, cache, rowOpts{workers: *workers, keep: *keep, drain: *drain, maxRSSGiB: *maxRSS, watch: *watch})
		r.Agents = n
		if err != nil {
			failed = true
			if r.Note == "" {
				r.Note = err.Error()
			} else {
				r.Note += "; " + err.Error()
			}
			fmt.Printf("[%d agents] FAILED: %v\n", n, err)
		}
		fmt.Printf("[%d agents] windows/s %.0f, leader CPU %.1f%% of a core (idle fleet %.1f%%), RSS %.0f MiB, heap %.0f MiB, "+
			"Watch lag p50 %.0f ms p99 %.0f ms (merge lag p50 %.0f p99 %.0f), bench CPU %.0f%%; row took %s\n", n, r.WindowsPerS, r.LeaderCPUPct, r.LeaderIdleCPUPct,
			r.LeaderRSSMiB, r.LeaderHeapMiB, r.WatchLagP50, r.WatchLagP99, r.MergeLagP50, r.MergeLagP99, r.BenchCPUPct, time.Since(start).Round(time.Second))
		rows = append(rows, r)
		cache.mu.Lock()
		cache.m = map[[2]uint64]*cachedWindow{}
		cache.mu.Unlock()
	}
	if *jsonOut {
		b, _ := json.Marshal(struct {
			Rows []row `json:"rows"`
		}{rows})
		fmt.Println(string(b))
	}
	if failed {
		fmt.Fprintln(os.Stderr, "mergebench: at least one row failed (see its note)")
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mergebench: "+format+"\n", args...)
	os.Exit(1)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// leaderProc is the leader process.
type leaderProc struct {
	cmd                         *exec.Cmd
	grpc, raft, gossip, metrics string
	dir                         string
	exited                      chan struct{}
}

func startLeader(bin, work string) (*leaderProc, error) {
	l := &leaderProc{grpc: freeAddr(), raft: freeAddr(), gossip: freeAddr(), metrics: freeAddr(), dir: work, exited: make(chan struct{})}
	logf, err := os.Create(filepath.Join(work, "leader.log"))
	if err != nil {
		return nil, err
	}
	l.cmd = exec.Command(bin, "server", "--insecure-loopback", "--node-id", "leader", "--data-dir", filepath.Join(work, "data"),
		"--grpc-addr", l.grpc, "--raft-addr", l.raft, "--gossip-addr", l.gossip, "--metrics-addr", l.metrics,
		"--bootstrap-expect", "1", "--max-active-jobs", "0", "--log-level", leaderLogLevel)
	l.cmd.Env = append(os.Environ(), roleEnv+"=leader")
	l.cmd.Stdout, l.cmd.Stderr = logf, logf
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start leader: %w", err)
	}
	go func() { _ = l.cmd.Wait(); logf.Close(); close(l.exited) }()
	return l, nil
}

func (l *leaderProc) kill() {
	_ = l.cmd.Process.Kill()
	<-l.exited
}

// logTail is the end of the leader's log, for error messages.
func (l *leaderProc) logTail() string {
	b, _ := os.ReadFile(filepath.Join(l.dir, "leader.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// cpuTicks is a process's utime+stime in clock ticks (100 Hz on Linux).
func cpuTicks(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%s/stat", pid)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

const clkTck = 100

func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// scrape returns a metric's value from a Prometheus endpoint, or -1.
func scrape(addr, name string) float64 {
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return x
			}
		}
	}
	return -1
}

// cpuMeter measures a process's CPU over an interval as % of one core.
type cpuMeter struct {
	pid   string
	ticks int64
	at    time.Time
}

func startCPU(pid string) (*cpuMeter, error) {
	t, err := cpuTicks(pid)
	return &cpuMeter{pid: pid, ticks: t, at: time.Now()}, err
}

func (c *cpuMeter) pct() (float64, error) {
	t, err := cpuTicks(c.pid)
	if err != nil {
		return 0, err
	}
	return float64(t-c.ticks) / clkTck / time.Since(c.at).Seconds() * 100, nil
}

func retry(timeout time.Duration, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func jobSpec(n, secs int) string {
	return fmt.Sprintf(`benchmark:
  type: aiperf
placement:
  agents: %d
parameters:
  model: sim-llm
  concurrency: [%d]
  benchmark_duration: %d
  isl: 550
  osl: 180
`, n, 4*n, secs)
}

type rowOpts struct {
	workers   int
	keep      bool
	drain     time.Duration
	maxRSSGiB float64
	watch     bool
}

func runRow(bin string, n, secs int, cache *windowCache, opts rowOpts) (r row, err error) {
	workers, keep := opts.workers, opts.keep
	setupStart := time.Now()
	work, err := os.MkdirTemp("/tmp", "mergebench-")
	if err != nil {
		return r, err
	}
	defer func() {
		if keep || err != nil {
			fmt.Printf("[%d agents] work directory kept: %s\n", n, work)
		} else {
			_ = os.RemoveAll(work)
		}
	}()
	l, err := startLeader(bin, work)
	if err != nil {
		return r, err
	}
	defer l.kill()
	pid := strconv.Itoa(l.cmd.Process.Pid)
	conn, err := grpc.NewClient(l.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return r, err
	}
	defer conn.Close()
	api := pb.NewInferenceOptimizationClient(conn)
	wl := fmt.Sprintf("merge-%d", n)
	if err := retry(60*time.Second, func(ctx context.Context) error {
		select {
		case <-l.exited:
			return fmt.Errorf("leader exited: %s", l.logTail())
		default:
		}
		_, err := api.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: wl,
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: jobSpec(n, secs)}}, ClientToken: wl})
		return err
	}); err != nil {
		return r, fmt.Errorf("leader not ready: %w", err)
	}
	fmt.Printf("[%d agents] leader pid %s up (grpc %s, gossip %s, metrics %s)\n", n, pid, l.grpc, l.gossip, l.metrics)

	stats := newFleetStats()
	f := &simFleet{n: n, windows: secs, cache: cache, stats: stats, leader: l.grpc, gossip: l.gossip}
	defer func() {
		t := time.Now()
		stopFleet(f)
		fmt.Printf("[%d agents] fleet stopped in %s\n", n, time.Since(t).Round(100*time.Millisecond))
	}()
	if err := startFleet(f, workers, func(d int) {
		fmt.Printf("[%d agents] %d agents joined (%s)\n", n, d, time.Since(setupStart).Round(time.Second))
	}); err != nil {
		return r, fmt.Errorf("starting agents: %w", err)
	}
	fleet := pb.NewFleetServiceClient(conn)
	lastLog := time.Now()
	if err := retry(90*time.Second+time.Duration(n)*20*time.Millisecond, func(ctx context.Context) error {
		resp, err := fleet.ListAgents(ctx, &pb.ListAgentsRequest{Status: "alive"})
		if err != nil {
			return err
		}
		c := 0
		for _, a := range resp.GetAgents() {
			if a.GetConnected() {
				c++
			}
		}
		if c < n {
			if time.Since(lastLog) > 5*time.Second {
				fmt.Printf("[%d agents] %d alive, %d connected in the leader's state\n", n, len(resp.GetAgents()), c)
				lastLog = time.Now()
			}
			return fmt.Errorf("%d of %d agents alive and connected", c, n)
		}
		return nil
	}); err != nil {
		return r, fmt.Errorf("fleet not ready: %w", err)
	}
	r.SetupS = time.Since(setupStart).Seconds()
	fmt.Printf("[%d agents] fleet alive and connected after %s; leader RSS %.0f MiB\n", n, time.Since(setupStart).Round(time.Second), rssMiB(l.cmd.Process.Pid))

	// The idle fleet's cost: heartbeats, gossip, reconcile.
	time.Sleep(2 * time.Second)
	idle, err := startCPU(pid)
	if err != nil {
		return r, err
	}
	time.Sleep(3 * time.Second)
	r.LeaderIdleCPUPct, _ = idle.pct()
	fmt.Printf("[%d agents] idle fleet: leader CPU %.1f%% of a core\n", n, r.LeaderIdleCPUPct)

	job := fmt.Sprintf("merge-%d-%d", n, time.Now().Unix())
	ctx := context.Background()
	if _, err := api.CreateAIBenchmarkJob(ctx, &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: job, AiWorkloadConfigIdentifier: wl,
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://127.0.0.1:9/v1",
			InferenceComponents: []*pb.InferenceComponentRef{{Identifier: "sim-llm"}}}},
		OutputConfig: &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file://" + filepath.Join(work, "results")},
		RoleArn:      "arn:aws:iam::000000000000:role/bench"}); err != nil {
		return r, fmt.Errorf("create job: %w", err)
	}

	// Watch: the first time request_count reached each total.
	type seen struct {
		at    time.Time
		count int64
	}
	var wmu sync.Mutex
	var updates []seen
	final := make(chan *pb.WatchAIBenchmarkJobResponse, 1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	watchErr := make(chan error, 1)
	if !opts.watch {
		// No Watch client: learn the job's end from Describe (cheap).
		go func() {
			for wctx.Err() == nil {
				time.Sleep(500 * time.Millisecond)
				d, err := api.DescribeAIBenchmarkJob(wctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: job})
				if err == nil && (d.GetAiBenchmarkJobStatus() == "Completed" || d.GetAiBenchmarkJobStatus() == "Failed" || d.GetAiBenchmarkJobStatus() == "Stopped") {
					final <- &pb.WatchAIBenchmarkJobResponse{AiBenchmarkJobStatus: d.GetAiBenchmarkJobStatus(), FailureReason: d.GetFailureReason(), Final: true}
					return
				}
			}
		}()
	}
	go func() {
		if !opts.watch {
			return
		}
		stream, err := api.WatchAIBenchmarkJob(wctx, &pb.WatchAIBenchmarkJobRequest{AiBenchmarkJobName: job})
		if err != nil {
			watchErr <- err
			return
		}
		for {
			u, err := stream.Recv()
			if err != nil {
				watchErr <- err
				return
			}
			if lv := u.GetLevel(); lv != nil {
				wmu.Lock()
				updates = append(updates, seen{time.Now(), lv.GetRequestCount()})
				wmu.Unlock()
			}
			if u.GetFinal() {
				final <- u
				return
			}
		}
	}()

	// Wait for the level's start, then measure its steady period.
	deadline := time.Now().Add(60 * time.Second)
	for f.runStart.Load() == 0 {
		if time.Now().After(deadline) {
			d, _ := api.DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: job})
			return r, fmt.Errorf("no shard dispatched within 60s (job %s %s): %s", d.GetAiBenchmarkJobStatus(), d.GetFailureReason(), l.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	levelStart := time.Unix(0, f.runStart.Load())
	skip := 2
	if secs < 4 {
		skip = 1
	}
	from := levelStart.Add(time.Duration(skip)*time.Second + 200*time.Millisecond)
	to := levelStart.Add(time.Duration(secs)*time.Second + 200*time.Millisecond)
	fmt.Printf("[%d agents] job %s: level starts %s; measuring %s to %s after it\n", n, job, levelStart.Format("15:04:05.000"),
		from.Sub(levelStart).Round(100*time.Millisecond), to.Sub(levelStart).Round(100*time.Millisecond))
	time.Sleep(time.Until(from))
	lcpu, err := startCPU(pid)
	if err != nil {
		return r, fmt.Errorf("leader gone: %v: %s", err, l.logTail())
	}
	bcpu, _ := startCPU("self")
	acked0 := stats.acked.Load()
	var notes []string
	capMiB := opts.maxRSSGiB * 1024
	overCap := false
	for time.Now().Before(to) {
		r.LeaderRSSMiB = math.Max(r.LeaderRSSMiB, rssMiB(l.cmd.Process.Pid))
		if h := scrape(l.metrics, "go_memstats_heap_alloc_bytes"); h >= 0 {
			r.LeaderHeapMiB = math.Max(r.LeaderHeapMiB, h/(1<<20))
		}
		if r.LeaderRSSMiB > capMiB {
			overCap = true
			break
		}
		time.Sleep(min(time.Second, time.Until(to)))
	}
	r.LeaderRSSMiB = math.Max(r.LeaderRSSMiB, rssMiB(l.cmd.Process.Pid))
	if h := scrape(l.metrics, "go_memstats_heap_alloc_bytes"); h >= 0 {
		r.LeaderHeapMiB = math.Max(r.LeaderHeapMiB, h/(1<<20))
	}
	span := time.Since(lcpu.at).Seconds()
	r.WindowsPerS = float64(stats.acked.Load()-acked0) / span
	if r.LeaderCPUPct, err = lcpu.pct(); err != nil {
		return r, fmt.Errorf("leader gone: %v: %s", err, l.logTail())
	}
	r.BenchCPUPct, _ = bcpu.pct()
	if r.LeaderHeapMiB == 0 {
		notes = append(notes, "heap: leader /metrics unreachable")
	}
	expected := int64(n) * int64(secs)
	fmt.Printf("[%d agents] steady %.1f s: %d windows acked in it; %d of %d sent, %d acked so far; %d send errors\n", n, span,
		stats.acked.Load()-acked0, stats.sent.Load(), expected, stats.acked.Load(), stats.sendErr.Load())
	if overCap {
		notes = append(notes, fmt.Sprintf("leader RSS passed -max-leader-rss-gib %.1f after %.1f s of the steady period: row cut short, leader killed", opts.maxRSSGiB, span))
	}

	// The job ends once every agent reported; a leader that cannot keep up
	// gets -drain to catch up, then the row ends with what it merged.
	var fin *pb.WatchAIBenchmarkJobResponse
	giveUp := to.Add(opts.drain)
	if overCap {
		giveUp = time.Now()
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	drainPeak := 0.0
wait:
	for fin == nil && time.Now().Before(giveUp) {
		select {
		case fin = <-final:
		case err := <-watchErr:
			return r, fmt.Errorf("watch ended: %v", err)
		case <-tick.C:
			drainPeak = math.Max(drainPeak, rssMiB(l.cmd.Process.Pid))
			if drainPeak > capMiB {
				notes = append(notes, fmt.Sprintf("leader RSS passed -max-leader-rss-gib %.1f while catching up: leader killed", opts.maxRSSGiB))
				break wait
			}
		}
	}
	endAt := time.Now()
	switch {
	case fin == nil:
		notes = append(notes, fmt.Sprintf("leader could not keep up: %d of %d windows merged %.0f s after the last was sent (peak RSS then %.0f MiB); job not finished, lags not yet seen are counted as lower bounds",
			stats.acked.Load(), expected, endAt.Sub(to).Seconds(), drainPeak))
		fmt.Printf("[%d agents] %s\n", n, notes[len(notes)-1])
	case fin.GetAiBenchmarkJobStatus() != "Completed":
		notes = append(notes, fmt.Sprintf("job ended %s: %s", fin.GetAiBenchmarkJobStatus(), fin.GetFailureReason()))
		fmt.Printf("[%d agents] %s\n", n, notes[len(notes)-1])
	default:
		fmt.Printf("[%d agents] job completed (%s after the level's start)\n", n, time.Since(levelStart).Round(100*time.Millisecond))
	}

	// Watch lag and merge lag per window; a window not yet seen when the
	// row ended counts with the time waited so far (a lower bound).
	stats.mu.Lock()
	var cum int64
	var lags, mlags []float64
	censored, mcensored := 0, 0
	for k := uint64(1); k <= uint64(secs); k++ {
		cum += stats.okInSeq[k]
		sentAt, ok := stats.allSentAt[k]
		if !ok {
			continue // cut short before every agent sent it
		}
		if ackAt, ok := stats.allAckedAt[k]; ok {
			mlags = append(mlags, math.Max(0, ackAt.Sub(sentAt).Seconds()*1000))
		} else {
			mcensored++
			mlags = append(mlags, endAt.Sub(sentAt).Seconds()*1000)
		}
		wmu.Lock()
		var at time.Time
		for _, u := range updates {
			if u.count >= cum {
				at = u.at
				break
			}
		}
		wmu.Unlock()
		if !opts.watch {
			continue
		}
		if at.IsZero() {
			if fin != nil {
				continue // the job ended before a live update showed it
			}
			censored++
			at = endAt
		}
		lags = append(lags, math.Max(0, at.Sub(sentAt).Seconds()*1000))
	}
	stats.mu.Unlock()
	if !opts.watch {
		notes = append(notes, "no Watch client (-watch=false): watch lag not measured")
	} else if len(lags) > 0 {
		sort.Float64s(lags)
		r.WatchLagP50, r.WatchLagP99 = pct(lags, 50), pct(lags, 99)
	} else {
		notes = append(notes, "watch lag: no window seen live")
	}
	if len(mlags) > 0 {
		sort.Float64s(mlags)
		r.MergeLagP50, r.MergeLagP99 = pct(mlags, 50), pct(mlags, 99)
	}
	if censored > 0 {
		notes = append(notes, fmt.Sprintf("watch lag: %d of %d windows never shown, counted as lower bounds", censored, len(lags)))
	}
	if mcensored > 0 {
		notes = append(notes, fmt.Sprintf("merge lag: %d of %d windows not merged by every shard, counted as lower bounds", mcensored, len(mlags)))
	}
	if opts.watch && fin != nil && len(lags) < secs {
		notes = append(notes, fmt.Sprintf("watch lag over %d of %d windows (the rest were not shown live before the job ended)", len(lags), secs))
	}
	r.Note = strings.Join(notes, "; ")
	fmt.Printf("[%d agents] watch lags (ms, sorted): %s\n", n, fmtLags(lags))
	fmt.Printf("[%d agents] merge lags, last agent's send to last agent's ack (ms, sorted): %s\n", n, fmtLags(mlags))
	return r, nil
}

// pct is the p-th percentile of sorted xs (linear interpolation).
func pct(xs []float64, p float64) float64 {
	if len(xs) == 1 {
		return xs[0]
	}
	pos := p / 100 * float64(len(xs)-1)
	i := int(pos)
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}

func fmtLags(xs []float64) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.0f", x)
	}
	return b.String()
}
