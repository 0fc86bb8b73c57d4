// Command distbench checks that a benchmark gives the same answer from one
// agent and from several: it starts one coordinator process, agent
// processes and a plain HTTP target with a fixed delay
// (bench/loadgen/server) on loopback, and runs the same workload with
// placement.agents = K for each K of -agents:
//
//   - fixed-rate: an open-loop Poisson rate of -rate req/s in all, for
//     -duration, split over the K agents. The superposition of K Poisson
//     streams of rate R/K is a Poisson stream of rate R, so the target sees
//     the same arrival process for every K, and the merged request latency
//     percentiles should agree between K values up to the histogram's
//     relative error (3 significant digits: 0.1 %) plus run-to-run noise;
//   - max-rate: a closed loop of -conc-per-agent requests in flight on each
//     agent (so K × that in all), for -duration, to show how the total
//     achieved request rate grows with K.
//
// Every figure is read back from what the coordinator merged: the level's
// profile_export_aiperf.json in a file:// output location, cross-checked
// with GetAIBenchmarkJobResults. Per-agent shares come from the job log
// (the leader's plan) and from each agent's Prometheus request counters.
//
// Usage:
//
//	go build -o /tmp/distbench-bin/perfleet ./coordinator        # as make build
//	go build -o /tmp/distbench-bin/perfleet-agent ./agent
//	go run ./bench/distbench -bin /tmp/distbench-bin -agents 1,4 -rate 1000 -duration 15s -json
//
// Human-readable lines go to stdout; with -json the last stdout line is one
// JSON object with every row and the comparison. Any failure (a process
// that does not come up, a job that fails or does not end in time) exits 1
// with the reason on stderr.
//
// -bin may also hold the binaries as `go build -o DIR/ ./coordinator
// ./agent` names them (coordinator, agent). The target server is
// <bin>/loadgen-server when present (or -target-bin), else it is built from
// ./bench/loadgen/server into the work folder.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// histRelError is the relative error of a percentile read from perfleet's
// HDR histograms: metrics.HistDigits (3) significant digits means every
// recorded value is kept to within 10^-3 of itself (HdrHistogram's
// guarantee; 2048 sub-buckets per power of two, so in fact ≤ 1/1024).
var histRelError = math.Pow(10, -float64(metrics.HistDigits))

// ---------------------------------------------------------------- processes

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

func startProc(work, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(work, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(runtime.NumCPU()))
	// Children die with us, however we end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stopAll ends every child: SIGTERM, then SIGKILL after a second.
func stopAll() {
	procsMu.Lock()
	ps := append([]*proc(nil), procs...)
	procsMu.Unlock()
	for _, p := range ps {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(2 * time.Second)
	for _, p := range ps {
		select {
		case <-p.done:
		case <-deadline:
		}
	}
	for _, p := range ps {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	workDir string
	keep    bool
)

// fail prints the reason and the last log lines of every child, cleans up
// and exits 1.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "distbench: FAIL: "+format+"\n", args...)
	procsMu.Lock()
	ps := append([]*proc(nil), procs...)
	procsMu.Unlock()
	for _, p := range ps {
		if t := tail(p.log, 8); t != "" {
			state := "running"
			if p.exited() {
				state = "exited: " + p.cmd.ProcessState.String()
			}
			fmt.Fprintf(os.Stderr, "--- %s (%s), last lines of %s:\n%s\n", p.name, state, p.log, t)
		}
	}
	stopAll()
	if workDir != "" && !keep {
		_ = os.RemoveAll(workDir)
	} else if workDir != "" {
		fmt.Fprintf(os.Stderr, "distbench: logs kept in %s\n", workDir)
	}
	os.Exit(1)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor retries f until it succeeds or timeout passes.
func waitFor(what string, timeout time.Duration, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = f(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s: %w", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- results

// Row is one (agents, mode) run as the coordinator merged it.
type Row struct {
	Agents       int     `json:"agents"`
	Mode         string  `json:"mode"`
	TargetRate   float64 `json:"target_rate"`
	Concurrency  int     `json:"concurrency"`
	AchievedRate float64 `json:"achieved_rate"`
	Avg          float64 `json:"avg_ms"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	Errors       int64   `json:"errors"`
	Requests     int64   `json:"requests"`
	// PerAgent is each agent's completed requests during the job (its
	// Prometheus counter), keyed by agent ID.
	PerAgent map[string]int64 `json:"per_agent_requests,omitempty"`
	// Shards is how many shards the leader planned for the level.
	Shards int `json:"shards"`
	// LagP99 is the merged schedule lag p99 (actual − scheduled send), ms.
	LagP99 float64 `json:"schedule_lag_p99_ms"`
	// CPUCores is the CPU time of the coordinator, target and agent
	// processes over the job's wall time (cores kept busy).
	CPUCores float64 `json:"cpu_cores_busy"`
	// HostCores is the whole machine's busy cores over the job (/proc/stat).
	HostCores float64 `json:"host_cores_busy"`
}

type report struct {
	HistRelError float64 `json:"histogram_rel_error"`
	Rows         []Row   `json:"rows"`
	P50RelDiff   float64 `json:"p50_rel_diff"`
	P99RelDiff   float64 `json:"p99_rel_diff"`
	Scaling      float64 `json:"scaling"`
	Note         string  `json:"note"`
	// SameKP50 and SameKP99 compare two fixed-rate runs of the same K
	// (when -agents repeats a count): the noise floor of separate runs.
	SameKP50 *float64 `json:"same_k_p50_rel_diff,omitempty"`
	SameKP99 *float64 `json:"same_k_p99_rel_diff,omitempty"`
}

// aiperfMetric is one metric block of profile_export_aiperf.json.
type aiperfMetric struct {
	Unit  string   `json:"unit"`
	Avg   *float64 `json:"avg"`
	P50   *float64 `json:"p50"`
	P90   *float64 `json:"p90"`
	P99   *float64 `json:"p99"`
	Count *int64   `json:"count"`
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// ---------------------------------------------------------------- cluster

type cluster struct {
	work      string
	agentBin  string
	gossip    string
	target    string
	conn      *grpc.ClientConn
	api       pb.InferenceOptimizationClient
	fleet     pb.FleetServiceClient
	agents    []*proc
	agentMets map[string]string // agent ID → metrics address
	seq       int
}

func (c *cluster) ensureAgents(k int) {
	for len(c.agents) < k {
		id := fmt.Sprintf("a%02d", len(c.agents))
		m := freeAddr()
		p, err := startProc(c.work, id, c.agentBin, "--id", id, "--gossip-addr", freeAddr(), "--join", c.gossip,
			"--metrics-addr", m, "--data-dir", filepath.Join(c.work, "agent-"+id), "--log-level", "warn")
		if err != nil {
			fail("%v", err)
		}
		c.agents = append(c.agents, p)
		c.agentMets[id] = m
	}
	err := waitFor(fmt.Sprintf("%d agent(s) alive and connected", k), 45*time.Second, func(ctx context.Context) error {
		for _, p := range c.agents {
			if p.exited() {
				return fmt.Errorf("agent %s exited", p.name)
			}
		}
		resp, err := c.fleet.ListAgents(ctx, &pb.ListAgentsRequest{})
		if err != nil {
			return err
		}
		n := 0
		for _, a := range resp.GetAgents() {
			if a.GetStatus() == "alive" && a.GetConnected() {
				n++
			}
		}
		if n < k {
			return fmt.Errorf("%d of %d", n, k)
		}
		return nil
	})
	if err != nil {
		fail("%v", err)
	}
}

// completed scrapes each agent's perfleet_agent_requests_completed_total.
func (c *cluster) completed() map[string]int64 {
	out := map[string]int64{}
	client := &http.Client{Timeout: 2 * time.Second}
	for id, addr := range c.agentMets {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var sum float64
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "perfleet_agent_requests_completed_total") {
				continue
			}
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				sum += v
			}
		}
		resp.Body.Close()
		out[id] = int64(sum)
	}
	return out
}

const specTemplate = `benchmark:
  type: aiperf
placement:
  agents: %d
parameters:
  api: http
  endpoint_path: /
  streaming: false
  model: distbench
  prompt_input_tokens_mean: 8
  output_tokens_mean: 1
  benchmark_duration: %s
  benchmark_grace_period: 5
  random_seed: 42
%s`

var startingRE = regexp.MustCompile(`starting at \S+ on (.*)$`)

// run runs one job and reads back the merged figures.
func (c *cluster) run(k int, mode string, rate float64, conc int, dur time.Duration, arrival string) Row {
	c.seq++
	name := fmt.Sprintf("distbench-%s-k%d-%d", mode, k, c.seq)
	load := fmt.Sprintf("  request_rate: %g\n  request_rate_mode: %s\n", rate, arrival)
	if mode == "max-rate" {
		load = fmt.Sprintf("  concurrency: %d\n", conc)
	}
	spec := fmt.Sprintf(specTemplate, k, strconv.FormatFloat(dur.Seconds(), 'f', -1, 64), load)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := c.api.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: name,
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}, ClientToken: name})
	cancel()
	if err != nil {
		fail("create workload config %s: %v\nspec:\n%s", name, err, spec)
	}
	before := c.completed()
	cpu0, host0 := cpuByRole(), hostCPU()
	results := filepath.Join(c.work, "results")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	_, err = c.api.CreateAIBenchmarkJob(ctx, &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: name,
		AiWorkloadConfigIdentifier: name, ClientToken: name,
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://" + c.target}},
		OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file://" + results},
		RoleArn:         "arn:aws:iam::000000000000:role/distbench"})
	cancel()
	if err != nil {
		fail("create job %s: %v", name, err)
	}
	t0 := time.Now()
	// Bounded wait: the level's duration, its grace period and a margin for
	// dispatch, merging and writing.
	limit := dur + 45*time.Second
	var final *pb.DescribeAIBenchmarkJobResponse
	for final == nil {
		if time.Since(t0) > limit {
			c.jobLog(name, os.Stderr)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = c.api.StopAIBenchmarkJob(ctx, &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: name})
			cancel()
			fail("job %s did not end within %s", name, limit)
		}
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := c.api.DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: name})
		cancel()
		if err != nil {
			continue
		}
		switch d.GetAiBenchmarkJobStatus() {
		case "Completed", "Failed", "Stopped":
			final = d
		}
	}
	if final.GetAiBenchmarkJobStatus() != "Completed" {
		c.jobLog(name, os.Stderr)
		fail("job %s ended %s: %s", name, final.GetAiBenchmarkJobStatus(), final.GetFailureReason())
	}
	after := c.completed()
	cpu1, host1 := cpuByRole(), hostCPU()
	wall := time.Since(t0).Seconds()

	row := Row{Agents: k, Mode: mode, PerAgent: map[string]int64{}}
	if mode == "fixed-rate" {
		row.TargetRate = rate
	} else {
		row.Concurrency = conc
	}
	for id, n := range after {
		if d := n - before[id]; d > 0 {
			row.PerAgent[id] = d
		}
	}

	// The replicated result.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	res, err := c.api.GetAIBenchmarkJobResults(ctx, &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: name})
	cancel()
	if err != nil {
		fail("results of %s: %v", name, err)
	}
	if len(res.GetLevels()) != 1 {
		fail("job %s: %d levels in its results, want 1", name, len(res.GetLevels()))
	}
	lr := res.GetLevels()[0]
	row.Requests, row.Errors = lr.GetRequestCount(), lr.GetErrorRequestCount()
	var rpcLat *pb.MetricSummary
	var rpcThr float64
	for _, m := range lr.GetMetrics() {
		switch m.GetTag() {
		case metrics.RequestLatency:
			rpcLat = m
		case metrics.RequestThroughput:
			rpcThr = m.GetValue()
		}
	}

	// The result file the leader wrote.
	loc := strings.TrimPrefix(lr.GetLocation(), "file://")
	path := filepath.Join(loc, metrics.FileJSON)
	raw, err := os.ReadFile(path)
	if err != nil {
		fail("job %s: reading its result file: %v (location %q)", name, err, lr.GetLocation())
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		fail("job %s: %s: %v", name, path, err)
	}
	get := func(tag string) aiperfMetric {
		var m aiperfMetric
		if r, ok := doc[tag]; ok {
			_ = json.Unmarshal(r, &m)
		}
		return m
	}
	lat, thr := get(metrics.RequestLatency), get(metrics.RequestThroughput)
	row.Avg, row.P50, row.P90, row.P99 = val(lat.Avg), val(lat.P50), val(lat.P90), val(lat.P99)
	row.AchievedRate = val(thr.Avg)
	if math.IsNaN(row.P50) || math.IsNaN(row.AchievedRate) {
		fail("job %s: %s has no request_latency percentiles or request_throughput", name, path)
	}
	if rpcLat == nil || !near(rpcLat.GetP50(), row.P50) || !near(rpcLat.GetP99(), row.P99) || !near(rpcThr, row.AchievedRate) {
		fail("job %s: GetAIBenchmarkJobResults (p50 %v p99 %v, %v req/s) disagrees with %s (p50 %v p99 %v, %v req/s)",
			name, rpcLat.GetP50(), rpcLat.GetP99(), rpcThr, path, row.P50, row.P99, row.AchievedRate)
	}

	// The leader's plan, from the job log.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	lg, err := c.api.GetAIBenchmarkJobLog(ctx, &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: name})
	cancel()
	plan := ""
	if err == nil {
		for _, e := range lg.GetEvents() {
			if m := startingRE.FindStringSubmatch(e.GetMessage()); m != nil {
				plan = m[1]
				row.Shards = len(strings.Split(plan, "; "))
			}
		}
	}

	what := fmt.Sprintf("rate %g req/s (%s)", rate, arrival)
	if mode == "max-rate" {
		what = fmt.Sprintf("closed loop, concurrency %d", conc)
	}
	fmt.Printf("K=%d %-10s %s: achieved %.1f req/s, %d requests, %d errors; request_latency p50 %.3f p90 %.3f p99 %.3f ms (job %s, %s)\n",
		k, mode, what, row.AchievedRate, row.Requests, row.Errors, row.P50, row.P90, row.P99, name, time.Since(t0).Round(100*time.Millisecond))
	fmt.Printf("    plan: %d shard(s): %s\n", row.Shards, plan)
	fmt.Printf("    per-agent completed requests (Prometheus): %s\n", fmtPerAgent(row.PerAgent))
	lag, act := get(metrics.ScheduleLag), get(metrics.RequestLatencyActualSend)
	row.LagP99 = val(lag.P99)
	fmt.Printf("    schedule lag p50 %.3f p99 %.3f ms; request_latency_actual_send p50 %.3f p99 %.3f ms\n",
		val(lag.P50), val(lag.P99), val(act.P50), val(act.P99))
	var cpuParts []string
	var cpuTotal float64
	for _, role := range []string{"agents", "target", "coordinator"} {
		d := cpu1[role] - cpu0[role]
		cpuTotal += d
		cpuParts = append(cpuParts, fmt.Sprintf("%s %.1f s", role, d))
	}
	row.CPUCores = cpuTotal / wall
	row.HostCores = (host1.busy - host0.busy) / wall
	fmt.Printf("    CPU over the job's %.1f s: %s = %.2f cores; the whole machine (all processes, /proc/stat): %.2f of %d cores busy\n",
		wall, strings.Join(cpuParts, ", "), row.CPUCores, row.HostCores, runtime.NumCPU())
	fmt.Printf("    results: %s\n", path)
	return row
}

func (c *cluster) jobLog(name string, w *os.File) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lg, err := c.api.GetAIBenchmarkJobLog(ctx, &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: name})
	if err != nil {
		return
	}
	fmt.Fprintf(w, "--- job log of %s:\n", name)
	for _, e := range lg.GetEvents() {
		fmt.Fprintf(w, "  %s %s %s\n", e.GetTime().AsTime().Format("15:04:05.000"), e.GetLevel(), e.GetMessage())
	}
}

// cpuByRole sums utime+stime (seconds) of the live children by role.
func cpuByRole() map[string]float64 {
	out := map[string]float64{}
	procsMu.Lock()
	ps := append([]*proc(nil), procs...)
	procsMu.Unlock()
	for _, p := range ps {
		role := p.name
		if strings.HasPrefix(role, "a") && role != "agent" {
			role = "agents"
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			continue
		}
		// Fields after the command name "(…)": state is field 3; utime, stime are 14, 15.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out[role] += (ut + st) / clockTicks
	}
	return out
}

type hostTimes struct{ busy float64 }

// hostCPU reads the machine's busy CPU seconds (all but idle and iowait)
// from /proc/stat.
func hostCPU() hostTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, x := range f[1:] {
		v, _ := strconv.ParseFloat(x, 64)
		switch i {
		case 3, 4, 8, 9: // idle, iowait, guest, guest_nice (guest is counted in user)
		default:
			busy += v
		}
	}
	return hostTimes{busy: busy / clockTicks}
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

func fmtPerAgent(m map[string]int64) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s=%d", id, m[id]))
	}
	if len(parts) == 0 {
		return "(not visible)"
	}
	return strings.Join(parts, " ")
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func relDiff(a, b float64) float64 {
	if a == 0 {
		return math.NaN()
	}
	return math.Abs(b-a) / a
}

// ---------------------------------------------------------------- main

func main() {
	binDir := flag.String("bin", "bin", "folder holding perfleet and perfleet-agent")
	agentsFlag := flag.String("agents", "1,4", "agent counts to run, in order, comma-separated; the smallest and the largest are compared, a count given twice is run twice (a noise-floor control)")
	rate := flag.Float64("rate", 1000, "fixed-rate mode: total open-loop request rate (req/s)")
	dur := flag.Duration("duration", 15*time.Second, "duration of each measured run")
	delay := flag.Duration("delay", 10*time.Millisecond, "the target's fixed response delay")
	concPer := flag.Int("conc-per-agent", 64, "max-rate mode: requests in flight per agent (closed loop)")
	arrival := flag.String("arrival", "poisson", "fixed-rate arrival pattern: poisson (same aggregate process for every K) or constant")
	targetBin := flag.String("target-bin", "", "the fixed-delay target server binary (default: <bin>/loadgen-server if present, else built from ./bench/loadgen/server)")
	modes := flag.String("modes", "fixed-rate,max-rate", "modes to run")
	asJSON := flag.Bool("json", false, "print the JSON summary as the last stdout line")
	timeout := flag.Duration("timeout", 0, "overall limit (default: computed from the runs)")
	flag.BoolVar(&keep, "keep", false, "keep the work folder (logs, results)")
	flag.Parse()

	var ks []int
	for _, s := range strings.Split(*agentsFlag, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 || k > 64 {
			fail("-agents %q: want a comma-separated list of counts 1…64", *agentsFlag)
		}
		ks = append(ks, k)
	}
	if *rate <= 0 || *dur <= 0 || *concPer < 1 {
		fail("-rate, -duration and -conc-per-agent must be positive")
	}
	if *arrival != "poisson" && *arrival != "constant" {
		fail("-arrival must be poisson or constant")
	}
	runFixed, runMax := false, false
	for _, m := range strings.Split(*modes, ",") {
		switch strings.TrimSpace(m) {
		case "fixed-rate":
			runFixed = true
		case "max-rate":
			runMax = true
		default:
			fail("-modes: unknown mode %q", m)
		}
	}
	// make build names them perfleet and perfleet-agent; `go build -o DIR/
	// ./coordinator ./agent` names them coordinator and agent.
	isFile := func(p string) bool { st, err := os.Stat(p); return err == nil && !st.IsDir() }
	pick := func(names ...string) string {
		for _, n := range names {
			if p := filepath.Join(*binDir, n); isFile(p) {
				return p
			}
		}
		fail("neither of %s found in -bin %s: build them with `go build -o %s/perfleet ./coordinator && go build -o %s/perfleet-agent ./agent` (as make build does)",
			strings.Join(names, ", "), *binDir, *binDir, *binDir)
		return ""
	}
	perfleetBin, agentBin := pick("perfleet", "coordinator"), pick("perfleet-agent", "agent")

	// Overall watchdog: every wait below is bounded too, this is the net.
	limit := *timeout
	if limit == 0 {
		runs := 0
		if runFixed {
			runs++
		}
		if runMax {
			runs++
		}
		limit = 90*time.Second + time.Duration(len(ks)*runs)*(*dur+50*time.Second)
	}
	time.AfterFunc(limit, func() { fail("overall limit %s reached", limit) })
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { s := <-sigs; fail("interrupted (%v)", s) }()

	started := time.Now()
	var err error
	workDir, err = os.MkdirTemp("", "distbench-")
	if err != nil {
		fail("%v", err)
	}

	// The target: bench/loadgen/server with a fixed delay.
	tbin := *targetBin
	if tbin == "" {
		if st, err := os.Stat(filepath.Join(*binDir, "loadgen-server")); err == nil && !st.IsDir() {
			tbin = filepath.Join(*binDir, "loadgen-server")
		} else {
			tbin = filepath.Join(workDir, "loadgen-server")
			build := exec.Command("go", "build", "-o", tbin, "github.com/perfleet/perfleet/bench/loadgen/server")
			build.Env = append(os.Environ(), "CGO_CFLAGS=-Wno-deprecated-declarations")
			if out, err := build.CombinedOutput(); err != nil {
				fail("building the target server (or pass -target-bin): %v\n%s", err, out)
			}
		}
	}
	target := freeAddr()
	tp, err := startProc(workDir, "target", tbin, "-addr", target, "-delay", delay.String())
	if err != nil {
		fail("%v", err)
	}
	if err := waitFor("target server up", 15*time.Second, func(ctx context.Context) error {
		if tp.exited() {
			return errors.New("target exited")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		fail("%v", err)
	}

	// One coordinator.
	grpcAddr, gossip := freeAddr(), freeAddr()
	cp, err := startProc(workDir, "coordinator", perfleetBin, "server", "--insecure-loopback", "--node-id", "c0",
		"--data-dir", filepath.Join(workDir, "c0"), "--grpc-addr", grpcAddr, "--raft-addr", freeAddr(),
		"--gossip-addr", gossip, "--metrics-addr", freeAddr(), "--bootstrap-expect", "1", "--log-level", "warn")
	if err != nil {
		fail("%v", err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	c := &cluster{work: workDir, agentBin: agentBin, gossip: gossip, target: target, conn: conn,
		api: pb.NewInferenceOptimizationClient(conn), fleet: pb.NewFleetServiceClient(conn), agentMets: map[string]string{}}
	if err := waitFor("coordinator up and leading", 45*time.Second, func(ctx context.Context) error {
		if cp.exited() {
			return errors.New("coordinator exited")
		}
		_, err := c.api.ListAIBenchmarkJobs(ctx, &pb.ListAIBenchmarkJobsRequest{})
		return err
	}); err != nil {
		fail("%v", err)
	}
	fmt.Printf("distbench: 1 coordinator, up to %d agents, target bench/loadgen/server -delay %s on %s; %d CPUs; work dir %s\n",
		slices.Max(ks), *delay, target, runtime.NumCPU(), workDir)
	fmt.Printf("distbench: histogram: HDR, %d significant digits → percentile relative error ≤ %.3g (%.2f %%)\n",
		metrics.HistDigits, histRelError, 100*histRelError)

	var rows []Row
	for _, k := range ks {
		c.ensureAgents(k)
		if runFixed {
			rows = append(rows, c.run(k, "fixed-rate", *rate, 0, *dur, *arrival))
		}
		if runMax {
			rows = append(rows, c.run(k, "max-rate", 0, *concPer*k, *dur, *arrival))
		}
	}

	// Compare the smallest K with the largest.
	rep := report{HistRelError: histRelError, Rows: rows, P50RelDiff: math.NaN(), P99RelDiff: math.NaN(), Scaling: math.NaN()}
	find := func(k int, mode string) *Row {
		for i := range rows {
			if rows[i].Agents == k && rows[i].Mode == mode {
				return &rows[i]
			}
		}
		return nil
	}
	k0, k1 := slices.Min(ks), slices.Max(ks)
	var notes []string
	fmt.Println()
	verdict := func(d float64) string {
		if d <= histRelError {
			return "within"
		}
		return fmt.Sprintf("%.1f× beyond", d/histRelError)
	}
	if a, b := find(k0, "fixed-rate"), find(k1, "fixed-rate"); a != nil && b != nil && k0 != k1 {
		rep.P50RelDiff, rep.P99RelDiff = relDiff(a.P50, b.P50), relDiff(a.P99, b.P99)
		p90 := relDiff(a.P90, b.P90)
		fmt.Printf("fixed-rate K=%d vs K=%d: p50 %.3f vs %.3f ms (rel diff %.4f, %s the histogram error %.3g); p90 rel diff %.4f; p99 %.3f vs %.3f ms (rel diff %.4f, %s)\n",
			k0, k1, a.P50, b.P50, rep.P50RelDiff, verdict(rep.P50RelDiff), histRelError, p90, a.P99, b.P99, rep.P99RelDiff, verdict(rep.P99RelDiff))
		fmt.Printf("fixed-rate achieved: K=%d %.1f req/s, K=%d %.1f req/s (target %g)\n", k0, a.AchievedRate, k1, b.AchievedRate, *rate)
		notes = append(notes, fmt.Sprintf("fixed-rate K=%d vs K=%d: p50 diff %.2f%%, p99 diff %.2f%%, histogram error %.2f%%",
			k0, k1, 100*rep.P50RelDiff, 100*rep.P99RelDiff, 100*histRelError))
		if rep.P50RelDiff > histRelError || rep.P99RelDiff > histRelError {
			notes = append(notes, "beyond the histogram error: the runs are separate samples of a noisy system (OS scheduling of K agent processes, the target and the coordinator on shared cores), the merge itself adds no error (HDR buckets add exactly)")
		}
	}
	// A K run twice is the noise floor of separate runs.
	seenK := map[int]bool{}
	for _, k := range ks {
		if seenK[k] {
			continue
		}
		seenK[k] = true
		var same []*Row
		for i := range rows {
			if rows[i].Agents == k && rows[i].Mode == "fixed-rate" {
				same = append(same, &rows[i])
			}
		}
		if len(same) >= 2 {
			d50, d99 := relDiff(same[0].P50, same[1].P50), relDiff(same[0].P99, same[1].P99)
			if rep.SameKP50 == nil {
				rep.SameKP50, rep.SameKP99 = &d50, &d99
			}
			fmt.Printf("control, fixed-rate K=%d run twice: p50 %.3f vs %.3f ms (rel diff %.4f), p99 %.3f vs %.3f ms (rel diff %.4f)\n",
				k, same[0].P50, same[1].P50, d50, same[0].P99, same[1].P99, d99)
			notes = append(notes, fmt.Sprintf("control K=%d twice: p50 diff %.2f%%, p99 diff %.2f%%", k, 100*d50, 100*d99))
		}
	}
	if a, b := find(k0, "max-rate"), find(k1, "max-rate"); a != nil && b != nil && k0 != k1 && a.AchievedRate > 0 {
		rep.Scaling = b.AchievedRate / a.AchievedRate
		bound := float64(*concPer) / delay.Seconds()
		fmt.Printf("max-rate: K=%d %.1f req/s (%d in flight, mean latency %.2f ms, machine %.2f cores busy), K=%d %.1f req/s (%d in flight, mean latency %.2f ms, machine %.2f cores busy): scaling %.2f× for %g× agents\n",
			k0, a.AchievedRate, a.Concurrency, a.Avg, a.HostCores, k1, b.AchievedRate, b.Concurrency, b.Avg, b.HostCores, rep.Scaling, float64(k1)/float64(k0))
		why := fmt.Sprintf("max-rate scaling %.2fx for %gx agents; with %d in flight per agent against a %s target each agent is bounded at %.0f req/s (rate = in flight / mean latency; mean %.2f ms at K=%d, %.2f ms at K=%d)",
			rep.Scaling, float64(k1)/float64(k0), *concPer, *delay, bound, a.Avg, k0, b.Avg, k1)
		ncpu := float64(runtime.NumCPU())
		switch {
		case b.HostCores >= 0.85*ncpu:
			why += fmt.Sprintf("; at K=%d the machine was CPU-bound (%.2f of %d cores busy, %.2f of them this tool's processes): every agent, the target and the coordinator share these cores (with any other work on the machine), so the total falls short of the agent ratio", k1, b.HostCores, runtime.NumCPU(), b.CPUCores)
		default:
			why += fmt.Sprintf("; the machine had headroom (%.2f at K=%d, %.2f at K=%d of %d cores busy), so the total grows with the in-flight count, i.e. with the agents, less whatever the mean latency grew (contention, timer and scheduling delay)", a.HostCores, k0, b.HostCores, k1, runtime.NumCPU())
		}
		notes = append(notes, why)
	}
	var busy []string
	for _, r := range rows {
		if other := r.HostCores - r.CPUCores; other > 0.5 {
			busy = append(busy, fmt.Sprintf("K=%d %s %.1f", r.Agents, r.Mode, other))
		}
	}
	if len(busy) > 0 {
		msg := "the machine was busy with other work during runs (cores used by processes not started here: " + strings.Join(busy, ", ") +
			"); tail percentiles and the max-rate totals then reflect that contention"
		fmt.Println("distbench: note: " + msg)
		notes = append(notes, msg)
	}
	for _, r := range rows {
		if r.Errors > 0 {
			notes = append(notes, fmt.Sprintf("K=%d %s had %d errors", r.Agents, r.Mode, r.Errors))
		}
	}
	rep.Note = strings.Join(notes, "; ")
	fmt.Printf("distbench: done in %s\n", time.Since(started).Round(100*time.Millisecond))

	stopAll()
	if !keep {
		_ = os.RemoveAll(workDir)
	} else {
		fmt.Printf("distbench: logs and results kept in %s\n", workDir)
	}
	if *asJSON {
		b, err := json.Marshal(jsonSafe(rep))
		if err != nil {
			fail("encoding the summary: %v", err)
		}
		fmt.Println(string(b))
	}
}

// jsonSafe replaces NaN (not comparable, e.g. a single K) by -1 so the
// summary always encodes.
func jsonSafe(r report) report {
	fix := func(x *float64) {
		if math.IsNaN(*x) || math.IsInf(*x, 0) {
			*x = -1
		}
	}
	fix(&r.P50RelDiff)
	fix(&r.P99RelDiff)
	fix(&r.Scaling)
	for i := range r.Rows {
		fix(&r.Rows[i].Avg)
		fix(&r.Rows[i].P50)
		fix(&r.Rows[i].P90)
		fix(&r.Rows[i].P99)
		fix(&r.Rows[i].AchievedRate)
		fix(&r.Rows[i].LagP99)
		fix(&r.Rows[i].HostCores)
	}
	return r
}
