package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/clocksync"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Control stream timing.
const (
	controlHeartbeat = time.Second
	// controlIdleLimit closes a stream that has sent nothing for this long.
	controlIdleLimit = 10 * time.Second
)

// session is one agent's control stream on the leader.
type session struct {
	agentID  string
	instance string // the agent process's instance ID (hello)
	stream   pb.AgentService_ConnectServer
	cancel   context.CancelFunc
	clock    *clocksync.Exchange

	mu       sync.Mutex // serialises sends and guards the fields below
	seq      uint64
	ack      uint64 // highest agent seq received
	lastRecv int64  // when the agent's last message arrived
	nextReq  uint64
	pending  map[uint64]chan *pb.ModelServerEvent

	onWindow func(agentID string, w *pb.ShardWindow) uint64
	onDone   func(agentID string, d *pb.ShardDone)
}

// call sends a request built for a fresh request ID and waits for the
// agent's answer, the stream's end, or ctx.
func (s *session) call(ctx context.Context, build func(id uint64) *pb.ConnectResponse) (*pb.ModelServerEvent, error) {
	s.mu.Lock()
	s.nextReq++
	id := s.nextReq
	ch := make(chan *pb.ModelServerEvent, 1)
	if s.pending == nil {
		s.pending = map[uint64]chan *pb.ModelServerEvent{}
	}
	s.pending[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	if err := s.send(build(id)); err != nil {
		return nil, fmt.Errorf("%w: send to agent %s: %v", endpoint.ErrUnavailable, s.agentID, err)
	}
	select {
	case ev := <-ch:
		return ev, nil
	case <-s.stream.Context().Done():
		return nil, fmt.Errorf("%w: agent %s disconnected before answering", endpoint.ErrUnavailable, s.agentID)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *session) send(m *pb.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	m.Seq, m.Ack = s.seq, s.ack
	return s.stream.Send(m)
}

func (s *session) heartbeat() error {
	hb := s.clock.Outgoing(time.Now().UnixNano())
	return s.send(&pb.ConnectResponse{Body: &pb.ConnectResponse_Heartbeat{Heartbeat: hb}})
}

// received records an agent message: its seq, its arrival, a model-server
// answer, and its heartbeat's clock sample.
func (s *session) received(m *pb.ConnectRequest, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastRecv = at
	if m.GetSeq() > s.ack {
		s.ack = m.GetSeq()
	}
	if ev := m.GetModelServer(); ev != nil {
		if ch := s.pending[ev.GetRequestId()]; ch != nil {
			ch <- ev
		}
	}
	if w := m.GetShardWindow(); w != nil && s.onWindow != nil {
		ack := s.onWindow(s.agentID, w)
		go func() {
			_ = s.send(&pb.ConnectResponse{Body: &pb.ConnectResponse_WindowAck{WindowAck: &pb.WindowAck{RunId: w.GetRunId(), Seq: ack}}})
		}()
	}
	if d := m.GetShardDone(); d != nil && s.onDone != nil {
		s.onDone(s.agentID, d)
	}
	if hb := m.GetHeartbeat(); hb != nil {
		s.clock.Incoming(hb, at)
	}
}

// sessions is the leader's set of connected agents.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

// add registers a session, closing an older one of the same agent.
func (ss *sessions) add(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if old := ss.m[s.agentID]; old != nil {
		old.cancel()
	}
	ss.m[s.agentID] = s
}

func (ss *sessions) remove(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m[s.agentID] == s {
		delete(ss.m, s.agentID)
	}
}

func (ss *sessions) connected(id string) bool { return ss.get(id) != nil }

// ids lists the connected agents.
func (ss *sessions) ids() []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]string, 0, len(ss.m))
	for id := range ss.m {
		out = append(out, id)
	}
	return out
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.m[id]
}

// SendToAgent sends a message on an agent's control stream.
func (s *Server) SendToAgent(agentID string, m *pb.ConnectResponse) error {
	sess := s.sessions.get(agentID)
	if sess == nil {
		return fmt.Errorf("agent %s has no control stream to the leader", agentID)
	}
	return sess.send(m)
}

// AgentConnected reports whether an agent holds a control stream here.
func (s *Server) AgentConnected(agentID string) bool { return s.sessions.connected(agentID) }

// AgentInstance returns the instance ID of the agent process that holds a
// control stream here, and whether one does.
func (s *Server) AgentInstance(agentID string) (string, bool) {
	sess := s.sessions.get(agentID)
	if sess == nil {
		return "", false
	}
	return sess.instance, true
}

// CallAgent sends a request to a connected agent over its control stream and
// waits for the answer.
func (s *Server) CallAgent(ctx context.Context, agentID string, build func(id uint64) *pb.ConnectResponse) (*pb.ModelServerEvent, error) {
	sess := s.sessions.get(agentID)
	if sess == nil {
		st := "unknown"
		if a, err := s.State().Agent(agentID); err == nil {
			st = a.GetStatus()
		} else {
			return nil, err
		}
		return nil, fmt.Errorf("%w: agent %q has no control stream to the leader (status %s)", state.ErrConflict, agentID, st)
	}
	return sess.call(ctx, build)
}

// ClockOffset is an agent's clock minus the leader's, and its error bound.
func (ss *sessions) clockOffset(id string) (time.Duration, time.Duration, bool) {
	ss.mu.Lock()
	s := ss.m[id]
	ss.mu.Unlock()
	if s == nil {
		return 0, 0, false
	}
	return s.clock.Offset() // remote (agent) − local (leader)
}

// closeAll ends every stream, when leadership is lost.
func (ss *sessions) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.m {
		s.cancel()
	}
}

// agentService serves perfleet.v1.AgentService.
type agentService struct {
	pb.UnimplementedAgentServiceServer
	s *Server
}

// Connect accepts an agent's control stream on the leader; a follower
// redirects the agent to the leader.
func (a *agentService) Connect(stream pb.AgentService_ConnectServer) error {
	s := a.s
	if !s.IsLeader() || !s.leaderReady.Load() {
		addr, _ := s.leaderAddrNow()
		return stream.Send(&pb.ConnectResponse{Seq: 1, Body: &pb.ConnectResponse_Redirect{Redirect: &pb.Redirect{LeaderGrpcAddr: addr}}})
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil || hello.GetAgentId() == "" {
		return status.Error(codes.InvalidArgument, "the first message of a control stream must be a hello with agent_id")
	}
	if gate := s.agentGate.Load(); gate != nil {
		if err := (*gate)(hello.GetAgentId()); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	sess := &session{agentID: hello.GetAgentId(), instance: hello.GetInstanceId(), stream: stream, cancel: cancel, onWindow: s.runner.OnWindow, onDone: s.runner.OnDone, clock: clocksync.NewExchange(30), ack: first.GetSeq(), lastRecv: time.Now().UnixNano()}
	s.sessions.add(sess)
	defer func() { s.sessions.remove(sess); s.pokeFleet() }()
	s.pokeFleet()
	s.log.Info("agent connected", "agent", sess.agentID, "version", hello.GetVersion())

	term := s.raft.CurrentTerm()
	err = sess.send(&pb.ConnectResponse{Body: &pb.ConnectResponse_Welcome{Welcome: &pb.Welcome{LeaderId: s.cfg.NodeID, Term: term}}})
	if kr := s.State().Meta().GetGossipKeyring(); err == nil && kr != nil {
		err = sess.send(&pb.ConnectResponse{Body: &pb.ConnectResponse_GossipKeyring{GossipKeyring: kr}})
	}
	if err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			sess.received(m, time.Now().UnixNano())
			if m.GetGoodbye() != nil {
				recvErr <- errGoodbye
				return
			}
		}
	}()
	tick := time.NewTicker(controlHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if s.ctx.Err() != nil || !s.IsLeader() {
				return status.Error(codes.Unavailable, "NotLeader: this coordinator lost leadership; reconnect to the new leader")
			}
			return status.Error(codes.Aborted, "replaced by a newer stream of the same agent")
		case err := <-recvErr:
			if err == errGoodbye {
				s.markLeft(ctx, sess.agentID)
				s.log.Info("agent left the fleet", "agent", sess.agentID)
				return nil
			}
			s.log.Info("agent disconnected", "agent", sess.agentID, "err", err)
			return nil
		case <-tick.C:
			sess.mu.Lock()
			idle := time.Since(time.Unix(0, sess.lastRecv))
			sess.mu.Unlock()
			if idle > controlIdleLimit {
				return status.Error(codes.DeadlineExceeded, fmt.Sprintf("no message from agent %s for %v", sess.agentID, idle.Round(time.Second)))
			}
			if err := sess.heartbeat(); err != nil {
				return err
			}
		}
	}
}

var errGoodbye = fmt.Errorf("agent said goodbye")

// markLeft records an agent that announced its departure as left.
func (s *Server) markLeft(ctx context.Context, id string) {
	cur, err := s.State().Agent(id)
	if err != nil {
		return
	}
	want := proto.Clone(cur).(*pb.Agent)
	want.Status, want.Connected = string(gossip.StateLeft), false
	s.writeAgent(ctx, cur, want, timestamppb.New(s.Now()))
}
