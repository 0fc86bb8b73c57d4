// Package fsm is the coordinator's Raft state machine. A log entry is one byte
// of command type followed by the protobuf payload; a table maps each type to
// its apply function. Apply never reads the clock or a random source: the
// leader puts times and IDs in the command.
package fsm

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// MessageType is the first byte of a log entry.
type MessageType uint8

// Command types. Values are part of the on-disk format: never renumber.
const (
	CreateResourceType    MessageType = 1
	DeleteResourceType    MessageType = 2
	SetJobStatusType      MessageType = 3
	RegisterServerType    MessageType = 4
	DeregisterServerType  MessageType = 5
	SetClusterMetaType    MessageType = 6
	PruneClientTokensType MessageType = 7
	UpsertAgentType       MessageType = 8
	RecordLevelResultType MessageType = 9
	AppendJobEventType    MessageType = 10
	// UpdateRecommendationJobType records a recommendation job's progress.
	UpdateRecommendationJobType MessageType = 11
	// ACLCommandType changes principals, credentials, policies or secrets.
	ACLCommandType MessageType = 12
	// AppendAuditEventsType stores audit records.
	AppendAuditEventsType MessageType = 13
	// PruneAuditEventsType applies the audit retention.
	PruneAuditEventsType MessageType = 14
	// SetTagsType changes a resource's tags.
	SetTagsType MessageType = 15
	// SetGossipKeyringType replaces the cluster's gossip keyring.
	SetGossipKeyringType MessageType = 16
	// PutEndpointType registers an endpoint (or replaces its settings).
	PutEndpointType MessageType = 17
)

// IgnoreUnknownTypeFlag marks a command that older servers may skip when they
// do not know its type, so new optional commands can be rolled out one server
// at a time.
const IgnoreUnknownTypeFlag MessageType = 128

// ErrUnknownCommand is returned for a type the FSM does not know and that
// does not carry IgnoreUnknownTypeFlag.
var ErrUnknownCommand = errors.New("unknown raft command type")

// ErrBadCommand is returned for a payload that does not decode.
var ErrBadCommand = errors.New("malformed raft command")

// Encode returns the log entry for a command.
func Encode(t MessageType, msg proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", t, err)
	}
	out := make([]byte, 0, len(b)+1)
	out = append(out, byte(t))
	return append(out, b...), nil
}

// commandTypes maps each type to a constructor of its payload message.
var commandTypes = map[MessageType]func() proto.Message{
	CreateResourceType:          func() proto.Message { return &pb.CreateResourceCommand{} },
	DeleteResourceType:          func() proto.Message { return &pb.DeleteResourceCommand{} },
	SetJobStatusType:            func() proto.Message { return &pb.SetJobStatusCommand{} },
	RegisterServerType:          func() proto.Message { return &pb.RegisterServerCommand{} },
	DeregisterServerType:        func() proto.Message { return &pb.DeregisterServerCommand{} },
	SetClusterMetaType:          func() proto.Message { return &pb.SetClusterMetaCommand{} },
	PruneClientTokensType:       func() proto.Message { return &pb.PruneClientTokensCommand{} },
	UpsertAgentType:             func() proto.Message { return &pb.UpsertAgentCommand{} },
	RecordLevelResultType:       func() proto.Message { return &pb.RecordLevelResultCommand{} },
	AppendJobEventType:          func() proto.Message { return &pb.AppendJobEventCommand{} },
	UpdateRecommendationJobType: func() proto.Message { return &pb.UpdateRecommendationJobCommand{} },
	PutEndpointType:             func() proto.Message { return &pb.PutEndpointCommand{} },
	ACLCommandType:              func() proto.Message { return &pb.ACLCommand{} },
	AppendAuditEventsType:       func() proto.Message { return &pb.AppendAuditEventsCommand{} },
	PruneAuditEventsType:        func() proto.Message { return &pb.PruneAuditEventsCommand{} },
	SetTagsType:                 func() proto.Message { return &pb.SetTagsCommand{} },
	SetGossipKeyringType:        func() proto.Message { return &pb.GossipKeyring{} },
}

// TypeOf returns the command type of a payload message.
func TypeOf(msg proto.Message) (MessageType, error) {
	name := msg.ProtoReflect().Descriptor().FullName()
	for t, mk := range commandTypes {
		if mk().ProtoReflect().Descriptor().FullName() == name {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: %s is not a command", ErrUnknownCommand, name)
}
