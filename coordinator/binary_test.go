package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests drive the real perfleet binary the way a user does: start it,
// call it with grpcurl and with its own CLI, kill a node.

func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "perfleet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a perfleet process whose output is collected.
type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &syncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, p.out.String())
		}
	})
	return p
}

func (p *proc) waitFor(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.out.String(), text) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q not printed within %v; output:\n%s", text, timeout, p.out.String())
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// grpcurlBinary builds grpcurl (a go.mod tool) once, before any server is
// started, so its first compile (minutes on a busy 2-core machine) does not
// count against a command's time limit.
func grpcurlBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "grpcurl")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/fullstorydev/grpcurl/cmd/grpcurl").CombinedOutput(); err != nil {
		t.Fatalf("building grpcurl: %v\n%s", err, b)
	}
	return out
}

func TestDevModeWithGrpcurl(t *testing.T) {
	grpcurl := grpcurlBinary(t)
	bin := buildBinary(t)
	addr := freeAddr(t)
	dev := start(t, bin, "dev", "--grpc-addr", addr, "--gossip-addr", freeAddr(t))
	dev.waitFor(t, "ready:", 20*time.Second)

	out, err := run(t, grpcurl, "-plaintext", addr, "list")
	if err != nil {
		t.Fatalf("grpcurl list: %v\n%s", err, out)
	}
	for _, svc := range []string{"perfleet.v1.InferenceOptimization", "perfleet.v1.OperatorService", "grpc.health.v1.Health"} {
		if !strings.Contains(out, svc) {
			t.Errorf("grpcurl list lacks %s:\n%s", svc, out)
		}
	}
	out, err = run(t, grpcurl, "-plaintext", addr, "describe", "perfleet.v1.InferenceOptimization.CreateAIBenchmarkJob")
	if err != nil || !strings.Contains(out, "CreateAIBenchmarkJobRequest") {
		t.Fatalf("grpcurl describe: %v\n%s", err, out)
	}

	spec := `{"ai_workload_config_name":"chat","ai_workload_configs":{"workload_spec":{"inline":"benchmark:\n  type: aiperf\nparameters:\n  concurrency: 4\n"}}}`
	out, err = run(t, grpcurl, "-plaintext", "-d", spec, addr, "perfleet.v1.InferenceOptimization/CreateAIWorkloadConfig")
	if err != nil || !strings.Contains(out, "ai-workload-config/chat") {
		t.Fatalf("grpcurl create: %v\n%s", err, out)
	}
	out, err = run(t, grpcurl, "-plaintext", "-d", `{"ai_workload_config_name":"chat"}`, addr, "perfleet.v1.InferenceOptimization/DescribeAIWorkloadConfig")
	if err != nil || !strings.Contains(out, "concurrency: 4") || !strings.Contains(out, "creationTime") {
		t.Fatalf("grpcurl describe: %v\n%s", err, out)
	}
	// A bad request names the field and the rule.
	out, err = run(t, grpcurl, "-plaintext", "-d", `{"ai_workload_config_name":"-bad"}`, addr, "perfleet.v1.InferenceOptimization/CreateAIWorkloadConfig")
	if err == nil || !strings.Contains(out, "InvalidArgument") || !strings.Contains(out, "ai_workload_config_name") {
		t.Fatalf("grpcurl bad create: %v\n%s", err, out)
	}
	out, err = run(t, grpcurl, "-plaintext", addr, "grpc.health.v1.Health/Check")
	if err != nil || !strings.Contains(out, "SERVING") {
		t.Fatalf("health: %v\n%s", err, out)
	}
}

func TestThreeProcessClusterSurvivesKill9(t *testing.T) {
	bin := buildBinary(t)
	grpcAddrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = start(t, bin, "server", "--insecure-loopback", "--node-id", fmt.Sprintf("n%d", i), "--data-dir", t.TempDir(),
			"--grpc-addr", grpcAddrs[i], "--raft-addr", freeAddr(t), "--gossip-addr", freeAddr(t), "--bootstrap-expect", "3",
			"--join", strings.Join(grpcAddrs, ","), "--log-level", "info")
	}
	for _, p := range procs {
		p.waitFor(t, "ready:", 20*time.Second)
	}
	all := strings.Join(grpcAddrs, ",")
	cli := func(args ...string) (string, error) {
		return run(t, bin, append([]string{"--addr", all}, args...)...)
	}
	var peers string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		peers, _ = cli("operator", "raft", "list-peers")
		if strings.Count(peers, "follower") == 2 && strings.Count(peers, "leader") == 1 &&
			strings.Contains(peers, grpcAddrs[0]) && strings.Contains(peers, grpcAddrs[1]) && strings.Contains(peers, grpcAddrs[2]) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Count(peers, "follower") != 2 {
		t.Fatalf("cluster did not form:\n%s", peers)
	}
	specFile := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(specFile, []byte("benchmark:\n  type: aiperf\nparameters:\n  concurrency: [1, 2]\n"), 0o600)
	if out, err := cli("workload-config", "create", "wl", "--spec", specFile); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if out, err := cli("benchmark-job", "create", "before-kill", "--workload-config", "wl", "--endpoint", "http://127.0.0.1:9"); err != nil {
		t.Fatalf("create job: %v\n%s", err, out)
	}

	// kill -9 the leader; the CLI fails over to the survivors and a write
	// succeeds once a new leader is elected.
	leader := -1
	for i, a := range grpcAddrs {
		for _, line := range strings.Split(peers, "\n") {
			if strings.Contains(line, a) && strings.Contains(line, "leader") {
				leader = i
			}
		}
	}
	if leader < 0 {
		t.Fatalf("no leader in:\n%s", peers)
	}
	if err := procs[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	out, err := cli("benchmark-job", "create", "after-kill", "--workload-config", "wl", "--endpoint", "http://127.0.0.1:9")
	if err != nil {
		t.Fatalf("create after kill: %v\n%s", err, out)
	}
	t.Logf("write succeeded %v after kill -9 of the leader", time.Since(killed).Round(time.Millisecond))
	out, err = cli("benchmark-job", "list")
	if err != nil || !strings.Contains(out, "before-kill") || !strings.Contains(out, "after-kill") {
		t.Fatalf("list after kill: %v\n%s", err, out)
	}
	out, _ = cli("operator", "raft", "list-peers")
	if strings.Count(out, "leader") != 1 {
		t.Fatalf("want one leader after the kill:\n%s", out)
	}

	// Kill a second node: without a quorum the CLI says so.
	for i, p := range procs {
		if i != leader {
			p.cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	out, err = cli("--timeout", "4s", "benchmark-job", "list")
	if err == nil || !strings.Contains(out, "no cluster leader (is a quorum of servers up?)") || !strings.Contains(out, "gave up after retrying") {
		t.Fatalf("want a clear no-quorum error, got %v:\n%s", err, out)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDevAgentsRecommendationThroughTheCLI runs a whole recommendation with
// one dev process and its in-process simulated fleet, driven by the CLI.
func TestDevAgentsRecommendationThroughTheCLI(t *testing.T) {
	bin := buildBinary(t)
	agentBin := filepath.Join(filepath.Dir(bin), "perfleet-agent")
	if out, err := exec.Command("go", "build", "-o", agentBin, "github.com/perfleet/perfleet/agent").CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	dev := start(t, bin, "dev", "--grpc-addr", addr, "--gossip-addr", freeAddr(t), "--agents", "2", "--simulate-gpus", "1xL4",
		"--instance-type", "ml.g6.xlarge")
	dev.waitFor(t, "ready:", 20*time.Second)
	if !strings.Contains(dev.out.String(), "2 simulated agent(s)") {
		t.Fatalf("dev output:\n%s", dev.out.String())
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "wl.yaml")
	if err := os.WriteFile(spec, []byte("benchmark: {type: aiperf}\nparameters:\n  model: m\n  concurrency: [1, 2]\n  request_count: 6\n  osl: 8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) { return run(t, bin, append([]string{"--addr", addr}, args...)...) }
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := cli("agent", "list", "--status", "alive")
		if strings.Count(out, "true") == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := cli("workload-config", "create", "w", "--spec", spec); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := cli("recommendation-job", "create", "r", "--workload-config", "w", "--model", "hf://org/m-1b", "--goal", "cost",
		"--output-location", "file://"+dir, "--watch")
	if err != nil || !strings.Contains(out, "r: Completed") || !strings.Contains(out, "Recommendations (best first)") || !strings.Contains(out, "r-c1") {
		t.Fatalf("recommendation: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "r", "report.html")); err != nil {
		t.Fatal(err)
	}
}
