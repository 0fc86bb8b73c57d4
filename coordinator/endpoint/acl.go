package endpoint

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/acl"
	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/auth"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// ACL serves perfleet.v1.ACLService: principals, credentials, policies,
// secrets and the audit log. Authorization happens around every handler
// (the server's interceptor); handlers validate and apply.
type ACL struct {
	pb.UnimplementedACLServiceServer
	b   Backend
	res *acl.Resolver
}

// NewACL returns the ACL service over a backend.
func NewACL(b Backend, res *acl.Resolver) *ACL { return &ACL{b: b, res: res} }

var (
	principalNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	policyNameRE    = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	secretNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9/_+=.@-]{0,255}$`) // as pkg/workload accepts in references
	accountIDRE     = regexp.MustCompile(`^[0-9]{12}$`)
	iamARNRE        = regexp.MustCompile(`^arn:aws[a-z\-]*:iam::[0-9]{12}:(user|role|policy)/[\w+=,.@-]{1,128}$`)
)

// MaxSecretBytes is the largest secret value PutSecret accepts.
const MaxSecretBytes = 64 << 10

func (a *ACL) account(ctx context.Context, given string, c *validate.Checker) string {
	if given == "" {
		return a.b.Account(ctx)
	}
	if !accountIDRE.MatchString(given) {
		c.Add("account_id", "must be 12 digits")
	}
	return given
}

func checkIAMARN(c *validate.Checker, field, v, kind string) {
	m := iamARNRE.FindStringSubmatch(v)
	if m == nil || (kind != "" && m[1] != kind && !(kind == "principal" && (m[1] == "user" || m[1] == "role"))) {
		want := kind
		if kind == "principal" {
			want = "user or role"
		}
		c.Addf(field, "must be an IAM ARN of a %s, arn:aws:iam::<12-digit account>:%s/<name>; got %q", want, strings.ReplaceAll(want, " or ", "|"), v)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomID returns an AWS-style unique ID: a 4-letter prefix and 17
// upper-case base32 characters.
func randomID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	out := []byte(prefix)
	for _, x := range b {
		out = append(out, alphabet[int(x)%len(alphabet)])
	}
	return string(out)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTokenSecret returns a token record and its secret.
func (a *ACL) newTokenSecret(principal, description string, ttl time.Duration) (*pb.TokenRecord, string) {
	secret := "pft_" + randomHex(24)
	sum := sha256.Sum256([]byte(secret))
	tok := &pb.Token{AccessorId: newUUID(), PrincipalArn: principal, Description: description, Created: timestamppb.New(a.b.Now())}
	if ttl > 0 {
		tok.Expiration = timestamppb.New(a.b.Now().Add(ttl))
	}
	return &pb.TokenRecord{Token: tok, SecretSha256: sum[:]}, secret
}

func (a *ACL) apply(ctx context.Context, cmd *pb.ACLCommand) (any, error) {
	return a.b.Apply(ctx, fsm.ACLCommandType, cmd)
}

// AdminPolicyDocument is the bootstrap administrator's policy.
const AdminPolicyDocument = `{"Version":"2012-10-17","Statement":[{"Sid":"Administrator","Effect":"Allow","Action":"*","Resource":"*"}]}`

// Bootstrap turns ACLs on and creates the first administrator.
func (a *ACL) Bootstrap(ctx context.Context, req *pb.BootstrapRequest) (*pb.BootstrapResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if a.b.State().ACLEnabled() {
		return nil, fmt.Errorf("%w: ACLs are already bootstrapped; ask an administrator for a token", state.ErrConflict)
	}
	now := timestamppb.New(a.b.Now())
	pol := &pb.Policy{Arn: a.res.IAMARN(account, "policy", "AdministratorAccess"), AccountId: account, Name: "AdministratorAccess",
		Document: AdminPolicyDocument, Description: "Allows every action on every resource; created by ACL bootstrap.", Version: 1, Created: now, Updated: now}
	p := &pb.Principal{Arn: a.res.IAMARN(account, "user", "admin"), AccountId: account, Name: "admin", Type: pb.PrincipalType_PRINCIPAL_TYPE_USER,
		PolicyArns: []string{pol.GetArn()}, PrincipalId: randomID("AIDA"), Created: now, Description: "The bootstrap administrator."}
	tok, secret := a.newTokenSecret(p.GetArn(), "bootstrap token", 0)
	if _, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_Bootstrap_{Bootstrap: &pb.ACLCommand_Bootstrap{Principal: p, Policy: pol, Token: tok}}}); err != nil {
		return nil, err
	}
	return &pb.BootstrapResponse{Principal: p, Token: &pb.TokenSecret{Token: tok.GetToken(), Secret: secret}}, nil
}

// CreatePrincipal creates a user or role.
func (a *ACL) CreatePrincipal(ctx context.Context, req *pb.CreatePrincipalRequest) (*pb.CreatePrincipalResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if !principalNameRE.MatchString(req.GetName()) {
		c.Add("name", "must be 1-64 characters of letters, digits and +=,.@_-")
	}
	kind, prefix := "user", "AIDA"
	switch req.GetType() {
	case pb.PrincipalType_PRINCIPAL_TYPE_USER, pb.PrincipalType_PRINCIPAL_TYPE_UNSPECIFIED:
	case pb.PrincipalType_PRINCIPAL_TYPE_ROLE:
		kind, prefix = "role", "AROA"
	default:
		c.Add("type", "must be PRINCIPAL_TYPE_USER or PRINCIPAL_TYPE_ROLE")
	}
	if len(req.GetDescription()) > 1000 {
		c.Add("description", "must be at most 1000 characters")
	}
	checkTags(&c, req.GetTags())
	if err := c.Err(); err != nil {
		return nil, err
	}
	typ := pb.PrincipalType_PRINCIPAL_TYPE_USER
	if kind == "role" {
		typ = pb.PrincipalType_PRINCIPAL_TYPE_ROLE
	}
	p := &pb.Principal{Arn: a.res.IAMARN(account, kind, req.GetName()), AccountId: account, Name: req.GetName(), Type: typ,
		Tags: req.GetTags(), PrincipalId: randomID(prefix), Created: timestamppb.New(a.b.Now()), Description: req.GetDescription()}
	if _, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_CreatePrincipal{CreatePrincipal: p}}); err != nil {
		return nil, err
	}
	return &pb.CreatePrincipalResponse{Principal: p}, nil
}

// GetPrincipal describes a principal.
func (a *ACL) GetPrincipal(ctx context.Context, req *pb.GetPrincipalRequest) (*pb.GetPrincipalResponse, error) {
	var c validate.Checker
	checkIAMARN(&c, "arn", req.GetArn(), "principal")
	if err := c.Err(); err != nil {
		return nil, err
	}
	p, err := a.b.State().Principal(req.GetArn())
	if err != nil {
		return nil, err
	}
	return &pb.GetPrincipalResponse{Principal: p}, nil
}

// ListPrincipals lists an account's principals.
func (a *ACL) ListPrincipals(ctx context.Context, req *pb.ListPrincipalsRequest) (*pb.ListPrincipalsResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	ps, err := a.b.State().Principals(account)
	return &pb.ListPrincipalsResponse{Principals: ps}, err
}

// DeletePrincipal deletes a principal and its credentials.
func (a *ACL) DeletePrincipal(ctx context.Context, req *pb.DeletePrincipalRequest) (*pb.DeletePrincipalResponse, error) {
	var c validate.Checker
	checkIAMARN(&c, "arn", req.GetArn(), "principal")
	if id := acl.FromContext(ctx); id != nil && id.PrincipalARN == req.GetArn() {
		c.Add("arn", "is the caller; a principal cannot delete itself")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	_, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_Delete_{Delete: &pb.ACLCommand_Delete{Kind: state.ACLKindPrincipal, Key: req.GetArn()}}})
	return &pb.DeletePrincipalResponse{}, err
}

// CreateToken issues a bearer token.
func (a *ACL) CreateToken(ctx context.Context, req *pb.CreateTokenRequest) (*pb.CreateTokenResponse, error) {
	var c validate.Checker
	checkIAMARN(&c, "principal_arn", req.GetPrincipalArn(), "user")
	if len(req.GetDescription()) > 256 {
		c.Add("description", "must be at most 256 characters")
	}
	if req.GetTtlSeconds() < 0 {
		c.Add("ttl_seconds", "must be >= 0 (0 means no expiry)")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	tok, secret := a.newTokenSecret(req.GetPrincipalArn(), req.GetDescription(), time.Duration(req.GetTtlSeconds())*time.Second)
	if _, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_CreateToken{CreateToken: tok}}); err != nil {
		return nil, err
	}
	return &pb.CreateTokenResponse{Token: &pb.TokenSecret{Token: tok.GetToken(), Secret: secret}}, nil
}

// ListTokens lists tokens.
func (a *ACL) ListTokens(ctx context.Context, req *pb.ListTokensRequest) (*pb.ListTokensResponse, error) {
	account := a.b.Account(ctx)
	if p := req.GetPrincipalArn(); p != "" {
		account = state.AccountOfARN(p)
	}
	toks, err := a.b.State().Tokens(account, req.GetPrincipalArn())
	return &pb.ListTokensResponse{Tokens: toks}, err
}

// RevokeToken deletes a token.
func (a *ACL) RevokeToken(ctx context.Context, req *pb.RevokeTokenRequest) (*pb.RevokeTokenResponse, error) {
	if req.GetAccessorId() == "" {
		return nil, validate.Field("accessor_id", "is required")
	}
	_, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_Delete_{Delete: &pb.ACLCommand_Delete{Kind: state.ACLKindToken, Key: req.GetAccessorId()}}})
	return &pb.RevokeTokenResponse{}, err
}

// CreateAccessKey issues a SigV4 access key.
func (a *ACL) CreateAccessKey(ctx context.Context, req *pb.CreateAccessKeyRequest) (*pb.CreateAccessKeyResponse, error) {
	var c validate.Checker
	checkIAMARN(&c, "principal_arn", req.GetPrincipalArn(), "user")
	if d := req.GetDurationSeconds(); d != 0 && (d < 900 || d > 43200) {
		c.Addf("duration_seconds", "must be 900-43200 (15 minutes to 12 hours, as STS), got %d", d)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	secret := base64.RawStdEncoding.EncodeToString(b)[:40]
	prefix, token := "AKIA", ""
	key := &pb.AccessKey{PrincipalArn: req.GetPrincipalArn(), Created: timestamppb.New(a.b.Now())}
	if d := req.GetDurationSeconds(); d > 0 {
		prefix, token = "ASIA", "pfs_"+randomHex(48)
		key.Expiration = timestamppb.New(a.b.Now().Add(time.Duration(d) * time.Second))
	}
	key.AccessKeyId = randomID(prefix)[:20]
	rec := &pb.AccessKeyRecord{Key: key, SecretAccessKey: secret, SessionToken: token}
	if _, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_CreateAccessKey{CreateAccessKey: rec}}); err != nil {
		return nil, err
	}
	return &pb.CreateAccessKeyResponse{AccessKey: key, SecretAccessKey: secret, SessionToken: token}, nil
}

// ListAccessKeys lists access keys.
func (a *ACL) ListAccessKeys(ctx context.Context, req *pb.ListAccessKeysRequest) (*pb.ListAccessKeysResponse, error) {
	account := a.b.Account(ctx)
	if p := req.GetPrincipalArn(); p != "" {
		account = state.AccountOfARN(p)
	}
	keys, err := a.b.State().AccessKeys(account, req.GetPrincipalArn())
	return &pb.ListAccessKeysResponse{AccessKeys: keys}, err
}

// RevokeAccessKey deletes an access key.
func (a *ACL) RevokeAccessKey(ctx context.Context, req *pb.RevokeAccessKeyRequest) (*pb.RevokeAccessKeyResponse, error) {
	if req.GetAccessKeyId() == "" {
		return nil, validate.Field("access_key_id", "is required")
	}
	_, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_Delete_{Delete: &pb.ACLCommand_Delete{Kind: state.ACLKindAccessKey, Key: req.GetAccessKeyId()}}})
	return &pb.RevokeAccessKeyResponse{}, err
}

// PutPolicy creates or replaces a policy.
func (a *ACL) PutPolicy(ctx context.Context, req *pb.PutPolicyRequest) (*pb.PutPolicyResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if !policyNameRE.MatchString(req.GetName()) {
		c.Add("name", "must be 1-128 characters of letters, digits and +=,.@_-")
	}
	if len(req.GetDocument()) > 6144 {
		c.Addf("document", "must be at most 6144 characters (IAM's managed policy limit), got %d", len(req.GetDocument()))
	} else if _, err := auth.Parse([]byte(req.GetDocument())); err != nil {
		c.Add("document", err.Error())
	}
	if len(req.GetDescription()) > 1000 {
		c.Add("description", "must be at most 1000 characters")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	now := timestamppb.New(a.b.Now())
	p := &pb.Policy{Arn: a.res.IAMARN(account, "policy", req.GetName()), AccountId: account, Name: req.GetName(),
		Document: req.GetDocument(), Description: req.GetDescription(), Created: now, Updated: now}
	res, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_PutPolicy{PutPolicy: p}})
	if err != nil {
		return nil, err
	}
	return &pb.PutPolicyResponse{Policy: res.(*pb.Policy)}, nil
}

// GetPolicy returns a policy.
func (a *ACL) GetPolicy(ctx context.Context, req *pb.GetPolicyRequest) (*pb.GetPolicyResponse, error) {
	var c validate.Checker
	checkIAMARN(&c, "arn", req.GetArn(), "policy")
	if err := c.Err(); err != nil {
		return nil, err
	}
	p, err := a.b.State().Policy(req.GetArn())
	if err != nil {
		return nil, err
	}
	return &pb.GetPolicyResponse{Policy: p}, nil
}

// ListPolicies lists an account's policies.
func (a *ACL) ListPolicies(ctx context.Context, req *pb.ListPoliciesRequest) (*pb.ListPoliciesResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	ps, err := a.b.State().Policies(account)
	return &pb.ListPoliciesResponse{Policies: ps}, err
}

// DeletePolicy deletes an unattached policy.
func (a *ACL) DeletePolicy(ctx context.Context, req *pb.DeletePolicyRequest) (*pb.DeletePolicyResponse, error) {
	var c validate.Checker
	checkIAMARN(&c, "arn", req.GetArn(), "policy")
	if err := c.Err(); err != nil {
		return nil, err
	}
	_, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_Delete_{Delete: &pb.ACLCommand_Delete{Kind: state.ACLKindPolicy, Key: req.GetArn()}}})
	return &pb.DeletePolicyResponse{}, err
}

func (a *ACL) attachment(ctx context.Context, principal, policy string, detach bool) error {
	var c validate.Checker
	checkIAMARN(&c, "principal_arn", principal, "principal")
	checkIAMARN(&c, "policy_arn", policy, "policy")
	if err := c.Err(); err != nil {
		return err
	}
	_, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_Attachment_{Attachment: &pb.ACLCommand_Attachment{PrincipalArn: principal, PolicyArn: policy, Detach: detach}}})
	return err
}

// AttachPolicy attaches a policy to a principal.
func (a *ACL) AttachPolicy(ctx context.Context, req *pb.AttachPolicyRequest) (*pb.AttachPolicyResponse, error) {
	return &pb.AttachPolicyResponse{}, a.attachment(ctx, req.GetPrincipalArn(), req.GetPolicyArn(), false)
}

// DetachPolicy detaches a policy from a principal.
func (a *ACL) DetachPolicy(ctx context.Context, req *pb.DetachPolicyRequest) (*pb.DetachPolicyResponse, error) {
	return &pb.DetachPolicyResponse{}, a.attachment(ctx, req.GetPrincipalArn(), req.GetPolicyArn(), true)
}

// WhoAmI returns the caller's identity.
func (a *ACL) WhoAmI(ctx context.Context, _ *pb.WhoAmIRequest) (*pb.WhoAmIResponse, error) {
	out := &pb.WhoAmIResponse{AccountId: a.b.Account(ctx), AclEnabled: a.b.State().ACLEnabled(), AuthenticatedBy: acl.ByNone}
	if id := acl.FromContext(ctx); id != nil {
		out.Arn, out.AuthenticatedBy = id.PrincipalARN, id.AuthBy
	}
	return out, nil
}

// LookupEvents pages through audit records, newest first.
func (a *ACL) LookupEvents(ctx context.Context, req *pb.LookupEventsRequest) (*pb.LookupEventsResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	limit := int(req.GetMaxResults())
	switch {
	case limit == 0:
		limit = 50
	case limit < 1 || limit > 1000:
		c.Add("max_results", "must be 1-1000")
	}
	var before uint64
	if t := req.GetNextToken(); t != "" {
		if _, err := fmt.Sscanf(t, "%x", &before); err != nil || before == 0 {
			c.Add("next_token", "is not a token from a previous LookupEvents")
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	out := &pb.LookupEventsResponse{}
	var last uint64
	err := a.b.State().AuditEvents(before, func(ev *pb.AuditEvent) bool {
		if len(out.Events) == limit {
			out.NextToken = fmt.Sprintf("%x", last)
			return false
		}
		last = ev.GetSequence()
		if matchEvent(ev, account, req) {
			out.Events = append(out.Events, ev)
		}
		return true
	})
	return out, err
}

func matchEvent(ev *pb.AuditEvent, account string, req *pb.LookupEventsRequest) bool {
	t := ev.GetEventTime().AsTime()
	switch {
	case ev.GetAccountId() != account:
		return false
	case req.GetStartTime() != nil && t.Before(req.GetStartTime().AsTime()):
		return false
	case req.GetEndTime() != nil && !t.Before(req.GetEndTime().AsTime()):
		return false
	case req.GetEventName() != "" && ev.GetEventName() != req.GetEventName():
		return false
	case req.GetPrincipalArn() != "" && ev.GetPrincipalArn() != req.GetPrincipalArn():
		return false
	}
	if r := req.GetResourceArn(); r != "" {
		for _, x := range ev.GetResourceArns() {
			if x == r {
				return true
			}
		}
		return false
	}
	return true
}

// PutSecret stores a secret value.
func (a *ACL) PutSecret(ctx context.Context, req *pb.PutSecretRequest) (*pb.PutSecretResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if !secretNameRE.MatchString(req.GetName()) {
		c.Add("name", "must be 1-256 characters of letters, digits and /_+=.@-, starting with a letter or digit")
	}
	switch n := len(req.GetValue()); {
	case n == 0:
		c.Add("value", "is required")
	case n > MaxSecretBytes:
		c.Addf("value", "must be at most %d bytes, got %d", MaxSecretBytes, n)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if sp, ok := a.b.(interface{ SecretsProtected() error }); ok {
		if err := sp.SecretsProtected(); err != nil {
			return nil, err
		}
	}
	info := &pb.SecretInfo{Reference: "perfleet:secret/" + req.GetName(), AccountId: account, Name: req.GetName(), Updated: timestamppb.New(a.b.Now())}
	res, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_PutSecret{PutSecret: &pb.SecretRecord{Info: info, Value: req.GetValue()}}})
	if err != nil {
		return nil, err
	}
	return &pb.PutSecretResponse{Secret: res.(*pb.SecretInfo)}, nil
}

// ListSecrets lists secrets without values.
func (a *ACL) ListSecrets(ctx context.Context, req *pb.ListSecretsRequest) (*pb.ListSecretsResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	s, err := a.b.State().Secrets(account)
	return &pb.ListSecretsResponse{Secrets: s}, err
}

// DeleteSecret deletes a secret.
func (a *ACL) DeleteSecret(ctx context.Context, req *pb.DeleteSecretRequest) (*pb.DeleteSecretResponse, error) {
	var c validate.Checker
	account := a.account(ctx, req.GetAccountId(), &c)
	if !secretNameRE.MatchString(req.GetName()) {
		c.Add("name", "must be 1-256 characters of letters, digits and /_+=.@-, starting with a letter or digit")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	_, err := a.apply(ctx, &pb.ACLCommand{Change: &pb.ACLCommand_Delete_{Delete: &pb.ACLCommand_Delete{Kind: state.ACLKindSecret, Key: account + "/" + req.GetName()}}})
	return &pb.DeleteSecretResponse{}, err
}
