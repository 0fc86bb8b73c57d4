package atrest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMSAPI is the part of the AWS KMS client that KMSKeySource uses;
// *kms.Client satisfies it.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// KMSKeyIDContextKey is the encryption context key under which
// KMSKeySource binds each wrapped data key to its data key ID, so a wrapped
// key cannot be moved to another entry of the file.
const KMSKeyIDContextKey = "perfleet:atrest-key-id"

// kmsFileEntry is one wrapped data key in a KMS key file.
type kmsFileEntry struct {
	ID             string    `json:"id"`
	KMSKeyID       string    `json:"kms_key_id"`
	CiphertextBlob []byte    `json:"ciphertext_blob"` // base64 in JSON
	Created        time.Time `json:"created"`
	Active         bool      `json:"active"`
}

// KMSKeySource protects data keys with AWS KMS (envelope encryption). Each
// data key comes from GenerateDataKey (AES_256) under the configured KMS
// key; only the wrapped (encrypted) copy is stored, in a local JSON file
// kept next to the data. Load calls Decrypt on each wrapped key; Rotate
// calls GenerateDataKey again and appends the new key as the active one.
// The file is held to mode 0600 like a keyring file.
type KMSKeySource struct {
	client   KMSAPI
	kmsKeyID string
	path     string
	context  map[string]string
	mu       sync.Mutex
}

var _ KeySource = (*KMSKeySource)(nil)

// NewKMSKeySource returns a KMS-backed key source. kmsKeyID names the KMS
// key that wraps new data keys (key ID, key ARN, alias name "alias/..." or
// alias ARN); path is the file of wrapped data keys; encryptionContext, if
// not empty, is sent with every GenerateDataKey and Decrypt call (KMS
// refuses to decrypt under a different context), together with
// KMSKeyIDContextKey set to the data key's ID.
func NewKMSKeySource(client KMSAPI, kmsKeyID, path string, encryptionContext map[string]string) *KMSKeySource {
	return &KMSKeySource{client: client, kmsKeyID: kmsKeyID, path: path, context: maps.Clone(encryptionContext)}
}

// Path returns the wrapped key file's path.
func (s *KMSKeySource) Path() string { return s.path }

func (s *KMSKeySource) encryptionContext(id string) map[string]string {
	ctx := make(map[string]string, len(s.context)+1)
	maps.Copy(ctx, s.context)
	ctx[KMSKeyIDContextKey] = id
	return ctx
}

// Load unwraps every data key in the file. If the file does not exist it
// generates the first data key and creates the file.
func (s *KMSKeySource) Load(ctx context.Context) (*Keyring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := readKeyFile[kmsFileEntry](s.path)
	if errors.Is(err, fs.ErrNotExist) {
		e, key, err := s.generate(ctx)
		if err != nil {
			return nil, err
		}
		entries = []kmsFileEntry{e}
		data, err := json.MarshalIndent(entries, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := writeFileExclusive(s.path, append(data, '\n')); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
			// Another process created it first: use theirs.
			return s.unwrapFile(ctx)
		}
		return NewKeyring([]DataKey{key}, key.ID)
	}
	if err != nil {
		return nil, err
	}
	return s.unwrapEntries(ctx, entries)
}

func (s *KMSKeySource) unwrapFile(ctx context.Context) (*Keyring, error) {
	entries, err := readKeyFile[kmsFileEntry](s.path)
	if err != nil {
		return nil, err
	}
	return s.unwrapEntries(ctx, entries)
}

// Rotate generates a new data key under the KMS key, appends it to the file
// as the active key, and returns the new keyring.
func (s *KMSKeySource) Rotate(ctx context.Context) (*Keyring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := readKeyFile[kmsFileEntry](s.path)
	if err != nil {
		return nil, err
	}
	kr, err := s.unwrapEntries(ctx, entries)
	if err != nil {
		return nil, err
	}
	e, key, err := s.generate(ctx)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].Active = false
	}
	entries = append(entries, e)
	keys := make([]DataKey, 0, len(entries))
	for _, id := range kr.KeyIDs() {
		ke, _ := kr.entry(id)
		keys = append(keys, DataKey{ID: id, Key: ke.raw, Created: ke.created})
	}
	keys = append(keys, key)
	next, err := NewKeyring(keys, key.ID)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(s.path, append(data, '\n')); err != nil {
		return nil, err
	}
	return next, nil
}

// generate asks KMS for a new data key.
func (s *KMSKeySource) generate(ctx context.Context) (kmsFileEntry, DataKey, error) {
	if s.kmsKeyID == "" {
		return kmsFileEntry{}, DataKey{}, errors.New("atrest: no KMS key ID configured")
	}
	key := NewDataKey() // for its ID and time; KMS supplies the key
	out, err := s.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(s.kmsKeyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: s.encryptionContext(key.ID),
	})
	if err != nil {
		return kmsFileEntry{}, DataKey{}, fmt.Errorf("atrest: KMS GenerateDataKey under %s: %w", s.kmsKeyID, err)
	}
	if len(out.Plaintext) != KeySize || len(out.CiphertextBlob) == 0 {
		return kmsFileEntry{}, DataKey{}, fmt.Errorf("atrest: KMS GenerateDataKey under %s returned a %d-byte key, want %d", s.kmsKeyID, len(out.Plaintext), KeySize)
	}
	key.Key = out.Plaintext
	kmsKey := aws.ToString(out.KeyId)
	if kmsKey == "" {
		kmsKey = s.kmsKeyID
	}
	e := kmsFileEntry{ID: key.ID, KMSKeyID: kmsKey, CiphertextBlob: out.CiphertextBlob, Created: key.Created, Active: true}
	return e, key, nil
}

func (s *KMSKeySource) unwrapEntries(ctx context.Context, entries []kmsFileEntry) (*Keyring, error) {
	keys := make([]DataKey, 0, len(entries))
	active := ""
	for _, e := range entries {
		if e.Active {
			if active != "" {
				return nil, fmt.Errorf("atrest: KMS key file %s: keys %q and %q are both active", s.path, active, e.ID)
			}
			active = e.ID
		}
		in := &kms.DecryptInput{
			CiphertextBlob:    e.CiphertextBlob,
			EncryptionContext: s.encryptionContext(e.ID),
		}
		if e.KMSKeyID != "" {
			in.KeyId = aws.String(e.KMSKeyID)
		}
		out, err := s.client.Decrypt(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("atrest: KMS key file %s: decrypt data key %q: %w", s.path, e.ID, err)
		}
		if len(out.Plaintext) != KeySize {
			return nil, fmt.Errorf("atrest: KMS key file %s: data key %q decrypted to %d bytes, want %d", s.path, e.ID, len(out.Plaintext), KeySize)
		}
		keys = append(keys, DataKey{ID: e.ID, Key: out.Plaintext, Created: e.Created})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("atrest: KMS key file %s holds no keys", s.path)
	}
	if active == "" {
		return nil, fmt.Errorf("atrest: KMS key file %s has no active key", s.path)
	}
	kr, err := NewKeyring(keys, active)
	if err != nil {
		return nil, fmt.Errorf("KMS key file %s: %w", s.path, err)
	}
	return kr, nil
}
