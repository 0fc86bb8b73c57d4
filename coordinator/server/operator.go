package server

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// operator serves perfleet.v1.OperatorService.
type operator struct {
	pb.UnimplementedOperatorServiceServer
	s *Server
}

func (o *operator) RaftListPeers(ctx context.Context, _ *pb.RaftListPeersRequest) (*pb.RaftListPeersResponse, error) {
	s := o.s
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("%w: %v", endpoint.ErrUnavailable, err)
	}
	_, leader := s.raft.LeaderWithID()
	resp := &pb.RaftListPeersResponse{}
	status := map[string]string{s.cfg.NodeID: string(gossip.StateAlive)}
	for _, m := range s.gossip.Members() {
		if m.Meta.GetRole() == gossip.RoleServer && m.Name != s.cfg.NodeID {
			status[m.Name] = string(m.State)
		}
	}
	for _, srv := range f.Configuration().Servers {
		id := s.State().Server(string(srv.ID))
		if id == nil {
			id = s.disc.lookup(string(srv.ID))
		}
		if id == nil {
			id = &pb.ServerIdentity{NodeId: string(srv.ID), RaftAddr: string(srv.Address)}
		}
		resp.Peers = append(resp.Peers, &pb.RaftPeer{Server: id, Suffrage: srv.Suffrage.String(), Leader: srv.ID == leader,
			GossipStatus: status[string(srv.ID)]})
	}
	stats := s.raft.Stats()
	fmt.Sscan(stats["term"], &resp.Term)
	fmt.Sscan(stats["commit_index"], &resp.CommitIndex)
	return resp, nil
}

func (o *operator) RaftTransferLeader(ctx context.Context, req *pb.RaftTransferLeaderRequest) (*pb.RaftTransferLeaderResponse, error) {
	s := o.s
	var f raft.Future
	if req.GetNodeId() == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		srv, err := o.voter(req.GetNodeId())
		if err != nil {
			return nil, err
		}
		f = s.raft.LeadershipTransferToServer(srv.ID, srv.Address)
	}
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("%w: leadership transfer failed: %v", endpoint.ErrUnavailable, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, id := s.raft.LeaderWithID(); id != "" && string(id) != s.cfg.NodeID {
			nl := s.State().Server(string(id))
			if nl == nil {
				nl = &pb.ServerIdentity{NodeId: string(id)}
			}
			return &pb.RaftTransferLeaderResponse{NewLeader: nl}, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("%w: no new leader within 5s of the transfer", endpoint.ErrUnavailable)
}

func (o *operator) voter(id string) (raft.Server, error) {
	f := o.s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Server{}, err
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return srv, nil
		}
	}
	return raft.Server{}, validate.Field("node_id", fmt.Sprintf("%q is not a raft peer (see 'perfleet operator raft list-peers')", id))
}

func (o *operator) RaftRemovePeer(ctx context.Context, req *pb.RaftRemovePeerRequest) (*pb.RaftRemovePeerResponse, error) {
	s := o.s
	if req.GetNodeId() == "" {
		return nil, validate.Field("node_id", "is required")
	}
	if req.GetNodeId() == s.cfg.NodeID {
		return nil, validate.Field("node_id", "is the current leader; transfer leadership first")
	}
	if _, err := o.voter(req.GetNodeId()); err != nil {
		return nil, err
	}
	if err := s.raft.RemoveServer(raft.ServerID(req.GetNodeId()), 0, 10*time.Second).Error(); err != nil {
		return nil, fmt.Errorf("%w: remove peer: %v", endpoint.ErrUnavailable, err)
	}
	if _, err := s.Apply(ctx, fsm.DeregisterServerType, &pb.DeregisterServerCommand{NodeId: req.GetNodeId()}); err != nil {
		return nil, err
	}
	return &pb.RaftRemovePeerResponse{}, nil
}

func (o *operator) Join(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	s := o.s
	id := req.GetServer()
	var c validate.Checker
	if id.GetNodeId() == "" {
		c.Add("server.node_id", "is required")
	}
	if id.GetRaftAddr() == "" {
		c.Add("server.raft_addr", "is required")
	}
	if id.GetGrpcAddr() == "" {
		c.Add("server.grpc_addr", "is required")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	s.disc.add(id)
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("%w: %v", endpoint.ErrUnavailable, err)
	}
	present, member := false, false
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id.GetNodeId() {
			member = true
			present = string(srv.Address) == id.GetRaftAddr()
		}
	}
	if req.GetRejoin() && !member {
		return nil, fmt.Errorf("%w: server %s is not in the Raft configuration (it was removed); start it with a fresh data dir to add it back",
			state.ErrConflict, id.GetNodeId())
	}
	if !present {
		if err := s.raft.AddVoter(raft.ServerID(id.GetNodeId()), raft.ServerAddress(id.GetRaftAddr()), 0, 10*time.Second).Error(); err != nil {
			return nil, fmt.Errorf("%w: add voter: %v", endpoint.ErrUnavailable, err)
		}
		s.log.Info("added raft voter", "id", id.GetNodeId(), "raft", id.GetRaftAddr())
	}
	if _, err := s.Apply(ctx, fsm.RegisterServerType, &pb.RegisterServerCommand{Server: id}); err != nil {
		return nil, err
	}
	return &pb.JoinResponse{}, nil
}

func (o *operator) ServerInfo(ctx context.Context, req *pb.ServerInfoRequest) (*pb.ServerInfoResponse, error) {
	s := o.s
	if req.GetCaller() != nil {
		s.disc.add(req.GetCaller())
	}
	resp := &pb.ServerInfoResponse{Self: s.identity(), Known: s.disc.list(), InCluster: s.inCluster()}
	resp.LeaderGrpcAddr, _ = s.leaderAddrNow()
	return resp, nil
}

func (o *operator) StateHash(ctx context.Context, _ *pb.StateHashRequest) (*pb.StateHashResponse, error) {
	st := o.s.State()
	return &pb.StateHashResponse{Hash: st.Hash(), AppliedIndex: o.s.fsm.AppliedIndex(), Records: st.Counts()}, nil
}
