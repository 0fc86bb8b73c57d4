package daemon

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/secrets"
	"github.com/perfleet/perfleet/pkg/secrets/smfake"
)

const (
	testAccount  = "123456789012"
	benchRole    = "arn:aws:iam::" + testAccount + ":role/Bench"
	readerRole   = "arn:aws:iam::" + testAccount + ":role/OtherReader"
	untrusted    = "arn:aws:iam::" + testAccount + ":role/Untrusted"
	agentKey     = "AKIAAGENT"
	agentSecret  = "agent-secret-key"
	agentUserARN = "arn:aws:iam::" + testAccount + ":user/perfleet-agent"
	planted      = "hf_planted_7c1e0b"
)

// secretsFleet is a fake Secrets Manager and STS: the agent's own key may
// read every secret and assume Bench (which may read only "hf") and
// OtherReader (which may read only "other"); Untrusted does not trust the
// agent.
type secretsFleet struct {
	fake          *smfake.Server
	hf            string // ARN of "hf"
	smURL, stsURL string
}

func newSecretsFleet(t *testing.T) *secretsFleet {
	t.Helper()
	// No AWS configuration here may reach for EC2 instance metadata
	// (TestFromIMDS, which serves its own, needs it on).
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := &secretsFleet{fake: smfake.New(smfake.WithAccount(testAccount),
		smfake.WithKey(smfake.Key{AccessKeyID: agentKey, SecretAccessKey: agentSecret, Principal: agentUserARN}),
		smfake.WithRole(smfake.Role{ARN: benchRole, Trusted: []string{agentKey}, Secrets: []string{"hf"}}),
		smfake.WithRole(smfake.Role{ARN: readerRole, Trusted: []string{agentKey}, Secrets: []string{"other"}}),
		smfake.WithRole(smfake.Role{ARN: untrusted, Trusted: []string{"AKIASOMEONEELSE"}, Secrets: []string{"hf"}}))}
	f.hf = f.fake.SetString("hf", planted)
	f.fake.SetString("other", "not-this-one")
	sm, st := httptest.NewServer(f.fake), httptest.NewServer(f.fake.STS())
	t.Cleanup(sm.Close)
	t.Cleanup(st.Close)
	f.smURL, f.stsURL = sm.URL, st.URL
	return f
}

// runner is a shard runner whose agent resolver signs with the agent's key
// and whose secrets credentials are creds.
func (f *secretsFleet) runner(t *testing.T, creds string) *shardRunner {
	t.Helper()
	res, err := secrets.NewSecretsManagerResolver(context.Background(),
		secrets.WithAWSConfig(aws.Config{Region: smfake.DefaultRegion, RetryMaxAttempts: 1}),
		secrets.WithEndpoint(f.smURL), secrets.WithStaticCredentials(agentKey, agentSecret, ""))
	if err != nil {
		t.Fatal(err)
	}
	r := newShardRunner("gpu 7", t.TempDir(), nil, slog.New(slog.DiscardHandler))
	r.secretsManager, r.secretsCreds, r.stsEndpoint = res, creds, f.stsURL
	return r
}

// shard is a dispatch of a spec whose hf_token is the hf secret.
func (f *secretsFleet) shard(runID uint64, role string) *pb.RunShard {
	spec := "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 1\n  request_count: 1\n  isl: 16\n  osl: 8\n" +
		"secrets:\n  hf_token: '" + f.hf + "'\n"
	return &pb.RunShard{RunId: runID, Spec: []byte(spec), RoleArn: role}
}

func resolveHF(t *testing.T, r *shardRunner, m *pb.RunShard) (string, error) {
	t.Helper()
	got, err := r.resolveAWSSecrets(context.Background(), m)
	if err != nil {
		if strings.Contains(err.Error(), planted) {
			t.Fatalf("the error shows the secret: %v", err)
		}
		return "", err
	}
	defer got.values.Wipe()
	if got.refs["hf_token"] == "" {
		t.Fatalf("hf_token was not resolved: %v", got.refs)
	}
	return string(got.values.Get("hf_token").Reveal()), nil
}

// (a) A job whose role may read the secret gets its value, read with the
// role's credentials from AssumeRole, which are reused by later shards.
func TestSecretsReadAsTheJobRole(t *testing.T) {
	f := newSecretsFleet(t)
	r := f.runner(t, SecretsAsJobRole)
	for run := uint64(41); run <= 43; run++ {
		got, err := resolveHF(t, r, f.shard(run, benchRole))
		if err != nil || got != planted {
			t.Fatalf("run %d: %q, %v", run, got, err)
		}
	}
	ss := f.fake.Sessions()
	if f.fake.Calls("AssumeRole") != 1 || len(ss) != 1 || ss[0].Role != benchRole || ss[0].Caller != agentKey ||
		ss[0].Name != "perfleet-gpu-7-41" || ss[0].Duration != secrets.DefaultRoleDuration {
		t.Fatalf("want one 15-minute session perfleet-gpu-7-41 of %s, got %d calls: %+v", benchRole, f.fake.Calls("AssumeRole"), ss)
	}
}

// (b) A job whose role may not read the secret fails, naming the parameter
// and the role, though the agent's own key could read it: the role, not
// the agent, was used.
func TestSecretsTheJobRoleMayNotRead(t *testing.T) {
	f := newSecretsFleet(t)
	_, err := resolveHF(t, f.runner(t, SecretsAsJobRole), f.shard(7, readerRole))
	if err == nil {
		t.Fatal("a role without access read the secret")
	}
	for _, want := range []string{"hf_token", readerRole, "AccessDeniedException", "assumed-role/OtherReader/perfleet-gpu-7-7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error should name %q: %v", want, err)
		}
	}
	if got, err := resolveHF(t, f.runner(t, SecretsAsAgent), f.shard(8, readerRole)); err != nil || got != planted {
		t.Fatalf("the agent's own credentials should read it: %q, %v", got, err)
	}
}

// (c) An agent whose credentials may not assume the job's role fails the
// shard with an error naming the parameter and the role; Secrets Manager
// is never asked.
func TestSecretsJobRoleCannotBeAssumed(t *testing.T) {
	f := newSecretsFleet(t)
	_, err := resolveHF(t, f.runner(t, SecretsAsJobRole), f.shard(9, untrusted))
	want := "secrets: hf_token: cannot assume job role " + untrusted + ": AccessDenied: User: " + agentUserARN +
		" is not authorized to perform: sts:AssumeRole on resource: " + untrusted
	if err == nil || err.Error() != want {
		t.Fatalf("error\n %v\nwant\n %s", err, want)
	}
	if n := f.fake.Calls("GetSecretValue"); n != 0 {
		t.Fatalf("GetSecretValue called %d times", n)
	}
}

// (d) With --secrets-credentials agent, and for a shard without a role
// (an older coordinator), the agent's own credentials read the secret and
// STS is never called.
func TestSecretsWithTheAgentsCredentials(t *testing.T) {
	f := newSecretsFleet(t)
	for name, tc := range map[string]struct{ creds, role string }{
		"agent mode, a role that cannot be assumed": {SecretsAsAgent, untrusted},
		"agent mode, a role that may not read it":   {SecretsAsAgent, readerRole},
		"job-role mode, a shard without a role":     {SecretsAsJobRole, ""},
	} {
		if got, err := resolveHF(t, f.runner(t, tc.creds), f.shard(1, tc.role)); err != nil || got != planted {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if n := f.fake.Calls("AssumeRole"); n != 0 {
		t.Fatalf("AssumeRole called %d times", n)
	}
}

// A resolver that is not a SecretsManagerResolver cannot read as a role:
// the shard fails rather than read with other credentials.
func TestSecretsJobRoleNeedsARoleCapableResolver(t *testing.T) {
	f := newSecretsFleet(t)
	r := f.runner(t, SecretsAsJobRole)
	r.secretsManager = secrets.ResolverFunc(func(context.Context, secrets.Ref) (*secrets.Value, error) {
		return secrets.NewValue([]byte(planted)), nil
	})
	_, err := resolveHF(t, r, f.shard(1, benchRole))
	if err == nil || !strings.Contains(err.Error(), benchRole) || !strings.Contains(err.Error(), "--secrets-credentials agent") {
		t.Fatalf("got %v", err)
	}
	r.secretsCreds = SecretsAsAgent
	if got, err := resolveHF(t, r, f.shard(2, benchRole)); err != nil || got != planted {
		t.Fatalf("agent mode: %q, %v", got, err)
	}
}

func TestRoleSessionName(t *testing.T) {
	for _, tc := range []struct {
		id   string
		run  uint64
		want string
	}{
		{"gpu-7", 42, "perfleet-gpu-7-42"},
		{"lab/gpu 7:rack#1", 18446744073709551615, "perfleet-lab-gpu-7-rack-1-18446744073709551615"},
		{strings.Repeat("a", 100), 123, "perfleet-" + strings.Repeat("a", 64-len("perfleet-")-4) + "-123"},
	} {
		if got := roleSessionName(tc.id, tc.run); got != tc.want || len(got) > 64 {
			t.Errorf("roleSessionName(%q, %d) = %q, want %q", tc.id, tc.run, got, tc.want)
		}
	}
}

func TestStartRejectsUnknownSecretsCredentials(t *testing.T) {
	if _, err := Start(Config{ID: "x", SecretsCredentials: "instance"}); err == nil || !strings.Contains(err.Error(), "instance") {
		t.Fatalf("got %v", err)
	}
}
