package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/perfleet/perfleet/pkg/atrest"
)

// raftParts are the pieces of a Raft node that must be closed on shutdown.
type raftParts struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftwal.WAL
	meta      *metadb.BoltMetaDB
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
	if s.cfg.SnapshotInterval > 0 {
		cfg.SnapshotInterval = s.cfg.SnapshotInterval
	}
	cfg.NotifyCh = s.leaderNotify
	cfg.Logger = raftLogger(s.cfg.LogLevel, s.cfg.LogFormat)
	if err := raft.ValidateConfig(cfg); err != nil {
		return nil, fmt.Errorf("raft settings: %w", err)
	}

	dir := filepath.Join(s.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, err
	}
	// raft-wal appends each batch to a segment file with one fsync; the
	// bolt store needed two page-level fsyncs per batch, which capped
	// commits on a shared disk.
	// raft-wal's Close leaves its meta database open, so the node owns it
	// and closes it itself (a restart in the same process would otherwise
	// wait forever on the file lock).
	meta := &metadb.BoltMetaDB{}
	segSize := raftwal.DefaultSegmentSize
	if s.cfg.RaftSegmentSize > 0 {
		segSize = s.cfg.RaftSegmentSize
	}
	store, err := raftwal.Open(walDir, raftwal.WithMetaStore(meta), raftwal.WithLogger(cfg.Logger), raftwal.WithSegmentSize(segSize))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("open raft log %s: %w", walDir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, cfg.Logger)
	if err != nil {
		store.Close()
		meta.Close()
		return nil, err
	}
	// Encryption at rest: log entries and snapshots are sealed under the
	// node's data key; raft-wal stays the stable store (term and vote).
	var logs raft.LogStore = store
	var snapStore raft.SnapshotStore = snaps
	if kr, err := s.loadKeyring(); err != nil {
		store.Close()
		meta.Close()
		return nil, err
	} else if kr != nil {
		logs = atrest.NewLogStore(store, kr)
		snapStore = atrest.NewSnapshotStore(snaps, kr)
	}
	addr, err := net.ResolveTCPAddr("tcp", s.cfg.RaftAddr)
	if err != nil {
		store.Close()
		meta.Close()
		return nil, fmt.Errorf("raft_addr %q: %w", s.cfg.RaftAddr, err)
	}
	var advertise net.Addr = addr
	switch {
	case s.cfg.RaftAdvertise != "":
		advertise, err = raftAdvertiseAddr(s.cfg.RaftAdvertise, s.tls != nil)
		if err != nil {
			store.Close()
			meta.Close()
			return nil, err
		}
	case addr.Port == 0:
		advertise = nil // advertise the port the listener got
	}
	trans, err := s.newRaftTransport(advertise, cfg.Logger)
	if err != nil {
		store.Close()
		meta.Close()
		return nil, fmt.Errorf("listen raft_addr %q: %w", s.cfg.RaftAddr, err)
	}
	hasState, err := raft.HasExistingState(logs, store, snapStore)
	if err != nil {
		trans.Close()
		store.Close()
		meta.Close()
		return nil, err
	}
	r, err := raft.NewRaft(cfg, s.fsm, logs, store, snapStore, trans)
	if err != nil {
		trans.Close()
		store.Close()
		meta.Close()
		return nil, err
	}
	return &raftParts{raft: r, transport: trans, store: store, meta: meta, hasState: hasState}, nil
}

// bootstrap forms a new cluster from the given servers (self included).
func (s *Server) bootstrap(servers []raft.Server) error {
	f := s.raft.BootstrapCluster(raft.Configuration{Servers: servers})
	if err := f.Error(); err != nil && err != raft.ErrCantBootstrap {
		return err
	}
	return nil
}

// close releases the log store and its meta database.
func (p *raftParts) close() error {
	err := p.store.Close()
	if cerr := p.meta.Close(); err == nil {
		err = cerr
	}
	return err
}
