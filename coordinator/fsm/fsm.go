package fsm

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// FSM applies committed Raft log entries to the state store.
type FSM struct {
	store   atomic.Pointer[state.Store]
	applied atomic.Uint64
	// restores counts snapshots restored: at start from the local store and
	// from the leader when this node fell too far behind.
	restores atomic.Uint64
	log      *slog.Logger
	// applying is the index of the entry being applied (Apply runs on one
	// goroutine); ApplyBytes callers in tests leave it at the last one.
	applying uint64
	apply    map[MessageType]func(*state.Store, proto.Message) any
}

var _ raft.FSM = (*FSM)(nil)

// New returns an FSM over an empty store.
func New(log *slog.Logger) *FSM {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FSM{log: log}
	f.store.Store(state.New())
	f.apply = map[MessageType]func(*state.Store, proto.Message) any{
		CreateResourceType: func(s *state.Store, m proto.Message) any {
			return result(s.Create(m.(*pb.CreateResourceCommand)))
		},
		DeleteResourceType: func(s *state.Store, m proto.Message) any {
			return result(s.Delete(m.(*pb.DeleteResourceCommand)))
		},
		SetJobStatusType: func(s *state.Store, m proto.Message) any {
			return result(s.SetJobStatus(m.(*pb.SetJobStatusCommand)))
		},
		RegisterServerType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.RegisterServer(m.(*pb.RegisterServerCommand).GetServer()))
		},
		DeregisterServerType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.DeregisterServer(m.(*pb.DeregisterServerCommand).GetNodeId()))
		},
		SetClusterMetaType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.SetMeta(m.(*pb.SetClusterMetaCommand).GetMeta()))
		},
		AppendJobEventType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.AppendJobEvent(m.(*pb.AppendJobEventCommand)))
		},
		UpdateRecommendationJobType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.UpdateRecommendationJob(m.(*pb.UpdateRecommendationJobCommand)))
		},
		RecordLevelResultType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.RecordLevelResult(m.(*pb.RecordLevelResultCommand)))
		},
		UpsertAgentType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.UpsertAgent(m.(*pb.UpsertAgentCommand).GetAgent()))
		},
		PruneClientTokensType: func(s *state.Store, m proto.Message) any {
			return result(s.PruneClientTokens(m.(*pb.PruneClientTokensCommand).GetBefore()))
		},
		ACLCommandType: func(s *state.Store, m proto.Message) any {
			return result(s.ApplyACL(m.(*pb.ACLCommand)))
		},
		AppendAuditEventsType: func(s *state.Store, m proto.Message) any {
			// Sequences come from the log index, the same on every node.
			return errOrNil(s.AppendAuditEvents(f.applying, m.(*pb.AppendAuditEventsCommand)))
		},
		PruneAuditEventsType: func(s *state.Store, m proto.Message) any {
			return result(s.PruneAuditEvents(m.(*pb.PruneAuditEventsCommand)))
		},
		SetGossipKeyringType: func(s *state.Store, m proto.Message) any {
			return errOrNil(s.SetGossipKeyring(m.(*pb.GossipKeyring)))
		},
		PutEndpointType: func(s *state.Store, m proto.Message) any {
			return result(s.PutEndpoint(m.(*pb.PutEndpointCommand)))
		},
		SetTagsType: func(s *state.Store, m proto.Message) any {
			return result(s.SetTags(m.(*pb.SetTagsCommand)))
		},
	}
	return f
}

// State returns the current store. A restore swaps in a new one; hold the
// returned pointer only for one read.
func (f *FSM) State() *state.Store { return f.store.Load() }

// AppliedIndex is the index of the last applied log entry.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Apply applies one log entry. It returns the command's result value, or an
// error value for a command the store refused; Raft hands it to the leader's
// ApplyFuture.Response.
func (f *FSM) Apply(l *raft.Log) any {
	defer f.applied.Store(l.Index)
	f.applying = l.Index
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.ApplyBytes(l.Data)
}

// ApplyBytes decodes and applies one command; exported for tests and fuzzing.
func (f *FSM) ApplyBytes(data []byte) any {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty entry", ErrBadCommand)
	}
	t := MessageType(data[0])
	mk, ok := commandTypes[t&^IgnoreUnknownTypeFlag]
	if !ok {
		if t&IgnoreUnknownTypeFlag != 0 {
			f.log.Warn("skipping unknown raft command with the ignore flag", "type", uint8(t))
			return nil
		}
		f.log.Error("unknown raft command type; is this server older than the leader?", "type", uint8(t))
		return fmt.Errorf("%w %d", ErrUnknownCommand, uint8(t))
	}
	msg := mk()
	if err := proto.Unmarshal(data[1:], msg); err != nil {
		return fmt.Errorf("%w: type %d: %v", ErrBadCommand, uint8(t), err)
	}
	return f.apply[t&^IgnoreUnknownTypeFlag](f.store.Load(), msg)
}

// Snapshot takes a point-in-time view; Persist does the I/O.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{snap: f.store.Load().Snapshot()}, nil
}

// Restore replaces the state with a snapshot's: it builds a fresh store and
// swaps it in, so readers never see a half-restored state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	fresh, err := state.Restore(rc)
	if err != nil {
		return err
	}
	old := f.store.Swap(fresh)
	old.Abandon()
	f.restores.Add(1)
	return nil
}

// Restores is the number of snapshots this FSM has restored.
func (f *FSM) Restores() uint64 { return f.restores.Load() }

type snapshot struct{ snap *state.Snapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

func result[T any](v T, err error) any {
	if err != nil {
		return err
	}
	return v
}

func errOrNil(err error) any {
	if err != nil {
		return err
	}
	return nil
}
