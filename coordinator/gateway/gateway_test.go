package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	smithy "github.com/aws/smithy-go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// withReason is a status error with an ErrorInfo reason, as a future
// service (policies, rate limits) would return.
func withReason(c codes.Code, reason, msg string) error {
	st, _ := status.New(c, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: endpoint.ErrorDomain})
	return st.Err()
}

// TestErrorsDecodeAsSDKTypes maps each service error to the AWS error the
// SDK decodes: the typed ones into their types, the rest by code, with the
// HTTP status and the request ID.
func TestErrorsDecodeAsSDKTypes(t *testing.T) {
	f, url := fakeGateway(t, nil)
	c := sdkClient(url, DevAccessKeyID, DevSecretAccessKey, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		err    error
		code   string
		status int
		typed  func(error) bool
	}{
		{"not found", endpoint.ToStatus(fmt.Errorf("ai_benchmark_job bj: %w", state.ErrNotFound)), typeResourceNotFound, 400,
			func(err error) bool {
				var e *types.ResourceNotFound
				return errors.As(err, &e) && strings.Contains(aws.ToString(e.Message), "bj")
			}},
		{"name taken", endpoint.ToStatus(state.ErrAlreadyExists), typeResourceInUse, 400,
			func(err error) bool { var e *types.ResourceInUse; return errors.As(err, &e) }},
		{"wrong state", endpoint.ToStatus(state.ErrConflict), typeResourceInUse, 400,
			func(err error) bool { var e *types.ResourceInUse; return errors.As(err, &e) }},
		{"limit", endpoint.ToStatus(state.ErrLimitExceeded), typeResourceLimit, 400,
			func(err error) bool { var e *types.ResourceLimitExceeded; return errors.As(err, &e) }},
		{"conflict", withReason(codes.Aborted, typeConflict, "conflict"), typeConflict, 400,
			func(err error) bool { var e *types.ConflictException; return errors.As(err, &e) }},
		{"validation", endpoint.ToStatus(validate.Field("role_arn", "is required")), typeValidation, 400, nil},
		{"token reused", endpoint.ToStatus(state.ErrTokenReused), typeValidation, 400, nil},
		{"access denied", withReason(codes.PermissionDenied, typeAccessDenied, "denied by policy"), typeAccessDenied, 400, nil},
		{"access denied by code", status.Error(codes.PermissionDenied, "no"), typeAccessDenied, 400, nil},
		{"throttled", withReason(codes.ResourceExhausted, typeThrottling, "slow down"), typeThrottling, 400, nil},
		{"unauthenticated", status.Error(codes.Unauthenticated, "who"), typeUnrecognized, 400, nil},
		{"no leader", endpoint.ToStatus(endpoint.ErrUnavailable), typeServiceUnavailable, 503, nil},
		{"not leader", endpoint.ToStatus(endpoint.ErrNotLeader), typeServiceUnavailable, 503, nil},
		{"internal", endpoint.ToStatus(errors.New("disk on fire")), typeInternalFailure, 500, nil},
		{"plain error", errors.New("boom"), typeInternalFailure, 500, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.set(nil, tc.err)
			_, err := c.DescribeAIBenchmarkJob(ctx, &sagemaker.DescribeAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj")})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
			if tc.typed != nil && !tc.typed(err) {
				t.Errorf("%v is not the SDK's typed error", err)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.status || len(re.ServiceRequestID()) != 36 {
				t.Errorf("status %d, request ID %q; want %d and a UUID", re.HTTPStatusCode(), re.ServiceRequestID(), tc.status)
			}
		})
	}
}

// TestValidationNamesAWSMembers checks that validation errors name fields
// as the AWS request does.
func TestValidationNamesAWSMembers(t *testing.T) {
	f, url := fakeGateway(t, nil)
	c := sdkClient(url, DevAccessKeyID, DevSecretAccessKey, "")
	var ch validate.Checker
	ch.Add("output_config.s3_output_location", "must be s3://bucket/prefix or file:///absolute/path")
	ch.Add("benchmark_target.endpoint.inference_components[1].identifier", "is required, at most 256 characters")
	f.set(nil, endpoint.ToStatus(ch.Err()))
	_, err := c.CreateAIBenchmarkJob(context.Background(), &sagemaker.CreateAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj"),
		AIWorkloadConfigIdentifier: aws.String("wl"), RoleArn: aws.String(roleARN),
		BenchmarkTarget: &types.AIBenchmarkTargetMemberEndpoint{Value: types.AIBenchmarkEndpoint{Identifier: aws.String("x")}},
		OutputConfig:    &types.AIBenchmarkOutputConfig{S3OutputLocation: aws.String("ftp://x")}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != typeValidation {
		t.Fatalf("got %v", err)
	}
	want := "2 validation errors detected: OutputConfig.S3OutputLocation: must be s3://bucket/prefix or file:///absolute/path; " +
		"BenchmarkTarget.Endpoint.InferenceComponents[1].Identifier: is required, at most 256 characters"
	if ae.ErrorMessage() != want {
		t.Errorf("message %q\nwant    %q", ae.ErrorMessage(), want)
	}
}

// TestCallContext checks what a service method sees of a gateway call: the
// request ID (in the context and in gRPC metadata, which forwarding to the
// leader carries), the principal, and the consistency header.
func TestCallContext(t *testing.T) {
	f, url := fakeGateway(t, nil)
	f.set(&pb.ListAIBenchmarkJobsResponse{}, nil)
	r := signedRequest(t, url, "SageMaker.ListAIBenchmarkJobs", "{}", time.Now(), DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService,
		func(r *http.Request) { r.Header.Set(ConsistencyHeader, "stale") })
	code, _, body, hdr := do(t, r)
	if code != 200 || string(body) != "{}" {
		t.Fatalf("%d %s", code, body)
	}
	if hdr.Get("Content-Type") != ContentType {
		t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
	}
	id := hdr.Get(RequestIDHeader)
	_, _, ctx := f.last()
	if got, _ := RequestID(ctx); got != id || len(id) != 36 {
		t.Errorf("context request ID %q, header %q", got, id)
	}
	if p, _ := Principal(ctx); p != "dev" {
		t.Errorf("principal %q", p)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if got := md.Get(RequestIDMetadataKey); len(got) != 1 || got[0] != id {
		t.Errorf("metadata request ID %v", got)
	}
	if got := md.Get("x-perfleet-consistency"); len(got) != 1 || got[0] != "stale" {
		t.Errorf("metadata consistency %v", got)
	}
}

// TestProtocolErrors covers requests that never reach a service method.
func TestProtocolErrors(t *testing.T) {
	f, url := fakeGateway(t, nil)
	f.set(&pb.ListAIBenchmarkJobsResponse{}, nil)
	now := time.Now()
	sign := func(target, body string, mutate func(*http.Request)) *http.Request {
		return signedRequest(t, url, target, body, now, DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, mutate)
	}
	get, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	unsigned, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader("{}"))
	unsigned.Header.Set("X-Amz-Target", "SageMaker.ListAIBenchmarkJobs")
	unsigned.Header.Set("Content-Type", ContentType)
	for _, tc := range []struct {
		name     string
		req      *http.Request
		status   int
		typ      string
		contains string
	}{
		{"unknown operation", sign("SageMaker.CreateEndpoint", "{}", nil), 400, typeUnknownOperation, "SageMaker.CreateEndpoint"},
		{"gRPC-only operation", sign("SageMaker.GetAIBenchmarkJobResults", "{}", nil), 400, typeUnknownOperation, "unknown operation"},
		{"other service", sign("AmazonS3.ListAIBenchmarkJobs", "{}", nil), 400, typeUnknownOperation, "unknown operation"},
		{"no target", sign("", "{}", nil), 400, typeUnknownOperation, "unknown operation"},
		{"wrong content type", sign("SageMaker.ListAIBenchmarkJobs", "{}", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }),
			400, typeUnknownOperation, "Content-Type"},
		{"bad JSON", sign("SageMaker.ListAIBenchmarkJobs", "{", nil), 400, typeSerialization, "not valid JSON"},
		{"unknown member", sign("SageMaker.ListAIBenchmarkJobs", `{"Limit":3}`, nil), 400, typeValidation, `unknown member \"Limit\"`},
		{"GET", get, 404, typeUnknownOperation, "POST /"},
		{"unsigned", unsigned, 400, typeMissingAuth, "Authentication Token"},
		{"too big", sign("SageMaker.ListAIBenchmarkJobs", `{"NameContains":"`+strings.Repeat("x", DefaultMaxBodyBytes)+`"}`, nil),
			413, typeSerialization, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.count()
			code, typ, body, hdr := do(t, tc.req)
			if code != tc.status || typ != tc.typ || !strings.Contains(string(body), tc.contains) {
				t.Errorf("got %d %s %s; want %d %s containing %q", code, typ, body, tc.status, tc.typ, tc.contains)
			}
			if hdr.Get("X-Amzn-ErrorType") != tc.typ || len(hdr.Get(RequestIDHeader)) != 36 {
				t.Errorf("headers %v", hdr)
			}
			if f.count() != before {
				t.Errorf("the service was called")
			}
		})
	}
}

// TestWrongSignatureThroughSDK: the SDK signing with a wrong secret, an
// unknown key, or for another region is refused.
func TestWrongSignatureThroughSDK(t *testing.T) {
	f, url := fakeGateway(t, nil)
	f.set(&pb.ListAIWorkloadConfigsResponse{}, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		c       *sagemaker.Client
		code    string
		message string
	}{
		{"wrong secret", sdkClient(url, DevAccessKeyID, "not-test", ""), typeInvalidSignature, "signature we calculated does not match"},
		{"unknown key", sdkClient(url, "AKIAEXAMPLE", "secret", ""), typeUnrecognized, "security token included in the request is invalid"},
		{"token for a long-term key", sdkClient(url, DevAccessKeyID, DevSecretAccessKey, "tok"), typeUnrecognized, "security token"},
		{"other region", sagemaker.New(sdkClient(url, DevAccessKeyID, DevSecretAccessKey, "").Options(), func(o *sagemaker.Options) { o.Region = "eu-west-1" }),
			typeInvalidSignature, "scoped to a valid region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || !strings.Contains(ae.ErrorMessage(), tc.message) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.message)
			}
		})
	}
	if _, err := sdkClient(url, DevAccessKeyID, DevSecretAccessKey, "").ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{}); err != nil {
		t.Fatalf("the dev key is refused: %v", err)
	}
}

// TestTemporaryCredentialsThroughSDK: a key that needs a session token is
// accepted with it and refused without it.
func TestTemporaryCredentialsThroughSDK(t *testing.T) {
	creds := StaticCredentials{"ASIATEMP": {SecretAccessKey: "s3cret", SessionToken: "session-1", Principal: "alice"}}
	f, url := fakeGateway(t, creds)
	f.set(&pb.ListAIWorkloadConfigsResponse{}, nil)
	ctx := context.Background()
	if _, err := sdkClient(url, "ASIATEMP", "s3cret", "session-1").ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{}); err != nil {
		t.Fatalf("temporary credentials refused: %v", err)
	}
	if _, _, cctx := f.last(); cctx == nil {
		t.Fatal("not called")
	} else if p, _ := Principal(cctx); p != "alice" {
		t.Errorf("principal %q", p)
	}
	for _, token := range []string{"", "session-2"} {
		_, err := sdkClient(url, "ASIATEMP", "s3cret", token).ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != typeUnrecognized {
			t.Errorf("token %q: got %v, want UnrecognizedClientException", token, err)
		}
	}
}

func TestNewRequiresSettings(t *testing.T) {
	ok := Config{Service: pb.UnimplementedInferenceOptimizationServer{}, Region: testRegion, Credentials: DevCredentials{}}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(*Config){
		func(c *Config) { c.Service = nil },
		func(c *Config) { c.Region = "" },
		func(c *Config) { c.Credentials = nil },
	} {
		c := ok
		mutate(&c)
		if _, err := New(c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
	if n := len(Operations()); n != 14 {
		t.Errorf("%d operations", n)
	}
}
