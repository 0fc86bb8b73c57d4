// Command soak runs a bounded soak of real processes on loopback: a 3-node
// coordinator cluster, 10 agents with simulated GPUs and a simulated model
// server; benchmark jobs run back to back (each deleted once it ends, so
// the state stays the same size) while a fault is injected every minute:
// kill -9 of the leader, kill -9 of an agent, SIGSTOP of an agent, SIGSTOP
// of the leader, a leadership transfer, each followed by a restart or
// SIGCONT.
//
// Every 5 s it samples each process: resident memory and open file
// descriptors from /proc, goroutines from the process's Prometheus
// endpoint. At the end it prints jobs completed and failed with reasons,
// and per process the first and last samples and whether they grew; a
// growth trend (or a job that never ends) makes it exit 1.
//
// Usage: go run ./bench/soak -bin bin [-duration 10m] [-agents 10] [-report bench/SOAK.md]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// proc is one long-lived process slot; a restart starts a new incarnation.
type proc struct {
	name    string
	args    []string
	bin     string
	metrics string // host:port of its Prometheus endpoint, or ""
	grpc    string // coordinators: API address
	log     *os.File

	mu      sync.Mutex
	cmd     *exec.Cmd
	samples [][]sample // per incarnation
	stopped bool       // SIGSTOPped now: skip sampling
}

type sample struct {
	at         time.Time
	rssKiB     int64
	fds        int64
	goroutines int64 // -1 when the process has no metrics endpoint
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// The processes die with the soak, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.samples = append(p.samples, nil)
	go func() { _ = cmd.Wait() }()
	return nil
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	case syscall.SIGKILL:
		p.cmd = nil
	}
}

func (p *proc) sample() {
	p.mu.Lock()
	cmd, stopped := p.cmd, p.stopped
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil || stopped {
		return
	}
	pid := cmd.Process.Pid
	s := sample{at: time.Now(), goroutines: -1}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			s.rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = int64(len(ents))
	}
	if p.metrics != "" {
		s.goroutines = scrapeGauge(p.metrics, "go_goroutines")
	}
	p.mu.Lock()
	if p.cmd == cmd {
		p.samples[len(p.samples)-1] = append(p.samples[len(p.samples)-1], s)
	}
	p.mu.Unlock()
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func scrapeGauge(addr, name string) int64 {
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			if err == nil {
				return int64(v)
			}
		}
	}
	return -1
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

const spec = `benchmark:
  type: aiperf
placement:
  agents: 2
parameters:
  model: soak-llm
  concurrency: [4]
  request_count: 40
  prompt_input_tokens_mean: 64
  output_tokens_mean: 16
  extra_inputs: "ignore_eos:true"
`

func main() {
	binDir := flag.String("bin", "bin", "folder holding perfleet and perfleet-agent")
	duration := flag.Duration("duration", 10*time.Minute, "how long to run")
	agents := flag.Int("agents", 10, "agents to start")
	faultEvery := flag.Duration("fault-every", time.Minute, "time between faults")
	reportPath := flag.String("report", "", "write the markdown report here as well")
	flag.Parse()

	work, err := os.MkdirTemp("", "perfleet-soak-")
	must(err)
	defer os.RemoveAll(work)
	logf := func(name string) *os.File {
		f, err := os.Create(filepath.Join(work, name+".log"))
		must(err)
		return f
	}
	perfleet, agentBin := filepath.Join(*binDir, "perfleet"), filepath.Join(*binDir, "perfleet-agent")

	// Coordinators.
	var coords []*proc
	var joins, gossips []string
	type addrs struct{ grpc, raft, gossip, metrics string }
	var as []addrs
	for i := 0; i < 3; i++ {
		a := addrs{freeAddr(), freeAddr(), freeAddr(), freeAddr()}
		as = append(as, a)
		joins = append(joins, a.grpc)
		gossips = append(gossips, a.gossip)
	}
	for i, a := range as {
		id := fmt.Sprintf("c%d", i)
		coords = append(coords, &proc{name: id, bin: perfleet, metrics: a.metrics, grpc: a.grpc, log: logf(id),
			args: []string{"server", "--insecure-loopback", "--node-id", id, "--data-dir", filepath.Join(work, id),
				"--grpc-addr", a.grpc, "--raft-addr", a.raft, "--gossip-addr", a.gossip, "--metrics-addr", a.metrics,
				"--bootstrap-expect", "3", "--join", strings.Join(joins, ","), "--log-level", "warn"}})
	}
	sim := &proc{name: "llmsim", bin: agentBin, log: logf("llmsim")}
	simAddr := freeAddr()
	sim.args = []string{"simulate", "--listen", simAddr, "--model", "soak-llm", "--gpu", "H100-80GB", "--seed", "7", "--itl-ms", "5"}
	var ags []*proc
	for i := 0; i < *agents; i++ {
		id := fmt.Sprintf("a%02d", i)
		m := freeAddr()
		ags = append(ags, &proc{name: id, bin: agentBin, metrics: m, log: logf(id),
			args: []string{"--id", id, "--simulate-gpus", "1xH100-80GB", "--gossip-addr", freeAddr(), "--join", strings.Join(gossips, ","),
				"--metrics-addr", m, "--data-dir", filepath.Join(work, "agent-"+id), "--log-level", "warn"}})
	}
	all := append(append(append([]*proc{}, coords...), sim), ags...)
	for _, p := range all {
		must(p.start())
	}
	defer func() {
		for _, p := range all {
			p.signal(syscall.SIGCONT)
			p.signal(syscall.SIGKILL)
		}
	}()

	conns := map[string]*grpc.ClientConn{}
	for _, c := range coords {
		conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		must(err)
		conns[c.name] = conn
	}
	api := func() pb.InferenceOptimizationClient {
		return pb.NewInferenceOptimizationClient(conns[coords[rand.IntN(len(coords))].name])
	}
	leader := func() *proc {
		for _, c := range coords {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			resp, err := pb.NewOperatorServiceClient(conns[c.name]).RaftListPeers(ctx, &pb.RaftListPeersRequest{})
			cancel()
			if err != nil {
				continue
			}
			for _, p := range resp.GetPeers() {
				for _, cc := range coords {
					if p.GetLeader() && p.GetServer().GetNodeId() == cc.name {
						return cc
					}
				}
			}
		}
		return nil
	}
	retry := func(what string, f func(ctx context.Context) error) error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := f(ctx)
			cancel()
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	must(retry("create the workload config", func(ctx context.Context) error {
		_, err := api().CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "soak",
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}, ClientToken: "soak-config"})
		return err
	}))
	// Wait until every agent is alive in the fleet.
	must(retry("agents alive", func(ctx context.Context) error {
		resp, err := pb.NewFleetServiceClient(conns[coords[0].name]).ListAgents(ctx, &pb.ListAgentsRequest{})
		if err != nil {
			return err
		}
		alive := 0
		for _, a := range resp.GetAgents() {
			if a.GetStatus() == "alive" {
				alive++
			}
		}
		if alive < *agents {
			return fmt.Errorf("%d of %d agents alive", alive, *agents)
		}
		return nil
	}))
	fmt.Printf("soak: 3 coordinators, %d agents, llmsim; %s with a fault every %s (logs in %s)\n", *agents, *duration, *faultEvery, work)

	start := time.Now()
	end := start.Add(*duration)
	stopSampling := make(chan struct{})
	samplerDone := make(chan struct{})
	var wg sync.WaitGroup
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			for _, p := range all {
				p.sample()
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	// Jobs: two runners, each creating a job, waiting for it to end and
	// deleting it.
	var mu sync.Mutex
	outcomes := map[string]int{}
	reasons := map[string]int{}
	stuck := 0
	var stuckLogs []string
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; time.Now().Before(end); seq++ {
				name := fmt.Sprintf("soak-%d-%05d", r, seq)
				err := retry("create "+name, func(ctx context.Context) error {
					_, err := api().CreateAIBenchmarkJob(ctx, &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: name,
						AiWorkloadConfigIdentifier: "soak", ClientToken: name,
						BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://" + simAddr}},
						OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file://" + filepath.Join(work, "results")},
						RoleArn:         "arn:aws:iam::000000000000:role/soak"})
					return err
				})
				if err != nil {
					mu.Lock()
					outcomes["not created"]++
					reasons[err.Error()]++
					mu.Unlock()
					continue
				}
				var final *pb.DescribeAIBenchmarkJobResponse
				deadline := time.Now().Add(3 * time.Minute)
				for time.Now().Before(deadline) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					d, err := api().DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: name})
					cancel()
					if err == nil {
						switch d.GetAiBenchmarkJobStatus() {
						case "Completed", "Failed", "Stopped":
							final = d
						}
					}
					if final != nil {
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				if final == nil {
					// Keep the job's own account of what happened.
					var lines []string
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					if lg, err := api().GetAIBenchmarkJobLog(ctx, &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: name}); err == nil {
						for _, e := range lg.GetEvents() {
							lines = append(lines, fmt.Sprintf("%s %s %s", e.GetTime().AsTime().Format("15:04:05.000"), e.GetLevel(), e.GetMessage()))
						}
						lines = append(lines, "status "+lg.GetAiBenchmarkJobStatus())
					}
					cancel()
					mu.Lock()
					stuckLogs = append(stuckLogs, name+":\n  "+strings.Join(lines, "\n  "))
					mu.Unlock()
				}
				mu.Lock()
				if final == nil {
					stuck++
					outcomes["did not end within 3 min"]++
				} else {
					outcomes[final.GetAiBenchmarkJobStatus()]++
					if fr := final.GetFailureReason(); fr != "" {
						reasons[shorten(fr)]++
					}
				}
				mu.Unlock()
				if final == nil {
					_ = retry("stop "+name, func(ctx context.Context) error {
						_, err := api().StopAIBenchmarkJob(ctx, &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: name})
						return err
					})
					time.Sleep(5 * time.Second)
				}
				_ = retry("delete "+name, func(ctx context.Context) error {
					_, err := api().DeleteAIBenchmarkJob(ctx, &pb.DeleteAIBenchmarkJobRequest{AiBenchmarkJobName: name})
					return err
				})
				_ = os.RemoveAll(filepath.Join(work, "results", name))
			}
		}()
	}

	// Faults.
	var faults []string
	kinds := []string{"kill -9 leader", "kill -9 agent", "SIGSTOP agent 10s", "SIGSTOP leader 5s", "leadership transfer"}
	for i := 0; time.Now().Add(*faultEvery).Before(end); i++ {
		time.Sleep(*faultEvery)
		kind := kinds[i%len(kinds)]
		desc := kind
		switch kind {
		case "kill -9 leader":
			if l := leader(); l != nil {
				l.signal(syscall.SIGKILL)
				time.Sleep(5 * time.Second)
				must(l.start())
				desc += " " + l.name
			}
		case "kill -9 agent":
			a := ags[rand.IntN(len(ags))]
			a.signal(syscall.SIGKILL)
			time.Sleep(5 * time.Second)
			must(a.start())
			desc += " " + a.name
		case "SIGSTOP agent 10s":
			a := ags[rand.IntN(len(ags))]
			a.signal(syscall.SIGSTOP)
			time.Sleep(10 * time.Second)
			a.signal(syscall.SIGCONT)
			desc += " " + a.name
		case "SIGSTOP leader 5s":
			if l := leader(); l != nil {
				l.signal(syscall.SIGSTOP)
				time.Sleep(5 * time.Second)
				l.signal(syscall.SIGCONT)
				desc += " " + l.name
			}
		case "leadership transfer":
			_ = retry("transfer", func(ctx context.Context) error {
				_, err := pb.NewOperatorServiceClient(conns[coords[0].name]).RaftTransferLeader(ctx, &pb.RaftTransferLeaderRequest{})
				return err
			})
		}
		faults = append(faults, fmt.Sprintf("%s at %s", desc, time.Since(start).Round(time.Second)))
		fmt.Println("fault:", faults[len(faults)-1])
	}
	time.Sleep(time.Until(end))
	wg.Wait() // job runners finish their last job
	close(stopSampling)
	<-samplerDone

	// Report.
	var b strings.Builder
	fmt.Fprintf(&b, "## Soak\n\n")
	fmt.Fprintf(&b, "- date: %s; %d cores; %s\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "- command: `go run ./bench/soak -bin %s -duration %s -agents %d -fault-every %s`\n", *binDir, *duration, *agents, *faultEvery)
	fmt.Fprintf(&b, "- 3 coordinators, %d agents (simulated 1xH100), one llmsim; jobs of 40 requests at concurrency 4 on 2 agents, two at a time, each deleted when it ends\n", *agents)
	fmt.Fprintf(&b, "- faults (%d): %s\n\n", len(faults), strings.Join(faults, "; "))
	fmt.Fprintf(&b, "| Jobs | Count |\n|---|---|\n")
	for _, k := range sortedKeys(outcomes) {
		fmt.Fprintf(&b, "| %s | %d |\n", k, outcomes[k])
	}
	if len(reasons) > 0 {
		fmt.Fprintf(&b, "\n| Failure reason | Count |\n|---|---|\n")
		for _, k := range sortedKeys(reasons) {
			fmt.Fprintf(&b, "| %s | %d |\n", strings.ReplaceAll(k, "|", "\\|"), reasons[k])
		}
	}
	fmt.Fprintf(&b, "\nPer process, over its longest run without a restart (samples every 5 s): middle third's mean → last third's mean.\n\n")
	fmt.Fprintf(&b, "| Process | Restarts | Samples | RSS MiB | Goroutines | Open fds | Trend |\n|---|---|---|---|---|---|---|\n")
	trends := 0
	for _, p := range all {
		inc := longest(p.samples)
		if len(inc) < 6 {
			fmt.Fprintf(&b, "| %s | %d | %d | | | | too few samples |\n", p.name, len(p.samples)-1, len(inc))
			continue
		}
		rssA, rssB := thirds(inc, func(s sample) float64 { return float64(s.rssKiB) / 1024 })
		gA, gB := thirds(inc, func(s sample) float64 { return float64(s.goroutines) })
		fA, fB := thirds(inc, func(s sample) float64 { return float64(s.fds) })
		var grew []string
		if rssB > rssA*1.25 && rssB-rssA > 16 {
			grew = append(grew, "memory")
		}
		if gA >= 0 && gB > gA*1.3 && gB-gA > 50 {
			grew = append(grew, "goroutines")
		}
		if fB > fA*1.3 && fB-fA > 20 {
			grew = append(grew, "fds")
		}
		trend := "none"
		if len(grew) > 0 {
			trend = "**grows: " + strings.Join(grew, ", ") + "**"
			trends++
		}
		gs := "n/a"
		if gA >= 0 {
			gs = fmt.Sprintf("%.0f → %.0f", gA, gB)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f → %.1f | %s | %.0f → %.0f | %s |\n", p.name, len(p.samples)-1, len(inc), rssA, rssB, gs, fA, fB, trend)
	}
	if len(stuckLogs) > 0 {
		fmt.Fprintf(&b, "\nJob logs of the jobs that did not end:\n\n```\n%s\n```\n", strings.Join(stuckLogs, "\n"))
	}
	verdict := "pass"
	if trends > 0 || stuck > 0 {
		verdict = fmt.Sprintf("FAIL: %d processes grew, %d jobs never ended", trends, stuck)
	}
	fmt.Fprintf(&b, "\nResult: %s.\n", verdict)
	fmt.Print("\n" + b.String())
	if *reportPath != "" {
		must(os.WriteFile(*reportPath, []byte("# Soak results\n\nWritten by `make soak` (bench/soak); do not edit by hand.\n\n"+b.String()), 0o644))
	}
	if verdict != "pass" {
		os.Exit(1)
	}
}

func shorten(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func longest(incs [][]sample) []sample {
	var best []sample
	for _, s := range incs {
		if len(s) > len(best) {
			best = s
		}
	}
	return best
}

// thirds returns the mean of the middle third and of the last third of
// the samples (the first third is warm-up).
func thirds(s []sample, f func(sample) float64) (float64, float64) {
	n := len(s) / 3
	mean := func(xs []sample) float64 {
		t := 0.0
		for _, x := range xs {
			t += f(x)
		}
		return t / float64(len(xs))
	}
	return mean(s[n : 2*n]), mean(s[2*n:])
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}
