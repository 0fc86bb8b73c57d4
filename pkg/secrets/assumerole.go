package secrets

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// DefaultRoleDuration is how long the credentials of an assumed role last
// unless AssumeRoleOptions.Duration says otherwise: 15 minutes, the least
// STS allows.
const DefaultRoleDuration = 15 * time.Minute

// roleExpiryWindow is how long before they expire an assumed role's
// credentials are renewed.
const roleExpiryWindow = time.Minute

// MaxRoleSessionName is the longest RoleSessionName STS accepts.
const MaxRoleSessionName = 64

// AssumeRoleOptions configure [SecretsManagerResolver.AsRole].
type AssumeRoleOptions struct {
	// SessionName is the RoleSessionName, which shows in the role's
	// assumed-role ARN and in CloudTrail. It is cleaned to STS's rule with
	// [RoleSessionName]; empty is "perfleet".
	SessionName string
	// Duration is how long each set of credentials lasts (default
	// DefaultRoleDuration); they are renewed shortly before they expire.
	Duration time.Duration
	// Region is the STS region when the resolver's configuration has none
	// (the region of the secret being read, say).
	Region string
	// STSEndpoint sends the AssumeRole calls to this URL (the STS client's
	// BaseEndpoint), for a VPC endpoint or a test server; empty uses the
	// configuration's endpoint for STS.
	STSEndpoint string
}

// AsRole returns a resolver like r (its region, Secrets Manager endpoint,
// version stage and cache TTL) that reads as the IAM role roleARN: it
// signs with temporary credentials from STS AssumeRole, which an STS
// client built from r's configuration calls with r's credentials. The
// credentials are fetched on first use and kept (aws.CredentialsCache)
// until shortly before they expire, so keep the returned resolver to
// reuse them. When the role cannot be assumed, Resolve fails with a
// *[ResolveError] wrapping an *[AssumeRoleError] that names the role (and
// matching ErrAccessDenied when STS refused). A resolver built WithClient
// has no configuration to derive one from and returns an error.
func (r *SecretsManagerResolver) AsRole(roleARN string, o AssumeRoleOptions) (*SecretsManagerResolver, error) {
	if r.cfg == nil {
		return nil, errors.New("secrets: a resolver built WithClient cannot assume a role")
	}
	if roleARN == "" {
		return nil, errors.New("secrets: AsRole needs a role ARN")
	}
	if o.Duration < 0 {
		return nil, errors.New("secrets: the role session duration must not be negative")
	}
	if o.Duration == 0 {
		o.Duration = DefaultRoleDuration
	}
	name := RoleSessionName(o.SessionName)
	base := r.cfg.Copy()
	if base.Region == "" {
		base.Region = o.Region
	}
	client := sts.NewFromConfig(base, func(so *sts.Options) {
		if o.STSEndpoint != "" {
			so.BaseEndpoint = aws.String(o.STSEndpoint)
		}
	})
	p := stscreds.NewAssumeRoleProvider(client, roleARN, func(ao *stscreds.AssumeRoleOptions) {
		ao.RoleSessionName = name
		ao.Duration = o.Duration
	})
	cfg := r.cfg.Copy()
	cfg.Credentials = aws.NewCredentialsCache(&assumeRole{role: roleARN, p: p}, func(co *aws.CredentialsCacheOptions) {
		co.ExpiryWindow = roleExpiryWindow
	})
	return newBuilt(cfg, r.endpoint, r.stage, r.ttl, r.now), nil
}

// assumeRole is an AssumeRole provider whose errors name the role.
type assumeRole struct {
	role string
	p    aws.CredentialsProvider
}

// Retrieve calls STS.
func (a *assumeRole) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := a.p.Retrieve(ctx)
	if err != nil {
		return c, &AssumeRoleError{Role: a.role, Err: err}
	}
	return c, nil
}

// AssumeRoleError says that the role a resolver reads as could not be
// assumed. Its message names the role and STS's error code and message.
type AssumeRoleError struct {
	// Role is the role's ARN.
	Role string
	// Err is the failure, such as the STS client's error.
	Err error
}

// Error returns "cannot assume role <arn>: <reason>".
func (e *AssumeRoleError) Error() string { return "cannot assume role " + e.Role + ": " + e.Reason() }

// Reason is why the role could not be assumed: STS's error code and
// message ("AccessDenied: User: ... is not authorized to perform:
// sts:AssumeRole on resource: ...") when STS answered, the error
// otherwise.
func (e *AssumeRoleError) Reason() string {
	var api smithy.APIError
	if errors.As(e.Err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	if e.Err == nil {
		return "unknown error"
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *AssumeRoleError) Unwrap() error { return e.Err }

// denied reports whether STS refused the caller or the role.
func (e *AssumeRoleError) denied() bool {
	var api smithy.APIError
	if !errors.As(e.Err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken", "ExpiredTokenException",
		"RegionDisabledException":
		return true
	}
	return false
}

var sessionNameBad = regexp.MustCompile(`[^\w+=,.@-]`)

// RoleSessionName turns s into a valid RoleSessionName: every character
// outside STS's [\w+=,.@-] becomes '-', and the result is cut to
// MaxRoleSessionName characters; an empty or one-character result (STS
// wants at least two) gets a "perfleet" prefix.
func RoleSessionName(s string) string {
	s = sessionNameBad.ReplaceAllString(s, "-")
	if len(s) < 2 {
		s = strings.TrimSuffix("perfleet-"+s, "-")
	}
	if len(s) > MaxRoleSessionName {
		s = s[:MaxRoleSessionName]
	}
	return s
}
