package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/perfleet/perfleet/coordinator/endpoint"
)

// AWS error types: the __type of a JSON error response. The SageMaker SDKs
// decode ResourceNotFound, ResourceInUse, ResourceLimitExceeded and
// ConflictException into typed errors (types.ResourceNotFound, ...); the
// others arrive as generic API errors with this code.
const (
	typeValidation         = "ValidationException"
	typeResourceNotFound   = "ResourceNotFound"
	typeResourceInUse      = "ResourceInUse"
	typeResourceLimit      = "ResourceLimitExceeded"
	typeConflict           = "ConflictException"
	typeAccessDenied       = "AccessDeniedException"
	typeThrottling         = "ThrottlingException"
	typeUnrecognized       = "UnrecognizedClientException"
	typeInvalidSignature   = "InvalidSignatureException"
	typeIncompleteSig      = "IncompleteSignatureException"
	typeMissingAuth        = "MissingAuthenticationTokenException"
	typeUnknownOperation   = "UnknownOperationException"
	typeSerialization      = "SerializationException"
	typeInternalFailure    = "InternalFailure"
	typeServiceUnavailable = "ServiceUnavailable"
	typeRequestCanceled    = "RequestCanceled"
)

// apiError is an error answered in AWS's JSON error shape.
type apiError struct {
	status  int    // HTTP status
	typ     string // __type
	message string
}

func (e *apiError) Error() string { return e.typ + ": " + e.message }

func newAPIError(status int, typ, format string, args ...any) *apiError {
	return &apiError{status: status, typ: typ, message: fmt.Sprintf(format, args...)}
}

func validationError(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, typeValidation, format, args...)
}

func serializationError(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, typeSerialization, format, args...)
}

func internalError(format string, args ...any) *apiError {
	return newAPIError(http.StatusInternalServerError, typeInternalFailure, format, args...)
}

// reasonTypes maps the google.rpc.ErrorInfo reasons perfleet's services put
// on their errors (endpoint.ToStatus) to AWS error types and HTTP statuses.
var reasonTypes = map[string]struct {
	typ    string
	status int
}{
	typeValidation:         {typeValidation, http.StatusBadRequest},
	typeResourceNotFound:   {typeResourceNotFound, http.StatusBadRequest},
	typeResourceInUse:      {typeResourceInUse, http.StatusBadRequest},
	typeResourceLimit:      {typeResourceLimit, http.StatusBadRequest},
	typeConflict:           {typeConflict, http.StatusBadRequest},
	typeAccessDenied:       {typeAccessDenied, http.StatusBadRequest},
	typeThrottling:         {typeThrottling, http.StatusBadRequest},
	typeUnrecognized:       {typeUnrecognized, http.StatusBadRequest},
	typeInternalFailure:    {typeInternalFailure, http.StatusInternalServerError},
	"NotLeader":            {typeServiceUnavailable, http.StatusServiceUnavailable},
	typeServiceUnavailable: {typeServiceUnavailable, http.StatusServiceUnavailable},
	"RequestTimeout":       {typeInternalFailure, http.StatusInternalServerError},
	typeRequestCanceled:    {typeRequestCanceled, http.StatusBadRequest},
}

// codeTypes maps gRPC codes of errors without a known reason.
var codeTypes = map[codes.Code]string{
	codes.InvalidArgument:    typeValidation,
	codes.OutOfRange:         typeValidation,
	codes.NotFound:           typeResourceNotFound,
	codes.AlreadyExists:      typeResourceInUse,
	codes.FailedPrecondition: typeResourceInUse,
	codes.Aborted:            typeResourceInUse,
	codes.ResourceExhausted:  typeThrottling,
	codes.PermissionDenied:   typeAccessDenied,
	codes.Unauthenticated:    typeUnrecognized,
	codes.Unavailable:        typeServiceUnavailable,
	codes.Canceled:           typeRequestCanceled,
}

// toAPIError turns what a service method returned into the AWS error. The
// ErrorInfo reason names the AWS error when there is one; otherwise the gRPC
// code decides. Validation messages name the fields by their AWS member
// paths, resolved against the request message's descriptor.
func toAPIError(err error, in protoreflect.MessageDescriptor) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.Convert(endpoint.ToStatus(err))
	}
	var reason string
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		switch x := d.(type) {
		case *errdetails.ErrorInfo:
			reason = x.GetReason()
		case *errdetails.BadRequest:
			br = x
		}
	}
	rt, ok := reasonTypes[reason]
	if !ok {
		rt.typ, ok = codeTypes[st.Code()]
		if !ok {
			rt.typ = typeInternalFailure
		}
		rt.status = reasonTypes[rt.typ].status
	}
	msg := st.Message()
	if rt.typ == typeValidation && br != nil && len(br.GetFieldViolations()) > 0 {
		msg = validationMessage(br, in)
	}
	return &apiError{status: rt.status, typ: rt.typ, message: msg}
}

// validationMessage renders field violations with AWS member paths, in the
// manner of SageMaker: "2 validation errors detected: RoleArn: ...; ...".
func validationMessage(br *errdetails.BadRequest, in protoreflect.MessageDescriptor) string {
	vs := br.GetFieldViolations()
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = awsPath(in, v.GetField()) + ": " + v.GetDescription()
	}
	noun := "errors"
	if len(vs) == 1 {
		noun = "error"
	}
	return fmt.Sprintf("%d validation %s detected: %s", len(vs), noun, strings.Join(parts, "; "))
}
