// Command raftbench measures the coordinator's write path on a 3-node
// loopback cluster of real `perfleet server` processes:
//
//  1. committed CreateAIBenchmarkJob calls per second, with p50 and p99
//     latency, from N concurrent gRPC clients;
//  2. the time from `kill -9` of the leader until a write succeeds again,
//     measured by a client that retries every 10 ms against the survivors.
//
// Usage: go run ./bench/raftbench -bin bin/perfleet [-clients 64] [-duration 10s] [-kills 3]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

type node struct {
	id, grpcAddr, raftAddr, gossipAddr, dir string
	cmd                                     *exec.Cmd
}

func (n *node) start(bin string, join []string) error {
	n.cmd = exec.Command(bin, "server", "--insecure-loopback", "--node-id", n.id, "--data-dir", n.dir, "--grpc-addr", n.grpcAddr,
		"--raft-addr", n.raftAddr, "--gossip-addr", n.gossipAddr, "--bootstrap-expect", "3", "--join", strings.Join(join, ","),
		"--max-active-jobs", "0", "--log-level", "error")
	log, err := os.Create(filepath.Join(n.dir, "..", n.id+".log"))
	if err != nil {
		return err
	}
	n.cmd.Stdout, n.cmd.Stderr = log, log
	return n.cmd.Start()
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func dial(addr string) pb.InferenceOptimizationClient {
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	return pb.NewInferenceOptimizationClient(c)
}

func leaderOf(nodes []*node) (*node, error) {
	for _, n := range nodes {
		if n.cmd == nil || n.cmd.ProcessState != nil {
			continue
		}
		c, err := grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := pb.NewOperatorServiceClient(c).RaftListPeers(ctx, &pb.RaftListPeersRequest{})
		cancel()
		c.Close()
		if err != nil {
			continue
		}
		for _, p := range resp.GetPeers() {
			for _, m := range nodes {
				if p.GetLeader() && p.GetServer().GetNodeId() == m.id && p.GetServer().GetGrpcAddr() != "" {
					return m, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no leader")
}

func waitLeader(nodes []*node, timeout time.Duration) *node {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l, err := leaderOf(nodes); err == nil {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "no leader within", timeout)
	os.Exit(1)
	return nil
}

func jobReq(name string) *pb.CreateAIBenchmarkJobRequest {
	return &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: name, AiWorkloadConfigIdentifier: "bench",
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://127.0.0.1:9"}},
		OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file:///tmp/perfleet-bench"},
		RoleArn:         "arn:aws:iam::000000000000:role/bench"}
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func main() {
	bin := flag.String("bin", "bin/perfleet", "perfleet binary")
	clients := flag.Int("clients", 64, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "load duration")
	kills := flag.Int("kills", 3, "leader kills to time")
	target := flag.String("target", "leader", "where clients send: leader or all (round robin over the nodes, followers forward)")
	asJSON := flag.Bool("json", false, "print the figures as one JSON object on the last line (for make bench)")
	flag.Parse()

	root, _ := os.MkdirTemp("", "raftbench-")
	defer os.RemoveAll(root)
	nodes := make([]*node, 3)
	var grpcAddrs []string
	for i := range nodes {
		dir := filepath.Join(root, fmt.Sprintf("n%d", i))
		os.MkdirAll(dir, 0o700)
		nodes[i] = &node{id: fmt.Sprintf("n%d", i), grpcAddr: freeAddr(), raftAddr: freeAddr(), gossipAddr: freeAddr(), dir: dir}
		grpcAddrs = append(grpcAddrs, nodes[i].grpcAddr)
	}
	for _, n := range nodes {
		if err := n.start(*bin, grpcAddrs); err != nil {
			panic(err)
		}
	}
	defer func() {
		for _, n := range nodes {
			if n.cmd != nil && n.cmd.ProcessState == nil {
				n.cmd.Process.Kill()
				n.cmd.Wait()
			}
		}
	}()
	leader := waitLeader(nodes, 30*time.Second)
	ctx := context.Background()
	lc := dial(leader.grpcAddr)
	if _, err := lc.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "bench",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: "benchmark:\n  type: aiperf\n"}}}); err != nil {
		panic(err)
	}

	// 1. Throughput and latency.
	addrs := []string{leader.grpcAddr}
	if *target == "all" {
		addrs = grpcAddrs
	}
	var ok, failed atomic.Int64
	lat := make([][]time.Duration, *clients)
	stop := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cl := dial(addrs[c%len(addrs)])
			for i := 0; time.Now().Before(stop); i++ {
				t0 := time.Now()
				_, err := cl.CreateAIBenchmarkJob(ctx, jobReq(fmt.Sprintf("b%d-%d", c, i)))
				if err != nil {
					failed.Add(1)
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
				ok.Add(1)
			}
		}(c)
	}
	t0 := time.Now()
	wg.Wait()
	elapsed := time.Since(t0)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	fmt.Printf("creates: clients=%d target=%s duration=%s committed=%d failed=%d rate=%.0f/s p50=%.2fms p99=%.2fms\n",
		*clients, *target, elapsed.Round(time.Millisecond), ok.Load(), failed.Load(), float64(ok.Load())/elapsed.Seconds(),
		float64(pct(all, 0.50).Microseconds())/1000, float64(pct(all, 0.99).Microseconds())/1000)

	// 2. kill -9 the leader, time until a write succeeds, restart it.
	var times []time.Duration
	for k := 0; k < *kills; k++ {
		leader = waitLeader(nodes, 30*time.Second)
		var survivors []pb.InferenceOptimizationClient
		for _, n := range nodes {
			if n != leader {
				survivors = append(survivors, dial(n.grpcAddr))
			}
		}
		leader.cmd.Process.Signal(syscall.SIGKILL)
		killed := time.Now()
		leader.cmd.Wait()
		for i := 0; ; i++ {
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, err := survivors[i%2].CreateAIBenchmarkJob(cctx, jobReq(fmt.Sprintf("kill%d-%d", k, i)))
			cancel()
			if err == nil {
				break
			}
			if time.Since(killed) > 30*time.Second {
				fmt.Println("no write within 30s of the kill")
				os.Exit(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
		d := time.Since(killed)
		times = append(times, d)
		fmt.Printf("kill -9 leader %s: write succeeded after %s\n", leader.id, d.Round(time.Millisecond))
		if err := leader.start(*bin, grpcAddrs); err != nil {
			panic(err)
		}
		time.Sleep(2 * time.Second) // let it catch up before the next kill
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	if len(times) > 0 {
		fmt.Printf("failover: kills=%d min=%s median=%s max=%s\n", len(times), times[0].Round(time.Millisecond),
			times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	}
	if *asJSON {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		out := map[string]any{"clients": *clients, "target": *target, "committed": ok.Load(), "failed": failed.Load(),
			"rate": float64(ok.Load()) / elapsed.Seconds(), "p50_ms": ms(pct(all, 0.50)), "p99_ms": ms(pct(all, 0.99))}
		var fo []float64
		for _, d := range times {
			fo = append(fo, d.Seconds())
		}
		out["failover_s"] = fo
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	}
}
