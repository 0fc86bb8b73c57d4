package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// clientTokenRetention is how long idempotency records are kept.
const clientTokenRetention = 24 * time.Hour

// monitorLeadership runs the leader's background work while this node leads,
// in the manner of consul's monitorLeadership.
func (s *Server) monitorLeadership() {
	var stop context.CancelFunc
	done := make(chan struct{})
	close(done)
	for {
		select {
		case <-s.ctx.Done():
			if stop != nil {
				stop()
				<-done
			}
			return
		case isLeader := <-s.leaderNotify:
			if isLeader && stop == nil {
				var ctx context.Context
				ctx, stop = context.WithCancel(s.ctx)
				done = make(chan struct{})
				go func() { defer close(done); s.leaderLoop(ctx) }()
			} else if !isLeader && stop != nil {
				s.leaderReady.Store(false)
				s.sessions.closeAll()
				stop()
				<-done
				stop = nil
				s.log.Info("lost leadership")
			}
		}
	}
}

// leaderLoop establishes leadership, then runs the leader's reconcilers until
// ctx ends.
func (s *Server) leaderLoop(ctx context.Context) {
	// A barrier makes every entry of earlier terms applied here before this
	// node answers linearizable reads.
	for {
		bctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := waitFuture(bctx, s.raft.Barrier(time.Minute))
		cancel()
		if err == nil {
			break
		} else if ctx.Err() != nil {
			return
		} else {
			s.log.Warn("leader barrier failed; retrying", "err", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	s.leaderReady.Store(true)
	s.log.Info("acquired leadership", "term_ready", true)
	s.establishLeadership(ctx)
	go s.reconcileAgents(ctx)
	go s.runner.Run(ctx)
	if s.audit != nil {
		go s.exportAudit(ctx)
	}

	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			s.pruneClientTokens(ctx)
			s.pruneAudit(ctx)
		}
	}
}

// establishLeadership records this server, the servers discovery knows of,
// and the cluster meta on first leadership.
func (s *Server) establishLeadership(ctx context.Context) {
	if s.State().Meta() == nil {
		key := make([]byte, 32)
		id := make([]byte, 8)
		_, _ = rand.Read(key)
		_, _ = rand.Read(id)
		s.applyBackground(ctx, fsm.SetClusterMetaType, &pb.SetClusterMetaCommand{Meta: &pb.ClusterMeta{ClusterId: hex.EncodeToString(id), PageTokenKey: key}})
	}
	s.registerIfChanged(ctx, s.identity())
	cfg := s.raft.GetConfiguration()
	if cfg.Error() != nil {
		return
	}
	for _, srv := range cfg.Configuration().Servers {
		if id := s.disc.lookup(string(srv.ID)); id != nil {
			s.registerIfChanged(ctx, id)
		}
	}
	s.pruneClientTokens(ctx)
	s.pruneAudit(ctx)
}

func (s *Server) registerIfChanged(ctx context.Context, id *pb.ServerIdentity) {
	if cur := s.State().Server(id.GetNodeId()); cur != nil && proto.Equal(cur, id) {
		return
	}
	s.applyBackground(ctx, fsm.RegisterServerType, &pb.RegisterServerCommand{Server: id})
}

func (s *Server) pruneClientTokens(ctx context.Context) {
	s.applyBackground(ctx, fsm.PruneClientTokensType, &pb.PruneClientTokensCommand{Before: timestamppb.New(s.Now().Add(-clientTokenRetention))})
}

// applyBackground applies a leader-initiated command and logs failures; the
// reconcilers retry on their next pass.
func (s *Server) applyBackground(ctx context.Context, t fsm.MessageType, msg proto.Message) {
	if ctx.Err() != nil {
		return
	}
	if _, err := s.Apply(ctx, t, msg); err != nil {
		s.log.Warn("leader apply failed", "type", uint8(t), "err", err)
	}
}
