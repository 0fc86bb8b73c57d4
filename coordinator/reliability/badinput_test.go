package reliability_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/perfleet/perfleet/coordinator/reliability"
	"github.com/perfleet/perfleet/coordinator/server"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func cfgReq(name, inline string, tags ...*pb.Tag) *pb.CreateAIWorkloadConfigRequest {
	return &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: name, Tags: tags,
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: inline}}}
}

func jobReq(mut func(r *pb.CreateAIBenchmarkJobRequest)) *pb.CreateAIBenchmarkJobRequest {
	r := &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: "bad-job", AiWorkloadConfigIdentifier: "wl",
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://127.0.0.1:9"}},
		OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "s3://results/out"},
		RoleArn:         "arn:aws:iam::000000000000:role/bench"}
	mut(r)
	return r
}

// gatewayCall posts a SageMaker JSON request, signed with the dev key, and
// returns the HTTP status and body.
func gatewayCall(t *testing.T, addr, op string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "SageMaker."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, req,
		hex.EncodeToString(sum[:]), "sagemaker", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Every kind of bad input gets an error that names the field and the rule,
// and leaves the replicated state exactly as it was (same state hash on
// every node).
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { cfg.GatewayAddr = "127.0.0.1:0" })
	li := c.leader()
	ctx := context.Background()
	cli := c.cli[(li+1)%3] // through a follower: forwarded errors keep their detail
	if _, err := cli.CreateAIWorkloadConfig(ctx, cfgReq("wl", spec)); err != nil {
		t.Fatal(err)
	}
	gw := c.nodes()[li].GatewayAddr()
	waitConverged(t, c)
	before := c.nodes()[0].State().ResourceHash()
	auditBefore := c.nodes()[0].State().Counts()["audit_events"]
	big := strings.Repeat("x", 5<<20)

	grpcCases := []struct {
		name   string
		call   func() error
		code   codes.Code
		expect []string // substrings the error must hold: the field and the rule
	}{
		{"too long: 64-character name", func() error {
			_, err := cli.CreateAIWorkloadConfig(ctx, cfgReq(strings.Repeat("n", 64), spec))
			return err
		}, codes.InvalidArgument, []string{"ai_workload_config_name", "at most 63 characters"}},
		{"wrong pattern: underscore in a name", func() error {
			_, err := cli.CreateAIWorkloadConfig(ctx, cfgReq("bad_name", spec))
			return err
		}, codes.InvalidArgument, []string{"ai_workload_config_name", "must match"}},
		{"out of range: max_results 101", func() error {
			_, err := cli.ListAIWorkloadConfigs(ctx, &pb.ListAIWorkloadConfigsRequest{MaxResults: 101})
			return err
		}, codes.InvalidArgument, []string{"max_results", "between 1 and 100"}},
		{"missing required: role_arn", func() error {
			_, err := cli.CreateAIBenchmarkJob(ctx, jobReq(func(r *pb.CreateAIBenchmarkJobRequest) { r.RoleArn = "" }))
			return err
		}, codes.InvalidArgument, []string{"role_arn", "required"}},
		{"missing reference: unknown workload config", func() error {
			_, err := cli.CreateAIBenchmarkJob(ctx, jobReq(func(r *pb.CreateAIBenchmarkJobRequest) { r.AiWorkloadConfigIdentifier = "nope" }))
			return err
		}, codes.NotFound, []string{"nope"}},
		{"duplicate: a name in use", func() error {
			_, err := cli.CreateAIWorkloadConfig(ctx, cfgReq("wl", spec))
			return err
		}, codes.AlreadyExists, []string{"wl"}},
		{"duplicate: tag keys", func() error {
			_, err := cli.CreateAIWorkloadConfig(ctx, cfgReq("dup-tags", spec, &pb.Tag{Key: "team"}, &pb.Tag{Key: "team"}))
			return err
		}, codes.InvalidArgument, []string{"tags[1].key", "duplicates"}},
		{"unknown key in the workload spec", func() error {
			_, err := cli.CreateAIWorkloadConfig(ctx, cfgReq("unknown-key", spec+"parameterz: {}\n"))
			return err
		}, codes.InvalidArgument, []string{"workload_spec.inline", "parameterz"}},
		{"wrong type in the workload spec", func() error {
			_, err := cli.CreateAIWorkloadConfig(ctx, cfgReq("wrong-type", "benchmark:\n  type: aiperf\nparameters:\n  concurrency: lots\n"))
			return err
		}, codes.InvalidArgument, []string{"workload_spec.inline", "concurrency"}},
		{"5 MiB payload", func() error {
			_, err := cli.CreateAIWorkloadConfig(ctx, cfgReq("huge", big))
			return err
		}, codes.ResourceExhausted, []string{"larger than max"}},
	}
	refused := 0
	var lines []string
	for _, tc := range grpcCases {
		err := tc.call()
		st, _ := status.FromError(err)
		ok := err != nil && st.Code() == tc.code
		for _, want := range tc.expect {
			ok = ok && strings.Contains(err.Error(), want)
		}
		if !ok {
			t.Errorf("%s: got %v, want %s naming %q", tc.name, err, tc.code, tc.expect)
			continue
		}
		refused++
		lines = append(lines, fmt.Sprintf("%s → %s", tc.name, tc.code))
	}

	gwCases := []struct {
		name, op string
		body     []byte
		status   int
		expect   []string
	}{
		{"gateway: wrong JSON type", "CreateAIWorkloadConfig", []byte(`{"AIWorkloadConfigName":5}`), 400, []string{"SerializationException", "AIWorkloadConfigName"}},
		{"gateway: unknown key", "CreateAIWorkloadConfig", []byte(`{"AIWorkloadConfigName":"gw","Bogus":1}`), 400, []string{"Bogus"}},
		{"gateway: not JSON", "CreateAIWorkloadConfig", []byte(`{"AIWorkloadConfigName":`), 400, []string{"SerializationException"}},
		{"gateway: 5 MiB body", "CreateAIWorkloadConfig", []byte(`{"AIWorkloadConfigName":"` + big + `"}`), 413, []string{"bytes"}},
	}
	for _, tc := range gwCases {
		code, body := gatewayCall(t, gw, tc.op, tc.body)
		ok := code == tc.status
		for _, want := range tc.expect {
			ok = ok && strings.Contains(body, want)
		}
		if !ok {
			t.Errorf("%s: got %d %.300s, want %d naming %q", tc.name, code, body, tc.status, tc.expect)
			continue
		}
		refused++
		lines = append(lines, fmt.Sprintf("%s → HTTP %d", tc.name, code))
	}

	// Every call is audited, refused ones too, so the audit log grows; no
	// other record may change.
	waitConverged(t, c)
	after := c.nodes()[0].State().ResourceHash()
	if after != before {
		t.Errorf("bad input changed the state: resource hash %s before, %s after; records now %v", before[:12], after[:12], c.nodes()[0].State().Counts())
	}
	audited := c.nodes()[0].State().Counts()["audit_events"] - auditBefore
	report.Add(reliability.Row{Test: "bad input: every kind of malformed request",
		Criterion: "the precise error (field and rule) and an unchanged state hash",
		Measured: fmt.Sprintf("%d of %d cases refused as expected (%s); state hash without the audit log %s before and after on all 3 nodes; %d audit records added (refused calls are audited)",
			refused, len(grpcCases)+len(gwCases), strings.Join(lines, "; "), after[:12], audited),
		Pass: !t.Failed()})
}
