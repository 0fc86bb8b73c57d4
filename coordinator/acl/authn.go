package acl

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// Metadata headers a coordinator sets when it forwards a call to the leader
// for a caller it authenticated itself (a gateway or certificate caller).
// The leader believes them only from a peer that proves it is a server: a
// server certificate, or the cluster's internal key.
const (
	HeaderPrincipal = "x-perfleet-principal"
	HeaderAuthBy    = "x-perfleet-auth-by"
	HeaderCredID    = "x-perfleet-credential-id"
	HeaderSourceIP  = "x-perfleet-source-ip"
	HeaderInternal  = "x-perfleet-internal"
)

// InternalKey derives the key servers prove themselves with when they
// forward calls without TLS, from the cluster's replicated random key.
func InternalKey(clusterKey []byte) string {
	m := hmac.New(sha256.New, clusterKey)
	m.Write([]byte("perfleet forwarded call v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// Authenticator maps a call's credentials to an Identity.
type Authenticator struct {
	// State returns the current replicated state.
	State func() *state.Store
	// DefaultAccount is the account calls run in while ACLs are off.
	DefaultAccount string
	// Now is the clock for token expiry.
	Now func() time.Time
}

// Authenticate returns the caller of a gRPC call. While ACLs are off it is
// the default account with no principal; after, a call with no valid
// credentials fails with ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context) (*Identity, error) {
	st := a.State()
	md, _ := metadata.FromIncomingContext(ctx)
	id := &Identity{UserAgent: first(md, "user-agent")}
	var tlsPeer *tlsutil.Identity
	if p, ok := peer.FromContext(ctx); ok {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			id.SourceIP = host
		}
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			id.SecureTransport = true
			if pi, err := tlsutil.PeerIdentity(info.State); err == nil {
				tlsPeer = &pi
			}
		}
	}
	if !st.ACLEnabled() {
		id.Account, id.AuthBy, id.Type = a.DefaultAccount, ByNone, "Unknown"
		return id, nil
	}
	fromServer := (tlsPeer != nil && tlsPeer.Role == tlsutil.RoleServer) ||
		(first(md, HeaderInternal) != "" && hmac.Equal([]byte(first(md, HeaderInternal)), []byte(InternalKey(st.Meta().GetPageTokenKey()))))
	if principal := first(md, HeaderPrincipal); principal != "" {
		if !fromServer {
			return nil, fmt.Errorf("%w: %s may be set only by a coordinator forwarding a call", ErrUnauthenticated, HeaderPrincipal)
		}
		if ip := first(md, HeaderSourceIP); ip != "" {
			id.SourceIP = ip
		}
		id.AuthBy, id.CredentialID = first(md, HeaderAuthBy), first(md, HeaderCredID)
		return a.withPrincipal(st, id, principal)
	}
	if auth := first(md, "authorization"); auth != "" {
		secret, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			return nil, fmt.Errorf("%w: the authorization header must be 'Bearer <token secret>'", ErrUnauthenticated)
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
		tok := st.TokenBySecretHash(sum[:])
		if tok == nil {
			return nil, fmt.Errorf("%w: the bearer token is not valid (revoked, or never issued)", ErrUnauthenticated)
		}
		if exp := tok.GetToken().GetExpiration(); exp != nil && !a.Now().Before(exp.AsTime()) {
			return nil, fmt.Errorf("%w: token %s expired at %s", ErrUnauthenticated, tok.GetToken().GetAccessorId(), exp.AsTime().Format(time.RFC3339))
		}
		id.AuthBy, id.CredentialID = ByToken, tok.GetToken().GetAccessorId()
		return a.withPrincipal(st, id, tok.GetToken().GetPrincipalArn())
	}
	if tlsPeer != nil && tlsPeer.Role == tlsutil.RoleClient && tlsPeer.Principal != "" {
		id.AuthBy, id.CredentialID = ByCertificate, tlsPeer.Serial
		return a.withPrincipal(st, id, tlsPeer.Principal)
	}
	return nil, fmt.Errorf("%w: ACLs are enabled and the call has no credentials; send 'authorization: Bearer <token>' "+
		"(perfleet acl token create, or PERFLEET_TOKEN for the CLI) or use a client certificate that names a principal", ErrUnauthenticated)
}

// ForAccessKey returns the identity of a SigV4 access key, for the gateway:
// the key's principal and the record whose secret (and, for temporary
// credentials, session token) the request must be signed with.
func (a *Authenticator) ForAccessKey(accessKeyID string) (*Identity, *pb.AccessKeyRecord, error) {
	st := a.State()
	if !st.ACLEnabled() {
		return &Identity{Account: a.DefaultAccount, AuthBy: ByNone, Type: "Unknown"}, nil, nil
	}
	k, err := st.AccessKey(accessKeyID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the access key ID %s is not valid", ErrUnauthenticated, accessKeyID)
	}
	if exp := k.GetKey().GetExpiration(); exp != nil && !a.Now().Before(exp.AsTime()) {
		return nil, nil, fmt.Errorf("%w: the temporary credentials %s expired at %s", ErrUnauthenticated, accessKeyID, exp.AsTime().Format(time.RFC3339))
	}
	id, err := a.withPrincipal(st, &Identity{AuthBy: ByAccessKey, CredentialID: accessKeyID}, k.GetKey().GetPrincipalArn())
	return id, k, err
}

// withPrincipal fills id from the principal's record.
func (a *Authenticator) withPrincipal(st *state.Store, id *Identity, principal string) (*Identity, error) {
	p, err := st.Principal(principal)
	if err != nil {
		return nil, fmt.Errorf("%w: principal %s does not exist (deleted?)", ErrUnauthenticated, principal)
	}
	FillPrincipal(id, p)
	return id, nil
}

// FillPrincipal copies a principal's record into id.
func FillPrincipal(id *Identity, p *pb.Principal) {
	id.PrincipalARN, id.PrincipalID, id.Account, id.Username = p.GetArn(), p.GetPrincipalId(), p.GetAccountId(), p.GetName()
	id.PolicyARNs = p.GetPolicyArns()
	id.Tags = map[string]string{}
	for _, t := range p.GetTags() {
		id.Tags[t.GetKey()] = t.GetValue()
	}
	id.Type = "IAMUser"
	if p.GetType() == pb.PrincipalType_PRINCIPAL_TYPE_ROLE {
		id.Type = "AssumedRole"
	}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
