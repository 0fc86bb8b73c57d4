package secrets

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/perfleet/perfleet/pkg/secrets/smfake"
)

const (
	testRegion  = "us-west-2"
	testAccount = "111122223333"

	// The job role's temporary credentials, and an administrator's.
	roleKey, roleSecret, roleToken = "ASIAJOBROLE", "role-secret-key", "role-session-token"
	adminKey, adminSecret          = "AKIAADMIN", "admin-secret-key"
	// The agent's own instance credentials: known, but not the job's.
	agentKey, agentSecret = "AKIAAGENT", "agent-secret-key"
)

// fake serves a Secrets Manager fake that requires signing: the admin may
// use every secret, the job role only "job/*" ones named in roleACL, the
// agent only "agent-only".
func fake(t *testing.T, roleACL ...string) (*smfake.Server, string) {
	t.Helper()
	s := smfake.New(smfake.WithRegion(testRegion), smfake.WithAccount(testAccount),
		smfake.WithKey(smfake.Key{AccessKeyID: adminKey, SecretAccessKey: adminSecret}),
		smfake.WithKey(smfake.Key{AccessKeyID: roleKey, SecretAccessKey: roleSecret, SessionToken: roleToken, Secrets: roleACL}),
		smfake.WithKey(smfake.Key{AccessKeyID: agentKey, SecretAccessKey: agentSecret, Secrets: []string{"agent-only"}}),
	)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// admin returns the real SDK client, signing as the administrator.
func admin(url string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(aws.Config{
		Region:           testRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(adminKey, adminSecret, ""),
		RetryMaxAttempts: 1,
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(url) })
}

// resolver returns a SecretsManagerResolver with the job role's
// credentials, plus opts.
func resolver(t *testing.T, url string, opts ...SecretsManagerOption) *SecretsManagerResolver {
	t.Helper()
	r, err := NewSecretsManagerResolver(context.Background(), append([]SecretsManagerOption{
		WithAWSConfig(aws.Config{Region: testRegion, RetryMaxAttempts: 1}),
		WithEndpoint(url),
		WithStaticCredentials(roleKey, roleSecret, roleToken),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatalf("ParseRef(%q): %v", s, err)
	}
	return r
}

func create(t *testing.T, c *secretsmanager.Client, in *secretsmanager.CreateSecretInput) string {
	t.Helper()
	out, err := c.CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

func resolveString(t *testing.T, r Resolver, ref string) string {
	t.Helper()
	v, err := r.Resolve(context.Background(), mustRef(t, ref))
	if err != nil {
		t.Fatalf("Resolve(%s): %v", ref, err)
	}
	defer v.Wipe()
	return string(v.Reveal())
}

func TestResolveStringByFullAndPartialARN(t *testing.T) {
	t.Parallel()
	s, url := fake(t, "job/hf")
	arn := create(t, admin(url), &secretsmanager.CreateSecretInput{Name: aws.String("job/hf"), SecretString: aws.String(planted)})
	partial := arn[:len(arn)-7]
	if ref := mustRef(t, arn); ref.Name != "job/hf" || len(ref.Suffix) != 6 || ref.Region != testRegion || ref.Account != testAccount {
		t.Fatalf("fake's ARN parses as %+v", ref)
	}
	r := resolver(t, url)
	for _, ref := range []string{arn, partial} {
		if got := resolveString(t, r, ref); got != planted {
			t.Fatalf("Resolve(%s) = %q", ref, got)
		}
	}
	// The SDK client, by name, sees the same secret.
	out, err := admin(url).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("job/hf")})
	if err != nil || aws.ToString(out.SecretString) != planted || aws.ToString(out.ARN) != arn {
		t.Fatalf("by name: %+v, %v", out, err)
	}
	if n := s.Calls("GetSecretValue"); n != 3 {
		t.Fatalf("GetSecretValue calls = %d, want 3 (no caching by default)", n)
	}
}

func TestResolveBinary(t *testing.T) {
	t.Parallel()
	_, url := fake(t, "job/cert")
	bin := []byte{0, 0xff, 0x10, '\n', 0x80}
	arn := create(t, admin(url), &secretsmanager.CreateSecretInput{Name: aws.String("job/cert"), SecretBinary: bin})
	v, err := resolver(t, url).Resolve(context.Background(), mustRef(t, arn))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Reveal(), bin) {
		t.Fatalf("binary secret = %x, want %x", v.Reveal(), bin)
	}
}

func TestResolveVersionStages(t *testing.T) {
	t.Parallel()
	_, url := fake(t, "job/key")
	c := admin(url)
	arn := create(t, c, &secretsmanager.CreateSecretInput{Name: aws.String("job/key"), SecretString: aws.String("v1")})
	prev := resolver(t, url, WithVersionStage("AWSPREVIOUS"))
	_, err := prev.Resolve(context.Background(), mustRef(t, arn))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("AWSPREVIOUS before any put: %v, want ErrNotFound", err)
	}
	if _, err := c.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	if got := resolveString(t, resolver(t, url), arn); got != "v2" {
		t.Fatalf("AWSCURRENT = %q, want v2", got)
	}
	if got := resolveString(t, prev, arn); got != "v1" {
		t.Fatalf("AWSPREVIOUS = %q, want v1", got)
	}
}

func TestResolveNotFoundAndDeleted(t *testing.T) {
	t.Parallel()
	_, url := fake(t) // the role may read every secret
	c := admin(url)
	r := resolver(t, url)
	missing := "arn:aws:secretsmanager:" + testRegion + ":" + testAccount + ":secret:nope"
	_, err := r.Resolve(context.Background(), mustRef(t, missing))
	var rnf *types.ResourceNotFoundException
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &rnf) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing secret: %v", err)
	}

	arn := create(t, c, &secretsmanager.CreateSecretInput{Name: aws.String("old"), SecretString: aws.String(planted)})
	if _, err := c.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = r.Resolve(context.Background(), mustRef(t, arn))
	var ire *types.InvalidRequestException
	if !errors.As(err, &ire) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), arn) || strings.Contains(err.Error(), planted) {
		t.Fatalf("deleted secret: %v", err)
	}
}

func TestResolveWithoutTheJobRoleIsRefused(t *testing.T) {
	t.Parallel()
	s, url := fake(t, "job/hf")
	c := admin(url)
	hf := create(t, c, &secretsmanager.CreateSecretInput{Name: aws.String("job/hf"), SecretString: aws.String(planted)})
	other := create(t, c, &secretsmanager.CreateSecretInput{Name: aws.String("job/other"), SecretString: aws.String(planted)})
	absent := "arn:aws:secretsmanager:" + testRegion + ":" + testAccount + ":secret:job/absent"

	for _, tc := range []struct {
		name string
		opts []SecretsManagerOption
		ref  string
		code string
	}{
		{"agent's own key", []SecretsManagerOption{WithStaticCredentials(agentKey, agentSecret, "")}, hf, "AccessDeniedException"},
		{"role, secret outside its ACL", nil, other, "AccessDeniedException"},
		{"role, absent secret outside its ACL", nil, absent, "AccessDeniedException"},
		{"unknown key", []SecretsManagerOption{WithStaticCredentials("AKIASTRANGER", "x", "")}, hf, "UnrecognizedClientException"},
		{"role key, expired session token", []SecretsManagerOption{WithStaticCredentials(roleKey, roleSecret, "old-token")}, hf, "UnrecognizedClientException"},
		{"role key id, wrong secret", []SecretsManagerOption{WithStaticCredentials(roleKey, "guess", roleToken)}, hf, "InvalidSignatureException"},
		{"anonymous", []SecretsManagerOption{WithCredentials(aws.AnonymousCredentials{})}, hf, "MissingAuthenticationTokenException"},
	} {
		_, err := resolver(t, url, tc.opts...).Resolve(context.Background(), mustRef(t, tc.ref))
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != tc.code || !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s: %v, want %s matching ErrAccessDenied", tc.name, err, tc.code)
			continue
		}
		if !strings.Contains(err.Error(), tc.ref) || strings.Contains(err.Error(), planted) {
			t.Errorf("%s: error must name the reference and not the value: %v", tc.name, err)
		}
	}
	// The job role itself gets through.
	if got := resolveString(t, resolver(t, url), hf); got != planted {
		t.Fatalf("job role: %q", got)
	}
	if s.Calls("GetSecretValue") != 8 {
		t.Fatalf("GetSecretValue calls = %d, want 8", s.Calls("GetSecretValue"))
	}
}

// Each call is signed for, and sent to, the ARN's region, whatever the
// default region.
func TestResolveUsesTheARNsRegion(t *testing.T) {
	t.Parallel()
	_, url := fake(t)
	arn := create(t, admin(url), &secretsmanager.CreateSecretInput{Name: aws.String("r"), SecretString: aws.String("v")})
	r, err := NewSecretsManagerResolver(context.Background(),
		WithAWSConfig(aws.Config{Region: "eu-central-1", RetryMaxAttempts: 1}), WithRegion("ap-south-1"),
		WithEndpoint(url), WithStaticCredentials(roleKey, roleSecret, roleToken))
	if err != nil {
		t.Fatal(err)
	}
	if got := resolveString(t, r, arn); got != "v" {
		t.Fatalf("got %q", got)
	}
}

// Without WithAWSConfig the resolver loads the default configuration; the
// options still apply.
func TestResolveWithDefaultConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	_, url := fake(t)
	arn := create(t, admin(url), &secretsmanager.CreateSecretInput{Name: aws.String("d"), SecretString: aws.String("v")})

	r, err := NewSecretsManagerResolver(context.Background(), WithRegion(testRegion), WithEndpoint(url),
		WithCredentials(credentials.NewStaticCredentialsProvider(roleKey, roleSecret, roleToken)))
	if err != nil {
		t.Fatal(err)
	}
	if got := resolveString(t, r, arn); got != "v" {
		t.Fatalf("got %q", got)
	}
	// Without WithCredentials the environment's key, unknown here, signs.
	r, err = NewSecretsManagerResolver(context.Background(), WithEndpoint(url))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), mustRef(t, arn)); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("environment credentials: %v, want ErrAccessDenied", err)
	}
}

func TestNewSecretsManagerResolverRejectsConflicts(t *testing.T) {
	t.Parallel()
	c := &stubClient{}
	for _, opts := range [][]SecretsManagerOption{
		{WithClient(c), WithRegion("us-east-1")},
		{WithClient(c), WithEndpoint("http://127.0.0.1:1")},
		{WithClient(c), WithStaticCredentials("a", "b", "")},
		{WithClient(c), WithAWSConfig(aws.Config{})},
		{WithClient(c), WithVersionStage("")},
		{WithClient(c), WithCacheTTL(-time.Second)},
	} {
		if _, err := NewSecretsManagerResolver(context.Background(), opts...); err == nil {
			t.Errorf("options %d accepted", len(opts))
		}
	}
}

// stubClient answers GetSecretValue from a function and counts calls.
type stubClient struct {
	mu    sync.Mutex
	calls int
	in    []*secretsmanager.GetSecretValueInput
	fn    func(*secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error)
}

func (c *stubClient) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.mu.Lock()
	c.calls++
	c.in = append(c.in, in)
	c.mu.Unlock()
	return c.fn(in)
}

func TestResolveWithClientAndCache(t *testing.T) {
	t.Parallel()
	c := &stubClient{fn: func(in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		return &secretsmanager.GetSecretValueOutput{SecretString: aws.String("cached-" + aws.ToString(in.VersionStage))}, nil
	}}
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r, err := NewSecretsManagerResolver(context.Background(), WithClient(c), WithCacheTTL(time.Minute), withClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	ref := mustRef(t, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
	v1, err := r.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	v1.Wipe() // the caller's wipe must not reach the cache
	v2, err := r.Resolve(context.Background(), ref)
	if err != nil || string(v2.Reveal()) != "cached-AWSCURRENT" || c.calls != 1 {
		t.Fatalf("cached resolve = %q, %v after %d calls", v2.Reveal(), err, c.calls)
	}
	if aws.ToString(c.in[0].SecretId) != ref.ARN || aws.ToString(c.in[0].VersionStage) != DefaultVersionStage {
		t.Fatalf("request = %+v", c.in[0])
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := r.Resolve(context.Background(), ref); err != nil || c.calls != 2 {
		t.Fatalf("expired entry: %v after %d calls", err, c.calls)
	}
	r.Purge()
	if _, err := r.Resolve(context.Background(), ref); err != nil || c.calls != 3 {
		t.Fatalf("after Purge: %v after %d calls", err, c.calls)
	}
}

func TestResolveRejectsOtherKindsAndEmptyAnswers(t *testing.T) {
	t.Parallel()
	c := &stubClient{fn: func(*secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		return &secretsmanager.GetSecretValueOutput{}, nil
	}}
	r, err := NewSecretsManagerResolver(context.Background(), WithClient(c))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), mustRef(t, "perfleet:secret/hf")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("store ref: %v", err)
	}
	if _, err := r.Resolve(context.Background(), Ref{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("zero ref: %v", err)
	}
	if _, err := r.Resolve(context.Background(), mustRef(t, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty answer: %v", err)
	}
	if c.calls != 1 {
		t.Fatalf("calls = %d", c.calls)
	}
}

// A response the SDK cannot decode must not put its body into the error.
func TestMalformedResponseDoesNotLeak(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{"SecretString": ` + planted + `}`))
	}))
	t.Cleanup(ts.Close)
	r := resolver(t, ts.URL)
	_, err := r.Resolve(context.Background(), mustRef(t, "arn:aws:secretsmanager:us-west-2:123456789012:secret:x"))
	if !errors.Is(err, ErrMalformedResponse) || leaks(err.Error()) {
		t.Fatalf("malformed response: %v", err)
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		if leaks(e.Error()) {
			t.Fatalf("wrapped error leaks: %v", e)
		}
	}
	var re *ResolveError
	if errors.As(err, &re) {
		for _, e := range re.Unwrap() {
			if leaks(e.Error()) {
				t.Fatalf("wrapped error leaks: %v", e)
			}
		}
	}
}

func TestRouter(t *testing.T) {
	t.Parallel()
	store := ResolverFunc(func(_ context.Context, ref Ref) (*Value, error) {
		return NewValue([]byte("store:" + ref.Name)), nil
	})
	r := Router{Store: store}
	if got := resolveString(t, r, "perfleet:secret/hf"); got != "store:hf" {
		t.Fatalf("store = %q", got)
	}
	_, err := r.Resolve(context.Background(), mustRef(t, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "secretsmanager") {
		t.Fatalf("no Secrets Manager resolver: %v", err)
	}
}

// countingProvider hands out the job role's temporary credentials and
// counts how often it is asked (as an AssumeRole provider would call STS).
type countingProvider struct {
	mu sync.Mutex
	n  int
}

func (p *countingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	return aws.Credentials{AccessKeyID: roleKey, SecretAccessKey: roleSecret, SessionToken: roleToken,
		CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
}

func TestRoleCredentialsAreFetchedOncePerExpiry(t *testing.T) {
	t.Parallel()
	_, url := fake(t, "job/hf")
	arn := create(t, admin(url), &secretsmanager.CreateSecretInput{Name: aws.String("job/hf"), SecretString: aws.String(planted)})
	p := &countingProvider{}
	r := resolver(t, url, WithCredentials(p))
	for range 3 {
		if got := resolveString(t, r, arn); got != planted {
			t.Fatalf("got %q", got)
		}
	}
	if p.n != 1 {
		t.Fatalf("credentials retrieved %d times, want 1", p.n)
	}
}
