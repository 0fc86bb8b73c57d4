package smfake

import (
	"crypto/rand"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// STS defaults and limits, as the service has them.
const (
	// DefaultSessionDuration is an assumed role's session length when
	// AssumeRole names none.
	DefaultSessionDuration = time.Hour
	// MinSessionDuration is the shortest session AssumeRole grants.
	MinSessionDuration = 15 * time.Minute
)

// Role is an IAM role callers may assume through [Server.STS].
type Role struct {
	// ARN is the role's ARN, arn:aws:iam::<account>:role/<name>.
	ARN string
	// Trusted lists the access key ids that may assume the role: its trust
	// policy. Any other caller gets AccessDenied.
	Trusted []string
	// Secrets lists the names of the secrets the role's sessions may use,
	// as Key.Secrets does for a key: nil allows every secret, an empty
	// non-nil list none.
	Secrets []string
	// MaxSessionDuration is the longest DurationSeconds AssumeRole accepts
	// for the role (default 1 hour, as IAM's).
	MaxSessionDuration time.Duration
}

// WithRole lets the callers r trusts assume it through [Server.STS].
func WithRole(r Role) Option {
	return func(s *Server) {
		if s.roles == nil {
			s.roles = map[string]Role{}
		}
		r.Trusted = slices.Clone(r.Trusted)
		r.Secrets = slices.Clone(r.Secrets)
		if r.MaxSessionDuration == 0 {
			r.MaxSessionDuration = time.Hour
		}
		s.roles[r.ARN] = r
	}
}

// Session is a set of temporary credentials [Server.STS] issued.
type Session struct {
	// Role is the ARN of the role assumed.
	Role string
	// Name is the RoleSessionName the caller gave.
	Name string
	// Caller is the access key id that signed the AssumeRole call.
	Caller string
	// AssumedRoleARN is the session's principal,
	// arn:aws:sts::<account>:assumed-role/<role name>/<session name>.
	AssumedRoleARN string
	// AccessKeyID is the temporary access key issued.
	AccessKeyID string
	// Duration is the session length granted, and Expiration its end.
	Duration   time.Duration
	Expiration time.Time
}

// Sessions returns the sessions STS issued, oldest first.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sessions)
}

// STS returns an http.Handler for the Server's STS AssumeRole endpoint,
// speaking the AWS query protocol (POST / with a form body
// Action=AssumeRole&Version=2011-06-15&RoleArn=...&RoleSessionName=...,
// an XML AssumeRoleResponse), for the real STS client through
// httptest.Server and BaseEndpoint. Serve it apart from the Server itself.
//
// Every call must be signed for sts with a key the Server accepts (WithKey,
// or credentials it issued earlier): failures are InvalidClientTokenId,
// SignatureDoesNotMatch, IncompleteSignature, MissingAuthenticationToken
// or ExpiredToken. A caller the role does not trust, or a role that does
// not exist, gets AccessDenied (HTTP 403), as the service says nothing
// of roles one may not assume. A bad RoleSessionName or DurationSeconds
// (outside 900 seconds to the role's MaxSessionDuration) is a
// ValidationError. Issued credentials last DurationSeconds (1 hour by
// default) on the Server's clock and are accepted by the Server from
// then on, as the role: AccessDeniedException messages name the
// assumed-role ARN, and only the role's Secrets may be used. Calls are
// counted under their Action (Calls("AssumeRole")).
func (s *Server) STS() http.Handler { return http.HandlerFunc(s.serveSTS) }

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// stsCodes maps the codes authenticate reports to STS's.
var stsCodes = map[string]string{
	"MissingAuthenticationTokenException": "MissingAuthenticationToken",
	"IncompleteSignatureException":        "IncompleteSignature",
	"UnrecognizedClientException":         "InvalidClientTokenId",
	"InvalidSignatureException":           "SignatureDoesNotMatch",
	"ExpiredTokenException":               "ExpiredToken",
}

func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request) {
	reqID := newUUID()
	w.Header().Set("x-amzn-RequestId", reqID)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeSTSError(w, reqID, &apiError{code: "MalformedInput", msg: "Could not read the request body."})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		form = url.Values{}
	}
	action := form.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	if r.Method != http.MethodPost || action != "AssumeRole" {
		writeSTSError(w, reqID, &apiError{code: "InvalidAction", msg: "Could not find operation " + action + " for version " + form.Get("Version")})
		return
	}
	if v := form.Get("Version"); v != "2011-06-15" {
		writeSTSError(w, reqID, &apiError{code: "InvalidAction", msg: "Could not find operation AssumeRole for version " + v})
		return
	}
	caller, aerr := s.authenticate(r, body, "sts", true)
	if aerr != nil {
		if c, ok := stsCodes[aerr.code]; ok {
			aerr = &apiError{status: http.StatusForbidden, code: c, msg: aerr.msg}
		}
		writeSTSError(w, reqID, aerr)
		return
	}
	out, aerr := s.assumeRole(caller, form)
	if aerr != nil {
		writeSTSError(w, reqID, aerr)
		return
	}
	out.Xmlns = stsNamespace
	out.RequestID = reqID
	b, err := xml.Marshal(out)
	if err != nil {
		writeSTSError(w, reqID, &apiError{status: http.StatusInternalServerError, code: "InternalFailure", msg: err.Error()})
		return
	}
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func stsValidation(value, field, constraint string) *apiError {
	return &apiError{code: "ValidationError", msg: "1 validation error detected: Value '" + value + "' at '" + field +
		"' failed to satisfy constraint: " + constraint}
}

func (s *Server) assumeRole(caller *Key, form url.Values) (*assumeRoleResponse, *apiError) {
	roleARN, name := form.Get("RoleArn"), form.Get("RoleSessionName")
	if len(roleARN) < 20 || len(roleARN) > 2048 {
		return nil, stsValidation(roleARN, "roleArn", "Member must have length between 20 and 2048")
	}
	if !sessionNameRE.MatchString(name) {
		return nil, stsValidation(name, "roleSessionName", `Member must satisfy regular expression pattern: [\w+=,.@-]* and have length between 2 and 64`)
	}
	role, ok := s.roles[roleARN]
	if !ok || !slices.Contains(role.Trusted, caller.AccessKeyID) {
		return nil, &apiError{status: http.StatusForbidden, code: "AccessDenied", msg: "User: " + caller.principal() +
			" is not authorized to perform: sts:AssumeRole on resource: " + roleARN}
	}
	d := DefaultSessionDuration
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < int(MinSessionDuration/time.Second) {
			return nil, stsValidation(v, "durationSeconds", "Member must have value greater than or equal to 900")
		}
		d = time.Duration(n) * time.Second
	}
	if d > role.MaxSessionDuration {
		return nil, &apiError{code: "ValidationError", msg: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."}
	}
	// arn:<partition>:iam::<account>:role/<path/><name>
	f := strings.SplitN(roleARN, ":", 6)
	if len(f) != 6 || f[2] != "iam" || !strings.HasPrefix(f[5], "role/") {
		return nil, stsValidation(roleARN, "roleArn", "Member must be a role ARN")
	}
	roleName := f[5][strings.LastIndex(f[5], "/")+1:]
	sess := Session{Role: roleARN, Name: name, Caller: caller.AccessKeyID,
		AssumedRoleARN: "arn:" + f[1] + ":sts::" + f[4] + ":assumed-role/" + roleName + "/" + name,
		AccessKeyID:    "ASIA" + randomString(16, upperDigits), Duration: d,
		Expiration: s.now().Add(d).UTC().Truncate(time.Second)}
	key := Key{AccessKeyID: sess.AccessKeyID, SecretAccessKey: randomString(40, suffixAlphabet),
		SessionToken: randomString(64, suffixAlphabet), Secrets: slices.Clone(role.Secrets),
		Principal: sess.AssumedRoleARN, Expires: sess.Expiration}
	s.mu.Lock()
	if s.keys == nil {
		s.keys = map[string]Key{}
	}
	s.keys[key.AccessKeyID] = key
	s.sessions = append(s.sessions, sess)
	s.mu.Unlock()

	out := &assumeRoleResponse{}
	res := &out.Result
	res.Credentials.AccessKeyID = key.AccessKeyID
	res.Credentials.SecretAccessKey = key.SecretAccessKey
	res.Credentials.SessionToken = key.SessionToken
	res.Credentials.Expiration = sess.Expiration.Format(time.RFC3339)
	res.AssumedRoleUser.ARN = sess.AssumedRoleARN
	res.AssumedRoleUser.AssumedRoleID = "AROA" + randomString(17, upperDigits) + ":" + name
	return out, nil
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		} `xml:"Credentials"`
		AssumedRoleUser struct {
			AssumedRoleID string `xml:"AssumedRoleId"`
			ARN           string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// writeSTSError writes e as the query protocol's ErrorResponse.
func writeSTSError(w http.ResponseWriter, reqID string, e *apiError) {
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	b, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: stsNamespace, Type: typ, Code: e.code, Message: e.msg, RequestID: reqID})
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const upperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// randomString returns n random characters of alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
