// Package endpoint serves perfleet.v1.InferenceOptimization. Each handler
// validates, builds a Raft command with the leader's time and IDs, applies it
// and returns; reads come from the state store. Routing to the leader and
// error mapping happen once, around every handler (see ToStatus).
package endpoint

import (
	"context"
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/arn"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Backend is what the handlers need from the node.
type Backend interface {
	// State is the replicated state store.
	State() *state.Store
	// Apply commits a command and returns the FSM's result.
	Apply(ctx context.Context, t fsm.MessageType, msg proto.Message) (any, error)
	// Scope is the partition and region of ARNs.
	Scope() arn.Scope
	// Account is the caller's account.
	Account(ctx context.Context) string
	// Now is the leader's clock.
	Now() time.Time
	// PageKey is the HMAC key for list tokens.
	PageKey() []byte
	// MaxActiveJobs is the per-account active job limit.
	MaxActiveJobs() uint32
	// Progress is a running benchmark job's plan size and live level, when
	// this node runs it.
	Progress(account, name string) (levels int, level *pb.LevelProgress, ok bool)
}

// Endpoint implements the InferenceOptimization service.
type Endpoint struct {
	pb.UnimplementedInferenceOptimizationServer
	b Backend
}

var _ pb.InferenceOptimizationServer = (*Endpoint)(nil)

// New returns the service over a backend.
func New(b Backend) *Endpoint { return &Endpoint{b: b} }

func (e *Endpoint) now() *timestamppb.Timestamp { return timestamppb.New(e.b.Now()) }

// create applies a create command and returns the ARN it produced.
func (e *Endpoint) create(ctx context.Context, cmd *pb.CreateResourceCommand) (string, error) {
	cmd.MaxActiveJobs = e.b.MaxActiveJobs()
	res, err := e.b.Apply(ctx, fsm.CreateResourceType, cmd)
	if err != nil {
		return "", err
	}
	return res.(state.CreateResult).ARN, nil
}

// clientToken builds the idempotency record of a create, or nil without a
// token. The hash covers the whole request except the token, so a retry must
// repeat the request exactly.
func (e *Endpoint) clientToken(account, operation, token string, req proto.Message) *pb.ClientTokenRecord {
	if token == "" {
		return nil
	}
	c := proto.Clone(req)
	c.ProtoReflect().Clear(c.ProtoReflect().Descriptor().Fields().ByName("client_token"))
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	sum := sha256.Sum256(b)
	return &pb.ClientTokenRecord{AccountId: account, Operation: operation, Token: token, RequestHash: sum[:], Created: e.now()}
}

// setStatus applies a job status change.
func (e *Endpoint) setStatus(ctx context.Context, cmd *pb.SetJobStatusCommand) (state.StatusResult, error) {
	cmd.Time = e.now()
	res, err := e.b.Apply(ctx, fsm.SetJobStatusType, cmd)
	if err != nil {
		return state.StatusResult{}, err
	}
	return res.(state.StatusResult), nil
}

// remove applies a delete and returns the deleted resource's ARN.
func (e *Endpoint) remove(ctx context.Context, kind, account, name string) (string, error) {
	res, err := e.b.Apply(ctx, fsm.DeleteResourceType, &pb.DeleteResourceCommand{Kind: kind, AccountId: account, Name: name})
	if err != nil {
		return "", err
	}
	return res.(string), nil
}
