package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

const testRegion = "us-east-1"

func testLogger() *slog.Logger {
	var out io.Writer = io.Discard
	if os.Getenv("PERFLEET_TEST_LOGS") != "" {
		out = os.Stderr
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeService stands in for the endpoint: as the gateway's interceptor it
// records each decoded request and answers with a canned response or error,
// without calling the real handler.
type fakeService struct {
	mu      sync.Mutex
	method  string
	req     proto.Message
	ctx     context.Context
	resp    proto.Message
	err     error
	handled int
}

func (f *fakeService) set(resp proto.Message, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resp, f.err, f.req, f.method = resp, err, nil, ""
}

func (f *fakeService) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method, f.req, f.ctx = info.FullMethod, proto.Clone(req.(proto.Message)), ctx
	f.handled++
	if f.err != nil {
		return nil, f.err
	}
	return f.resp, nil
}

func (f *fakeService) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handled
}

func (f *fakeService) last() (string, proto.Message, context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.method, f.req, f.ctx
}

// fakeGateway serves a gateway over a fakeService on loopback.
func fakeGateway(t *testing.T, creds Credentials) (*fakeService, string) {
	t.Helper()
	f := &fakeService{}
	if creds == nil {
		creds = DevCredentials{}
	}
	g, err := New(Config{Service: pb.UnimplementedInferenceOptimizationServer{}, Interceptor: f.intercept, Region: testRegion,
		Credentials: creds, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(hs.Close)
	return f, hs.URL
}

// sdkClient is the real SageMaker client pointed at a gateway, without
// retries so that each call is one request.
func sdkClient(url, akid, secret, token string) *sagemaker.Client {
	return sagemaker.NewFromConfig(aws.Config{
		Region:           testRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
		RetryMaxAttempts: 1,
	}, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) })
}

// signedRequest builds a request to a gateway signed with the SDK's signer,
// as the AWS SDKs send them; mutate runs before signing.
func signedRequest(t *testing.T, url, target, body string, at time.Time, akid, secret, region, service string, mutate func(*http.Request)) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", ContentType)
	if target != "" {
		r.Header.Set("X-Amz-Target", target)
	}
	if mutate != nil {
		mutate(r)
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatal(err)
	}
	return r
}

// do sends a request and returns the status, the __type and the body.
func do(t *testing.T, r *http.Request) (int, string, []byte, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Type string `json:"__type"`
	}
	if resp.StatusCode != http.StatusOK {
		_ = jsonUnmarshal(b, &e)
	}
	return resp.StatusCode, e.Type, b, resp.Header
}
