package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftParts are the pieces of a Raft node that must be closed on shutdown.
type raftParts struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	hasState  bool
}

func (s *Server) setupRaft() (*raftParts, error) {
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(s.cfg.NodeID)
	cfg.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	cfg.ElectionTimeout = s.cfg.ElectionTimeout
	cfg.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.MaxAppendEntries = 512
	cfg.BatchApplyCh = true
	cfg.SnapshotThreshold = s.cfg.SnapshotThreshold
	cfg.TrailingLogs = s.cfg.TrailingLogs
	cfg.NotifyCh = s.leaderNotify
	cfg.Logger = raftLogger(s.cfg.LogLevel)
	if err := raft.ValidateConfig(cfg); err != nil {
		return nil, fmt.Errorf("raft settings: %w", err)
	}

	dir := filepath.Join(s.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, cfg.Logger)
	if err != nil {
		store.Close()
		return nil, err
	}
	addr, err := net.ResolveTCPAddr("tcp", s.cfg.RaftAddr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raft_addr %q: %w", s.cfg.RaftAddr, err)
	}
	var advertise net.Addr = addr
	if addr.Port == 0 {
		advertise = nil // advertise the port the listener got
	}
	trans, err := raft.NewTCPTransportWithLogger(s.cfg.RaftAddr, advertise, 3, 10*time.Second, cfg.Logger)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen raft_addr %q: %w", s.cfg.RaftAddr, err)
	}
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, err
	}
	r, err := raft.NewRaft(cfg, s.fsm, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, err
	}
	return &raftParts{raft: r, transport: trans, store: store, hasState: hasState}, nil
}

// bootstrap forms a new cluster from the given servers (self included).
func (s *Server) bootstrap(servers []raft.Server) error {
	f := s.raft.BootstrapCluster(raft.Configuration{Servers: servers})
	if err := f.Error(); err != nil && err != raft.ErrCantBootstrap {
		return err
	}
	return nil
}
