// Package smfake is an in-memory AWS Secrets Manager for tests. Its
// Server is an http.Handler speaking the service's wire protocol (AWS JSON
// 1.1: POST /, X-Amz-Target: secretsmanager.<Operation>), so the real
// aws-sdk-go-v2 client can talk to it through httptest.Server and
// BaseEndpoint.
//
// It implements CreateSecret, PutSecretValue, GetSecretValue,
// DescribeSecret, DeleteSecret and RestoreSecret the way the service
// behaves:
//
//   - a secret's ARN ends in a hyphen and 6 random letters and digits; a
//     secret is addressed by name, by full ARN, or by partial ARN (the ARN
//     without the suffix);
//   - each value is a version; PutSecretValue moves AWSCURRENT to the new
//     version and AWSPREVIOUS to the version that was current, and
//     GetSecretValue reads AWSCURRENT unless told a VersionId or
//     VersionStage;
//   - ClientRequestToken is the version id and makes a retried create or
//     put idempotent;
//   - DeleteSecret schedules deletion (7-30 days, 30 by default) unless
//     ForceDeleteWithoutRecovery; a secret scheduled for deletion can be
//     described and restored, but reading or writing it fails with
//     InvalidRequestException, and once the window passes it is gone;
//   - failures are HTTP 400 with {"__type":"<Code>","Message":"..."}:
//     ResourceNotFoundException, ResourceExistsException,
//     InvalidRequestException, InvalidParameterException,
//     ValidationException, SerializationException,
//     UnknownOperationException.
//
// With WithKey, requests must be SigV4-signed with a configured access
// key: an unsigned request gets MissingAuthenticationTokenException, a
// malformed Authorization header IncompleteSignatureException, an unknown
// access key (or a session token that does not match the key's)
// UnrecognizedClientException, a signature that does not verify against
// the key's secret, or one scoped to another region or service,
// InvalidSignatureException, a temporary key past its expiry
// ExpiredTokenException, and a key whose Secrets list does not name the
// secret AccessDeniedException. Clock skew is not checked.
//
// [Server.STS] is the STS AssumeRole endpoint that goes with it (see
// sts.go): callers signing with a configured key assume the roles given
// with WithRole that trust their key, and the temporary credentials it
// issues sign Secrets Manager requests as the role, limited to the
// role's Secrets.
package smfake

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Staging labels Secrets Manager manages.
const (
	// StageCurrent labels a secret's current version.
	StageCurrent = "AWSCURRENT"
	// StagePrevious labels the version that was current before it.
	StagePrevious = "AWSPREVIOUS"
)

// Defaults for the Server's location.
const (
	// DefaultRegion is the region a Server is in unless WithRegion.
	DefaultRegion = "us-east-1"
	// DefaultAccount is the account a Server's ARNs name unless
	// WithAccount.
	DefaultAccount = "123456789012"
)

// maxBody bounds a request body; a secret value is at most 64 KiB.
const maxBody = 1 << 20

// maxSecretSize is the service's limit on a SecretString or SecretBinary.
const maxSecretSize = 65536

// Key is an access key the Server accepts once signing is required.
type Key struct {
	// AccessKeyID is the key's id, as it appears in the Authorization
	// header's Credential.
	AccessKeyID string
	// SecretAccessKey, when set, makes the Server verify the request's
	// signature with it; when empty only the key id is checked.
	SecretAccessKey string
	// SessionToken, when set, must equal the request's
	// X-Amz-Security-Token (temporary credentials, such as a role's);
	// when empty the request must carry none.
	SessionToken string
	// Secrets lists the names of the secrets the key may use, for every
	// operation. Nil allows every secret; an empty non-nil list allows
	// none.
	Secrets []string
	// Principal is the ARN AccessDeniedException messages name as the
	// caller (arn:aws:iam::<account>:user/<name>, or the assumed-role ARN
	// of STS credentials); empty names the access key id.
	Principal string
	// Expires, when set, is when the key stops working (temporary
	// credentials): requests signed with it from then on get
	// ExpiredTokenException.
	Expires time.Time
}

// principal is the caller k is, as error messages name it.
func (k *Key) principal() string {
	if k.Principal != "" {
		return k.Principal
	}
	return k.AccessKeyID
}

// Server is an in-memory Secrets Manager; see the package documentation.
// It is safe for concurrent use.
type Server struct {
	region    string
	account   string
	partition string
	now       func() time.Time
	roles     map[string]Role // by ARN

	mu       sync.Mutex
	keys     map[string]Key     // by access key id, STS's temporary keys included
	sessions []Session          // issued by STS, in order
	secrets  map[string]*secret // by name, including those scheduled for deletion
	calls    map[string]int     // by operation
}

// Option configures New.
type Option func(*Server)

// WithRegion sets the region in ARNs and the region requests must be
// signed for (default us-east-1).
func WithRegion(region string) Option { return func(s *Server) { s.region = region } }

// WithAccount sets the 12-digit account in ARNs (default 123456789012).
func WithAccount(account string) Option { return func(s *Server) { s.account = account } }

// WithClock replaces time.Now for timestamps and deletion windows.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithKey accepts k. Once any key is configured, every request must be
// signed with one of them.
func WithKey(k Key) Option {
	return func(s *Server) {
		if s.keys == nil {
			s.keys = map[string]Key{}
		}
		k.Secrets = slices.Clone(k.Secrets)
		s.keys[k.AccessKeyID] = k
	}
}

// New returns an empty Server.
func New(opts ...Option) *Server {
	s := &Server{region: DefaultRegion, account: DefaultAccount, now: time.Now,
		secrets: map[string]*secret{}, calls: map[string]int{}}
	for _, o := range opts {
		o(s)
	}
	switch {
	case strings.HasPrefix(s.region, "cn-"):
		s.partition = "aws-cn"
	case strings.HasPrefix(s.region, "us-gov-"):
		s.partition = "aws-us-gov"
	default:
		s.partition = "aws"
	}
	return s
}

type secret struct {
	name, arn, description, kmsKeyID string
	tags                             []tag
	created, lastChanged             time.Time
	lastAccessed                     time.Time
	deleted                          bool
	deletedDate, deletionDate        time.Time
	versions                         map[string]*version
}

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

func (v *version) sameValue(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) {
		return false
	}
	if v.str != nil {
		return *v.str == *str
	}
	return bytes.Equal(v.bin, bin)
}

type tag struct {
	Key   *string `json:"Key,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// Calls returns how many requests named operation op (GetSecretValue,
// ...), refused ones included; op "" counts every request.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[op]
}

// ResetCalls zeroes the request counts.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// ARN returns the full ARN of the secret named name, and whether it exists.
func (s *Server) ARN(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	sec, ok := s.secrets[name]
	if !ok {
		return "", false
	}
	return sec.arn, true
}

// SetString stores value as the current version of the secret named name,
// creating the secret if need be, without a request (nothing is counted or
// checked). It returns the secret's ARN.
func (s *Server) SetString(name, value string) string { return s.set(name, &value, nil) }

// SetBinary is SetString for a binary secret.
func (s *Server) SetBinary(name string, value []byte) string {
	return s.set(name, nil, bytes.Clone(value))
}

func (s *Server) set(name string, str *string, bin []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	sec, ok := s.secrets[name]
	if !ok || sec.deleted {
		delete(s.secrets, name)
		sec = s.newSecret(name)
	}
	s.addVersion(sec, newUUID(), str, bin, []string{StageCurrent})
	return sec.arn
}

// ServeHTTP answers one Secrets Manager API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", newUUID())
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()

	h, known := handlers[op]
	if r.Method != http.MethodPost || !known {
		writeError(w, &apiError{code: "UnknownOperationException", msg: "Unknown operation " + strconv.Quote(r.Header.Get("X-Amz-Target"))})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, &apiError{code: "SerializationException", msg: "Could not read the request body."})
		return
	}
	caller, aerr := s.authenticate(r, body, "secretsmanager", false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out, aerr := h(s, &call{op: op, key: caller, body: body})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, code: "InternalServiceError", msg: "An error occurred on the server side."})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// call is one authenticated request.
type call struct {
	op   string
	key  *Key // nil when signing is not required
	body []byte
}

var handlers = map[string]func(*Server, *call) (any, *apiError){
	"CreateSecret":   (*Server).createSecret,
	"PutSecretValue": (*Server).putSecretValue,
	"GetSecretValue": (*Server).getSecretValue,
	"DescribeSecret": (*Server).describeSecret,
	"DeleteSecret":   (*Server).deleteSecret,
	"RestoreSecret":  (*Server).restoreSecret,
}

// apiError is a failure as the service reports it.
type apiError struct {
	status int // 400 when zero
	code   string
	msg    string
}

func writeError(w http.ResponseWriter, e *apiError) {
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"Message"`
	}{e.code, e.msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func errIncompleteSignature(msg string) *apiError {
	return &apiError{code: "IncompleteSignatureException", msg: msg}
}

func errInvalidSignature(msg string) *apiError {
	return &apiError{code: "InvalidSignatureException", msg: msg}
}

var (
	errUnrecognizedClient = &apiError{code: "UnrecognizedClientException", msg: "The security token included in the request is invalid."}
	errNotFound           = &apiError{code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret."}
	errMarkedForDeletion  = &apiError{code: "InvalidRequestException", msg: "You can't perform this operation on the secret because it was marked for deletion."}
	errBadSignature       = errInvalidSignature("The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
)

func errValidation(field, constraint string) *apiError {
	return &apiError{code: "ValidationException", msg: "1 validation error detected: Value at '" + field + "' failed to satisfy constraint: " + constraint}
}

func errInvalidParameter(msg string) *apiError {
	return &apiError{code: "InvalidParameterException", msg: msg}
}

// authenticate checks the request's signature, for service, when keys
// are configured or required, and returns the key it was signed with. The
// errors carry Secrets Manager's codes.
func (s *Server) authenticate(r *http.Request, body []byte, service string, required bool) (*Key, *apiError) {
	s.mu.Lock()
	n := len(s.keys)
	s.mu.Unlock()
	if n == 0 && !required {
		return nil, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, &apiError{code: "MissingAuthenticationTokenException", msg: "Missing Authentication Token"}
	}
	a, aerr := parseAuthorization(h)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	k, ok := s.keys[a.accessKeyID]
	s.mu.Unlock()
	if !ok || r.Header.Get("X-Amz-Security-Token") != k.SessionToken {
		return nil, errUnrecognizedClient
	}
	if a.service != service {
		return nil, errInvalidSignature("Credential should be scoped to correct service: '" + service + "'.")
	}
	if a.region != s.region {
		return nil, errInvalidSignature("Credential should be scoped to a valid region, not '" + a.region + "'.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return nil, errIncompleteSignature("Authorization header requires existence of a 'X-Amz-Date' header.")
	}
	if !strings.HasPrefix(amzDate, a.date) {
		return nil, errInvalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.")
	}
	if !slices.Contains(a.signedHeaders, "host") {
		return nil, errInvalidSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if k.SecretAccessKey != "" && !signatureMatches(r, body, a, amzDate, k.SecretAccessKey) {
		return nil, errBadSignature
	}
	if !k.Expires.IsZero() && !s.now().Before(k.Expires) {
		return nil, &apiError{code: "ExpiredTokenException", msg: "The security token included in the request is expired"}
	}
	return &k, nil
}

// authorize checks that c's key may run c.op on the secret named name
// (requested as id).
func (s *Server) authorize(c *call, name, id string) *apiError {
	if c.key == nil || c.key.Secrets == nil || slices.Contains(c.key.Secrets, name) {
		return nil
	}
	return &apiError{code: "AccessDeniedException", msg: "User: " + c.key.principal() +
		" is not authorized to perform: secretsmanager:" + c.op + " on resource: " + id +
		" because no identity-based policy allows the secretsmanager:" + c.op + " action"}
}

// decode reads the request body into in.
func decode(c *call, in any) *apiError {
	body := c.body
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, in); err != nil {
		return &apiError{code: "SerializationException", msg: "The request body could not be parsed as the operation's input."}
	}
	return nil
}

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	arnSuffixRE = regexp.MustCompile(`^(.+)-[A-Za-z0-9]{6}$`)
)

// arnPrefix is what every secret ARN of this Server starts with.
func (s *Server) arnPrefix() string {
	return "arn:" + s.partition + ":secretsmanager:" + s.region + ":" + s.account + ":secret:"
}

// requestedName is the secret name a SecretId asks for, for access checks
// on secrets that do not exist.
func (s *Server) requestedName(id string) string {
	if rest, ok := strings.CutPrefix(id, s.arnPrefix()); ok {
		if m := arnSuffixRE.FindStringSubmatch(rest); m != nil {
			return m[1]
		}
		return rest
	}
	return id
}

// lookup finds the secret a SecretId names: a name, a full ARN, or a
// partial ARN. Callers hold s.mu.
func (s *Server) lookup(id string) *secret {
	s.expire()
	if strings.HasPrefix(id, "arn:") {
		rest, ok := strings.CutPrefix(id, s.arnPrefix())
		if !ok {
			return nil
		}
		for _, sec := range s.secrets {
			if sec.arn == id {
				return sec
			}
		}
		return s.secrets[rest]
	}
	return s.secrets[id]
}

// find resolves a request's SecretId, checks access, and (unless
// allowDeleted) refuses a secret scheduled for deletion. Callers hold s.mu.
func (s *Server) find(c *call, id *string, allowDeleted bool) (*secret, *apiError) {
	if id == nil {
		return nil, errValidation("secretId", "Member must not be null")
	}
	if len(*id) == 0 || len(*id) > 2048 {
		return nil, errValidation("secretId", "Member must have length between 1 and 2048")
	}
	sec := s.lookup(*id)
	name := s.requestedName(*id)
	if sec != nil {
		name = sec.name
	}
	if aerr := s.authorize(c, name, *id); aerr != nil {
		return nil, aerr
	}
	if sec == nil {
		return nil, errNotFound
	}
	if sec.deleted && !allowDeleted {
		return nil, errMarkedForDeletion
	}
	return sec, nil
}

// expire drops secrets whose recovery window has passed. Callers hold s.mu.
func (s *Server) expire() {
	now := s.now()
	for name, sec := range s.secrets {
		if sec.deleted && !now.Before(sec.deletionDate) {
			delete(s.secrets, name)
		}
	}
}

const suffixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func (s *Server) newSecret(name string) *secret {
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	for i := range suffix {
		suffix[i] = suffixAlphabet[int(suffix[i])%len(suffixAlphabet)]
	}
	now := s.now()
	sec := &secret{name: name, arn: s.arnPrefix() + name + "-" + string(suffix[:]),
		created: now, lastChanged: now, versions: map[string]*version{}}
	s.secrets[name] = sec
	return sec
}

// addVersion stores a new version carrying stages, taking each stage from
// the version that had it; a version losing AWSCURRENT becomes
// AWSPREVIOUS. Callers hold s.mu.
func (s *Server) addVersion(sec *secret, id string, str *string, bin []byte, stages []string) *version {
	now := s.now()
	if slices.Contains(stages, StageCurrent) {
		for _, v := range sec.versions {
			if slices.Contains(v.stages, StageCurrent) {
				for _, o := range sec.versions {
					o.stages = slices.DeleteFunc(o.stages, func(st string) bool { return st == StagePrevious })
				}
				v.stages = append(v.stages, StagePrevious)
				break
			}
		}
	}
	for _, v := range sec.versions {
		v.stages = slices.DeleteFunc(v.stages, func(st string) bool { return slices.Contains(stages, st) })
	}
	v := &version{id: id, str: str, bin: bin, stages: slices.Clone(stages), created: now}
	sec.versions[id] = v
	sec.lastChanged = now
	return v
}

// epoch marshals a time as the protocol's epoch seconds.
type epoch time.Time

// MarshalJSON writes seconds since the epoch with millisecond precision.
func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

func checkToken(tok *string) *apiError {
	if tok != nil && (len(*tok) < 32 || len(*tok) > 64) {
		return errValidation("clientRequestToken", "Member must have length between 32 and 64")
	}
	return nil
}

func checkValue(str *string, bin []byte) *apiError {
	if str != nil && bin != nil {
		return errInvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	if (str != nil && len(*str) > maxSecretSize) || len(bin) > maxSecretSize {
		return errValidation("secretString", "Member must have length less than or equal to 65536")
	}
	return nil
}

func (s *Server) createSecret(c *call) (any, *apiError) {
	var in struct {
		Name               *string
		ClientRequestToken *string
		Description        *string
		KmsKeyId           *string
		SecretString       *string
		SecretBinary       []byte
		Tags               []tag
	}
	if aerr := decode(c, &in); aerr != nil {
		return nil, aerr
	}
	if in.Name == nil {
		return nil, errValidation("name", "Member must not be null")
	}
	if !nameRE.MatchString(*in.Name) {
		return nil, errInvalidParameter("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	if aerr := checkToken(in.ClientRequestToken); aerr != nil {
		return nil, aerr
	}
	if aerr := checkValue(in.SecretString, in.SecretBinary); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if aerr := s.authorize(c, *in.Name, *in.Name); aerr != nil {
		return nil, aerr
	}
	s.expire()
	hasValue := in.SecretString != nil || in.SecretBinary != nil
	if sec, ok := s.secrets[*in.Name]; ok {
		if sec.deleted {
			return nil, &apiError{code: "InvalidRequestException", msg: "You can't create this secret because a secret with this name is already scheduled for deletion."}
		}
		// A retried create with the same token and value is a no-op.
		if in.ClientRequestToken != nil && hasValue {
			if v, ok := sec.versions[*in.ClientRequestToken]; ok && v.sameValue(in.SecretString, in.SecretBinary) {
				return createOutput{ARN: sec.arn, Name: sec.name, VersionId: &v.id}, nil
			}
		}
		return nil, &apiError{code: "ResourceExistsException", msg: "The operation failed because the secret " + *in.Name + " already exists."}
	}
	sec := s.newSecret(*in.Name)
	if in.Description != nil {
		sec.description = *in.Description
	}
	if in.KmsKeyId != nil {
		sec.kmsKeyID = *in.KmsKeyId
	}
	sec.tags = in.Tags
	out := createOutput{ARN: sec.arn, Name: sec.name}
	if hasValue {
		id := newUUID()
		if in.ClientRequestToken != nil {
			id = *in.ClientRequestToken
		}
		v := s.addVersion(sec, id, in.SecretString, in.SecretBinary, []string{StageCurrent})
		out.VersionId = &v.id
	}
	return out, nil
}

type createOutput struct {
	ARN       string
	Name      string
	VersionId *string `json:",omitempty"`
}

func (s *Server) putSecretValue(c *call) (any, *apiError) {
	var in struct {
		SecretId           *string
		ClientRequestToken *string
		SecretString       *string
		SecretBinary       []byte
		VersionStages      []string
	}
	if aerr := decode(c, &in); aerr != nil {
		return nil, aerr
	}
	if aerr := checkToken(in.ClientRequestToken); aerr != nil {
		return nil, aerr
	}
	if aerr := checkValue(in.SecretString, in.SecretBinary); aerr != nil {
		return nil, aerr
	}
	if in.SecretString == nil && in.SecretBinary == nil {
		return nil, errInvalidParameter("You must provide either SecretString or SecretBinary.")
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	if len(stages) > 20 {
		return nil, errValidation("versionStages", "Member must have length less than or equal to 20")
	}
	for _, st := range stages {
		if len(st) == 0 || len(st) > 256 {
			return nil, errValidation("versionStages", "Member must have length between 1 and 256")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, aerr := s.find(c, in.SecretId, false)
	if aerr != nil {
		return nil, aerr
	}
	id := newUUID()
	if in.ClientRequestToken != nil {
		id = *in.ClientRequestToken
		if v, ok := sec.versions[id]; ok {
			if !v.sameValue(in.SecretString, in.SecretBinary) {
				return nil, &apiError{code: "ResourceExistsException", msg: "You can't modify an existing version, you can only create a new version."}
			}
			return putOutput{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
		}
	}
	v := s.addVersion(sec, id, in.SecretString, in.SecretBinary, stages)
	return putOutput{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
}

type putOutput struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

func (s *Server) getSecretValue(c *call) (any, *apiError) {
	var in struct {
		SecretId     *string
		VersionId    *string
		VersionStage *string
	}
	if aerr := decode(c, &in); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, aerr := s.find(c, in.SecretId, false)
	if aerr != nil {
		return nil, aerr
	}
	var v *version
	switch {
	case in.VersionId != nil:
		v = sec.versions[*in.VersionId]
		if v == nil {
			return nil, &apiError{code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret value for VersionId: " + *in.VersionId}
		}
		if in.VersionStage != nil && !slices.Contains(v.stages, *in.VersionStage) {
			return nil, &apiError{code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret value for VersionId: " +
				*in.VersionId + " and staging label: " + *in.VersionStage}
		}
	default:
		stage := StageCurrent
		if in.VersionStage != nil {
			stage = *in.VersionStage
		}
		for _, cand := range sec.versions {
			if slices.Contains(cand.stages, stage) {
				v = cand
				break
			}
		}
		if v == nil {
			return nil, &apiError{code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret value for staging label: " + stage}
		}
	}
	sec.lastAccessed = s.now().UTC().Truncate(24 * time.Hour)
	return getOutput{ARN: sec.arn, Name: sec.name, VersionId: v.id, SecretString: v.str, SecretBinary: v.bin,
		VersionStages: slices.Clone(v.stages), CreatedDate: epoch(v.created)}, nil
}

type getOutput struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   epoch
}

func (s *Server) describeSecret(c *call) (any, *apiError) {
	var in struct{ SecretId *string }
	if aerr := decode(c, &in); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, aerr := s.find(c, in.SecretId, true)
	if aerr != nil {
		return nil, aerr
	}
	out := describeOutput{ARN: sec.arn, Name: sec.name, RotationEnabled: false,
		CreatedDate: epochPtr(sec.created), LastChangedDate: epochPtr(sec.lastChanged),
		LastAccessedDate: epochPtr(sec.lastAccessed), Tags: sec.tags,
		VersionIdsToStages: map[string][]string{}}
	if sec.description != "" {
		out.Description = &sec.description
	}
	if sec.kmsKeyID != "" {
		out.KmsKeyId = &sec.kmsKeyID
	}
	if sec.deleted {
		out.DeletedDate = epochPtr(sec.deletedDate)
	}
	for id, v := range sec.versions {
		if len(v.stages) > 0 { // versions without labels are deprecated
			out.VersionIdsToStages[id] = slices.Clone(v.stages)
		}
	}
	return out, nil
}

type describeOutput struct {
	ARN                string
	Name               string
	Description        *string `json:",omitempty"`
	KmsKeyId           *string `json:",omitempty"`
	RotationEnabled    bool
	CreatedDate        *epoch `json:",omitempty"`
	LastChangedDate    *epoch `json:",omitempty"`
	LastAccessedDate   *epoch `json:",omitempty"`
	DeletedDate        *epoch `json:",omitempty"`
	Tags               []tag  `json:",omitempty"`
	VersionIdsToStages map[string][]string
}

func (s *Server) deleteSecret(c *call) (any, *apiError) {
	var in struct {
		SecretId                   *string
		RecoveryWindowInDays       *int64
		ForceDeleteWithoutRecovery *bool
	}
	if aerr := decode(c, &in); aerr != nil {
		return nil, aerr
	}
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	if force && in.RecoveryWindowInDays != nil {
		return nil, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, errInvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, aerr := s.find(c, in.SecretId, force)
	if aerr != nil {
		return nil, aerr
	}
	now := s.now()
	if force {
		delete(s.secrets, sec.name)
		return deleteOutput{ARN: sec.arn, Name: sec.name, DeletionDate: epoch(now)}, nil
	}
	sec.deleted = true
	sec.deletedDate = now
	sec.deletionDate = now.Add(time.Duration(days) * 24 * time.Hour)
	return deleteOutput{ARN: sec.arn, Name: sec.name, DeletionDate: epoch(sec.deletionDate)}, nil
}

type deleteOutput struct {
	ARN          string
	Name         string
	DeletionDate epoch
}

func (s *Server) restoreSecret(c *call) (any, *apiError) {
	var in struct{ SecretId *string }
	if aerr := decode(c, &in); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, aerr := s.find(c, in.SecretId, true)
	if aerr != nil {
		return nil, aerr
	}
	sec.deleted = false
	sec.deletedDate, sec.deletionDate = time.Time{}, time.Time{}
	return struct{ ARN, Name string }{sec.arn, sec.name}, nil
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexDigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexDigits[c>>4], hexDigits[c&15])
	}
	return string(out)
}
