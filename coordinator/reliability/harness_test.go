package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/perfleet/perfleet/coordinator/reliability"
	"github.com/perfleet/perfleet/coordinator/server"
	"github.com/perfleet/perfleet/pkg/faultnet"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// The suite runs a short profile by default (CI) and the full
// durations with PERFLEET_RELIABILITY=full (make reliability).
var full = os.Getenv("PERFLEET_RELIABILITY") == "full"

var report = &reliability.Report{Profile: map[bool]string{true: "full", false: "short (CI)"}[full]}

func TestMain(m *testing.M) {
	_ = os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	start := time.Now()
	code := m.Run()
	// Every node the tests started has shut down: nothing it ran may be
	// left behind.
	if code == 0 {
		// goleak retries for about 2 s; memberlist's probes and Raft's
		// connection handlers may take a few seconds more to notice a
		// shutdown under -race, so look again a few times.
		err := goleak.Find()
		for try := 0; err != nil && try < 4; try++ {
			time.Sleep(2 * time.Second)
			err = goleak.Find()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	if path := os.Getenv("PERFLEET_RELIABILITY_REPORT"); path != "" {
		cmd := "make reliability"
		if !full {
			cmd = "go test ./coordinator/reliability"
		}
		if err := os.WriteFile(path, []byte(report.Markdown(cmd, time.Since(start))), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "write report:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// pick returns the short or the full value.
func pick[T any](short, long T) T {
	if full {
		return long
	}
	return short
}

const account = "000000000000"

const spec = "benchmark:\n  type: aiperf\nparameters:\n  concurrency: [1]\n  request_count: 10\n"

// cluster is an in-process coordinator cluster whose Raft traffic runs
// through one faultnet.Net.
type cluster struct {
	t     *testing.T
	net   *faultnet.Net
	mu    sync.Mutex
	up    []*server.Server // nil while a node is down
	cfgs  []server.Config
	cli   []pb.InferenceOptimizationClient
	conns []*grpc.ClientConn
}

func newCluster(t *testing.T, n int, mutate func(c *server.Config)) *cluster {
	t.Helper()
	fn := faultnet.New()
	servers := server.TestCluster(t, n, func(_ int, c *server.Config) {
		c.WrapRaftStream = fn.Wrap
		if mutate != nil {
			mutate(c)
		}
	})
	c := &cluster{t: t, net: fn, up: servers}
	for _, s := range servers {
		c.cfgs = append(c.cfgs, s.Config())
		conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c.cli = append(c.cli, pb.NewInferenceOptimizationClient(conn))
		c.conns = append(c.conns, conn)
	}
	return c
}

// nodes returns the running nodes.
func (c *cluster) nodes() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*server.Server
	for _, s := range c.up {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (c *cluster) watch() *reliability.LeaderWatch {
	w := reliability.WatchLeaders(func() []reliability.Node {
		var out []reliability.Node
		for _, s := range c.nodes() {
			out = append(out, s)
		}
		return out
	})
	c.t.Cleanup(w.Stop)
	return w
}

// addrs are the nodes' Raft addresses, the names faultnet knows them by.
func (c *cluster) addrs() []string {
	var out []string
	for _, cfg := range c.cfgs {
		out = append(out, cfg.RaftAddr)
	}
	return out
}

// leader waits for a leader among the running nodes and returns its index.
func (c *cluster) leader() int {
	c.t.Helper()
	l := server.WaitForLeader(c.t, c.nodes()...)
	for i, s := range c.up {
		if s == l {
			return i
		}
	}
	c.t.Fatal("leader not in the cluster")
	return -1
}

// index returns the index of the node with this ID, or -1.
func (c *cluster) index(nodeID string) int {
	for i, cfg := range c.cfgs {
		if cfg.NodeID == nodeID {
			return i
		}
	}
	return -1
}

// kill crashes node i.
func (c *cluster) kill(i int) {
	c.mu.Lock()
	s := c.up[i]
	c.up[i] = nil
	c.mu.Unlock()
	if s != nil {
		_ = s.Kill()
	}
}

// restart starts node i again on its data dir and addresses.
func (c *cluster) restart(i int) {
	c.t.Helper()
	cfg := c.cfgs[i]
	cfg.GRPCAddr, cfg.GRPCAdvertise = cfg.GRPCAdvertise, ""
	var s *server.Server
	var err error
	for try := 0; try < 50; try++ { // the old listener's port may linger briefly
		if s, err = server.New(cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("restart node%d: %v", i, err)
	}
	c.t.Cleanup(func() { _ = s.Shutdown() })
	c.mu.Lock()
	c.up[i] = s
	c.mu.Unlock()
}

// load is a concurrent client workload recorded into one history:
//   - pool clients run create, describe, delete and list on a few shared
//     names, so operations on a name overlap;
//   - unique clients create names of their own, so every acknowledged create
//     can be checked for at the end.
type load struct {
	c        *cluster
	rec      *reliability.Recorder
	pool     []string
	acked    sync.Map // unique names whose create was acknowledged
	ackCount atomic.Int64
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	started  time.Time
}

type loadOpts struct {
	poolClients, poolSize, uniqueClients int
	// rate, when set, paces the unique creates to this many per second in
	// total instead of as fast as the cluster answers.
	rate int
}

func (c *cluster) startLoad(o loadOpts) *load {
	l := &load{c: c, rec: reliability.NewRecorder(), started: time.Now()}
	for i := 0; i < o.poolSize; i++ {
		l.pool = append(l.pool, fmt.Sprintf("pool-%02d", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	var tick <-chan time.Time
	if o.rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(o.rate))
		c.t.Cleanup(t.Stop)
		tick = t.C
	}
	for i := 0; i < o.poolClients; i++ {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.poolClient(ctx, i) }()
	}
	for i := 0; i < o.uniqueClients; i++ {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.uniqueClient(ctx, o.poolClients+i, tick) }()
	}
	return l
}

// stop ends the workload and waits for its calls to return.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

const callTimeout = 3 * time.Second

func (l *load) call(ctx context.Context, node *int, in reliability.Input, client int, f func(context.Context, pb.InferenceOptimizationClient) ([]string, error)) reliability.Outcome {
	cli := l.c.cli[*node%len(l.c.cli)]
	out := l.rec.Do(client, in, func() ([]string, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		return f(cctx, cli)
	})
	if out == reliability.Unknown {
		*node++ // try another node next
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

func createConfig(name string) func(context.Context, pb.InferenceOptimizationClient) ([]string, error) {
	return func(ctx context.Context, c pb.InferenceOptimizationClient) ([]string, error) {
		_, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: name,
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}})
		return nil, err
	}
}

func describeConfig(name string) func(context.Context, pb.InferenceOptimizationClient) ([]string, error) {
	return func(ctx context.Context, c pb.InferenceOptimizationClient) ([]string, error) {
		_, err := c.DescribeAIWorkloadConfig(ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: name})
		return nil, err
	}
}

func (l *load) poolClient(ctx context.Context, client int) {
	node := client
	rng := rand.New(rand.NewPCG(uint64(client), 7))
	for ctx.Err() == nil {
		name := l.pool[rng.IntN(len(l.pool))]
		switch p := rng.IntN(100); {
		case p < 35:
			l.call(ctx, &node, reliability.Input{Kind: reliability.Create, Name: name}, client, createConfig(name))
		case p < 65:
			l.call(ctx, &node, reliability.Input{Kind: reliability.Describe, Name: name}, client, describeConfig(name))
		case p < 85:
			l.call(ctx, &node, reliability.Input{Kind: reliability.Delete, Name: name}, client,
				func(ctx context.Context, c pb.InferenceOptimizationClient) ([]string, error) {
					_, err := c.DeleteAIWorkloadConfig(ctx, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: name})
					return nil, err
				})
		default:
			l.call(ctx, &node, reliability.Input{Kind: reliability.List, Names: l.pool}, client,
				func(ctx context.Context, c pb.InferenceOptimizationClient) ([]string, error) {
					resp, err := c.ListAIWorkloadConfigs(ctx, &pb.ListAIWorkloadConfigsRequest{NameContains: "pool-", MaxResults: 100})
					var names []string
					for _, s := range resp.GetAiWorkloadConfigs() {
						names = append(names, s.GetAiWorkloadConfigName())
					}
					return names, err
				})
		}
	}
}

func (l *load) uniqueClient(ctx context.Context, client int, tick <-chan time.Time) {
	node := client
	for seq := 0; ctx.Err() == nil; seq++ {
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		name := fmt.Sprintf("u-%03d-%05d", client, seq)
		if l.call(ctx, &node, reliability.Input{Kind: reliability.Create, Name: name}, client, createConfig(name)) == reliability.OK {
			l.acked.Store(name, true)
			l.ackCount.Add(1)
		}
	}
}

// outcome is what a scenario measured, for its report row.
type outcome struct {
	ops, unknown    int
	lost            int
	leaderTime      time.Duration // worst time to a new leader after a fault
	faults          int
	terms           int
	twoLeaders      int
	extra           []string
	linearizability porcupine.CheckResult
}

// finish heals the network, waits for a leader, reads every pool name once
// more, and checks the run: the history is linearizable, no acknowledged
// create is lost on any node, no term had two leaders, and every node holds
// the same state.
func (l *load) finish(t *testing.T, w *reliability.LeaderWatch, o *outcome) {
	t.Helper()
	c := l.c
	c.net.Heal()
	li := c.leader()
	node := li
	for _, name := range l.pool {
		for try := 0; try < 20; try++ {
			if l.call(context.Background(), &node, reliability.Input{Kind: reliability.Describe, Name: name}, 999, describeConfig(name)) != reliability.Unknown {
				break
			}
		}
	}
	if bad := l.rec.Unexpected(); len(bad) > 0 {
		t.Errorf("%d calls failed with unexpected errors, first: %s", len(bad), bad[0])
	}
	hist := l.rec.Operations()
	o.ops = len(hist)
	o.unknown = l.rec.Count(reliability.Unknown)
	viz := filepath.Join(os.TempDir(), "perfleet-"+strings.ReplaceAll(t.Name(), "/", "_")+".html")
	res, err := reliability.Check(hist, pick(60*time.Second, 300*time.Second), viz)
	o.linearizability = res
	switch {
	case err != nil:
		t.Errorf("visualize: %v", err)
	case res == porcupine.Illegal:
		t.Errorf("history is not linearizable (%s); visualization: %s", reliability.Summary(hist), viz)
	case res == porcupine.Unknown:
		t.Errorf("linearizability check timed out on %s", reliability.Summary(hist))
	}

	// Every node converges on one state, which holds every acknowledged
	// unique create.
	convergeStart := time.Now()
	hash := waitConverged(t, c)
	o.extra = append(o.extra, fmt.Sprintf("all nodes on one state %s after the check", time.Since(convergeStart).Round(time.Millisecond)))
	l.acked.Range(func(k, _ any) bool {
		for _, s := range c.nodes() {
			if _, err := s.State().WorkloadConfig(account, k.(string)); err != nil {
				o.lost++
				t.Errorf("acknowledged create %s missing on %s: %v", k, s.NodeID(), err)
				break
			}
		}
		return true
	})
	w.Stop()
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("two leaders in one term: %v", v)
	}
	o.twoLeaders = len(w.Violations())
	o.terms = w.Terms()
	o.extra = append(o.extra, "state hash "+hash[:12]+" on all nodes")
}

// waitConverged waits until every running node has the same state hash and
// returns it.
func waitConverged(t *testing.T, c *cluster) string {
	t.Helper()
	// A deposed leader may hold many entries of its own term that the new
	// leader overwrites one mismatch at a time: under -race on 2 busy cores
	// that catch-up has taken over 20 s.
	deadline := time.Now().Add(90 * time.Second)
	for {
		var hashes []string
		same := true
		for _, s := range c.nodes() {
			h := s.State().Hash()
			if len(hashes) > 0 && h != hashes[0] {
				same = false
			}
			hashes = append(hashes, h)
		}
		if same && len(hashes) > 0 {
			return hashes[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("state hashes still differ after 90 s: %v", hashes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// row turns a scenario's outcome into a report row.
func (o *outcome) row(t *testing.T, test, criterion, fault string) reliability.Row {
	m := fmt.Sprintf("%s; %d ops checked (%d unknown outcomes), porcupine %s; %d acknowledged writes lost; %d terms with a leader, %d with two",
		fault, o.ops, o.unknown, o.linearizability, o.lost, o.terms, o.twoLeaders)
	if o.leaderTime > 0 {
		m += fmt.Sprintf("; new leader after %s (worst)", o.leaderTime.Round(time.Millisecond))
	}
	if len(o.extra) > 0 {
		m += "; " + strings.Join(o.extra, "; ")
	}
	return reliability.Row{Test: test, Criterion: criterion, Measured: m, Pass: !t.Failed()}
}

// unavailable reports whether err says the node cannot answer now.
func unavailable(err error) bool {
	c := status.Code(err)
	return c == codes.Unavailable || c == codes.DeadlineExceeded
}
