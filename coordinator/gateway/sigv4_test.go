package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// verifyRequest runs a signed request through the verifier the way
// ServeHTTP does, with the gateway's clock at now.
func verifyRequest(t *testing.T, v *verifier, r *http.Request) (string, *apiError) {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	// What a server sees: Host set from the URL, the body read.
	r.Host = r.URL.Host
	r.RequestURI = r.URL.RequestURI()
	return v.verify(context.Background(), r, body)
}

func TestSigV4(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	creds := StaticCredentials{
		DevAccessKeyID: {SecretAccessKey: DevSecretAccessKey, Principal: "dev"},
		"ASIATEMP":     {SecretAccessKey: "tmp-secret", SessionToken: "tok-1", Principal: "temp"},
	}
	v := newVerifier(creds, testRegion, func() time.Time { return now })
	const url = "http://127.0.0.1:8443"
	const target = "SageMaker.ListAIBenchmarkJobs"
	const body = `{"MaxResults":5}`
	sign := func(at time.Time, akid, secret, region, service string, mutate func(*http.Request)) *http.Request {
		return signedRequest(t, url, target, body, at, akid, secret, region, service, mutate)
	}
	good := func() *http.Request {
		return sign(now, DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, nil)
	}
	withToken := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", tok) }
	}

	for _, tc := range []struct {
		name      string
		req       func() *http.Request
		after     func(*http.Request) // tampering after signing
		typ       string              // "" means accepted
		contains  string
		principal string
	}{
		{name: "correct", req: good, principal: "dev"},
		{name: "4 minutes slow", req: func() *http.Request {
			return sign(now.Add(-4*time.Minute), DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, nil)
		}, principal: "dev"},
		{name: "4 minutes fast", req: func() *http.Request {
			return sign(now.Add(4*time.Minute), DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, nil)
		}, principal: "dev"},
		{name: "skewed 6 minutes slow", req: func() *http.Request {
			return sign(now.Add(-6*time.Minute), DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, nil)
		}, typ: typeInvalidSignature, contains: "Signature expired: 20260506T070209Z is now earlier than 20260506T070309Z"},
		{name: "skewed 6 minutes fast", req: func() *http.Request {
			return sign(now.Add(6*time.Minute), DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, nil)
		}, typ: typeInvalidSignature, contains: "Signature not yet current"},
		{name: "wrong region", req: func() *http.Request {
			return sign(now, DevAccessKeyID, DevSecretAccessKey, "eu-west-1", SigningService, nil)
		}, typ: typeInvalidSignature, contains: "scoped to a valid region: this endpoint serves 'us-east-1', not 'eu-west-1'"},
		{name: "wrong service", req: func() *http.Request {
			return sign(now, DevAccessKeyID, DevSecretAccessKey, testRegion, "s3", nil)
		}, typ: typeInvalidSignature, contains: "scoped to correct service: 'sagemaker'"},
		{name: "tampered body", req: good, after: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"MaxResults":6}`))
		}, typ: typeInvalidSignature, contains: "does not match"},
		{name: "tampered target", req: good, after: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "SageMaker.DeleteAIBenchmarkJob")
		}, typ: typeInvalidSignature, contains: "does not match"},
		{name: "tampered signature", req: good, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature=", "Signature=0", 1))
		}, typ: typeInvalidSignature, contains: "does not match"},
		{name: "date header changed", req: good, after: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", now.Add(time.Second).Format(amzDateFormat))
		}, typ: typeInvalidSignature, contains: "does not match"},
		{name: "wrong secret", req: func() *http.Request {
			return sign(now, DevAccessKeyID, "wrong", testRegion, SigningService, nil)
		}, typ: typeInvalidSignature, contains: "does not match"},
		{name: "unknown key", req: func() *http.Request {
			return sign(now, "AKIANOBODY", DevSecretAccessKey, testRegion, SigningService, nil)
		}, typ: typeUnrecognized, contains: "security token"},
		{name: "temporary credentials", req: func() *http.Request {
			return sign(now, "ASIATEMP", "tmp-secret", testRegion, SigningService, withToken("tok-1"))
		}, principal: "temp"},
		{name: "temporary credentials without token", req: func() *http.Request {
			return sign(now, "ASIATEMP", "tmp-secret", testRegion, SigningService, nil)
		}, typ: typeUnrecognized},
		{name: "temporary credentials, wrong token", req: func() *http.Request {
			return sign(now, "ASIATEMP", "tmp-secret", testRegion, SigningService, withToken("tok-2"))
		}, typ: typeUnrecognized},
		{name: "token swapped after signing", req: func() *http.Request {
			return sign(now, "ASIATEMP", "tmp-secret", testRegion, SigningService, withToken("tok-2"))
		}, after: withToken("tok-1"), typ: typeInvalidSignature, contains: "does not match"},
		{name: "token for a long-term key", req: func() *http.Request {
			return sign(now, DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, withToken("tok-1"))
		}, typ: typeUnrecognized},
		{name: "no Authorization", req: good, after: func(r *http.Request) { r.Header.Del("Authorization") }, typ: typeMissingAuth},
		{name: "other algorithm", req: good, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}, typ: typeIncompleteSig, contains: "AWS4-ECDSA-P256-SHA256"},
		{name: "no Signature", req: good, after: func(r *http.Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:strings.Index(h, ", Signature=")])
		}, typ: typeIncompleteSig, contains: "'Signature'"},
		{name: "bad credential scope", req: good, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
		}, typ: typeIncompleteSig, contains: "aws4_request"},
		{name: "no X-Amz-Date", req: good, after: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, typ: typeIncompleteSig, contains: "X-Amz-Date"},
		{name: "scope date differs", req: good, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20260506/", "/20260505/", 1))
		}, typ: typeInvalidSignature, contains: "Date in Credential scope"},
		{name: "host not signed", req: good, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
		}, typ: typeInvalidSignature, contains: "'Host'"},
		{name: "signed header missing", req: good, after: func(r *http.Request) { r.Header.Del("X-Amz-Target") },
			typ: typeInvalidSignature, contains: "'x-amz-target' is not in the request"},
		{name: "signs a header the signer ignores", req: good, after: func(r *http.Request) {
			r.Header.Set("User-Agent", "botocore")
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "host;user-agent;", 1))
		}, typ: typeInvalidSignature, contains: "do not sign User-Agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req()
			if tc.after != nil {
				tc.after(r)
			}
			p, aerr := verifyRequest(t, v, r)
			switch {
			case tc.typ == "" && aerr != nil:
				t.Fatalf("refused: %v", aerr)
			case tc.typ == "":
				if p != tc.principal {
					t.Errorf("principal %q, want %q", p, tc.principal)
				}
			case aerr == nil:
				t.Fatalf("accepted, want %s", tc.typ)
			case aerr.typ != tc.typ || aerr.status != http.StatusBadRequest || !strings.Contains(aerr.message, tc.contains):
				t.Errorf("got %d %v, want 400 %s containing %q", aerr.status, aerr, tc.typ, tc.contains)
			}
		})
	}
}

// TestSigV4OverHTTP checks a signed request end to end over a real socket,
// where the server, not the test, parses Host and the headers.
func TestSigV4OverHTTP(t *testing.T) {
	f, url := fakeGateway(t, nil)
	f.set(&pb.ListAIBenchmarkJobsResponse{}, nil)
	for _, tc := range []struct {
		name string
		at   time.Time
		body string
		want int
	}{
		{"now", time.Now(), "{}", 200},
		{"empty body", time.Now(), "", 200},
		{"skewed", time.Now().Add(-10 * time.Minute), "{}", 400},
	} {
		r := signedRequest(t, url, "SageMaker.ListAIBenchmarkJobs", tc.body, tc.at, DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, nil)
		if code, typ, body, _ := do(t, r); code != tc.want {
			t.Errorf("%s: %d %s %s", tc.name, code, typ, body)
		}
	}
	// A body changed on the wire after signing.
	r := signedRequest(t, url, "SageMaker.ListAIBenchmarkJobs", `{"MaxResults":1}`, time.Now(), DevAccessKeyID, DevSecretAccessKey, testRegion, SigningService, nil)
	r.Body = io.NopCloser(bytes.NewReader([]byte(`{"MaxResults":2}`)))
	if code, typ, _, _ := do(t, r); code != 400 || typ != typeInvalidSignature {
		t.Errorf("tampered body: %d %s", code, typ)
	}
}

func TestDevCredentials(t *testing.T) {
	k, err := DevCredentials{}.Lookup(context.Background(), "test")
	if err != nil || k.SecretAccessKey != "test" || k.SessionToken != "" {
		t.Fatalf("%+v %v", k, err)
	}
	if _, err := (DevCredentials{}).Lookup(context.Background(), "AKIA"); err != ErrUnknownAccessKey {
		t.Fatalf("unknown key: %v", err)
	}
}
