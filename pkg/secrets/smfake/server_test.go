package smfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

const (
	region  = "us-west-2"
	account = "111122223333"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start serves a fake on loopback and returns it with its URL.
func start(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s := New(append([]Option{WithRegion(region), WithAccount(account)}, opts...)...)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// client returns the real SDK client for url, signing with the given key.
func client(url, akid, secret, token string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
		RetryMaxAttempts: 1,
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(url) })
}

func anyClient(url string) *secretsmanager.Client { return client(url, "AKIDANY", "any", "") }

func code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error code = %q (%v), want %s", got, err, want)
	}
}

func get(t *testing.T, c *secretsmanager.Client, in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
	t.Helper()
	return c.GetSecretValue(context.Background(), in)
}

func TestCreateAndGetByNameFullAndPartialARN(t *testing.T) {
	t.Parallel()
	_, url := start(t)
	c := anyClient(url)
	ctx := context.Background()
	out, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("team/hf"), SecretString: aws.String("s3cr3t")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	prefix := "arn:aws:secretsmanager:" + region + ":" + account + ":secret:team/hf-"
	if !strings.HasPrefix(arn, prefix) || len(arn) != len(prefix)+6 || aws.ToString(out.Name) != "team/hf" || out.VersionId == nil {
		t.Fatalf("CreateSecret = ARN %q Name %q VersionId %v", arn, aws.ToString(out.Name), out.VersionId)
	}
	for _, id := range []string{"team/hf", arn, strings.TrimSuffix(arn, arn[len(arn)-7:])} {
		got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue(%q): %v", id, err)
		}
		if aws.ToString(got.SecretString) != "s3cr3t" || got.SecretBinary != nil || aws.ToString(got.ARN) != arn ||
			aws.ToString(got.VersionId) != aws.ToString(out.VersionId) || !slices.Equal(got.VersionStages, []string{StageCurrent}) ||
			got.CreatedDate == nil || got.CreatedDate.IsZero() {
			t.Fatalf("GetSecretValue(%q) = %+v", id, got)
		}
	}
	// A wrong suffix, another account or another region is not this secret.
	for _, id := range []string{
		prefix + "ZZZZZZ",
		strings.Replace(arn, account, "999999999999", 1),
		strings.Replace(arn, region, "eu-west-1", 1),
		"team/hf-nope",
	} {
		_, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		wantCode(t, err, "ResourceNotFoundException")
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Fatalf("GetSecretValue(%q) error %T is not *types.ResourceNotFoundException", id, err)
		}
	}
}

func TestBinarySecretRoundTrips(t *testing.T) {
	t.Parallel()
	_, url := start(t)
	c := anyClient(url)
	bin := []byte{0, 1, 2, 0xfe, 0xff, '"', '\\'}
	if _, err := c.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: bin}); err != nil {
		t.Fatal(err)
	}
	got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.SecretBinary, bin) || got.SecretString != nil {
		t.Fatalf("SecretBinary = %x, SecretString %v", got.SecretBinary, got.SecretString)
	}
}

func TestPutSecretValueMovesStages(t *testing.T) {
	t.Parallel()
	_, url := start(t)
	c := anyClient(url)
	ctx := context.Background()
	v1, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db"), SecretString: aws.String("one")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionStage: aws.String(StagePrevious)})
	wantCode(t, err, "ResourceNotFoundException")

	v2, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), SecretString: aws.String("two")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v2.VersionStages, []string{StageCurrent}) || aws.ToString(v2.VersionId) == aws.ToString(v1.VersionId) {
		t.Fatalf("PutSecretValue = %+v", v2)
	}
	for stage, want := range map[string]string{StageCurrent: "two", StagePrevious: "one"} {
		got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionStage: aws.String(stage)})
		if err != nil || aws.ToString(got.SecretString) != want {
			t.Fatalf("%s = %v, %v; want %q", stage, got, err, want)
		}
	}
	v3, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), SecretString: aws.String("three")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{aws.ToString(v3.VersionId): {StageCurrent}, aws.ToString(v2.VersionId): {StagePrevious}}
	if len(d.VersionIdsToStages) != 2 {
		t.Fatalf("VersionIdsToStages = %v, want %v", d.VersionIdsToStages, want)
	}
	for id, st := range want {
		if !slices.Equal(d.VersionIdsToStages[id], st) {
			t.Fatalf("VersionIdsToStages = %v, want %v", d.VersionIdsToStages, want)
		}
	}
	// The deprecated first version is still readable by id, and has no labels.
	got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: v1.VersionId})
	if err != nil || aws.ToString(got.SecretString) != "one" || len(got.VersionStages) != 0 {
		t.Fatalf("GetSecretValue(v1) = %+v, %v", got, err)
	}
	_, err = get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: v1.VersionId, VersionStage: aws.String(StageCurrent)})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String("00000000-0000-4000-8000-000000000000")})
	wantCode(t, err, "ResourceNotFoundException")

	// A custom label moves without touching AWSCURRENT.
	if _, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"),
		SecretString: aws.String("pending"), VersionStages: []string{"AWSPENDING"}}); err != nil {
		t.Fatal(err)
	}
	for stage, want := range map[string]string{StageCurrent: "three", StagePrevious: "two", "AWSPENDING": "pending"} {
		got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionStage: aws.String(stage)})
		if err != nil || aws.ToString(got.SecretString) != want {
			t.Fatalf("%s = %v, %v; want %q", stage, got, err, want)
		}
	}
}

func TestClientRequestTokenIsIdempotent(t *testing.T) {
	t.Parallel()
	_, url := start(t)
	c := anyClient(url)
	ctx := context.Background()
	tok := "11111111-2222-4333-8444-555555555555"
	in := &secretsmanager.CreateSecretInput{Name: aws.String("x"), SecretString: aws.String("v"), ClientRequestToken: aws.String(tok)}
	for range 2 {
		out, err := c.CreateSecret(ctx, in)
		if err != nil || aws.ToString(out.VersionId) != tok {
			t.Fatalf("CreateSecret = %+v, %v", out, err)
		}
	}
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("x"), SecretString: aws.String("other")})
	wantCode(t, err, "ResourceExistsException")

	tok2 := "22222222-2222-4333-8444-555555555555"
	put := &secretsmanager.PutSecretValueInput{SecretId: aws.String("x"), SecretString: aws.String("v2"), ClientRequestToken: aws.String(tok2)}
	for range 2 {
		out, err := c.PutSecretValue(ctx, put)
		if err != nil || aws.ToString(out.VersionId) != tok2 || !slices.Equal(out.VersionStages, []string{StageCurrent}) {
			t.Fatalf("PutSecretValue = %+v, %v", out, err)
		}
	}
	got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("x"), VersionStage: aws.String(StagePrevious)})
	if err != nil || aws.ToString(got.SecretString) != "v" {
		t.Fatalf("a repeated put must not move AWSPREVIOUS: %+v, %v", got, err)
	}
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("x"), SecretString: aws.String("changed"), ClientRequestToken: aws.String(tok2)})
	wantCode(t, err, "ResourceExistsException")
}

func TestInvalidInputs(t *testing.T) {
	t.Parallel()
	_, url := start(t)
	c := anyClient(url)
	ctx := context.Background()
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name!")})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("a"), SecretBinary: []byte("b")})
	wantCode(t, err, "InvalidParameterException")

	// A secret created without a value has no AWSCURRENT version.
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	_, err = get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty")})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("empty"), RecoveryWindowInDays: aws.Int64(3)})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("empty"),
		RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)})
	wantCode(t, err, "InvalidParameterException")
}

func TestDeleteScheduleRestoreAndExpiry(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	_, url := start(t, WithClock(clk.Now))
	c := anyClient(url)
	ctx := context.Background()
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("gone"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	del, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(7 * 24 * time.Hour); !aws.ToTime(del.DeletionDate).Equal(want) {
		t.Fatalf("DeletionDate = %v, want %v", aws.ToTime(del.DeletionDate), want)
	}
	_, err = get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")})
	wantCode(t, err, "InvalidRequestException")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("gone"), SecretString: aws.String("w")})
	wantCode(t, err, "InvalidRequestException")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("gone"), SecretString: aws.String("w")})
	wantCode(t, err, "InvalidRequestException")
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone")})
	wantCode(t, err, "InvalidRequestException")
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("gone")})
	if err != nil || d.DeletedDate == nil {
		t.Fatalf("DescribeSecret of a deleted secret = %+v, %v", d, err)
	}

	if _, err := c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")}); err != nil || aws.ToString(got.SecretString) != "v" {
		t.Fatalf("after restore: %+v, %v", got, err)
	}

	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30*24*time.Hour - time.Second)
	_, err = get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")})
	wantCode(t, err, "InvalidRequestException")
	clk.Advance(time.Second)
	_, err = get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")})
	wantCode(t, err, "ResourceNotFoundException")
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("gone"), SecretString: aws.String("new")}); err != nil {
		t.Fatalf("the name is free once the window passes: %v", err)
	}

	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("gone")})
	wantCode(t, err, "ResourceNotFoundException")
}

// raw sends body with target, signed as akid/secret when akid != "".
func raw(t *testing.T, url, target, body, akid, secret string, tamper func(*http.Request)) (int, map[string]string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	if akid != "" {
		sum := sha256.Sum256([]byte(body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "secretsmanager", region, time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]string
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

func TestWireErrors(t *testing.T) {
	t.Parallel()
	s, url := start(t)
	status, m, h := raw(t, url, "secretsmanager.GetSecretValue", `{"SecretId":"nope"}`, "", "", nil)
	if status != 400 || len(m) != 2 || m["__type"] != "ResourceNotFoundException" || m["Message"] == "" ||
		h.Get("Content-Type") != "application/x-amz-json-1.1" || h.Get("X-Amzn-Requestid") == "" {
		t.Fatalf("not found: %d %v %v", status, m, h)
	}
	if status, m, _ := raw(t, url, "secretsmanager.RotateSecret", `{}`, "", "", nil); status != 400 || m["__type"] != "UnknownOperationException" {
		t.Fatalf("unknown operation: %d %v", status, m)
	}
	if status, m, _ := raw(t, url, "secretsmanager.GetSecretValue", `{"SecretId":`, "", "", nil); status != 400 || m["__type"] != "SerializationException" {
		t.Fatalf("bad JSON: %d %v", status, m)
	}
	if status, m, _ := raw(t, url, "secretsmanager.GetSecretValue", `{}`, "", "", nil); status != 400 || m["__type"] != "ValidationException" {
		t.Fatalf("missing SecretId: %d %v", status, m)
	}
	if got := s.Calls("GetSecretValue"); got != 3 {
		t.Fatalf("Calls(GetSecretValue) = %d, want 3", got)
	}
	if got := s.Calls(""); got != 4 {
		t.Fatalf("Calls() = %d, want 4", got)
	}
	s.ResetCalls()
	if got := s.Calls(""); got != 0 {
		t.Fatalf("Calls() after reset = %d", got)
	}
}

func TestSigning(t *testing.T) {
	t.Parallel()
	s, url := start(t,
		WithKey(Key{AccessKeyID: "AKIDADMIN", SecretAccessKey: "admin-secret"}),
		WithKey(Key{AccessKeyID: "ASIAROLE", SecretAccessKey: "role-secret", SessionToken: "role-token", Secrets: []string{"hf"}}),
	)
	arn := s.SetString("hf", "value")
	s.SetString("other", "value")
	ctx := context.Background()
	in := func(id string) *secretsmanager.GetSecretValueInput {
		return &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	}

	if got, err := client(url, "AKIDADMIN", "admin-secret", "").GetSecretValue(ctx, in("other")); err != nil || aws.ToString(got.SecretString) != "value" {
		t.Fatalf("admin: %v, %v", got, err)
	}
	role := client(url, "ASIAROLE", "role-secret", "role-token")
	for _, id := range []string{"hf", arn} {
		if _, err := role.GetSecretValue(ctx, in(id)); err != nil {
			t.Fatalf("role reading %s: %v", id, err)
		}
	}
	for _, tc := range []struct {
		name string
		c    *secretsmanager.Client
		id   string
		want string
	}{
		{"role outside its ACL", role, "other", "AccessDeniedException"},
		{"role, missing secret outside its ACL", role, "missing", "AccessDeniedException"},
		{"unknown key", client(url, "AKIDSTRANGER", "x", ""), "hf", "UnrecognizedClientException"},
		{"role key without its session token", client(url, "ASIAROLE", "role-secret", ""), "hf", "UnrecognizedClientException"},
		{"role key, wrong session token", client(url, "ASIAROLE", "role-secret", "stale"), "hf", "UnrecognizedClientException"},
		{"role key, wrong secret key", client(url, "ASIAROLE", "guess", "role-token"), "hf", "InvalidSignatureException"},
		{"anonymous", secretsmanager.NewFromConfig(aws.Config{Region: region, Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1},
			func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(url) }), "hf", "MissingAuthenticationTokenException"},
	} {
		_, err := tc.c.GetSecretValue(ctx, in(tc.id))
		if code(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}

	body := `{"SecretId":"other"}`
	if status, m, _ := raw(t, url, "secretsmanager.GetSecretValue", body, "AKIDADMIN", "admin-secret", nil); status != 200 || m["SecretString"] != "value" {
		t.Fatalf("raw signed request: %d %v", status, m)
	}
	for name, tamper := range map[string]func(*http.Request){
		"changed target": func(r *http.Request) { r.Header.Set("X-Amz-Target", "secretsmanager.DescribeSecret") },
		"changed body": func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"SecretId":"othe2"}`))
		},
		"wrong region scope": func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/"+region+"/", "/eu-west-1/", 1))
		},
	} {
		if status, m, _ := raw(t, url, "secretsmanager.GetSecretValue", body, "AKIDADMIN", "admin-secret", tamper); status != 400 || m["__type"] != "InvalidSignatureException" {
			t.Errorf("%s: %d %v, want InvalidSignatureException", name, status, m)
		}
	}
	if status, m, _ := raw(t, url, "secretsmanager.GetSecretValue", body, "", "", func(r *http.Request) {
		r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	}); status != 400 || m["__type"] != "IncompleteSignatureException" {
		t.Errorf("basic auth: %d %v", status, m)
	}
}

func TestSetHelpers(t *testing.T) {
	t.Parallel()
	s, url := start(t)
	arn := s.SetBinary("b", []byte{1, 2})
	if got, ok := s.ARN("b"); !ok || got != arn {
		t.Fatalf("ARN(b) = %q, %v; want %q", got, ok, arn)
	}
	if arn2 := s.SetString("b", "now a string"); arn2 != arn {
		t.Fatalf("SetString on an existing secret changed its ARN: %q -> %q", arn, arn2)
	}
	c := anyClient(url)
	got, err := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(StagePrevious)})
	if err != nil || !bytes.Equal(got.SecretBinary, []byte{1, 2}) {
		t.Fatalf("previous: %+v, %v", got, err)
	}
	if _, ok := s.ARN("missing"); ok {
		t.Fatal("ARN(missing) reported a secret")
	}
	if s.Calls("") != 1 {
		t.Fatalf("helpers must not count as requests: %d", s.Calls(""))
	}
}
