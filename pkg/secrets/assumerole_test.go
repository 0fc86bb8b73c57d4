package secrets

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/perfleet/perfleet/pkg/secrets/smfake"
)

const (
	benchRole = "arn:aws:iam::" + testAccount + ":role/Bench"
	otherRole = "arn:aws:iam::" + testAccount + ":role/Other"
)

// roleFake serves a Secrets Manager fake and its STS: the agent's key may
// read every secret and assume benchRole, which may read only "job/hf";
// otherRole does not trust the agent. It returns the fake, the ARNs of
// job/hf and job/other, and the two URLs.
func roleFake(t *testing.T) (s *smfake.Server, hf, other, smURL, stsURL string) {
	t.Helper()
	s = smfake.New(smfake.WithRegion(testRegion), smfake.WithAccount(testAccount),
		smfake.WithKey(smfake.Key{AccessKeyID: agentKey, SecretAccessKey: agentSecret, Principal: "arn:aws:iam::" + testAccount + ":user/agent"}),
		smfake.WithRole(smfake.Role{ARN: benchRole, Trusted: []string{agentKey}, Secrets: []string{"job/hf"}}),
		smfake.WithRole(smfake.Role{ARN: otherRole, Trusted: []string{"AKIASOMEONEELSE"}, Secrets: []string{"job/hf"}}))
	hf, other = s.SetString("job/hf", planted), s.SetString("job/other", planted)
	sm, st := httptest.NewServer(s), httptest.NewServer(s.STS())
	t.Cleanup(sm.Close)
	t.Cleanup(st.Close)
	return s, hf, other, sm.URL, st.URL
}

// agentResolver reads with the agent's own key; cfg is its base AWS
// configuration.
func agentResolver(t *testing.T, cfg aws.Config, url string) *SecretsManagerResolver {
	t.Helper()
	r, err := NewSecretsManagerResolver(context.Background(), WithAWSConfig(cfg), WithEndpoint(url),
		WithStaticCredentials(agentKey, agentSecret, ""))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAsRoleReadsAsTheRole(t *testing.T) {
	t.Parallel()
	s, hf, other, smURL, stsURL := roleFake(t)
	agent := agentResolver(t, aws.Config{Region: testRegion, RetryMaxAttempts: 1}, smURL)
	role, err := agent.AsRole(benchRole, AssumeRoleOptions{SessionName: "perfleet-a1-7", STSEndpoint: stsURL})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := resolveString(t, role, hf); got != planted {
			t.Fatalf("role: %q", got)
		}
	}
	// The credentials are fetched once, for 15 minutes, under the
	// session name given.
	ss := s.Sessions()
	if s.Calls("AssumeRole") != 1 || len(ss) != 1 || ss[0].Role != benchRole || ss[0].Caller != agentKey ||
		ss[0].Name != "perfleet-a1-7" || ss[0].Duration != DefaultRoleDuration {
		t.Fatalf("AssumeRole calls = %d, sessions %+v", s.Calls("AssumeRole"), ss)
	}
	// The role may not read job/other, though the agent may: the role's
	// credentials, not the agent's, signed.
	_, err = role.Resolve(context.Background(), mustRef(t, other))
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" || !errors.Is(err, ErrAccessDenied) ||
		!strings.Contains(err.Error(), "assumed-role/Bench/perfleet-a1-7") || strings.Contains(err.Error(), planted) {
		t.Fatalf("role reading job/other: %v", err)
	}
	if got := resolveString(t, agent, other); got != planted {
		t.Fatalf("agent: %q", got)
	}
}

func TestAsRoleThatCannotBeAssumed(t *testing.T) {
	t.Parallel()
	s, hf, _, smURL, stsURL := roleFake(t)
	agent := agentResolver(t, aws.Config{Region: testRegion, RetryMaxAttempts: 1}, smURL)
	role, err := agent.AsRole(otherRole, AssumeRoleOptions{SessionName: "perfleet-a1-8", STSEndpoint: stsURL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = role.Resolve(context.Background(), mustRef(t, hf))
	var are *AssumeRoleError
	if !errors.As(err, &are) || are.Role != otherRole || !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("got %v, want an AssumeRoleError for %s matching ErrAccessDenied", err, otherRole)
	}
	want := "resolving secret " + hf + ": cannot assume role " + otherRole + ": AccessDenied: User: arn:aws:iam::" + testAccount +
		":user/agent is not authorized to perform: sts:AssumeRole on resource: " + otherRole
	if err.Error() != want {
		t.Fatalf("error\n %s\nwant\n %s", err, want)
	}
	if s.Calls("GetSecretValue") != 0 {
		t.Fatalf("Secrets Manager was called %d times without the role's credentials", s.Calls("GetSecretValue"))
	}
	// STS unreachable: not a refusal.
	role, err = agent.AsRole(benchRole, AssumeRoleOptions{STSEndpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err = role.Resolve(ctx, mustRef(t, hf)); !errors.As(err, &are) || errors.Is(err, ErrAccessDenied) {
		t.Fatalf("STS down: %v", err)
	}
}

// Without a region in the configuration, STS is called in the region
// AssumeRoleOptions names.
func TestAsRoleRegionFallback(t *testing.T) {
	t.Parallel()
	_, hf, _, smURL, stsURL := roleFake(t)
	agent := agentResolver(t, aws.Config{RetryMaxAttempts: 1}, smURL)
	role, err := agent.AsRole(benchRole, AssumeRoleOptions{Region: testRegion, STSEndpoint: stsURL})
	if err != nil {
		t.Fatal(err)
	}
	if got := resolveString(t, role, hf); got != planted {
		t.Fatalf("got %q", got)
	}
}

func TestAsRoleRejects(t *testing.T) {
	t.Parallel()
	withClient, err := NewSecretsManagerResolver(context.Background(), WithClient(&stubClient{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withClient.AsRole(benchRole, AssumeRoleOptions{}); err == nil {
		t.Error("a WithClient resolver assumed a role")
	}
	agent := agentResolver(t, aws.Config{Region: testRegion}, "http://127.0.0.1:1")
	if _, err := agent.AsRole("", AssumeRoleOptions{}); err == nil {
		t.Error("an empty role ARN was accepted")
	}
	if _, err := agent.AsRole(benchRole, AssumeRoleOptions{Duration: -time.Minute}); err == nil {
		t.Error("a negative duration was accepted")
	}
}

func TestRoleSessionName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 80)
	for in, want := range map[string]string{
		"perfleet-gpu-7-42":           "perfleet-gpu-7-42",
		"perfleet-gpu 7/rack:1-42":    "perfleet-gpu-7-rack-1-42",
		"perfleet-héllo_w+=,.@-1":     "perfleet-h-llo_w+=,.@-1",
		"":                            "perfleet",
		"a":                           "perfleet-a",
		"perfleet-" + long:            ("perfleet-" + long)[:64],
		"perfleet-\x00\n<script>-run": "perfleet----script--run",
	} {
		if got := RoleSessionName(in); got != want {
			t.Errorf("RoleSessionName(%q) = %q, want %q", in, got, want)
		}
	}
}
