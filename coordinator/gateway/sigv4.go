package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigningService is the SigV4 service name requests must be scoped to.
const SigningService = "sagemaker"

// MaxClockSkew is how far a request's X-Amz-Date may be from the gateway's
// clock, either way.
const MaxClockSkew = 5 * time.Minute

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
)

// Key is what a credential source knows about one access key.
type Key struct {
	// SecretAccessKey is the secret the request must be signed with.
	SecretAccessKey string
	// SessionToken is set for temporary credentials: every request signed
	// with the key must carry it in X-Amz-Security-Token. Empty for
	// long-term keys, which must not send a token.
	SessionToken string
	// Principal names who the key authenticates, for logs; the server's
	// interceptor maps it to the principal whose policies and audit apply
	// (see Principal).
	Principal string
}

// ErrUnknownAccessKey is what a Credentials source returns for an access
// key ID it does not know; the caller gets UnrecognizedClientException.
var ErrUnknownAccessKey = errors.New("unknown access key")

// Credentials resolves the access key ID of a SigV4 request.
type Credentials interface {
	// Lookup returns the key of accessKeyID, ErrUnknownAccessKey when
	// there is none, or another error when the source failed (the caller
	// gets InternalFailure).
	Lookup(ctx context.Context, accessKeyID string) (Key, error)
}

// DevCredentials accepts one long-term key: access key ID "test" with
// secret "test", as LocalStack does, so that the stock AWS SDKs and CLI work
// against a development cluster with no set-up (AWS_ACCESS_KEY_ID=test
// AWS_SECRET_ACCESS_KEY=test). Every request it admits acts as the
// principal "dev" and as the server's default account. Servers accept it
// only until ACLs are bootstrapped; after that, access keys (long-term, or
// temporary with a session token) of real principals sign requests.
type DevCredentials struct{}

// DevAccessKeyID and DevSecretAccessKey are the key DevCredentials accepts.
const (
	DevAccessKeyID     = "test"
	DevSecretAccessKey = "test"
)

// Lookup implements Credentials.
func (DevCredentials) Lookup(_ context.Context, accessKeyID string) (Key, error) {
	if accessKeyID != DevAccessKeyID {
		return Key{}, ErrUnknownAccessKey
	}
	return Key{SecretAccessKey: DevSecretAccessKey, Principal: "dev"}, nil
}

// StaticCredentials is a fixed set of keys by access key ID, for tests and
// small set-ups; a key with a SessionToken acts as temporary credentials.
type StaticCredentials map[string]Key

// Lookup implements Credentials.
func (s StaticCredentials) Lookup(_ context.Context, accessKeyID string) (Key, error) {
	k, ok := s[accessKeyID]
	if !ok {
		return Key{}, ErrUnknownAccessKey
	}
	return k, nil
}

// verifier checks SigV4 signatures by signing the request again, with the
// AWS SDK for Go v2 signer, over the headers the client says it signed and
// the body received, and comparing the signatures in constant time.
type verifier struct {
	creds  Credentials
	region string
	now    func() time.Time
	signer *v4.Signer
}

func newVerifier(creds Credentials, region string, now func() time.Time) *verifier {
	return &verifier{creds: creds, region: region, now: now, signer: v4.NewSigner()}
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKeyID   string
	date          string // yyyymmdd of the credential scope
	region        string
	service       string
	signedHeaders string // as given, "content-type;host;x-amz-date"
	signature     string
}

func invalidSignature(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, typeInvalidSignature, format, args...)
}

func incompleteSignature(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, typeIncompleteSig, format, args...)
}

func unrecognizedClient() *apiError {
	return newAPIError(http.StatusBadRequest, typeUnrecognized, "The security token included in the request is invalid.")
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/20260101/
// us-east-1/sagemaker/aws4_request, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(h string) (authorization, *apiError) {
	var a authorization
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != sigV4Algorithm {
		return a, incompleteSignature("Unsupported Authorization algorithm %q: sign requests with %s (SigV4).", alg, sigV4Algorithm)
	}
	var cred string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	var missing []string
	for _, p := range []struct{ name, v string }{{"Credential", cred}, {"SignedHeaders", a.signedHeaders}, {"Signature", a.signature}} {
		if p.v == "" {
			missing = append(missing, "Authorization header requires '"+p.name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return a, incompleteSignature("%s", strings.Join(missing, " "))
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return a, incompleteSignature("Credential must have the form <access key ID>/<yyyymmdd>/<region>/<service>/aws4_request; got %q.", cred)
	}
	a.accessKeyID, a.date, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
	return a, nil
}

// verify authenticates a request whose body has been read; it returns the
// key's principal.
func (v *verifier) verify(ctx context.Context, r *http.Request, body []byte) (string, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", newAPIError(http.StatusBadRequest, typeMissingAuth, "Request is missing Authentication Token: sign requests with SigV4 (AWS4-HMAC-SHA256).")
	}
	a, aerr := parseAuthorization(h)
	if aerr != nil {
		return "", aerr
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return "", incompleteSignature("Authorization header requires existence of a 'X-Amz-Date' header.")
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return "", incompleteSignature("X-Amz-Date %q is not in the ISO-8601 basic format yyyymmddThhmmssZ.", amzDate)
	}
	now := v.now().UTC()
	switch {
	case t.Before(now.Add(-MaxClockSkew)):
		return "", invalidSignature("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, now.Add(-MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	case t.After(now.Add(MaxClockSkew)):
		return "", invalidSignature("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			amzDate, now.Add(MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if a.date != t.Format("20060102") {
		return "", invalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.date, t.Format("20060102"), amzDate)
	}
	if a.region != v.region {
		return "", invalidSignature("Credential should be scoped to a valid region: this endpoint serves '%s', not '%s'.", v.region, a.region)
	}
	if a.service != SigningService {
		return "", invalidSignature("Credential should be scoped to correct service: '%s'.", SigningService)
	}
	signed := strings.Split(a.signedHeaders, ";")
	if !contains(signed, "host") {
		return "", invalidSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if !contains(signed, "x-amz-date") {
		return "", invalidSignature("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}

	key, err := v.creds.Lookup(ctx, a.accessKeyID)
	switch {
	case errors.Is(err, ErrUnknownAccessKey):
		return "", unrecognizedClient()
	case err != nil:
		return "", internalError("credential lookup failed: %v", err)
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if key.SessionToken != "" {
		if subtle.ConstantTimeCompare([]byte(token), []byte(key.SessionToken)) != 1 {
			return "", unrecognizedClient()
		}
	} else if token != "" {
		return "", unrecognizedClient()
	}

	// Sign a copy of the request that holds only what the client signed.
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	cp := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, name := range signed {
		switch name {
		case "host":
		case "content-length":
			cp.ContentLength = int64(len(body))
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				return "", invalidSignature("The signed header '%s' is not in the request.", name)
			}
			cp.Header[textproto.CanonicalMIMEHeaderKey(name)] = vals
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: key.SecretAccessKey}
	if err := v.signer.SignHTTP(ctx, creds, cp, hex.EncodeToString(sum[:]), a.service, a.region, t); err != nil {
		return "", internalError("signing: %v", err)
	}
	want, perr := parseAuthorization(cp.Header.Get("Authorization"))
	if perr != nil {
		return "", internalError("signing produced an unreadable Authorization header")
	}
	if want.signedHeaders != a.signedHeaders {
		return "", invalidSignature("The request signs the headers %q, of which perfleet can verify %q: do not sign User-Agent, Expect, Transfer-Encoding or X-Amzn-Trace-Id, and sign X-Amz-Date.",
			a.signedHeaders, want.signedHeaders)
	}
	if subtle.ConstantTimeCompare([]byte(want.signature), []byte(strings.ToLower(a.signature))) != 1 {
		return "", invalidSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return key.Principal, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
