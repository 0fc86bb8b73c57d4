package secrets

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// DefaultVersionStage is the staging label read unless WithVersionStage
// says otherwise: the secret's current version.
const DefaultVersionStage = "AWSCURRENT"

// GetSecretValueAPI is the part of the Secrets Manager client a
// SecretsManagerResolver uses; *secretsmanager.Client implements it.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretsManagerResolver resolves Secrets Manager references with
// GetSecretValue. Each call goes to the region named in the reference's
// ARN. It caches nothing unless WithCacheTTL says so. It is safe for
// concurrent use.
type SecretsManagerResolver struct {
	client GetSecretValueAPI
	stage  string
	ttl    time.Duration
	now    func() time.Time
	// cfg and endpoint built client (AsRole derives from them); cfg is
	// nil for a resolver made WithClient.
	cfg      *aws.Config
	endpoint string

	mu    sync.Mutex
	cache map[string]cacheEntry
}

type cacheEntry struct {
	b       []byte
	expires time.Time
}

// SecretsManagerOption configures NewSecretsManagerResolver.
type SecretsManagerOption func(*smSettings)

type smSettings struct {
	client   GetSecretValueAPI
	cfg      *aws.Config
	region   string
	endpoint string
	creds    aws.CredentialsProvider
	stage    string
	ttl      time.Duration
	now      func() time.Time
}

// WithClient makes the resolver call c instead of building a Secrets
// Manager client; it cannot be combined with WithAWSConfig, WithRegion,
// WithEndpoint or WithCredentials, which configure the built client.
func WithClient(c GetSecretValueAPI) SecretsManagerOption {
	return func(s *smSettings) { s.client = c }
}

// WithAWSConfig builds the client from cfg instead of loading the default
// configuration (environment, shared files, instance role).
func WithAWSConfig(cfg aws.Config) SecretsManagerOption {
	return func(s *smSettings) { c := cfg.Copy(); s.cfg = &c }
}

// WithRegion sets the client's default region. Each GetSecretValue call
// still goes to the region in the reference's ARN, where the secret lives.
func WithRegion(region string) SecretsManagerOption {
	return func(s *smSettings) { s.region = region }
}

// WithEndpoint sends every call to url (the client's BaseEndpoint), for a
// VPC endpoint or a test server.
func WithEndpoint(url string) SecretsManagerOption {
	return func(s *smSettings) { s.endpoint = url }
}

// WithCredentials signs calls with p's credentials, cached until they
// expire (p is wrapped in an aws.CredentialsCache unless it is one). To
// read a job's secrets as the job role, derive a resolver with
// [SecretsManagerResolver.AsRole], or pass the role's credentials here.
func WithCredentials(p aws.CredentialsProvider) SecretsManagerOption {
	return func(s *smSettings) { s.creds = p }
}

// WithStaticCredentials signs calls with a fixed access key, secret key
// and (for temporary credentials, empty otherwise) session token.
func WithStaticCredentials(accessKeyID, secretAccessKey, sessionToken string) SecretsManagerOption {
	return WithCredentials(credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, sessionToken))
}

// WithVersionStage reads the version carrying this staging label
// (AWSPREVIOUS, AWSPENDING, or a custom label) instead of AWSCURRENT.
func WithVersionStage(stage string) SecretsManagerOption {
	return func(s *smSettings) { s.stage = stage }
}

// WithCacheTTL keeps each fetched value for ttl and answers repeated
// references from memory meanwhile (each answer a fresh copy the caller
// may wipe). Zero, the default, caches nothing. Purge drops the cache.
func WithCacheTTL(ttl time.Duration) SecretsManagerOption {
	return func(s *smSettings) { s.ttl = ttl }
}

// withClock replaces time.Now for the cache (tests).
func withClock(now func() time.Time) SecretsManagerOption {
	return func(s *smSettings) { s.now = now }
}

// NewSecretsManagerResolver returns a resolver reading AWS Secrets Manager.
// Without WithClient or WithAWSConfig it loads the default AWS
// configuration, so ctx bounds that loading.
func NewSecretsManagerResolver(ctx context.Context, opts ...SecretsManagerOption) (*SecretsManagerResolver, error) {
	s := smSettings{stage: DefaultVersionStage, now: time.Now}
	for _, o := range opts {
		o(&s)
	}
	if s.stage == "" {
		return nil, errors.New("secrets: version stage must not be empty")
	}
	if s.ttl < 0 {
		return nil, errors.New("secrets: cache TTL must not be negative")
	}
	client := s.client
	if client != nil {
		if s.cfg != nil || s.region != "" || s.endpoint != "" || s.creds != nil {
			return nil, errors.New("secrets: WithClient cannot be combined with WithAWSConfig, WithRegion, WithEndpoint or WithCredentials")
		}
	} else {
		if s.creds != nil {
			// Fetch credentials (an AssumeRole call, say) once per expiry,
			// not once per request.
			if _, cached := s.creds.(*aws.CredentialsCache); !cached {
				s.creds = aws.NewCredentialsCache(s.creds)
			}
		}
		var cfg aws.Config
		if s.cfg != nil {
			cfg = *s.cfg
		} else {
			var load []func(*config.LoadOptions) error
			if s.region != "" {
				load = append(load, config.WithRegion(s.region))
			}
			if s.creds != nil {
				load = append(load, config.WithCredentialsProvider(s.creds))
			}
			var err error
			if cfg, err = config.LoadDefaultConfig(ctx, load...); err != nil {
				return nil, errors.New("secrets: loading AWS configuration: " + err.Error())
			}
		}
		if s.region != "" {
			cfg.Region = s.region
		}
		if s.creds != nil {
			cfg.Credentials = s.creds
		}
		return newBuilt(cfg, s.endpoint, s.stage, s.ttl, s.now), nil
	}
	return &SecretsManagerResolver{client: client, stage: s.stage, ttl: s.ttl, now: s.now}, nil
}

// newBuilt returns a resolver whose client is built from cfg, sending
// every call to endpoint when it is set.
func newBuilt(cfg aws.Config, endpoint, stage string, ttl time.Duration, now func() time.Time) *SecretsManagerResolver {
	client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &SecretsManagerResolver{client: client, stage: stage, ttl: ttl, now: now, cfg: &cfg, endpoint: endpoint}
}

// Resolve reads the secret ref names, at the configured version stage.
// A SecretString comes back as its UTF-8 bytes, a SecretBinary as is.
// Failures are *[ResolveError]s naming the reference; they match
// ErrNotFound, ErrAccessDenied, ErrEmpty or ErrMalformedResponse where
// one applies, and wrap the SDK's error (errors.As finds e.g.
// *types.ResourceNotFoundException) except for undecodable responses.
func (r *SecretsManagerResolver) Resolve(ctx context.Context, ref Ref) (*Value, error) {
	if ref.Kind != KindSecretsManager || ref.ARN == "" {
		return nil, &ResolveError{Ref: ref.String(), Err: errUnsupportedKind(ref.Kind), class: ErrUnsupported}
	}
	key := r.stage + "\x00" + ref.ARN
	if v := r.cached(key); v != nil {
		return v, nil
	}
	out, err := r.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(ref.ARN),
		VersionStage: aws.String(r.stage),
	}, func(o *secretsmanager.Options) {
		if ref.Region != "" {
			o.Region = ref.Region
		}
	})
	if err != nil {
		return nil, classify(ref, err)
	}
	var b []byte
	switch {
	case out.SecretString != nil:
		b = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		b = out.SecretBinary // ours now: the SDK keeps no reference
	default:
		return nil, &ResolveError{Ref: ref.String(), class: ErrEmpty}
	}
	v := NewValue(b)
	r.store(key, b)
	return v, nil
}

// Purge wipes and drops every cached value.
func (r *SecretsManagerResolver) Purge() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.cache {
		clear(e.b)
		delete(r.cache, k)
	}
}

func (r *SecretsManagerResolver) cached(key string) *Value {
	if r.ttl <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[key]
	if !ok {
		return nil
	}
	if !r.now().Before(e.expires) {
		clear(e.b)
		delete(r.cache, key)
		return nil
	}
	return NewValue(append([]byte(nil), e.b...))
}

func (r *SecretsManagerResolver) store(key string, b []byte) {
	if r.ttl <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[string]cacheEntry{}
	}
	if old, ok := r.cache[key]; ok {
		clear(old.b)
	}
	r.cache[key] = cacheEntry{b: append([]byte(nil), b...), expires: r.now().Add(r.ttl)}
}

// classify wraps an SDK error for ref with its failure class.
func classify(ref Ref, err error) error {
	// Credentials of a role that could not be assumed: the STS failure,
	// without the Secrets Manager call's wrapping, is the story.
	var are *AssumeRoleError
	if errors.As(err, &are) {
		e := &ResolveError{Ref: ref.String(), Err: are}
		if are.denied() {
			e.class = ErrAccessDenied
		}
		return e
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		return &ResolveError{Ref: ref.String(), class: ErrMalformedResponse}
	}
	e := &ResolveError{Ref: ref.String(), Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ResourceNotFoundException":
			e.class = ErrNotFound
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"IncompleteSignatureException", "MissingAuthenticationTokenException",
			"ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch":
			e.class = ErrAccessDenied
		}
	}
	return e
}
