package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/metadata"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

const snapshotChunk = 1 << 20

// MaxBackupSize bounds a SnapshotRestore upload.
const MaxBackupSize = 16 << 30

// SnapshotSave streams a backup of this node's state at its applied index.
func (o *operator) SnapshotSave(_ *pb.SnapshotSaveRequest, stream pb.OperatorService_SnapshotSaveServer) error {
	return endpoint.ToStatus(o.snapshotSave(stream))
}

func (o *operator) snapshotSave(stream pb.OperatorService_SnapshotSaveServer) error {
	s := o.s
	index := s.fsm.AppliedIndex()
	snap := s.State().Snapshot() // a point-in-time read transaction
	w := &chunkWriter{send: func(b []byte, first bool) error {
		m := &pb.SnapshotSaveResponse{Data: b}
		if first {
			m.NodeId, m.AppliedIndex = s.cfg.NodeID, index
		}
		return stream.Send(m)
	}}
	if _, err := snap.WriteBackup(w); err != nil {
		return err
	}
	return w.flush()
}

// chunkWriter sends what is written in messages of snapshotChunk bytes.
type chunkWriter struct {
	buf  []byte
	sent bool
	send func(b []byte, first bool) error
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), snapshotChunk-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == snapshotChunk {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 && c.sent {
		return nil
	}
	err := c.send(c.buf, !c.sent)
	c.sent = true
	c.buf = c.buf[:0]
	return err
}

// SnapshotRestore receives a backup into a temporary file under the data
// directory, checks it whole, and then has Raft install it as the cluster's
// state. A follower checks the upload too and passes it to the leader.
func (o *operator) SnapshotRestore(stream pb.OperatorService_SnapshotRestoreServer) error {
	return endpoint.ToStatus(o.snapshotRestore(stream))
}

func (o *operator) snapshotRestore(stream pb.OperatorService_SnapshotRestoreServer) error {
	s := o.s
	f, err := os.CreateTemp(s.cfg.DataDir, "restore-*.snap")
	if err != nil {
		return err
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	var total int64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		total += int64(len(m.GetData()))
		if total > MaxBackupSize {
			return validate.Field("data", fmt.Sprintf("backup exceeds %d GiB", MaxBackupSize>>30))
		}
		if _, err := f.Write(m.GetData()); err != nil {
			return fmt.Errorf("spool backup: %w", err)
		}
	}
	if total == 0 {
		return validate.Field("data", "no backup was sent")
	}
	info, err := state.CheckBackup(f)
	if err != nil {
		return validate.Field("data", err.Error())
	}
	if !s.IsLeader() {
		return s.forwardRestore(stream.Context(), f, stream)
	}
	ctx := stream.Context()
	done := make(chan error, 1)
	go func() {
		// raft.Restore installs the snapshot as a new, higher index and
		// waits for a no-op entry after it to commit.
		done <- s.raft.Restore(&raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: info.Size},
			io.NewSectionReader(f, 0, info.Size), 5*time.Minute)
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Keep the file until Raft has read it.
		<-done
		return ctx.Err()
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) {
			// The snapshot may have been installed before leadership
			// moved: say so, and how to tell.
			return fmt.Errorf("%w: the restore's outcome is unknown (%v); compare `perfleet operator state-hash` on each node with the backup's hash %s, and run the restore again if they differ",
				endpoint.ErrUnavailable, err, info.Hash)
		}
		return fmt.Errorf("restore: %w", err)
	}
	index := s.fsm.AppliedIndex()
	s.log.Warn("cluster state replaced from a backup", "hash", info.Hash, "bytes", info.Size, "index", index)
	s.registerServersAfterRestore(ctx)
	return stream.SendAndClose(&pb.SnapshotRestoreResponse{Hash: info.Hash, Records: info.Records,
		AppliedIndex: index, Size: uint64(info.Size)})
}

// registerServersAfterRestore makes the server records match this
// cluster's Raft configuration again: a backup from another cluster names
// that cluster's servers.
func (s *Server) registerServersAfterRestore(ctx context.Context) {
	cfg := s.raft.GetConfiguration()
	if cfg.Error() != nil {
		return
	}
	member := map[string]bool{}
	for _, srv := range cfg.Configuration().Servers {
		member[string(srv.ID)] = true
	}
	servers, _ := s.State().Servers()
	for _, srv := range servers {
		if !member[srv.GetNodeId()] {
			s.applyBackground(ctx, fsm.DeregisterServerType, &pb.DeregisterServerCommand{NodeId: srv.GetNodeId()})
		}
	}
	s.registerIfChanged(ctx, s.identity())
	for _, srv := range cfg.Configuration().Servers {
		if id := s.disc.lookup(string(srv.ID)); id != nil {
			s.registerIfChanged(ctx, id)
		}
	}
}

// forwardRestore sends a checked backup file on to the leader and relays
// its answer.
func (s *Server) forwardRestore(ctx context.Context, f *os.File, stream pb.OperatorService_SnapshotRestoreServer) error {
	if wasForwarded(ctx) {
		return fmt.Errorf("%w: this node no longer leads", endpoint.ErrNotLeader)
	}
	addr, _ := s.leaderAddrNow()
	if addr == "" || addr == s.cfg.GRPCAdvertise {
		return fmt.Errorf("%w: no leader to restore on", endpoint.ErrUnavailable)
	}
	conn, err := s.conns.get(addr)
	if err != nil {
		return fmt.Errorf("%w: %v", endpoint.ErrUnavailable, err)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	out := md.Copy()
	out.Set(forwardedHeader, s.cfg.NodeID)
	s.forwardIdentity(ctx, out)
	up, err := pb.NewOperatorServiceClient(conn).SnapshotRestore(metadata.NewOutgoingContext(ctx, out))
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	resp, err := state.UploadBackup(up, f)
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}
