package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/acl"
	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/gateway"
	"github.com/perfleet/perfleet/coordinator/runner"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/arn"
	"github.com/perfleet/perfleet/pkg/atrest"
	"github.com/perfleet/perfleet/pkg/audit"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/pricing"
	"github.com/perfleet/perfleet/pkg/telemetry"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// Server is one coordinator node.
type Server struct {
	cfg Config
	log *slog.Logger

	fsm    *fsm.FSM
	raft   *raft.Raft
	rparts *raftParts
	// localRestores is how many snapshots the FSM restored from this
	// node's own store when Raft started.
	localRestores uint64

	lis    net.Listener
	grpc   *grpc.Server
	gwLis  net.Listener     // the SageMaker JSON API's listener; nil without one
	gw     *gateway.Gateway // the SageMaker JSON API
	health *health.Server
	conns  *connPool
	tls    *tlsutil.Reloader // the node's certificate; nil with --insecure-loopback
	// keyring seals the Raft log and snapshots; nil without encryption at
	// rest. keySrc reloads it.
	keyring *atrest.Keyring
	keySrc  atrest.KeySource
	audit   *audit.Exporter // JSON-lines export of the audit log; nil without one

	leaderNotify chan bool
	leaderReady  atomic.Bool
	disc         *discovery

	gossip   *gossip.Pool
	fleetCh  chan struct{}
	sessions *sessions
	// agentGate, when set (tests), may refuse an agent's control stream,
	// keeping it disconnected for as long as it says so.
	agentGate atomic.Pointer[func(agentID string) error]
	runner    *runner.Runner
	sec       *security
	tel       *nodeTelemetry // metrics listener, instruments, tracer

	keyringMu      sync.Mutex
	appliedKeyring *pb.GossipKeyring // the replicated keyring this node's pool has

	ctx    context.Context
	cancel context.CancelFunc
	unlock func() // releases the data dir lock
	wg     sync.WaitGroup
	once   sync.Once
}

var _ endpoint.Backend = (*Server)(nil)

// New starts a coordinator node: it opens the data dir, starts Raft and the
// gRPC API, and begins forming or joining the cluster in the background.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	prices := pricing.Default()
	if cfg.PricingFile != "" {
		if err := prices.LoadFile(cfg.PricingFile); err != nil {
			return nil, fmt.Errorf("pricing_file: %w", err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = newLogger(cfg.LogLevel, cfg.LogFormat)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	id, err := nodeID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		unlock()
		return nil, err
	}
	cfg.NodeID = id
	s := &Server{cfg: cfg, log: cfg.Logger.With("node", id), leaderNotify: make(chan bool, 8), unlock: unlock,
		fleetCh: make(chan struct{}, 1), sessions: newSessions()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.fsm = fsm.New(s.log)
	s.sec = s.newSecurity()
	if err := s.setupTLS(); err != nil {
		unlock()
		return nil, err
	}
	if err := s.setupAuditExport(); err != nil {
		unlock()
		return nil, err
	}

	s.lis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("listen grpc_addr %q: %w", cfg.GRPCAddr, err)
	}
	if s.cfg.GRPCAdvertise == "" {
		s.cfg.GRPCAdvertise = s.lis.Addr().String()
	}
	if cfg.GatewayAddr != "" {
		if s.gwLis, err = net.Listen("tcp", cfg.GatewayAddr); err != nil {
			s.lis.Close()
			unlock()
			return nil, fmt.Errorf("listen gateway_addr %q: %w", cfg.GatewayAddr, err)
		}
	}
	if err := s.listenMetrics(); err != nil {
		s.closeListeners()
		unlock()
		return nil, err
	}
	s.rparts, err = s.setupRaft()
	if err != nil {
		s.closeListeners()
		unlock()
		return nil, err
	}
	s.raft = s.rparts.raft
	s.localRestores = s.fsm.Restores()
	s.cfg.RaftAddr = string(s.rparts.transport.LocalAddr())
	if err := s.startGossip(); err != nil {
		s.closeListeners()
		s.raft.Shutdown()
		s.rparts.transport.Close()
		s.rparts.close()
		s.unlock()
		return nil, err
	}
	s.conns = newConnPool(s.peerCreds(), telemetry.GRPCDialOptions(cfg.TracerProvider)...)
	s.disc = newDiscovery(s.identity())
	s.runner = runner.New(s, s.log)
	s.runner.Region = cfg.Region
	s.runner.Prices = prices
	s.runner.SecretAccess = s.secretAccess
	s.runner.OutputAccess = s.outputAccess
	s.runner.ResultsKMSKeyID = cfg.ResultsKMSKeyID
	if cfg.EncryptResults {
		s.runner.SealResults = s.keyring
	}
	if err := s.instrument(); err != nil {
		s.log.Error("metrics not fully set up", "err", err)
	}

	s.grpc = grpc.NewServer(append(append(s.grpcCreds(), telemetry.GRPCServerOptions(cfg.TracerProvider)...),
		grpc.ChainUnaryInterceptor(s.metricsUnary, s.deadlineUnary, s.routeUnary, s.aclUnary),
		grpc.ChainStreamInterceptor(s.metricsStream, s.routeStream, s.aclStream),
		grpc.MaxRecvMsgSize(cmp.Or(cfg.MaxRecvMsgBytes, 4<<20)),
		grpc.MaxConcurrentStreams(cmp.Or(cfg.MaxConcurrentStreams, 1000)),
		// Clients may ping every 10 s at most, even without calls (agents'
		// control streams are long-lived); idle connections are closed
		// after 30 minutes.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 30 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
		// A fixed pool of stream workers instead of a goroutine per call.
		grpc.NumStreamWorkers(uint32(4*runtime.NumCPU())),
		grpc.SharedWriteBuffer(true),
	)...)
	ep := endpoint.New(s)
	pb.RegisterInferenceOptimizationServer(s.grpc, ep)
	pb.RegisterOperatorServiceServer(s.grpc, &operator{s: s})
	pb.RegisterACLServiceServer(s.grpc, endpoint.NewACL(s, s.sec.res))
	pb.RegisterFleetServiceServer(s.grpc, endpoint.NewFleet(s, s))
	pb.RegisterAgentServiceServer(s.grpc, &agentService{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	s.goRun(func() {
		if err := s.grpc.Serve(s.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("grpc server stopped", "err", err)
		}
	})
	if s.gwLis != nil {
		// The gateway runs the same handlers through the same routing,
		// authorization and audit as gRPC; its callers sign with access
		// keys (perfleet acl access-key create), or with the dev key
		// test/test while ACLs are off.
		s.gw, err = gateway.New(gateway.Config{Service: ep, Interceptor: s.gatewayUnary, Region: cfg.Region,
			Credentials: aclCredentials{s}, Logger: s.log.With("component", "gateway")})
		if err != nil {
			s.gwLis.Close()
			s.gwLis = nil
			s.log.Error("sagemaker gateway not started", "err", err)
		} else {
			s.goRun(func() {
				if err := s.gw.Serve(s.gatewayListener(s.gwLis)); err != nil {
					s.log.Error("sagemaker gateway stopped", "err", err)
				}
			})
		}
	}
	s.goRun(s.flushAudit)
	s.goRun(s.followKeyring)
	if s.tls != nil {
		s.goRun(func() { s.tls.Run(s.ctx) })
	}
	s.goRun(s.monitorLeadership)
	s.goRun(s.formCluster)
	s.log.Info("coordinator started", "grpc", s.cfg.GRPCAdvertise, "raft", s.cfg.RaftAddr, "gateway", s.GatewayAddr(), "metrics", s.MetricsAddr(),
		"existing_state", s.rparts.hasState)
	return s, nil
}

// closeListeners closes the API and metrics listeners of a node that
// failed to start.
func (s *Server) closeListeners() {
	s.lis.Close()
	if s.gwLis != nil {
		s.gwLis.Close()
	}
	if s.tel != nil && s.tel.http != nil {
		_ = s.tel.http.Close()
	}
}

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f() }()
}

// nodeID returns the configured ID, or the one kept in the data dir, or a new
// random one that is then kept.
func nodeID(dir, configured string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil {
		kept := strings.TrimSpace(string(b))
		if configured != "" && configured != kept {
			return "", fmt.Errorf("node_id %q differs from %q kept in %s; use a fresh data dir to change it", configured, kept, path)
		}
		return kept, nil
	}
	id := configured
	if id == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id = "node-" + hex.EncodeToString(b[:])
	}
	return id, os.WriteFile(path, []byte(id+"\n"), 0o600)
}

func (s *Server) identity() *pb.ServerIdentity {
	return &pb.ServerIdentity{NodeId: s.cfg.NodeID, RaftAddr: s.cfg.RaftAddr, GrpcAddr: s.cfg.GRPCAdvertise, GossipAddr: s.cfg.GossipAddr}
}

// Addr is the gRPC API address.
func (s *Server) Addr() string { return s.cfg.GRPCAdvertise }

// GatewayAddr is the bound address of the SageMaker-compatible JSON API,
// or "" when the node serves none.
func (s *Server) GatewayAddr() string {
	if s.gw == nil {
		return ""
	}
	return s.gwLis.Addr().String()
}

// RaftAddr is the Raft transport address.
func (s *Server) RaftAddr() string { return s.cfg.RaftAddr }

// NodeID is the node's Raft server ID.
func (s *Server) NodeID() string { return s.cfg.NodeID }

// GossipAddr is the address agents join.
func (s *Server) GossipAddr() string { return s.cfg.GossipAddr }

// Kill stops the node abruptly, as a crash would: no graceful gossip leave,
// no graceful gRPC drain. Tests use it.
func (s *Server) Kill() error { return s.shutdown(false) }

// Config returns the node's settings as it runs them, with the ports it
// bound filled in, so a test can restart it with the same identity and data.
func (s *Server) Config() Config { return s.cfg }

// SnapshotInstalls is how many snapshots the node has installed from the
// leader since it started (its own snapshot, restored at start, is not
// counted).
func (s *Server) SnapshotInstalls() uint64 { return s.fsm.Restores() - s.localRestores }

// AppliedIndex is the index of the last Raft entry the node applied.
func (s *Server) AppliedIndex() uint64 { return s.fsm.AppliedIndex() }

// Raft exposes the Raft node to tests and operator commands.
func (s *Server) Raft() *raft.Raft { return s.raft }

// IsLeader reports whether this node leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Ready reports whether this node leads and has finished establishing its
// leadership (barrier applied, own address and cluster meta recorded).
func (s *Server) Ready() bool {
	return s.IsLeader() && s.leaderReady.Load() && s.State().Meta() != nil && s.State().Server(s.NodeID()) != nil
}

// WaitReady waits until a single-node cluster is Ready, up to timeout.
func (s *Server) WaitReady(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s.Ready() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Shutdown stops the node: the API first, then Raft. It is safe to call more
// than once.
func (s *Server) Shutdown() error { return s.shutdown(true) }

func (s *Server) shutdown(graceful bool) error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.health.Shutdown()
		s.sessions.closeAll()
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(2 * time.Second):
			s.grpc.Stop()
		}
		if s.gw != nil {
			if graceful {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if s.gw.Shutdown(ctx) != nil {
					_ = s.gw.Close()
				}
				cancel()
			} else {
				_ = s.gw.Close()
			}
		}
		// The API is closed: store the audit records it left before Raft
		// stops (a follower hands them to the leader).
		flushCtx, flushCancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.drainThrottled(true)
		s.flushAuditOnce(flushCtx)
		flushCancel()
		s.conns.close()
		if graceful {
			_ = s.gossip.Leave(time.Second)
		} else {
			_ = s.gossip.Shutdown()
		}
		// Raft's Shutdown waits for all its goroutines; a library deadlock
		// must not keep the process from exiting, so the wait is bounded.
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = waitFuture(rctx, s.raft.Shutdown())
		rcancel()
		if err != nil {
			s.log.Error("raft did not shut down cleanly; closing its transport and stores anyway", "err", err)
		}
		s.rparts.transport.Close()
		s.wg.Wait()
		s.closeTelemetry()
		if cerr := s.rparts.close(); err == nil {
			err = cerr
		}
		if s.audit != nil {
			// Rotate and upload what was exported; give up after 10 s
			// (the files stay for the next start).
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = s.audit.Close(ctx)
			cancel()
		}
		s.unlock()
	})
	return err
}

// State returns the node's replicated state store.
func (s *Server) State() *state.Store { return s.fsm.State() }

// Scope is the partition and region of ARNs.
func (s *Server) Scope() arn.Scope {
	return arn.Scope{Partition: s.cfg.Partition, Region: s.cfg.Region}
}

// Account returns the caller's account: its principal's, or the configured
// default account while ACLs are off.
func (s *Server) Account(ctx context.Context) string {
	if id := acl.FromContext(ctx); id != nil && id.Account != "" {
		return id.Account
	}
	return s.cfg.DefaultAccount
}

// Now is the leader's clock, put into commands.
func (s *Server) Now() time.Time { return time.Now().UTC() }

// MaxActiveJobs is the per-account limit of active jobs of one kind.
func (s *Server) MaxActiveJobs() uint32 { return uint32(s.cfg.MaxActiveJobs) }

// Progress is a running benchmark job's live state on this node's runner.
func (s *Server) Progress(account, name string) (int, *pb.LevelProgress, bool) {
	return s.runner.Progress(account, name)
}

// PageKey is the cluster's HMAC key for list tokens.
func (s *Server) PageKey() []byte { return s.State().Meta().GetPageTokenKey() }

// ErrUnknownOutcome wraps errors after which a write may or may not have been
// committed (leadership lost mid-apply).
var ErrUnknownOutcome = errors.New("outcome unknown: leadership was lost while the write was in flight; retry with the same client_token")

var errFutureAbandoned = errors.New("raft future not answered before the deadline")

// waitFuture waits for a Raft future until ctx ends. Raft answers every
// future it has taken except when it shuts down between committing an entry
// and applying it; then f.Error never returns, so nobody may wait on it
// without a bound.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errFutureAbandoned
	}
}

// Apply commits a command through Raft and returns the FSM's result. Errors
// the store returned come back as errors; Raft errors mean no leader here.
func (s *Server) Apply(ctx context.Context, t fsm.MessageType, msg proto.Message) (resp any, err error) {
	b, err := fsm.Encode(t, msg)
	if err != nil {
		return nil, err
	}
	ctx, done := s.traceApply(ctx, msg)
	defer func() { done(err) }()
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 { // raft.Apply would take it as "no timeout"
			return nil, fmt.Errorf("%w: the call's deadline passed before its write was sent", endpoint.ErrUnavailable)
		}
	}
	f := s.raft.Apply(b, timeout)
	wait := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := waitFuture(wait, f); err != nil {
		if errors.Is(err, errFutureAbandoned) {
			return nil, fmt.Errorf("%w: %w", endpoint.ErrUnavailable, ErrUnknownOutcome)
		}
		switch {
		case errors.Is(err, raft.ErrLeadershipLost):
			return nil, fmt.Errorf("%w: %w", endpoint.ErrUnavailable, ErrUnknownOutcome)
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, fmt.Errorf("%w: %v", endpoint.ErrNotLeader, err)
		}
		return nil, fmt.Errorf("%w: %v", endpoint.ErrUnavailable, err)
	}
	if err, ok := f.Response().(error); ok {
		return nil, err
	}
	return f.Response(), nil
}
