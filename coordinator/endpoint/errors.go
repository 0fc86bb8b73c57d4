package endpoint

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/perfleet/perfleet/coordinator/acl"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/validate"
)

// ErrUnavailable means the node cannot serve the call now (no leader, lost
// leadership); the client should retry.
var ErrUnavailable = errors.New("ServiceUnavailable")

// ErrNotLeader means the call reached a node that does not lead and nothing
// was applied: it is always safe to retry, and forwarding nodes do so.
var ErrNotLeader = errors.New("NotLeader")

// ErrorDomain is the google.rpc.ErrorInfo domain of perfleet errors.
const ErrorDomain = "perfleet.io"

// errorMap turns sentinels into gRPC codes and AWS error names, in order:
// the first match wins.
var errorMap = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{validate.ErrValidation, codes.InvalidArgument, "ValidationException"},
	{state.ErrTokenReused, codes.InvalidArgument, "ValidationException"},
	{state.ErrNotFound, codes.NotFound, "ResourceNotFound"},
	{state.ErrAlreadyExists, codes.AlreadyExists, "ResourceInUse"},
	{state.ErrConflict, codes.FailedPrecondition, "ResourceInUse"},
	{state.ErrLimitExceeded, codes.ResourceExhausted, "ResourceLimitExceeded"},
	{acl.ErrUnauthenticated, codes.Unauthenticated, "UnrecognizedClientException"},
	{acl.ErrAccessDenied, codes.PermissionDenied, "AccessDeniedException"},
	{acl.ErrThrottled, codes.ResourceExhausted, "ThrottlingException"},
	{ErrNotLeader, codes.Unavailable, "NotLeader"},
	{ErrUnavailable, codes.Unavailable, "ServiceUnavailable"},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "RequestTimeout"},
	{context.Canceled, codes.Canceled, "RequestCanceled"},
}

// ToStatus maps an error to a gRPC status error with a google.rpc.ErrorInfo
// whose reason is the AWS error name, plus a google.rpc.BadRequest for
// validation errors. Status errors pass through unchanged.
func ToStatus(err error) error {
	return toStatus(err)
}

// Reason returns the ErrorInfo reason of a status error, or "".
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code, reason := codes.Internal, "InternalFailure"
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			code, reason = m.code, m.reason
			break
		}
	}
	st := status.New(code, err.Error())
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}}
	var verr *validate.Error
	if errors.As(err, &verr) {
		br := &errdetails.BadRequest{}
		for _, v := range verr.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Rule})
		}
		details = append(details, br)
	} else if errors.Is(err, state.ErrTokenReused) {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "client_token", Description: err.Error()}}})
	}
	if withD, derr := st.WithDetails(details...); derr == nil {
		st = withD
	}
	return st.Err()
}
