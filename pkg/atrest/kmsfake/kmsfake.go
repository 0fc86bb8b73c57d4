// Package kmsfake is an in-process stand-in for AWS KMS, for tests. Its
// Server is an http.Handler (serve it with httptest.NewServer) that speaks
// the KMS wire protocol, AWS JSON 1.1 with "X-Amz-Target:
// TrentService.<Operation>", so the real aws-sdk-go-v2 KMS client can talk
// to it through BaseEndpoint.
//
// It implements CreateKey, DescribeKey, CreateAlias, EnableKey, DisableKey,
// Encrypt, Decrypt and GenerateDataKey for symmetric (SYMMETRIC_DEFAULT)
// keys, and behaves as KMS does where tests are likely to look: keys are
// named by key ID, key ARN, alias name ("alias/...") or alias ARN; a
// ciphertext blob records its key, so Decrypt works without KeyId (and with
// a KeyId naming another key fails with IncorrectKeyException); the
// encryption context is bound to the ciphertext and must match on Decrypt
// (else InvalidCiphertextException); unknown keys give NotFoundException,
// disabled keys DisabledException. Errors are HTTP 400 with a JSON body
// {"__type": "...", "message": "..."}.
//
// Requests must carry a SigV4 Authorization header whose credential scope
// names the server's region and the "kms" service; the signature itself is
// not checked. Key material lives in memory only.
package kmsfake

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults used by New for an empty region or account.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "111122223333"
)

const targetPrefix = "TrentService."

// Server is a fake KMS endpoint. Its methods are safe for concurrent use.
type Server struct {
	region  string
	account string

	mu      sync.Mutex
	keys    map[string]*key   // by key ID
	aliases map[string]string // "alias/name" -> key ID
	calls   map[string]int    // operation -> requests
}

type key struct {
	id          string
	arn         string
	description string
	created     time.Time
	enabled     bool
	material    []byte
	aead        cipher.AEAD
}

// New returns an empty fake KMS for region and AWS account ID (defaults
// DefaultRegion and DefaultAccountID when empty).
func New(region, accountID string) *Server {
	if region == "" {
		region = DefaultRegion
	}
	if accountID == "" {
		accountID = DefaultAccountID
	}
	return &Server{
		region:  region,
		account: accountID,
		keys:    map[string]*key{},
		aliases: map[string]string{},
		calls:   map[string]int{},
	}
}

// Region returns the region the server answers for.
func (s *Server) Region() string { return s.region }

// CreateKey makes a new enabled symmetric key and returns its key ID and
// ARN, as the CreateKey operation does.
func (s *Server) CreateKey(description string) (keyID, arn string) {
	k := s.newKey(description)
	return k.id, k.arn
}

func (s *Server) newKey(description string) *key {
	id := newUUID()
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	block, _ := aes.NewCipher(material)
	aead, _ := cipher.NewGCM(block)
	k := &key{
		id:          id,
		arn:         fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", s.region, s.account, id),
		description: description,
		created:     time.Now(),
		enabled:     true,
		material:    material,
		aead:        aead,
	}
	s.mu.Lock()
	s.keys[id] = k
	s.mu.Unlock()
	return k
}

// CreateAlias points alias ("alias/name") at the key keyID names.
func (s *Server) CreateAlias(alias, keyID string) error {
	if e := s.createAlias(alias, keyID); e != nil {
		return e
	}
	return nil
}

// SetEnabled enables or disables the key keyID names, as EnableKey and
// DisableKey do. Disabled keys refuse cryptographic operations.
func (s *Server) SetEnabled(keyID string, enabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, e := s.resolveLocked(keyID)
	if e != nil {
		return e
	}
	k.enabled = enabled
	return nil
}

// Calls returns how many requests for operation (for example "Decrypt")
// the server has received.
func (s *Server) Calls(operation string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[operation]
}

// Error is a KMS error as sent on the wire.
type Error struct {
	// Type is the error code, for example "NotFoundException".
	Type string `json:"__type"`
	// Message describes the error.
	Message string `json:"message,omitempty"`
}

// Error returns "Type: Message".
func (e *Error) Error() string { return e.Type + ": " + e.Message }

func errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// resolveLocked finds a key by key ID, key ARN, alias name or alias ARN.
func (s *Server) resolveLocked(ref string) (*key, *Error) {
	if ref == "" {
		return nil, errorf("ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	arnPrefix := fmt.Sprintf("arn:aws:kms:%s:%s:", s.region, s.account)
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		if !strings.HasPrefix(ref, arnPrefix) {
			return nil, errorf("NotFoundException", "Invalid arn %s", ref)
		}
		name = strings.TrimPrefix(ref, arnPrefix)
		switch {
		case strings.HasPrefix(name, "key/"):
			name = strings.TrimPrefix(name, "key/")
		case strings.HasPrefix(name, "alias/"):
		default:
			return nil, errorf("NotFoundException", "Invalid arn %s", ref)
		}
	}
	if strings.HasPrefix(name, "alias/") {
		id, ok := s.aliases[name]
		if !ok {
			return nil, errorf("NotFoundException", "Alias %s%s is not found.", arnPrefix, name)
		}
		name = id
	}
	k, ok := s.keys[name]
	if !ok {
		return nil, errorf("NotFoundException", "Key '%skey/%s' does not exist", arnPrefix, name)
	}
	return k, nil
}

// usableLocked resolves ref and checks the key is enabled.
func (s *Server) usableLocked(ref string) (*key, *Error) {
	k, e := s.resolveLocked(ref)
	if e != nil {
		return nil, e
	}
	if !k.enabled {
		return nil, errorf("DisabledException", "%s is disabled.", k.arn)
	}
	return k, nil
}

func (s *Server) createAlias(alias, target string) *Error {
	if !strings.HasPrefix(alias, "alias/") || len(alias) == len("alias/") {
		return errorf("ValidationException", "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
	}
	if strings.HasPrefix(alias, "alias/aws/") {
		return errorf("NotAuthorizedException", "Cannot create alias with prefix 'alias/aws/'")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(target, "alias/") || strings.Contains(target, ":alias/") {
		return errorf("ValidationException", "Aliases must refer to keys. Not aliases")
	}
	k, e := s.resolveLocked(target)
	if e != nil {
		return e
	}
	if _, ok := s.aliases[alias]; ok {
		return errorf("AlreadyExistsException", "An alias with the name arn:aws:kms:%s:%s:%s already exists", s.region, s.account, alias)
	}
	s.aliases[alias] = k.id
	return nil
}

// ServeHTTP answers one KMS API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, e := s.serve(r)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", newUUID())
	if e != nil {
		body, _ := json.Marshal(e)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(body)
}

func (s *Server) serve(r *http.Request) (any, *Error) {
	if r.Method != http.MethodPost {
		return nil, errorf("UnknownOperationException", "method %s not allowed", r.Method)
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if !ok {
		return nil, errorf("UnknownOperationException", "")
	}
	if e := s.checkAuth(r); e != nil {
		return nil, e
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errorf("SerializationException", "read body: %v", err)
	}
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()

	switch op {
	case "CreateKey":
		var in createKeyInput
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.opCreateKey(in)
	case "DescribeKey":
		var in keyIDInput
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.opDescribeKey(in)
	case "CreateAlias":
		var in createAliasInput
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		if e := s.createAlias(in.AliasName, in.TargetKeyID); e != nil {
			return nil, e
		}
		return struct{}{}, nil
	case "EnableKey", "DisableKey":
		var in keyIDInput
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		if in.KeyID == "" {
			return nil, errorf("ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
		}
		if err := s.SetEnabled(in.KeyID, op == "EnableKey"); err != nil {
			return nil, err.(*Error)
		}
		return struct{}{}, nil
	case "GenerateDataKey":
		var in generateDataKeyInput
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.opGenerateDataKey(in)
	case "Encrypt":
		var in encryptInput
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.opEncrypt(in)
	case "Decrypt":
		var in decryptInput
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.opDecrypt(in)
	default:
		return nil, errorf("UnknownOperationException", "")
	}
}

// checkAuth requires a SigV4 Authorization header scoped to this region
// and the kms service, as a real endpoint would before anything else.
func (s *Server) checkAuth(r *http.Request) *Error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errorf("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	cred, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 Credential=")
	if !ok {
		return errorf("IncompleteSignatureException", "Authorization header requires 'Credential' parameter.")
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/") // AKID/date/region/service/aws4_request
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return errorf("IncompleteSignatureException", "Credential should be scoped to a valid region.")
	}
	if parts[2] != s.region {
		return errorf("InvalidSignatureException", "Credential should be scoped to a valid region, not '%s'.", parts[2])
	}
	if parts[3] != "kms" {
		return errorf("InvalidSignatureException", "Credential should be scoped to correct service: 'kms'.")
	}
	return nil
}

func decode(body []byte, v any) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf("SerializationException", "%v", err)
	}
	return nil
}

type keyIDInput struct {
	KeyID string `json:"KeyId"`
}

type createAliasInput struct {
	AliasName   string `json:"AliasName"`
	TargetKeyID string `json:"TargetKeyId"`
}

type createKeyInput struct {
	Description string `json:"Description"`
	KeySpec     string `json:"KeySpec"`
	KeyUsage    string `json:"KeyUsage"`
	Origin      string `json:"Origin"`
}

type keyMetadata struct {
	AWSAccountID          string   `json:"AWSAccountId"`
	KeyID                 string   `json:"KeyId"`
	Arn                   string   `json:"Arn"`
	CreationDate          float64  `json:"CreationDate"`
	Enabled               bool     `json:"Enabled"`
	Description           string   `json:"Description"`
	KeyUsage              string   `json:"KeyUsage"`
	KeyState              string   `json:"KeyState"`
	Origin                string   `json:"Origin"`
	KeyManager            string   `json:"KeyManager"`
	CustomerMasterKeySpec string   `json:"CustomerMasterKeySpec"`
	KeySpec               string   `json:"KeySpec"`
	EncryptionAlgorithms  []string `json:"EncryptionAlgorithms"`
	MultiRegion           bool     `json:"MultiRegion"`
}

type keyMetadataOutput struct {
	KeyMetadata keyMetadata `json:"KeyMetadata"`
}

func (k *key) metadata(account string) keyMetadata {
	state := "Enabled"
	if !k.enabled {
		state = "Disabled"
	}
	return keyMetadata{
		AWSAccountID:          account,
		KeyID:                 k.id,
		Arn:                   k.arn,
		CreationDate:          float64(k.created.UnixMilli()) / 1000,
		Enabled:               k.enabled,
		Description:           k.description,
		KeyUsage:              "ENCRYPT_DECRYPT",
		KeyState:              state,
		Origin:                "AWS_KMS",
		KeyManager:            "CUSTOMER",
		CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
		KeySpec:               "SYMMETRIC_DEFAULT",
		EncryptionAlgorithms:  []string{"SYMMETRIC_DEFAULT"},
	}
}

func (s *Server) opCreateKey(in createKeyInput) (any, *Error) {
	if in.KeySpec != "" && in.KeySpec != "SYMMETRIC_DEFAULT" {
		return nil, errorf("UnsupportedOperationException", "kmsfake supports only SYMMETRIC_DEFAULT keys, not %s", in.KeySpec)
	}
	if in.KeyUsage != "" && in.KeyUsage != "ENCRYPT_DECRYPT" {
		return nil, errorf("ValidationException", "KeyUsage %s is not compatible with KeySpec SYMMETRIC_DEFAULT", in.KeyUsage)
	}
	if in.Origin != "" && in.Origin != "AWS_KMS" {
		return nil, errorf("UnsupportedOperationException", "kmsfake supports only Origin AWS_KMS")
	}
	k := s.newKey(in.Description)
	s.mu.Lock()
	defer s.mu.Unlock()
	return keyMetadataOutput{KeyMetadata: k.metadata(s.account)}, nil
}

func (s *Server) opDescribeKey(in keyIDInput) (any, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, e := s.resolveLocked(in.KeyID)
	if e != nil {
		return nil, e
	}
	return keyMetadataOutput{KeyMetadata: k.metadata(s.account)}, nil
}

type generateDataKeyInput struct {
	KeyID             string            `json:"KeyId"`
	NumberOfBytes     *int              `json:"NumberOfBytes"`
	KeySpec           string            `json:"KeySpec"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
	GrantTokens       []string          `json:"GrantTokens"`
	DryRun            bool              `json:"DryRun"`
}

type generateDataKeyOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	Plaintext      []byte `json:"Plaintext"`
	KeyID          string `json:"KeyId"`
}

func (s *Server) opGenerateDataKey(in generateDataKeyInput) (any, *Error) {
	var n int
	switch {
	case in.NumberOfBytes != nil && in.KeySpec != "":
		return nil, errorf("ValidationException", "Please specify either number of bytes or key spec.")
	case in.NumberOfBytes != nil:
		n = *in.NumberOfBytes
		if n < 1 || n > 1024 {
			return nil, errorf("ValidationException", "1 validation error detected: Value '%d' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024", n)
		}
	case in.KeySpec == "AES_256":
		n = 32
	case in.KeySpec == "AES_128":
		n = 16
	case in.KeySpec != "":
		return nil, errorf("ValidationException", "1 validation error detected: Value '%s' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]", in.KeySpec)
	default:
		return nil, errorf("ValidationException", "Please specify either number of bytes or key spec.")
	}
	s.mu.Lock()
	k, e := s.usableLocked(in.KeyID)
	s.mu.Unlock()
	if e != nil {
		return nil, e
	}
	if in.DryRun {
		return nil, errorf("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	}
	plaintext := make([]byte, n)
	_, _ = rand.Read(plaintext)
	return generateDataKeyOutput{
		CiphertextBlob: k.seal(plaintext, in.EncryptionContext),
		Plaintext:      plaintext,
		KeyID:          k.arn,
	}, nil
}

type encryptInput struct {
	KeyID               string            `json:"KeyId"`
	Plaintext           []byte            `json:"Plaintext"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	DryRun              bool              `json:"DryRun"`
}

type encryptOutput struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyID               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

func (s *Server) opEncrypt(in encryptInput) (any, *Error) {
	if len(in.Plaintext) == 0 || len(in.Plaintext) > 4096 {
		return nil, errorf("ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096")
	}
	if a := in.EncryptionAlgorithm; a != "" && a != "SYMMETRIC_DEFAULT" {
		return nil, errorf("InvalidKeyUsageException", "The encryption algorithm %s is not compatible with the key", a)
	}
	s.mu.Lock()
	k, e := s.usableLocked(in.KeyID)
	s.mu.Unlock()
	if e != nil {
		return nil, e
	}
	if in.DryRun {
		return nil, errorf("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	}
	return encryptOutput{
		CiphertextBlob:      k.seal(in.Plaintext, in.EncryptionContext),
		KeyID:               k.arn,
		EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
	}, nil
}

type decryptInput struct {
	CiphertextBlob      []byte            `json:"CiphertextBlob"`
	KeyID               string            `json:"KeyId"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	DryRun              bool              `json:"DryRun"`
}

type decryptOutput struct {
	Plaintext           []byte `json:"Plaintext"`
	KeyID               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

func (s *Server) opDecrypt(in decryptInput) (any, *Error) {
	if len(in.CiphertextBlob) == 0 {
		return nil, errorf("ValidationException", "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
	}
	if a := in.EncryptionAlgorithm; a != "" && a != "SYMMETRIC_DEFAULT" {
		return nil, errorf("IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
	}
	id, ok := blobKeyID(in.CiphertextBlob)
	if !ok {
		return nil, errorf("InvalidCiphertextException", "")
	}
	s.mu.Lock()
	k, e := s.usableLocked(id)
	var want *key
	if e == nil && in.KeyID != "" {
		want, e = s.resolveLocked(in.KeyID)
	}
	s.mu.Unlock()
	if e != nil {
		return nil, e
	}
	if want != nil && want != k {
		return nil, errorf("IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
	}
	plaintext, ok := k.open(in.CiphertextBlob, in.EncryptionContext)
	if !ok {
		return nil, errorf("InvalidCiphertextException", "")
	}
	if in.DryRun {
		return nil, errorf("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	}
	return decryptOutput{Plaintext: plaintext, KeyID: k.arn, EncryptionAlgorithm: "SYMMETRIC_DEFAULT"}, nil
}

// Ciphertext blobs: blobVersion | len(keyID) | keyID | nonce[12] | GCM
// ciphertext, with the header and the canonical encryption context as
// associated data.
const blobVersion = 0x01

func (k *key) seal(plaintext []byte, ctx map[string]string) []byte {
	blob := []byte{blobVersion, byte(len(k.id))}
	blob = append(blob, k.id...)
	hdr := len(blob)
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	blob = append(blob, nonce...)
	return k.aead.Seal(blob, nonce, plaintext, contextAD(blob[:hdr], ctx))
}

func (k *key) open(blob []byte, ctx map[string]string) ([]byte, bool) {
	hdr := 2 + int(blob[1])
	if len(blob) < hdr+12+16 {
		return nil, false
	}
	pt, err := k.aead.Open(nil, blob[hdr:hdr+12], blob[hdr+12:], contextAD(blob[:hdr], ctx))
	return pt, err == nil
}

func blobKeyID(blob []byte) (string, bool) {
	if len(blob) < 2 || blob[0] != blobVersion || len(blob) < 2+int(blob[1])+12+16 {
		return "", false
	}
	return string(blob[2 : 2+int(blob[1])]), true
}

// contextAD encodes the encryption context canonically (sorted,
// length-prefixed) after the blob header.
func contextAD(header []byte, ctx map[string]string) []byte {
	ad := bytes.Clone(header)
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(k)))
		ad = append(ad, k...)
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(ctx[k])))
		ad = append(ad, ctx[k]...)
	}
	return ad
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
