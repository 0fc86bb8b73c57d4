package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/perfleet/perfleet/coordinator/gateway"
	"github.com/perfleet/perfleet/coordinator/server"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// TestSageMakerSDKWithACLs bootstraps ACLs and drives the gateway with the
// stock SDK: the dev key stops working, an access key made for a user signs
// as that user, its policy decides, and the audit log names the key.
func TestSageMakerSDKWithACLs(t *testing.T) {
	servers := server.TestCluster(t, 3, func(_ int, c *server.Config) { c.GatewayAddr = "127.0.0.1:0" })
	leader := server.WaitForLeader(t, servers...)
	var follower *server.Server
	for _, s := range servers {
		if s != leader {
			follower = s
		}
	}
	conn, err := grpc.NewClient(leader.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	aclc := pb.NewACLServiceClient(conn)
	boot, err := aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+boot.GetToken().GetSecret())
	const acct = "222222222222"
	u, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{AccountId: acct, Name: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := aclc.PutPolicy(admin, &pb.PutPolicyRequest{AccountId: acct, Name: "read", Document: `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":["sagemaker:List*","sagemaker:Describe*"],"Resource":"*"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aclc.AttachPolicy(admin, &pb.AttachPolicyRequest{PrincipalArn: u.GetPrincipal().GetArn(), PolicyArn: pol.GetPolicy().GetArn()}); err != nil {
		t.Fatal(err)
	}
	key, err := aclc.CreateAccessKey(admin, &pb.CreateAccessKeyRequest{PrincipalArn: u.GetPrincipal().GetArn()})
	if err != nil {
		t.Fatal(err)
	}

	region := leader.Scope().Region
	dev := e2eClient("http://"+leader.GatewayAddr(), region, gateway.DevAccessKeyID, gateway.DevSecretAccessKey)
	_, err = dev.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
	wantCode(t, "dev key after bootstrap", err, "UnrecognizedClientException", "")

	// Through a follower's gateway too: the call is forwarded and
	// authorized on the leader as the key's user.
	for _, s := range []*server.Server{leader, follower} {
		c := e2eClient("http://"+s.GatewayAddr(), region, key.GetAccessKey().GetAccessKeyId(), key.GetSecretAccessKey())
		if _, err := c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{}); err != nil {
			t.Fatalf("list with the user's key via %s: %v", s.NodeID(), err)
		}
		_, err = c.DeleteAIWorkloadConfig(ctx, &sagemaker.DeleteAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("nope")})
		wantCode(t, "delete without a policy via "+s.NodeID(), err, "AccessDeniedException", "user/reader is not authorized to perform: sagemaker:DeleteAIWorkloadConfig")
	}
	bad := e2eClient("http://"+leader.GatewayAddr(), region, key.GetAccessKey().GetAccessKeyId(), "wrong-secret")
	_, err = bad.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
	if code, _ := apiCode(err); code == "" {
		t.Fatalf("a wrong secret must be refused, got %v", err)
	}

	// Temporary credentials: the session token is required with the key.
	tmp, err := aclc.CreateAccessKey(admin, &pb.CreateAccessKeyRequest{PrincipalArn: u.GetPrincipal().GetArn(), DurationSeconds: 900})
	if err != nil || !strings.HasPrefix(tmp.GetAccessKey().GetAccessKeyId(), "ASIA") || tmp.GetSessionToken() == "" {
		t.Fatalf("temporary credentials: %v, %v", tmp, err)
	}
	withToken := sagemaker.NewFromConfig(aws.Config{Region: region,
		Credentials: credentials.NewStaticCredentialsProvider(tmp.GetAccessKey().GetAccessKeyId(), tmp.GetSecretAccessKey(), tmp.GetSessionToken())},
		func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + leader.GatewayAddr()) })
	out, err := withToken.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
	if err != nil {
		t.Fatalf("temporary credentials with their session token: %v", err)
	}
	reqID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	noToken := e2eClient("http://"+leader.GatewayAddr(), region, tmp.GetAccessKey().GetAccessKeyId(), tmp.GetSecretAccessKey())
	if _, err := noToken.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{}); err == nil {
		t.Fatal("temporary credentials without their session token were accepted")
	}
	// The response's x-amzn-RequestId is the audit record's requestID.
	server.WaitForLeader(t, servers...)
	found := false
	for i := 0; i < 50 && !found; i++ {
		lst, err := aclc.LookupEvents(admin, &pb.LookupEventsRequest{AccountId: acct, EventName: "ListAIWorkloadConfigs"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range lst.GetEvents() {
			found = found || (reqID != "" && strings.Contains(e.GetJson(), `"requestID":"`+reqID+`"`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !found {
		t.Fatalf("no audit record with requestID %q", reqID)
	}

	ev, err := aclc.LookupEvents(admin, &pb.LookupEventsRequest{AccountId: acct, EventName: "DeleteAIWorkloadConfig"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.GetEvents()) < 2 || !strings.Contains(ev.GetEvents()[0].GetJson(), `"accessKeyId":"`+key.GetAccessKey().GetAccessKeyId()+`"`) ||
		ev.GetEvents()[0].GetErrorCode() != "AccessDeniedException" {
		t.Fatalf("audit of the denied deletes: %v", ev)
	}
}

// TestSageMakerSDKOverHTTPS serves the gateway with the server certificate
// of a TLS node: the stock SDK, trusting the cluster CA, works over https,
// and plain http to the same port fails.
func TestSageMakerSDKOverHTTPS(t *testing.T) {
	ca, err := tlsutil.NewCA(tlsutil.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := tlsutil.WriteCA(dir, tlsutil.DefaultDomain, ca)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(tlsutil.CertOptions{Role: tlsutil.RoleServer, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := tlsutil.WriteCert(dir, tlsutil.RoleServer, "us-east-1", "", iss)
	if err != nil {
		t.Fatal(err)
	}
	s := server.TestCluster(t, 1, func(_ int, c *server.Config) {
		c.InsecureLoopback = false
		c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = caFile, certFile, keyFile
		c.GatewayAddr = "127.0.0.1:0"
	})[0]
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c := sagemaker.NewFromConfig(aws.Config{Region: "us-east-1", HTTPClient: httpc,
		Credentials: credentials.NewStaticCredentialsProvider(gateway.DevAccessKeyID, gateway.DevSecretAccessKey, "")},
		func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("https://" + s.GatewayAddr()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{}); err != nil {
		t.Fatalf("over https: %v", err)
	}
	plain := e2eClient("http://"+s.GatewayAddr(), "us-east-1", gateway.DevAccessKeyID, gateway.DevSecretAccessKey)
	if _, err := plain.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{}); err == nil {
		t.Fatal("plain http to the TLS gateway worked")
	}
}
