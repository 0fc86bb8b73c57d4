package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/secrets"
	"github.com/perfleet/perfleet/pkg/secrets/smfake"
)

// TestStoredSecretReachesTheShardAndNothingElse runs jobs against a target
// that demands a bearer key held in perfleet's secret store: the key reaches
// the agents' requests, the job's role must be allowed to read it once ACLs
// are on, and the value appears in no Describe output, job log, audit
// record or result file.
func TestStoredSecretReachesTheShardAndNothingElse(t *testing.T) {
	const planted = "sk-planted-3b7c91"
	sim, _ := simTarget(t)
	var unauthorized int
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+planted {
			unauthorized++
			http.Error(w, `{"error":"bad key"}`, http.StatusUnauthorized)
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	var logs syncBuffer
	s, c := fleetOfWith(t, 1, func(_ int, cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	aclc := pb.NewACLServiceClient(testConn(t, s.Addr()))
	for _, name := range []string{"llm-key", "other"} {
		if _, err := aclc.PutSecret(ctx, &pb.PutSecretRequest{Name: name, Value: []byte(planted)}); err != nil {
			t.Fatal(err)
		}
	}
	spec := func(secret string) string {
		return "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 2\n  request_count: 6\n  isl: 16\n  osl: 8\n" +
			"secrets:\n  api_key: perfleet:secret/" + secret + "\n"
	}
	out := t.TempDir()
	wait := func(ctx context.Context, name string) *pb.DescribeAIBenchmarkJobResponse {
		t.Helper()
		var d *pb.DescribeAIBenchmarkJobResponse
		eventually(t, 30*time.Second, name+" finished", func() bool {
			var err error
			d, err = c.DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: name})
			return err == nil && (d.GetAiBenchmarkJobStatus() == "Completed" || d.GetAiBenchmarkJobStatus() == "Failed")
		})
		return d
	}
	createJob(t, c, "open", spec("llm-key"), hs.URL, out)
	if d := wait(ctx, "open"); d.GetAiBenchmarkJobStatus() != "Completed" || unauthorized > 0 {
		t.Fatalf("without ACLs the key must reach the target: %v (%d unauthorized requests)", d, unauthorized)
	}

	// ACLs on: the job's role may read llm-key, for this account's jobs
	// only, and nothing else.
	boot, err := aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+boot.GetToken().GetSecret())
	role, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{Name: "bench", Type: pb.PrincipalType_PRINCIPAL_TYPE_ROLE})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := aclc.PutPolicy(admin, &pb.PutPolicyRequest{Name: "read-llm-key", Document: `{"Version":"2012-10-17","Statement":[{
	  "Effect":"Allow","Action":"perfleet:GetSecretValue","Resource":"arn:aws:perfleet:*:*:secret/llm-key",
	  "Condition":{"StringEquals":{"aws:SourceAccount":"000000000000"},"ArnLike":{"aws:SourceArn":"arn:aws:sagemaker:*:000000000000:ai-benchmark-job/*"}}}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aclc.AttachPolicy(admin, &pb.AttachPolicyRequest{PrincipalArn: role.GetPrincipal().GetArn(), PolicyArn: pol.GetPolicy().GetArn()}); err != nil {
		t.Fatal(err)
	}
	createJobCtx(t, admin, c, "denied", spec("other"), hs.URL, out)
	d := wait(admin, "denied")
	if d.GetAiBenchmarkJobStatus() != "Failed" || !strings.Contains(d.GetFailureReason(), "perfleet:GetSecretValue") {
		t.Fatalf("a secret the role may not read must fail the job, naming the action: %v", d)
	}
	createJobCtx(t, admin, c, "allowed", spec("llm-key"), hs.URL, out)
	if d := wait(admin, "allowed"); d.GetAiBenchmarkJobStatus() != "Completed" || unauthorized > 0 {
		t.Fatalf("the role's secret must reach the target: %v (%d unauthorized)", d, unauthorized)
	}

	// The value is nowhere a user or operator can read.
	var seen []string
	for _, name := range []string{"open", "denied", "allowed"} {
		d, _ := c.DescribeAIBenchmarkJob(admin, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: name})
		lg, _ := c.GetAIBenchmarkJobLog(admin, &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: name})
		seen = append(seen, d.String(), lg.String())
	}
	ev, err := aclc.LookupEvents(admin, &pb.LookupEventsRequest{MaxResults: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev.GetEvents() {
		seen = append(seen, e.GetJson())
	}
	for i, text := range seen {
		if strings.Contains(text, planted) {
			t.Fatalf("the secret shows in output %d: %s", i, text)
		}
	}
	if hits := dataDirHolds(t, out, planted); len(hits) > 0 {
		t.Fatalf("the secret is in result files %v", hits)
	}
	if l := logs.String(); strings.Contains(l, planted) || !strings.Contains(l, "level=") {
		t.Fatalf("the node's debug log (%d bytes) shows the secret, or nothing was logged", len(l))
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsManagerReferenceIsResolvedOnTheAgent gives a job an
// arn:aws:secretsmanager reference: the agent fetches it as the job's role
// (the RunShard carries the role_arn; the agent assumes it through a fake
// STS with its own AWS credentials) and the value reaches the target; a
// reference the role may not read fails the job naming the parameter and
// the role, though the agent's own key could read it.
func TestSecretsManagerReferenceIsResolvedOnTheAgent(t *testing.T) {
	const planted = "sk-from-secrets-manager-0d4e"
	const jobRole = "arn:aws:iam::000000000000:role/bench" // createJob's
	fake := smfake.New(smfake.WithKey(smfake.Key{AccessKeyID: "AKIDAGENT", SecretAccessKey: "agent-secret"}),
		smfake.WithRole(smfake.Role{ARN: jobRole, Trusted: []string{"AKIDAGENT"}, Secrets: []string{"llm-key"}}))
	arnOK := fake.SetString("llm-key", planted)
	arnDenied := fake.SetString("someone-elses", planted)
	smSrv, stsSrv := httptest.NewServer(fake), httptest.NewServer(fake.STS())
	t.Cleanup(smSrv.Close)
	t.Cleanup(stsSrv.Close)
	sim, _ := simTarget(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+planted {
			http.Error(w, `{"error":"bad key"}`, http.StatusUnauthorized)
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)

	s := TestCluster(t, 1, nil)[0]
	res, err := secrets.NewSecretsManagerResolver(context.Background(), secrets.WithEndpoint(smSrv.URL),
		secrets.WithStaticCredentials("AKIDAGENT", "agent-secret", ""), secrets.WithRegion(smfake.DefaultRegion))
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := gpu.ParseSimulated("1xL4")
	a, err := daemon.Start(daemon.Config{ID: "sm-agent", GossipAddr: "127.0.0.1:0", Join: []string{s.GossipAddr()}, FastGossip: true,
		GPUs: gpu.NewSimulated(spec, gpu.SimOptions{}), Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir(), SecretsManager: res,
		STSEndpoint: stsSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Kill() })
	fleet := pb.NewFleetServiceClient(testConn(t, s.Addr()))
	eventually(t, 10*time.Second, "agent connected", func() bool {
		l := listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"})
		return len(l) == 1 && l["sm-agent"].GetConnected()
	})
	c := client(t, s.Addr())
	job := func(ref string) string {
		return "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 2\n  request_count: 6\n  isl: 16\n  osl: 8\nsecrets:\n  api_key: '" + ref + "'\n"
	}
	createJob(t, c, "sm-ok", job(arnOK), hs.URL, t.TempDir())
	createJob(t, c, "sm-denied", job(arnDenied), hs.URL, t.TempDir())
	for name, want := range map[string]string{"sm-ok": "Completed", "sm-denied": "Failed"} {
		eventually(t, 30*time.Second, name+" finished", func() bool {
			st := jobStatus(t, c, name).GetAiBenchmarkJobStatus()
			return st == "Completed" || st == "Failed"
		})
		d := jobStatus(t, c, name)
		if d.GetAiBenchmarkJobStatus() != want {
			t.Fatalf("%s: %s (%s), want %s", name, d.GetAiBenchmarkJobStatus(), d.GetFailureReason(), want)
		}
		if strings.Contains(d.String(), planted) {
			t.Fatalf("%s: Describe shows the secret", name)
		}
		if want == "Failed" && (!strings.Contains(d.GetFailureReason(), "api_key") || !strings.Contains(d.GetFailureReason(), jobRole)) {
			t.Errorf("%s: the failure should name the parameter and the role: %s", name, d.GetFailureReason())
		}
	}
	// One role session served both jobs.
	if ss := fake.Sessions(); len(ss) != 1 || ss[0].Role != jobRole || ss[0].Caller != "AKIDAGENT" || !strings.HasPrefix(ss[0].Name, "perfleet-sm-agent-") {
		t.Fatalf("AssumeRole sessions: %+v", ss)
	}
}

// TestJobRoleGovernsItsS3Output: with ACLs on, a job writes to s3:// only
// when its role may s3:PutObject under the job's prefix.
func TestJobRoleGovernsItsS3Output(t *testing.T) {
	_, target := simTarget(t)
	s, c := fleetOf(t, 1)
	ctx := context.Background()
	aclc := pb.NewACLServiceClient(testConn(t, s.Addr()))
	boot, err := aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+boot.GetToken().GetSecret())
	if _, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{Name: "bench", Type: pb.PrincipalType_PRINCIPAL_TYPE_ROLE}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAIWorkloadConfig(admin, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAIBenchmarkJob(admin, &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: "to-s3", AiWorkloadConfigIdentifier: "wl",
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: target}},
		OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "s3://results-bucket/team-a"}, RoleArn: "arn:aws:iam::000000000000:role/bench"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "job failed", func() bool {
		d, err := c.DescribeAIBenchmarkJob(admin, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "to-s3"})
		return err == nil && d.GetAiBenchmarkJobStatus() == "Failed"
	})
	d, _ := c.DescribeAIBenchmarkJob(admin, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "to-s3"})
	if !strings.Contains(d.GetFailureReason(), "s3:PutObject on resource: arn:aws:s3:::results-bucket/team-a/to-s3/*") {
		t.Fatalf("failure reason %q should name the action and the job's prefix", d.GetFailureReason())
	}
}
