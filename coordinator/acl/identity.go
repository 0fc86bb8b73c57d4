// Package acl authenticates and authorizes coordinator API calls: it maps a
// call's credentials (a bearer token, a SigV4 access key checked by the JSON
// gateway, or an mTLS client certificate naming a principal) to a principal
// in the replicated state, and evaluates the principal's attached IAM-style
// policies (pkg/auth) for the call's action and resource.
//
// Until ACLs are bootstrapped every call runs as the node's default account
// and is allowed, as in `perfleet dev`. After, unauthenticated calls fail
// with Unauthenticated and calls no policy allows with PermissionDenied.
package acl

import (
	"context"
	"errors"
)

// Sentinel errors; the API maps them to gRPC codes and AWS error names.
var (
	// ErrUnauthenticated: the call carries no valid credentials
	// (Unauthenticated, UnrecognizedClientException).
	ErrUnauthenticated = errors.New("UnrecognizedClientException")
	// ErrAccessDenied: no policy allows the call, or one denies it
	// (PermissionDenied, AccessDeniedException).
	ErrAccessDenied = errors.New("AccessDeniedException")
	// ErrThrottled: the caller is over its rate limit (ResourceExhausted,
	// ThrottlingException).
	ErrThrottled = errors.New("ThrottlingException")
)

// How a caller authenticated.
const (
	ByNone        = "none"        // ACLs are off
	ByToken       = "token"       // authorization: Bearer <secret>
	ByAccessKey   = "access-key"  // SigV4 through the JSON gateway
	ByCertificate = "certificate" // mTLS client certificate naming a principal
	ByServer      = "server"      // a coordinator acting for itself
)

// Identity is the authenticated caller of one API call.
type Identity struct {
	// PrincipalARN is the caller's principal; empty when ACLs are off.
	PrincipalARN string
	// PrincipalID is the principal's stable unique ID.
	PrincipalID string
	// Account is the account the call runs in.
	Account string
	// Username is the principal's name.
	Username string
	// Tags are the principal's tags (aws:PrincipalTag/<k>).
	Tags map[string]string
	// PolicyARNs are the principal's attached policies.
	PolicyARNs []string
	// AuthBy says how the caller authenticated (ByToken, ...).
	AuthBy string
	// CredentialID is the token accessor ID or the access key ID.
	CredentialID string
	// SourceIP is the caller's address (aws:SourceIp).
	SourceIP string
	// UserAgent is the caller's user agent.
	UserAgent string
	// SecureTransport is true when the call came over TLS.
	SecureTransport bool
	// Type is the CloudTrail userIdentity.type: IAMUser, AssumedRole,
	// Unknown (ACLs off) or AWSService (perfleet itself).
	Type string
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity in ctx, or nil.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}
