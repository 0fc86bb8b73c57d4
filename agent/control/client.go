// Package control is the agent's end of the control stream to the
// coordinator leader (perfleet.v1.AgentService.Connect). It finds the leader
// (a follower answers with a redirect), keeps the stream up with heartbeats,
// reconnects with jittered exponential backoff, and estimates the leader's
// clock offset from heartbeat round trips (keeping the minimum-RTT sample).
package control

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/perfleet/perfleet/pkg/clocksync"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/telemetry"
)

// Config configures a control client.
type Config struct {
	// AgentID identifies the agent.
	AgentID string
	// Version is the agent's perfleet version.
	Version string
	// Coordinators returns candidate coordinator gRPC addresses; any node
	// will do, followers redirect to the leader.
	Coordinators func() []string
	// DialOptions are used for every connection; insecure when empty.
	DialOptions []grpc.DialOption
	// TracerProvider traces the control stream (otelgrpc); nil traces
	// nothing.
	TracerProvider trace.TracerProvider
	// Heartbeat is the heartbeat interval (default 1 s).
	Heartbeat time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay (defaults 100 ms
	// and 5 s); each delay is jittered by ±50 %.
	BackoffMin, BackoffMax time.Duration
	// HandshakeTimeout bounds opening a stream and receiving the
	// coordinator's first answer (default 4 s). A killed leader's address
	// may swallow connection attempts until a 20 s dial timeout; the agent
	// must move on to another coordinator well before the new leader gives
	// up waiting for it.
	HandshakeTimeout time.Duration
	// Logger receives connection events.
	Logger *slog.Logger
	// Handler serves the leader's requests; nil refuses them.
	Handler Handler
	// Shards runs benchmark shards; nil ignores shard messages.
	Shards ShardHandler
	// Keyring applies the cluster's gossip keyring the leader sends; nil
	// ignores it.
	Keyring func(*pb.GossipKeyring)
}

// ShardHandler runs the shards the leader assigns. Its methods must not
// block: RunShard starts the shard in the background and reports through
// Client.Send.
type ShardHandler interface {
	// RunShard starts a shard.
	RunShard(ctx context.Context, m *pb.RunShard)
	// CancelShard stops a shard.
	CancelShard(runID uint64)
	// WindowAck forgets windows the leader has up to seq.
	WindowAck(runID, seq uint64)
	// StreamUp is called when a new stream to the leader is up: resend what
	// the leader has not acknowledged.
	StreamUp()
}

// Handler serves requests the leader sends over the control stream. Each
// request runs in its own goroutine under the client's context, so a launch
// goes on if the stream drops (only its answer is lost).
type Handler interface {
	LaunchModelServer(ctx context.Context, spec *pb.ModelServerSpec) (*pb.ModelServerStatus, error)
	StopModelServer(ctx context.Context, id string) (*pb.ModelServerStatus, error)
}

// Client keeps one control stream to the leader.
type Client struct {
	cfg        Config
	clock      *clocksync.Exchange
	leader     atomic.Value // string: the leader's node ID while connected
	leaderAddr atomic.Value // string: last known leader address
	lastFailed atomic.Value // string: the address whose stream last failed
	connects   atomic.Int64
	lastSeen   atomic.Uint64 // last coordinator seq processed
	instance   string        // this process's random instance ID, sent in every hello

	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	current *stream_ // the stream that is up, if any
	ended   chan struct{}
}

// New returns a client; call Run to connect.
func New(cfg Config) *Client {
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = 100 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 5 * time.Second
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 4 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.DialOptions) == 0 {
		cfg.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cfg.DialOptions = append(slices.Clip(cfg.DialOptions), telemetry.GRPCDialOptions(cfg.TracerProvider)...)
	var inst [8]byte
	_, _ = crand.Read(inst[:])
	c := &Client{cfg: cfg, clock: clocksync.NewExchange(30), conns: map[string]*grpc.ClientConn{}, instance: hex.EncodeToString(inst[:])}
	c.leader.Store("")
	c.leaderAddr.Store("")
	return c
}

// Leader returns the leader's node ID while a stream is up.
func (c *Client) Leader() (string, bool) {
	id := c.leader.Load().(string)
	return id, id != ""
}

// Connects counts accepted streams (1 after the first, +1 per reconnect).
func (c *Client) Connects() int64 { return c.connects.Load() }

// ClockOffset is the leader's clock minus the agent's and its error bound.
func (c *Client) ClockOffset() (offset, bound time.Duration, ok bool) { return c.clock.Offset() }

// Run connects and reconnects until ctx ends.
func (c *Client) Run(ctx context.Context) {
	defer c.closeConns()
	failures := 0
	for ctx.Err() == nil {
		addr := c.pick()
		if addr == "" {
			failures++
			c.sleep(ctx, failures)
			continue
		}
		redirect, err := c.session(ctx, addr)
		c.leader.Store("")
		c.lastFailed.Store(addr)
		switch {
		case ctx.Err() != nil:
			return
		case redirect != "":
			c.lastFailed.Store("")
			c.leaderAddr.Store(redirect)
			failures = 0
			c.sleep(ctx, 0) // short pause so a stale redirect cannot spin
		case redirect == "" && err == nil:
			failures++ // redirected without a leader: election in progress
			c.leaderAddr.Store("")
			c.sleep(ctx, failures)
		default:
			c.cfg.Logger.Info("control stream ended; reconnecting", "coordinator", addr, "err", err)
			c.leaderAddr.Store("")
			failures++
			c.sleep(ctx, failures)
		}
	}
}

// handshakeErr explains a failed stream opening: past the handshake timeout
// it names the timeout rather than the cancellation it caused.
func (c *Client) handshakeErr(t *time.Timer, addr string, err error) error {
	if t.Stop() {
		return err
	}
	return fmt.Errorf("no answer from coordinator %s within %s (%v)", addr, c.cfg.HandshakeTimeout, err)
}

// pick returns the last known leader, else a random candidate other than
// the one that just failed (gossip may still list a dead leader as alive for
// a few seconds).
func (c *Client) pick() string {
	if a := c.leaderAddr.Load().(string); a != "" {
		return a
	}
	cands := c.cfg.Coordinators()
	if failed, _ := c.lastFailed.Load().(string); failed != "" && len(cands) > 1 {
		others := cands[:0:0]
		for _, a := range cands {
			if a != failed {
				others = append(others, a)
			}
		}
		if len(others) > 0 {
			cands = others
		}
	}
	if len(cands) == 0 {
		return ""
	}
	return cands[rand.IntN(len(cands))]
}

// sleep waits a jittered exponential backoff for the given failure count
// (0: the minimum).
func (c *Client) sleep(ctx context.Context, failures int) {
	d := c.cfg.BackoffMin << min(max(failures-1, 0), 10)
	d = min(d, c.cfg.BackoffMax)
	d = time.Duration(float64(d) * (0.5 + rand.Float64()))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, c.cfg.DialOptions...)
	if err == nil {
		c.conns[addr] = cc
	}
	return cc, err
}

func (c *Client) closeConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = map[string]*grpc.ClientConn{}
}

// Goodbye tells the leader the agent is leaving, so it is recorded as left
// rather than failed, and waits up to timeout for the leader to close the
// stream. It reports whether the leader took it.
func (c *Client) Goodbye(reason string, timeout time.Duration) bool {
	c.mu.Lock()
	s, ended := c.current, c.ended
	c.mu.Unlock()
	if s == nil {
		return false
	}
	if err := s.send(&pb.ConnectRequest{Body: &pb.ConnectRequest_Goodbye{Goodbye: &pb.Goodbye{Reason: reason}}}); err != nil {
		return false
	}
	select {
	case <-ended:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Send sends a message on the stream that is up, or fails when none is.
func (c *Client) Send(m *pb.ConnectRequest) error {
	c.mu.Lock()
	s := c.current
	c.mu.Unlock()
	if s == nil {
		return errors.New("no control stream to the leader")
	}
	return s.send(m)
}

// serve hands shard messages to the shard handler and answers a launch or
// stop request in its own goroutine.
func (c *Client) serve(ctx context.Context, s *stream_, m *pb.ConnectResponse) {
	if sh := c.cfg.Shards; sh != nil {
		switch {
		case m.GetRunShard() != nil:
			sh.RunShard(ctx, m.GetRunShard())
			return
		case m.GetCancelShard() != nil:
			sh.CancelShard(m.GetCancelShard().GetRunId())
			return
		case m.GetWindowAck() != nil:
			sh.WindowAck(m.GetWindowAck().GetRunId(), m.GetWindowAck().GetSeq())
			return
		}
	}
	if kr := m.GetGossipKeyring(); kr != nil {
		if c.cfg.Keyring != nil {
			c.cfg.Keyring(kr)
		}
		return
	}
	var id uint64
	var do func() (*pb.ModelServerStatus, error)
	switch {
	case m.GetLaunchModelServer() != nil:
		r := m.GetLaunchModelServer()
		id = r.GetRequestId()
		do = func() (*pb.ModelServerStatus, error) { return c.cfg.Handler.LaunchModelServer(ctx, r.GetSpec()) }
	case m.GetStopModelServer() != nil:
		r := m.GetStopModelServer()
		id = r.GetRequestId()
		do = func() (*pb.ModelServerStatus, error) { return c.cfg.Handler.StopModelServer(ctx, r.GetId()) }
	default:
		return
	}
	go func() {
		ev := &pb.ModelServerEvent{RequestId: id}
		if c.cfg.Handler == nil {
			ev.Error = "this agent does not run model servers"
		} else if st, err := do(); err != nil {
			ev.Error = err.Error()
		} else {
			ev.Status = st
		}
		if err := s.send(&pb.ConnectRequest{Body: &pb.ConnectRequest_ModelServer{ModelServer: ev}}); err != nil {
			c.cfg.Logger.Warn("could not answer the leader's request; the stream ended", "request", id, "err", err)
		}
	}()
}

// errNoWelcome is returned when the first answer is neither a welcome nor a
// redirect.
var errNoWelcome = errors.New("coordinator answered without a welcome")

// session runs one stream. It returns the leader address of a redirect, or
// the error that ended the stream.
func (c *Client) session(ctx context.Context, addr string) (string, error) {
	cc, err := c.conn(addr)
	if err != nil {
		return "", err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	handshake := time.AfterFunc(c.cfg.HandshakeTimeout, cancel)
	stream, err := pb.NewAgentServiceClient(cc).Connect(sctx)
	if err != nil {
		return "", c.handshakeErr(handshake, addr, err)
	}
	s := &stream_{c: c, stream: stream}
	if err := s.send(&pb.ConnectRequest{Body: &pb.ConnectRequest_Hello{Hello: &pb.Hello{AgentId: c.cfg.AgentID, Version: c.cfg.Version, LastSeenSeq: c.lastSeen.Load(), InstanceId: c.instance}}}); err != nil {
		return "", c.handshakeErr(handshake, addr, err)
	}
	first, err := stream.Recv()
	if !handshake.Stop() {
		return "", c.handshakeErr(handshake, addr, err)
	}
	if err != nil {
		return "", err
	}
	if r := first.GetRedirect(); r != nil {
		return r.GetLeaderGrpcAddr(), nil
	}
	w := first.GetWelcome()
	if w == nil {
		return "", errNoWelcome
	}
	s.received(first, time.Now().UnixNano())
	c.leaderAddr.Store(addr)
	c.leader.Store(w.GetLeaderId())
	c.connects.Add(1)
	c.cfg.Logger.Info("control stream up", "leader", w.GetLeaderId(), "addr", addr, "term", w.GetTerm())
	ended := make(chan struct{})
	c.mu.Lock()
	c.current, c.ended = s, ended
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.current = nil
		c.mu.Unlock()
		close(ended)
	}()
	if c.cfg.Shards != nil {
		go c.cfg.Shards.StreamUp()
	}

	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			s.received(m, time.Now().UnixNano())
			c.serve(ctx, s, m)
		}
	}()
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				err = errors.New("the coordinator closed the stream")
			}
			return "", err
		case <-tick.C:
			if err := s.heartbeat(); err != nil {
				return "", err
			}
		}
	}
}

// stream_ is one open stream's send state.
type stream_ struct {
	c        *Client
	stream   pb.AgentService_ConnectClient
	mu       sync.Mutex
	seq, ack uint64
}

func (s *stream_) send(m *pb.ConnectRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	m.Seq, m.Ack = s.seq, s.ack
	return s.stream.Send(m)
}

func (s *stream_) heartbeat() error {
	hb := s.c.clock.Outgoing(time.Now().UnixNano())
	return s.send(&pb.ConnectRequest{Body: &pb.ConnectRequest_Heartbeat{Heartbeat: hb}})
}

// received records a coordinator message: its seq and its heartbeat's clock
// sample.
func (s *stream_) received(m *pb.ConnectResponse, at int64) {
	s.mu.Lock()
	if m.GetSeq() > s.ack {
		s.ack = m.GetSeq()
		s.c.lastSeen.Store(s.ack)
	}
	s.mu.Unlock()
	if hb := m.GetHeartbeat(); hb != nil {
		s.c.clock.Incoming(hb, at)
	}
}
