package server

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// discovery remembers the servers this node has heard of, from its join list
// and from ServerInfo calls both ways. With --bootstrap-expect N, every node
// forms the cluster once it knows N servers; because each node passes on what
// it knows, nodes whose join lists differ still converge on the same set.
type discovery struct {
	mu    sync.Mutex
	self  *pb.ServerIdentity
	known map[string]*pb.ServerIdentity
}

func newDiscovery(self *pb.ServerIdentity) *discovery {
	return &discovery{self: self, known: map[string]*pb.ServerIdentity{}}
}

func (d *discovery) add(ids ...*pb.ServerIdentity) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if id.GetNodeId() == "" || id.GetNodeId() == d.self.GetNodeId() || id.GetRaftAddr() == "" || id.GetGrpcAddr() == "" {
			continue
		}
		d.known[id.GetNodeId()] = proto.Clone(id).(*pb.ServerIdentity)
	}
}

func (d *discovery) list() []*pb.ServerIdentity {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*pb.ServerIdentity, 0, len(d.known))
	for _, id := range d.known {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetNodeId() < out[j].GetNodeId() })
	return out
}

func (d *discovery) lookup(id string) *pb.ServerIdentity {
	if id == d.self.GetNodeId() {
		return d.self
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.known[id]
}

func (d *discovery) grpcAddrOf(id string) string { return d.lookup(id).GetGrpcAddr() }

// inCluster reports whether this node belongs to a formed cluster.
func (s *Server) inCluster() bool {
	if s.rparts.hasState {
		return true
	}
	if _, id := s.raft.LeaderWithID(); id != "" {
		return true
	}
	cfg := s.raft.GetConfiguration()
	return cfg.Error() == nil && len(cfg.Configuration().Servers) > 0
}

// formCluster bootstraps or joins. A node with Raft state just rejoins its
// cluster through Raft itself; otherwise it polls the servers it knows until
// it finds a formed cluster to join or knows bootstrap_expect servers. Then it
// keeps its API address registered in the replicated state.
func (s *Server) formCluster() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	formed := s.rparts.hasState
	if !formed && s.cfg.BootstrapExpect == 1 && len(s.cfg.Join) == 0 {
		if err := s.bootstrap([]raft.Server{s.raftServer(s.identity())}); err != nil {
			s.log.Error("bootstrap failed", "err", err)
		}
		formed = true
	}
	for {
		if !formed {
			formed = s.tryForm()
		} else {
			s.ensureRegistered()
			s.joinServerGossip()
		}
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) raftServer(id *pb.ServerIdentity) raft.Server {
	return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id.GetNodeId()), Address: raft.ServerAddress(id.GetRaftAddr())}
}

// peerAddrs are the API addresses of the other servers this node can ask:
// its --join list and the servers discovery has heard of.
func (s *Server) peerAddrs() map[string]bool {
	addrs := map[string]bool{}
	for _, a := range s.cfg.Join {
		addrs[a] = true
	}
	for _, id := range s.disc.list() {
		addrs[id.GetGrpcAddr()] = true
	}
	delete(addrs, s.cfg.GRPCAdvertise)
	return addrs
}

// tryForm makes one discovery round and reports whether the node is now part
// of a cluster.
func (s *Server) tryForm() bool {
	for addr := range s.peerAddrs() {
		info, err := s.serverInfo(addr)
		if err != nil {
			s.log.Debug("discovery: peer not reachable yet", "addr", addr, "err", err)
			continue
		}
		s.disc.add(info.GetSelf())
		s.disc.add(info.GetKnown()...)
		if info.GetInCluster() && info.GetSelf().GetNodeId() != s.cfg.NodeID {
			if err := s.joinVia(addr); err != nil {
				s.log.Info("join not accepted yet; retrying", "via", addr, "err", err)
				continue
			}
			s.log.Info("joined cluster", "via", addr)
			return true
		}
	}
	if s.inCluster() {
		return true
	}
	known := append(s.disc.list(), s.identity())
	if s.cfg.BootstrapExpect > 0 && len(known) >= s.cfg.BootstrapExpect {
		servers := make([]raft.Server, 0, len(known))
		for _, id := range known {
			servers = append(servers, s.raftServer(id))
		}
		sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
		if err := s.bootstrap(servers); err != nil {
			s.log.Error("bootstrap failed", "err", err)
			return false
		}
		s.log.Info("bootstrapped cluster", "servers", len(servers))
		return true
	}
	return false
}

func (s *Server) serverInfo(addr string) (*pb.ServerInfoResponse, error) {
	conn, err := s.conns.get(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	return pb.NewOperatorServiceClient(conn).ServerInfo(ctx, &pb.ServerInfoRequest{Caller: s.identity()})
}

func (s *Server) joinVia(addr string) error {
	conn, err := s.conns.get(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	_, err = pb.NewOperatorServiceClient(conn).Join(ctx, &pb.JoinRequest{Server: s.identity(), Rejoin: s.rparts.hasState})
	return err
}

// ensureRegistered re-sends Join when the replicated server table lacks this
// node's current addresses (after an address change, or when the first
// leader did not know them).
func (s *Server) ensureRegistered() {
	if cur := s.State().Server(s.cfg.NodeID); cur != nil && proto.Equal(cur, s.identity()) {
		return
	}
	if s.IsLeader() {
		return // the leader loop registers the leader
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	addr, err := s.leaderGRPCAddr(ctx)
	if err != nil {
		// A node restarted at a new Raft address is unknown to the leader,
		// which still replicates to the old one, so this node hears of no
		// leader. Ask the other servers who leads and join there: the
		// leader then records the new address.
		if addr = s.leaderFromPeers(); addr == "" {
			return
		}
	}
	if err := s.joinVia(addr); err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			s.log.Warn("the leader refuses this node", "err", err)
		} else {
			s.log.Debug("registration not accepted yet", "err", err)
		}
	} else if cur := s.State().Server(s.cfg.NodeID); cur != nil && cur.GetRaftAddr() != s.cfg.RaftAddr {
		s.log.Info("re-registered at a new raft address", "old", cur.GetRaftAddr(), "new", s.cfg.RaftAddr, "via", addr)
	}
}

// leaderFromPeers asks the --join servers and the servers this node knows
// for the leader's API address.
func (s *Server) leaderFromPeers() string {
	for addr := range s.peerAddrs() {
		info, err := s.serverInfo(addr)
		if err != nil {
			continue
		}
		if l := info.GetLeaderGrpcAddr(); l != "" && l != s.cfg.GRPCAdvertise {
			return l
		}
	}
	return ""
}
