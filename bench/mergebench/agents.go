package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/perfleet/perfleet/agent/control"
	"github.com/perfleet/perfleet/pkg/gossip"
	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// ---------------------------------------------------------------------------
// Windows: built once per variant with the real accumulator, re-stamped and
// marshalled once per (variant, second), shared by the agents of a variant.

// variant is one template window made from recordsPerWindow request records.
type variant struct {
	tmpl   *metrics.Window
	ok     int64 // successful requests in it (what request_count counts)
	baseMs int64 // the template's StartMs
}

// makeVariants builds n template windows, each from records realistic
// streaming requests (ISL ~550, OSL ~180 tokens, TTFT ~120 ms, ITL ~18 ms,
// 0.5 % errors), through metrics.Accumulator as an agent's load generator
// would.
func makeVariants(n, records int, seed uint64) []variant {
	out := make([]variant, n)
	base := time.Now().Truncate(time.Second).Add(-time.Hour)
	for v := range out {
		rng := rand.New(rand.NewPCG(seed, uint64(v)))
		acc := metrics.NewAccumulator(fmt.Sprintf("sim-%d", v), metrics.Goodput{}, 0)
		var got *metrics.Window
		acc.OnWindow = func(w *metrics.Window) { got = w }
		for i := 0; i < records; i++ {
			acc.Add(simRecord(rng, base, i))
		}
		acc.Flush()
		if got == nil {
			panic("accumulator emitted no window")
		}
		out[v] = variant{tmpl: got, ok: got.Counters[metrics.CounterOK], baseMs: got.StartMs}
	}
	return out
}

func simRecord(rng *rand.Rand, base time.Time, i int) *metrics.RequestRecord {
	end := base.UnixNano() + rng.Int64N(int64(time.Second))
	isl := max(16, int64(550+150*rng.NormFloat64()))
	osl := max(8, int64(180+60*rng.NormFloat64()))
	ttft := int64(120e6 * math.Exp(0.5*rng.NormFloat64()))
	chunks := make([]int64, osl)
	t := end
	for j := int(osl) - 1; j >= 0; j-- {
		chunks[j] = t
		t -= int64(18e6 * math.Exp(0.15*rng.NormFloat64()))
	}
	send := chunks[0] - ttft
	r := &metrics.RequestRecord{Phase: metrics.PhaseProfiling, SessionNum: int64(i), RequestID: fmt.Sprint(i), Model: "sim-llm",
		Streaming: true, ScheduledNs: send - rng.Int64N(2e6), SendNs: send, AckNs: send + ttft/2, ChunkNs: chunks,
		FirstOutputNs: chunks[0], EndNs: end, InputTokens: isl, OutputTokens: osl, TokenSource: metrics.TokensServer}
	if rng.IntN(200) == 0 {
		r.Error, r.HTTPStatus, r.ChunkNs = "http_503", 503, nil
	}
	return r
}

// windowCache holds the marshalled window of each (variant, seq).
type windowCache struct {
	variants []variant
	mu       sync.Mutex
	m        map[[2]uint64]*cachedWindow
}

type cachedWindow struct {
	once sync.Once
	b    []byte
}

// get returns variant v's window stamped for seq, starting at startMs.
func (c *windowCache) get(v int, seq uint64, startMs int64) []byte {
	key := [2]uint64{uint64(v), seq}
	c.mu.Lock()
	cw := c.m[key]
	if cw == nil {
		cw = &cachedWindow{}
		c.m[key] = cw
	}
	c.mu.Unlock()
	cw.once.Do(func() {
		vt := c.variants[v]
		w := vt.tmpl.Clone()
		shift := startMs - vt.baseMs
		w.Seq, w.StartMs = seq-1, startMs
		if w.FirstSendNs != 0 {
			w.FirstSendNs += shift * 1e6
		}
		if w.LastEndNs != 0 {
			w.LastEndNs += shift * 1e6
		}
		cw.b = metrics.MarshalWindow(w)
	})
	return cw.b
}

// ---------------------------------------------------------------------------
// Simulated agents.

// fleetStats is what every agent of a row adds to.
type fleetStats struct {
	acked   atomic.Int64 // windows acknowledged by the leader (merged)
	sent    atomic.Int64 // windows sent
	sendErr atomic.Int64
	// per window seq k (1-based): how many agents sent it, when the last did,
	// and the requests it carried.
	mu        sync.Mutex
	sentBy    map[uint64]int
	allSentAt map[uint64]time.Time
	okInSeq   map[uint64]int64
	// per window seq: how many agents have it acknowledged, and when the
	// last one got its ack (the leader acks after merging).
	ackedBy    map[uint64]int
	allAckedAt map[uint64]time.Time
}

func newFleetStats() *fleetStats {
	return &fleetStats{sentBy: map[uint64]int{}, allSentAt: map[uint64]time.Time{}, okInSeq: map[uint64]int64{},
		ackedBy: map[uint64]int{}, allAckedAt: map[uint64]time.Time{}}
}

func (f *fleetStats) noteSent(seq uint64, ok int64, agents int) {
	now := time.Now()
	f.mu.Lock()
	f.sentBy[seq]++
	f.okInSeq[seq] += ok
	if f.sentBy[seq] == agents {
		f.allSentAt[seq] = now
	}
	f.mu.Unlock()
	f.sent.Add(1)
}

func (f *fleetStats) noteAcked(from, to uint64, agents int) {
	now := time.Now()
	f.mu.Lock()
	for s := from; s <= to; s++ {
		f.ackedBy[s]++
		if f.ackedBy[s] == agents {
			f.allAckedAt[s] = now
		}
	}
	f.mu.Unlock()
}

// simAgent is one simulated agent: a memberlist node carrying agent
// metadata, a real control.Client, and a shard handler that sends prebuilt
// windows once a second.
type simAgent struct {
	id      string
	idx     int
	fleet   *simFleet
	ml      *memberlist.Memberlist
	client  *control.Client
	cancel  context.CancelFunc
	runDone chan struct{}

	mu      sync.Mutex
	runID   uint64
	pending map[uint64][]byte // unacked windows by seq
	acked   uint64
	last    uint64 // last seq sent
	done    *pb.ShardDone
	ackCh   chan struct{}
}

// simFleet is a row's agents.
type simFleet struct {
	n        int
	windows  int // windows each shard sends
	cache    *windowCache
	stats    *fleetStats
	leader   string // gRPC
	gossip   string
	agents   []*simAgent
	runStart atomic.Int64 // the level's common start (unix ns), once known
}

// agentMeta is the gossip metadata of a simulated agent: one simulated L4.
func agentMeta(id string) *pb.GossipMeta {
	return &pb.GossipMeta{Role: gossip.RoleAgent, Id: id, Version: "0.1.0", InstanceType: "sim.1xl4", Region: "us-east-1",
		Gpus: &pb.GPUSummary{Count: 1, Model: "L4", MemoryMib: 23034, Source: "simulated"}}
}

type mlDelegate struct{ meta []byte }

func (d *mlDelegate) NodeMeta(int) []byte                     { return d.meta }
func (d *mlDelegate) NotifyMsg([]byte)                        {}
func (d *mlDelegate) GetBroadcasts(int, int) [][]byte         { return nil }
func (d *mlDelegate) LocalState(bool) []byte                  { return nil }
func (d *mlDelegate) MergeRemoteState([]byte, bool)           {}
func (d *mlDelegate) NotifyAlive(peer *memberlist.Node) error { return d.alive(peer) }

var errNotServer = errors.New("simulated agents track only servers")

// alive keeps a simulated agent's member list to itself and the servers:
// 5,000 nodes each holding 5,000 peers would cost the bench gigabytes.
func (d *mlDelegate) alive(peer *memberlist.Node) error {
	if string(peer.Meta) == string(d.meta) {
		return nil
	}
	m, err := gossip.DecodeMeta(peer.Meta)
	if err != nil || m.GetRole() != gossip.RoleServer {
		return errNotServer
	}
	return nil
}

// start joins the gossip pool and opens the control stream.
func (a *simAgent) start() error {
	meta, err := gossip.EncodeMeta(agentMeta(a.id))
	if err != nil {
		return err
	}
	d := &mlDelegate{meta: meta}
	mc := memberlist.DefaultLANConfig()
	mc.Name = a.id
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = "127.0.0.1", 0, 0
	// Answer the leader's probes, but neither probe, gossip nor push-pull:
	// see the package comment.
	mc.ProbeInterval = time.Hour
	mc.GossipInterval, mc.GossipNodes = 0, 0
	mc.PushPullInterval = 0
	mc.SuspicionMult = 3
	mc.Delegate = d
	mc.Alive = d
	mc.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("agent %s gossip: %w", a.id, err)
	}
	a.ml = ml
	if _, err := ml.Join([]string{a.fleet.gossip}); err != nil {
		_ = ml.Shutdown()
		return fmt.Errorf("agent %s join: %w", a.id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.client = control.New(control.Config{AgentID: a.id, Version: "0.1.0", Coordinators: func() []string { return []string{a.fleet.leader} },
		Logger: slog.New(slog.DiscardHandler), Shards: a})
	a.runDone = make(chan struct{})
	go func() { defer close(a.runDone); a.client.Run(ctx) }()
	return nil
}

func (a *simAgent) stop() {
	if a.cancel != nil {
		a.cancel()
		<-a.runDone
	}
	if a.ml != nil {
		_ = a.ml.Shutdown()
	}
}

// RunShard starts sending windows: window k (from 1) at start + k s, as a
// load generator's 1-second windows close.
func (a *simAgent) RunShard(ctx context.Context, m *pb.RunShard) {
	a.mu.Lock()
	if a.runID != 0 {
		a.mu.Unlock()
		return
	}
	a.runID, a.pending, a.ackCh = m.GetRunId(), map[uint64][]byte{}, make(chan struct{}, 1)
	a.mu.Unlock()
	start := time.Unix(0, m.GetStartUnixNano())
	a.fleet.runStart.CompareAndSwap(0, start.UnixNano())
	go a.run(start)
}

func (a *simAgent) run(start time.Time) {
	f := a.fleet
	v := a.idx % len(f.cache.variants)
	var sentOK int64
	for k := uint64(1); k <= uint64(f.windows); k++ {
		at := start.Add(time.Duration(k) * time.Second)
		time.Sleep(time.Until(at))
		b := f.cache.get(v, k, at.Add(-time.Second).UnixMilli())
		a.mu.Lock()
		a.pending[k], a.last = b, k
		id := a.runID
		a.mu.Unlock()
		err := a.client.Send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ShardWindow{ShardWindow: &pb.ShardWindow{RunId: id, Seq: k, Window: b}}})
		if err != nil {
			f.stats.sendErr.Add(1) // resent by StreamUp
		}
		ok := f.cache.variants[v].ok
		sentOK += ok
		f.stats.noteSent(k, ok, f.n)
	}
	// Report once the leader has every window, as the agent's report would
	// be rejected (and resent) otherwise.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		a.mu.Lock()
		all := a.acked >= a.last
		ch := a.ackCh
		a.mu.Unlock()
		if all {
			break
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		}
	}
	a.mu.Lock()
	a.done = &pb.ShardDone{RunId: a.runID, Windows: a.last, Sent: sentOK, Ok: sentOK}
	d := a.done
	a.mu.Unlock()
	_ = a.client.Send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ShardDone{ShardDone: d}})
}

// CancelShard: the bench's shards end by themselves.
func (a *simAgent) CancelShard(uint64) {}

// WindowAck forgets acknowledged windows.
func (a *simAgent) WindowAck(runID, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if runID != a.runID || seq <= a.acked {
		return
	}
	a.fleet.stats.acked.Add(int64(seq - a.acked))
	a.fleet.stats.noteAcked(a.acked+1, seq, a.fleet.n)
	for s := a.acked + 1; s <= seq; s++ {
		delete(a.pending, s)
	}
	a.acked = seq
	select {
	case a.ackCh <- struct{}{}:
	default:
	}
}

// StreamUp resends what the leader has not acknowledged, and the report.
func (a *simAgent) StreamUp() {
	a.mu.Lock()
	id, done := a.runID, a.done
	var seqs []uint64
	for s := a.acked + 1; s <= a.last; s++ {
		seqs = append(seqs, s)
	}
	bs := make([][]byte, len(seqs))
	for i, s := range seqs {
		bs[i] = a.pending[s]
	}
	a.mu.Unlock()
	for i, s := range seqs {
		if err := a.client.Send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ShardWindow{ShardWindow: &pb.ShardWindow{RunId: id, Seq: s, Window: bs[i]}}}); err != nil {
			return
		}
	}
	if done != nil {
		_ = a.client.Send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ShardDone{ShardDone: done}})
	}
}

// startFleet starts n agents with workers joining in parallel.
func startFleet(f *simFleet, workers int, progress func(done int)) error {
	f.agents = make([]*simAgent, f.n)
	for i := range f.agents {
		f.agents[i] = &simAgent{id: fmt.Sprintf("sim-%05d", i), idx: i, fleet: f}
	}
	var next, started atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= f.n {
					return
				}
				var err error
				for try := 0; try < 3; try++ {
					if err = f.agents[i].start(); err == nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
				if d := int(started.Add(1)); progress != nil && d%500 == 0 {
					progress(d)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func stopFleet(f *simFleet) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, a := range f.agents {
		if a == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); a.stop(); <-sem }()
	}
	wg.Wait()
}
