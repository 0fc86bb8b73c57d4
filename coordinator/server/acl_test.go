package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func bearer(ctx context.Context, secret string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
}

func wantCode(t *testing.T, what string, err error, code codes.Code, reasonWant string) {
	t.Helper()
	if status.Code(err) != code || (reasonWant != "" && reason(err) != reasonWant) {
		t.Fatalf("%s: want %v %s, got %v (reason %q)", what, code, reasonWant, err, reason(err))
	}
}

// TestACLsAuthenticateAuthorizeIsolateAndAudit bootstraps ACLs on a 3-node
// cluster and checks, as a second account's user: authentication, policy
// evaluation with tag conditions and explicit deny, account isolation of
// names and lists, tag calls, revocation, and the audit log of it all.
func TestACLsAuthenticateAuthorizeIsolateAndAudit(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	follower := followers(servers)[0]
	ctx := ctxT(t)
	conn := testConn(t, follower.Addr())
	io, aclc := pb.NewInferenceOptimizationClient(conn), pb.NewACLServiceClient(conn)

	// ACLs off: calls run as the default account.
	who, err := aclc.WhoAmI(ctx, &pb.WhoAmIRequest{})
	if err != nil || who.GetAclEnabled() || who.GetAccountId() != "000000000000" {
		t.Fatalf("WhoAmI before bootstrap = %v, %v", who, err)
	}
	if _, err := io.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatal(err)
	}

	boot, err := aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := bearer(ctx, boot.GetToken().GetSecret())
	_, err = aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	wantCode(t, "second bootstrap", err, codes.FailedPrecondition, "ResourceInUse")

	_, err = io.ListAIWorkloadConfigs(ctx, &pb.ListAIWorkloadConfigsRequest{})
	wantCode(t, "no credentials", err, codes.Unauthenticated, "UnrecognizedClientException")
	_, err = io.ListAIWorkloadConfigs(bearer(ctx, "pft_not-a-token"), &pb.ListAIWorkloadConfigsRequest{})
	wantCode(t, "unknown token", err, codes.Unauthenticated, "UnrecognizedClientException")
	if who, err = aclc.WhoAmI(admin, &pb.WhoAmIRequest{}); err != nil || who.GetArn() != "arn:aws:iam::000000000000:user/admin" || who.GetAuthenticatedBy() != "token" {
		t.Fatalf("admin WhoAmI = %v, %v", who, err)
	}

	// A user in another account, allowed to create configs tagged team=ml
	// and to read and tag them, but explicitly denied deletes.
	const acct = "111111111111"
	bob, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{AccountId: acct, Name: "bob", Tags: []*pb.Tag{{Key: "team", Value: "ml"}}})
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[
	  {"Sid":"CreateTagged","Effect":"Allow","Action":"sagemaker:CreateAIWorkloadConfig","Resource":"arn:aws:sagemaker:*:${aws:PrincipalAccount}:ai-workload-config/*",
	   "Condition":{"StringEquals":{"aws:RequestTag/team":"${aws:PrincipalTag/team}"}}},
	  {"Sid":"Read","Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:List*"],"Resource":"*"},
	  {"Sid":"TagOwn","Effect":"Allow","Action":"sagemaker:TagResource","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"ml","aws:RequestTag/team":"ml"}}},
	  {"Sid":"Everything","Effect":"Allow","Action":"sagemaker:Delete*","Resource":"*"},
	  {"Sid":"NoDeletes","Effect":"Deny","Action":"sagemaker:Delete*","Resource":"*"}]}`
	_, err = aclc.PutPolicy(admin, &pb.PutPolicyRequest{AccountId: acct, Name: "ml", Document: strings.Replace(doc, `"Effect":"Allow"`, `"Effect":"allow"`, 1)})
	wantCode(t, "bad policy", err, codes.InvalidArgument, "ValidationException")
	if !strings.Contains(err.Error(), "Effect") {
		t.Errorf("a bad policy's error should name the element: %v", err)
	}
	pol, err := aclc.PutPolicy(admin, &pb.PutPolicyRequest{AccountId: acct, Name: "ml", Document: doc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aclc.AttachPolicy(admin, &pb.AttachPolicyRequest{PrincipalArn: bob.GetPrincipal().GetArn(), PolicyArn: pol.GetPolicy().GetArn()}); err != nil {
		t.Fatal(err)
	}
	tok, err := aclc.CreateToken(admin, &pb.CreateTokenRequest{PrincipalArn: bob.GetPrincipal().GetArn(), Description: "bob's laptop"})
	if err != nil {
		t.Fatal(err)
	}
	asBob := bearer(ctx, tok.GetToken().GetSecret())
	lt, err := aclc.ListTokens(admin, &pb.ListTokensRequest{PrincipalArn: bob.GetPrincipal().GetArn()})
	if err != nil || len(lt.GetTokens()) != 1 || strings.Contains(lt.String(), tok.GetToken().GetSecret()) {
		t.Fatalf("ListTokens = %v, %v (must list the accessor and never the secret)", lt, err)
	}

	wl := &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl", AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}
	_, err = io.CreateAIWorkloadConfig(asBob, wl)
	wantCode(t, "create without the team tag", err, codes.PermissionDenied, "AccessDeniedException")
	if !strings.Contains(err.Error(), "arn:aws:iam::111111111111:user/bob is not authorized to perform: sagemaker:CreateAIWorkloadConfig") {
		t.Errorf("denial should name the principal and action: %v", err)
	}
	wl.Tags = []*pb.Tag{{Key: "team", Value: "ml"}}
	created, err := io.CreateAIWorkloadConfig(asBob, wl)
	if err != nil {
		t.Fatalf("the same name in another account must not collide: %v", err)
	}
	if !strings.Contains(created.GetAiWorkloadConfigArn(), ":"+acct+":") {
		t.Errorf("bob's config ARN %s is not in his account", created.GetAiWorkloadConfigArn())
	}
	list, err := io.ListAIWorkloadConfigs(asBob, &pb.ListAIWorkloadConfigsRequest{})
	if err != nil || len(list.GetAiWorkloadConfigs()) != 1 || list.GetAiWorkloadConfigs()[0].GetAiWorkloadConfigArn() != created.GetAiWorkloadConfigArn() {
		t.Fatalf("bob's list must hold only his config: %v, %v", list, err)
	}
	_, err = io.DeleteAIWorkloadConfig(asBob, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: "wl"})
	wantCode(t, "delete under an explicit deny", err, codes.PermissionDenied, "AccessDeniedException")
	if !strings.Contains(err.Error(), "explicit deny") {
		t.Errorf("denial should say it was explicit: %v", err)
	}
	_, err = io.TagResource(asBob, &pb.TagResourceRequest{ResourceArn: created.GetAiWorkloadConfigArn(), Tags: []*pb.Tag{{Key: "team", Value: "other"}}})
	wantCode(t, "retag to another team", err, codes.PermissionDenied, "AccessDeniedException")
	tagged, err := io.TagResource(asBob, &pb.TagResourceRequest{ResourceArn: created.GetAiWorkloadConfigArn(), Tags: []*pb.Tag{{Key: "team", Value: "ml"}, {Key: "cost", Value: "x"}}})
	if err != nil || len(tagged.GetTags()) != 2 {
		t.Fatalf("TagResource = %v, %v", tagged, err)
	}
	// The admin's config of the same name in the default account is out
	// of bob's reach: a bare "*" does not cross accounts.
	adminARN := strings.Replace(created.GetAiWorkloadConfigArn(), acct, "000000000000", 1)
	_, err = io.ListTags(asBob, &pb.ListTagsRequest{ResourceArn: adminARN})
	wantCode(t, "cross-account ListTags", err, codes.PermissionDenied, "AccessDeniedException")
	_, err = aclc.ListPrincipals(asBob, &pb.ListPrincipalsRequest{})
	wantCode(t, "admin call without a policy", err, codes.PermissionDenied, "AccessDeniedException")

	// A secret is stored and listed, never shown.
	const planted = "planted-secret-value-7f3a"
	if _, err := aclc.PutSecret(admin, &pb.PutSecretRequest{AccountId: acct, Name: "hf", Value: []byte(planted)}); err != nil {
		t.Fatal(err)
	}
	secrets, err := aclc.ListSecrets(admin, &pb.ListSecretsRequest{AccountId: acct})
	if err != nil || len(secrets.GetSecrets()) != 1 || secrets.GetSecrets()[0].GetReference() != "perfleet:secret/hf" || strings.Contains(secrets.String(), planted) {
		t.Fatalf("ListSecrets = %v, %v", secrets, err)
	}

	// Revocation takes effect at once.
	if _, err := aclc.RevokeToken(admin, &pb.RevokeTokenRequest{AccessorId: tok.GetToken().GetToken().GetAccessorId()}); err != nil {
		t.Fatal(err)
	}
	_, err = io.ListAIWorkloadConfigs(asBob, &pb.ListAIWorkloadConfigsRequest{})
	wantCode(t, "revoked token", err, codes.Unauthenticated, "UnrecognizedClientException")

	// The audit log: mutating calls are committed before they return, so
	// the leader already holds bob's denied and allowed creates.
	events, err := aclc.LookupEvents(admin, &pb.LookupEventsRequest{AccountId: acct, EventName: "CreateAIWorkloadConfig"})
	if err != nil {
		t.Fatal(err)
	}
	var denied, allowed bool
	for _, ev := range events.GetEvents() {
		if ev.GetPrincipalArn() != bob.GetPrincipal().GetArn() {
			continue
		}
		switch ev.GetErrorCode() {
		case "AccessDeniedException":
			denied = true
		case "":
			allowed = strings.Contains(ev.GetJson(), `"recipientAccountId":"111111111111"`) && strings.Contains(ev.GetJson(), `"eventSource":"sagemaker.amazonaws.com"`)
		}
	}
	if !denied || !allowed {
		t.Fatalf("audit: denied create recorded %v, allowed create recorded %v; events %v", denied, allowed, events)
	}
	// Reads are batched: bob's list shows up within a few flushes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev, err := aclc.LookupEvents(admin, &pb.LookupEventsRequest{AccountId: acct, EventName: "ListAIWorkloadConfigs", PrincipalArn: bob.GetPrincipal().GetArn()})
		if err == nil && len(ev.GetEvents()) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's ListAIWorkloadConfigs never reached the audit log: %v %v", ev, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// No record, response or state listing shows the planted secret, nor
	// a token's secret.
	all, err := aclc.LookupEvents(admin, &pb.LookupEventsRequest{AccountId: acct, MaxResults: 1000})
	if err != nil {
		t.Fatal(err)
	}
	all2, _ := aclc.LookupEvents(admin, &pb.LookupEventsRequest{MaxResults: 1000})
	for _, ev := range append(all.GetEvents(), all2.GetEvents()...) {
		for _, s := range []string{planted, tok.GetToken().GetSecret(), boot.GetToken().GetSecret()} {
			if strings.Contains(ev.GetJson(), s) {
				t.Fatalf("audit record %s shows a secret: %s", ev.GetEventName(), ev.GetJson())
			}
		}
	}
	if n := len(all2.GetEvents()); n == 0 {
		t.Fatal("no audit records in the default account")
	}
	_ = leader
}

// TestWriteAuditRecordsSurviveLeaderLoss kills the leader right after a
// write returns: its audit record was committed before the reply, so the
// new leader has it.
func TestWriteAuditRecordsSurviveLeaderLoss(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	ctx := ctxT(t)
	io := pb.NewInferenceOptimizationClient(testConn(t, leader.Addr()))
	for i := 0; i < 5; i++ {
		if _, err := io.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: fmt.Sprintf("wl-%d", i),
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	var rest []*Server
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	next := WaitForLeader(t, rest...)
	ev, err := pb.NewACLServiceClient(testConn(t, next.Addr())).LookupEvents(ctx, &pb.LookupEventsRequest{EventName: "CreateAIWorkloadConfig"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ev.GetEvents()); n != 5 {
		t.Fatalf("the new leader holds %d of the 5 create records", n)
	}
}

// A name field that holds the resource's ARN is authorized as that
// resource: a Deny on it applies whether the caller names it or gives its
// ARN.
func TestDenyAppliesToResourcesNamedByARN(t *testing.T) {
	s := TestCluster(t, 1, nil)[0]
	ctx := ctxT(t)
	aclc := pb.NewACLServiceClient(testConn(t, s.Addr()))
	boot, err := aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := bearer(ctx, boot.GetToken().GetSecret())
	const acct = "111111111111"
	u, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{AccountId: acct, Name: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"sagemaker:*","Resource":"*"},
 {"Effect":"Deny","Action":["sagemaker:DescribeAIWorkloadConfig","sagemaker:DeleteAIWorkloadConfig"],"Resource":"arn:aws:sagemaker:us-east-1:111111111111:ai-workload-config/locked"}]}`
	pol, err := aclc.PutPolicy(admin, &pb.PutPolicyRequest{AccountId: acct, Name: "all-but-locked", Document: doc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aclc.AttachPolicy(admin, &pb.AttachPolicyRequest{PrincipalArn: u.GetPrincipal().GetArn(), PolicyArn: pol.GetPolicy().GetArn()}); err != nil {
		t.Fatal(err)
	}
	tok, err := aclc.CreateToken(admin, &pb.CreateTokenRequest{PrincipalArn: u.GetPrincipal().GetArn()})
	if err != nil {
		t.Fatal(err)
	}
	carol := bearer(ctx, tok.GetToken().GetSecret())
	io := pb.NewInferenceOptimizationClient(testConn(t, s.Addr()))
	for _, n := range []string{"locked", "open"} {
		if _, err := io.CreateAIWorkloadConfig(carol, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: n,
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
			t.Fatal(err)
		}
	}
	arnOf := func(n string) string { return "arn:aws:sagemaker:us-east-1:111111111111:ai-workload-config/" + n }
	for _, ident := range []string{"locked", arnOf("locked")} {
		_, err := io.DescribeAIWorkloadConfig(carol, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: ident})
		wantCode(t, "describe "+ident, err, codes.PermissionDenied, "AccessDeniedException")
		_, err = io.DeleteAIWorkloadConfig(carol, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: ident})
		wantCode(t, "delete "+ident, err, codes.PermissionDenied, "AccessDeniedException")
	}
	if _, err := io.DescribeAIWorkloadConfig(carol, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: arnOf("open")}); err != nil {
		t.Fatalf("describe by ARN of an allowed config: %v", err)
	}
}

// A job acts as its role, also towards AWS: with ACLs on, the role must
// belong to the job's account, even when a policy lets the caller pass
// another account's role.
func TestJobRoleMustBeOfTheJobsAccount(t *testing.T) {
	s := TestCluster(t, 1, nil)[0]
	ctx := ctxT(t)
	aclc := pb.NewACLServiceClient(testConn(t, s.Addr()))
	boot, err := aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := bearer(ctx, boot.GetToken().GetSecret())
	roles := map[string]string{}
	for _, acct := range []string{"111111111111", "222222222222"} {
		r, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{AccountId: acct, Name: "bench", Type: pb.PrincipalType_PRINCIPAL_TYPE_ROLE})
		if err != nil {
			t.Fatal(err)
		}
		roles[acct] = r.GetPrincipal().GetArn()
	}
	u, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{AccountId: "111111111111", Name: "dave"})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := aclc.PutPolicy(admin, &pb.PutPolicyRequest{AccountId: "111111111111", Name: "all",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sagemaker:*","perfleet:PassRole"],"Resource":"*"},
 {"Effect":"Allow","Action":"perfleet:PassRole","Resource":"arn:aws:iam::222222222222:role/*"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aclc.AttachPolicy(admin, &pb.AttachPolicyRequest{PrincipalArn: u.GetPrincipal().GetArn(), PolicyArn: pol.GetPolicy().GetArn()}); err != nil {
		t.Fatal(err)
	}
	tok, err := aclc.CreateToken(admin, &pb.CreateTokenRequest{PrincipalArn: u.GetPrincipal().GetArn()})
	if err != nil {
		t.Fatal(err)
	}
	dave := bearer(ctx, tok.GetToken().GetSecret())
	io := pb.NewInferenceOptimizationClient(testConn(t, s.Addr()))
	if _, err := io.CreateAIWorkloadConfig(dave, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatal(err)
	}
	job := func(name, role string) error {
		_, err := io.CreateAIBenchmarkJob(dave, &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: name, AiWorkloadConfigIdentifier: "wl",
			BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://127.0.0.1:1"}},
			OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file://" + t.TempDir()}, RoleArn: role})
		return err
	}
	err = job("borrowed", roles["222222222222"])
	wantCode(t, "a role of another account", err, codes.InvalidArgument, "ValidationException")
	if !strings.Contains(err.Error(), "must be a role of the job's account 111111111111") {
		t.Fatalf("error %v", err)
	}
	if err := job("own", roles["111111111111"]); err != nil {
		t.Fatalf("a role of the job's account: %v", err)
	}
}

// At debug level every API call is logged with its method, request ID and
// outcome, the same request ID as its audit record.
func TestAPICallsAreLoggedWithTheirRequestID(t *testing.T) {
	var logs syncBuffer
	s := TestCluster(t, 1, func(_ int, c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})[0]
	io := pb.NewInferenceOptimizationClient(testConn(t, s.Addr()))
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-amzn-requestid", "req-1234")
	if _, err := io.ListAIWorkloadConfigs(ctx, &pb.ListAIWorkloadConfigsRequest{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "method=ListAIWorkloadConfigs request_id=req-1234") {
		if time.Now().After(deadline) {
			t.Fatalf("no api call line with the request ID in the log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
