package smfake

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const (
	benchRole = "arn:aws:iam::" + account + ":role/team/Bench"
	otherRole = "arn:aws:iam::" + account + ":role/Other"
	agentUser = "arn:aws:iam::" + account + ":user/agent"
)

// startSTS serves a fake whose agent key may read every secret and assume
// benchRole, which may read only "hf"; otherRole trusts nobody. It returns
// the fake, its clock and the Secrets Manager and STS URLs.
func startSTS(t *testing.T) (*Server, *clock, string, string) {
	t.Helper()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, smURL := start(t, WithClock(c.Now),
		WithKey(Key{AccessKeyID: "AKIDAGENT", SecretAccessKey: "agent-secret", Principal: agentUser}),
		WithRole(Role{ARN: benchRole, Trusted: []string{"AKIDAGENT"}, Secrets: []string{"hf"}}),
		WithRole(Role{ARN: otherRole}))
	ts := httptest.NewServer(s.STS())
	t.Cleanup(ts.Close)
	return s, c, smURL, ts.URL
}

func stsClient(url, akid, secret, token string) *sts.Client {
	return sts.NewFromConfig(aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
		RetryMaxAttempts: 1,
	}, func(o *sts.Options) { o.BaseEndpoint = aws.String(url) })
}

func assume(c *sts.Client, role, session string, seconds int32) (*sts.AssumeRoleOutput, error) {
	in := &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String(session)}
	if seconds != 0 {
		in.DurationSeconds = aws.Int32(seconds)
	}
	return c.AssumeRole(context.Background(), in)
}

func TestAssumeRoleCredentialsReadAsTheRole(t *testing.T) {
	t.Parallel()
	s, clk, smURL, stsURL := startSTS(t)
	s.SetString("hf", "role-may-read")
	s.SetString("other", "agent-only")
	out, err := assume(stsClient(stsURL, "AKIDAGENT", "agent-secret", ""), benchRole, "perfleet-a1-7", 900)
	if err != nil {
		t.Fatal(err)
	}
	cr, user := out.Credentials, out.AssumedRoleUser
	wantARN := "arn:aws:sts::" + account + ":assumed-role/Bench/perfleet-a1-7"
	if cr == nil || user == nil || !strings.HasPrefix(aws.ToString(cr.AccessKeyId), "ASIA") || aws.ToString(cr.SecretAccessKey) == "" ||
		aws.ToString(cr.SessionToken) == "" || !aws.ToTime(cr.Expiration).Equal(clk.Now().Add(15*time.Minute)) ||
		aws.ToString(user.Arn) != wantARN || !strings.HasSuffix(aws.ToString(user.AssumedRoleId), ":perfleet-a1-7") {
		t.Fatalf("AssumeRole = %+v %+v", cr, user)
	}
	ss := s.Sessions()
	if len(ss) != 1 || ss[0].Role != benchRole || ss[0].Name != "perfleet-a1-7" || ss[0].Caller != "AKIDAGENT" ||
		ss[0].Duration != 15*time.Minute || ss[0].AccessKeyID != aws.ToString(cr.AccessKeyId) || ss[0].AssumedRoleARN != wantARN {
		t.Fatalf("Sessions() = %+v", ss)
	}

	ctx := context.Background()
	in := func(id string) *secretsmanager.GetSecretValueInput {
		return &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	}
	role := client(smURL, aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
	if got, err := role.GetSecretValue(ctx, in("hf")); err != nil || aws.ToString(got.SecretString) != "role-may-read" {
		t.Fatalf("role reading hf: %v, %v", got, err)
	}
	_, err = role.GetSecretValue(ctx, in("other"))
	wantCode(t, err, "AccessDeniedException")
	if !strings.Contains(err.Error(), wantARN) {
		t.Fatalf("the refusal should name the assumed role: %v", err)
	}
	agent := client(smURL, "AKIDAGENT", "agent-secret", "")
	if _, err := agent.GetSecretValue(ctx, in("other")); err != nil {
		t.Fatalf("the agent's own key reads every secret: %v", err)
	}
	_, err = client(smURL, aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), "").GetSecretValue(ctx, in("hf"))
	wantCode(t, err, "UnrecognizedClientException")

	clk.Advance(15 * time.Minute)
	_, err = role.GetSecretValue(ctx, in("hf"))
	wantCode(t, err, "ExpiredTokenException")
	if s.Calls("AssumeRole") != 1 {
		t.Fatalf("Calls(AssumeRole) = %d", s.Calls("AssumeRole"))
	}
}

func TestAssumeRoleRefusals(t *testing.T) {
	t.Parallel()
	s, _, _, stsURL := startSTS(t)
	agent := stsClient(stsURL, "AKIDAGENT", "agent-secret", "")
	for _, tc := range []struct {
		name    string
		c       *sts.Client
		role    string
		session string
		seconds int32
		code    string
		status  int
	}{
		{"a role that does not trust the agent", agent, otherRole, "s1", 0, "AccessDenied", 403},
		{"a role that does not exist", agent, "arn:aws:iam::" + account + ":role/Missing", "s1", 0, "AccessDenied", 403},
		{"unknown key", stsClient(stsURL, "AKIDSTRANGER", "x", ""), benchRole, "s1", 0, "InvalidClientTokenId", 403},
		{"wrong secret key", stsClient(stsURL, "AKIDAGENT", "guess", ""), benchRole, "s1", 0, "SignatureDoesNotMatch", 403},
		{"anonymous", sts.NewFromConfig(aws.Config{Region: region, Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1},
			func(o *sts.Options) { o.BaseEndpoint = aws.String(stsURL) }), benchRole, "s1", 0, "MissingAuthenticationToken", 403},
		{"bad session name", agent, benchRole, "has space", 0, "ValidationError", 400},
		{"too short a session", agent, benchRole, "s1", 600, "ValidationError", 400},
		{"longer than the role allows", agent, benchRole, "s1", 7200, "ValidationError", 400},
	} {
		_, err := assume(tc.c, tc.role, tc.session, tc.seconds)
		if code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			continue
		}
		if status := httpStatus(err); status != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.name, status, tc.status)
		}
	}
	_, err := assume(agent, otherRole, "s1", 0)
	if want := "User: " + agentUser + " is not authorized to perform: sts:AssumeRole on resource: " + otherRole; !strings.Contains(err.Error(), want) {
		t.Fatalf("AccessDenied should say %q: %v", want, err)
	}
	if len(s.Sessions()) != 0 {
		t.Fatalf("refused calls issued sessions: %+v", s.Sessions())
	}
	// The default duration is an hour.
	if _, err := assume(agent, benchRole, "s2", 0); err != nil || s.Sessions()[0].Duration != time.Hour {
		t.Fatalf("default duration: %v %+v", err, s.Sessions())
	}
	req, _ := http.NewRequest(http.MethodPost, stsURL, strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || s.Calls("GetCallerIdentity") != 1 {
		t.Fatalf("unknown action: HTTP %d, %d calls", resp.StatusCode, s.Calls("GetCallerIdentity"))
	}
}

// httpStatus is the HTTP status of an SDK error's response.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
