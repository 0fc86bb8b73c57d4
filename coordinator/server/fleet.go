package server

import (
	"context"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Version is the perfleet version gossiped and reported.
const Version = "0.1.0"

// startGossip joins this server to the fleet's gossip pool.
func (s *Server) startGossip() error {
	key, err := DecodeGossipKey(s.cfg.GossipKey)
	if err != nil {
		return err
	}
	pool, err := gossip.Start(gossip.Config{
		Name: s.cfg.NodeID, BindAddr: s.cfg.GossipAddr, Key: key, Fast: s.cfg.FastGossip, Logger: s.log,
		KeyringFile: filepath.Join(s.cfg.DataDir, "gossip-keyring.json"),
		Meta:        &pb.GossipMeta{Role: gossip.RoleServer, Id: s.cfg.NodeID, Version: Version, GrpcAddr: s.cfg.GRPCAdvertise, Region: s.cfg.Region},
		OnChange:    func(gossip.Member) { s.pokeFleet() },
	})
	if err != nil {
		return err
	}
	s.gossip = pool
	s.cfg.GossipAddr = pool.Addr()
	return nil
}

// pokeFleet wakes the leader's agent reconciler.
func (s *Server) pokeFleet() {
	select {
	case s.fleetCh <- struct{}{}:
	default:
	}
}

// joinServerGossip joins the gossip addresses of known servers this node's
// pool has not met yet.
func (s *Server) joinServerGossip() {
	seen := map[string]bool{}
	for _, m := range s.gossip.Members() {
		if m.State == gossip.StateAlive || m.State == gossip.StateSuspect {
			seen[m.Name] = true
		}
	}
	servers, _ := s.State().Servers()
	servers = append(servers, s.disc.list()...)
	var addrs []string
	for _, id := range servers {
		if id.GetNodeId() != s.cfg.NodeID && !seen[id.GetNodeId()] && id.GetGossipAddr() != "" {
			addrs = append(addrs, id.GetGossipAddr())
		}
	}
	if len(addrs) > 0 {
		if _, err := s.gossip.Join(addrs); err != nil {
			s.log.Debug("gossip join of servers failed; will retry", "err", err)
		}
	}
}

// reconcileAgents runs on the leader: it turns what gossip says about agents
// into replicated records, in the manner of consul's leader reconcile. Only
// changes are written.
func (s *Server) reconcileAgents(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.reconcileAgentsOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.fleetCh:
		}
	}
}

func (s *Server) reconcileAgentsOnce(ctx context.Context) {
	known, err := s.State().Agents(nil)
	if err != nil {
		return
	}
	stored := map[string]*pb.Agent{}
	for _, a := range known {
		stored[a.GetAgentId()] = a
	}
	now := timestamppb.New(s.Now())
	seen := map[string]bool{}
	for _, m := range s.gossip.Members() {
		if m.Meta == nil || m.Meta.GetRole() != gossip.RoleAgent {
			continue
		}
		seen[m.Name] = true
		status := string(m.State)
		if prev := stored[m.Name]; prev.GetStatus() == string(gossip.StateLeft) {
			// It said goodbye. Gossip may still show it alive (it has not
			// left the pool yet) or only see it go (failed): keep "left"
			// unless gossip saw it join again after the goodbye.
			rejoined := m.State == gossip.StateAlive && m.Since.After(prev.GetStatusTime().AsTime())
			if !rejoined {
				status = prev.GetStatus()
			}
		}
		want := &pb.Agent{AgentId: m.Name, GrpcAddr: m.Meta.GetGrpcAddr(), GossipAddr: m.Addr, Version: m.Meta.GetVersion(),
			InstanceType: m.Meta.GetInstanceType(), Region: m.Meta.GetRegion(), Gpus: m.Meta.GetGpus(), Labels: m.Meta.GetLabels(),
			Status: status, Connected: s.sessions.connected(m.Name)}
		s.writeAgent(ctx, stored[m.Name], want, now)
	}
	// An agent this leader's pool has never seen (it died before this node
	// joined, or long ago) cannot be alive.
	for id, a := range stored {
		if !seen[id] && (a.GetStatus() == string(gossip.StateAlive) || a.GetStatus() == string(gossip.StateSuspect)) {
			want := proto.Clone(a).(*pb.Agent)
			want.Status, want.Connected = string(gossip.StateFailed), false
			s.writeAgent(ctx, a, want, now)
		}
	}
}

// writeAgent applies want when it differs from cur, stamping status_time
// when the status changed.
func (s *Server) writeAgent(ctx context.Context, cur, want *pb.Agent, now *timestamppb.Timestamp) {
	want.FirstSeen = cur.GetFirstSeen()
	if want.FirstSeen == nil {
		want.FirstSeen = now
	}
	want.StatusTime = cur.GetStatusTime()
	if cur == nil || cur.GetStatus() != want.GetStatus() {
		want.StatusTime = now
	}
	if cur != nil && proto.Equal(cur, want) {
		return
	}
	if cur == nil || cur.GetStatus() != want.GetStatus() {
		s.log.Info("agent status", "agent", want.GetAgentId(), "status", want.GetStatus(), "instance_type", want.GetInstanceType())
	}
	s.applyBackground(ctx, fsm.UpsertAgentType, &pb.UpsertAgentCommand{Agent: want})
}
