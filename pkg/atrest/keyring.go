package atrest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// KeySize is the size in bytes of a data key (AES-256).
const KeySize = 32

// MaxKeyIDLen is the longest key ID a keyring accepts, in bytes.
const MaxKeyIDLen = 64

const (
	envelopeMagic   = "\x00PFE"
	envelopeVersion = 1
	aadTagSize      = 4
	nonceSize       = 12
	tagSize         = 16
)

// Errors returned when sealed data cannot be opened. Match them with
// errors.Is; an unknown key is reported as an *UnknownKeyError, which also
// matches ErrUnknownKey.
var (
	// ErrUnknownKey means the data was sealed under a key the keyring lacks.
	ErrUnknownKey = errors.New("atrest: unknown key ID")
	// ErrTampered means the sealed data failed authentication: it was
	// altered, corrupted, or is not a well-formed envelope.
	ErrTampered = errors.New("atrest: sealed data failed authentication (tampered or corrupted)")
	// ErrWrongAAD means the associated data passed to open differs from the
	// associated data the value was sealed with (for example a log entry
	// read back at another index), or the envelope header was altered.
	ErrWrongAAD = errors.New("atrest: associated data does not match the data it was sealed with")
	// ErrTruncated means a sealed stream ended before its final chunk.
	ErrTruncated = errors.New("atrest: sealed stream is truncated")
	// ErrNotSealed means the input does not start with a sealed header.
	ErrNotSealed = errors.New("atrest: data is not sealed")
)

// UnknownKeyError reports data sealed under a key ID the keyring lacks.
type UnknownKeyError struct {
	// ID is the key ID named by the sealed data.
	ID string
}

// Error names the missing key.
func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("atrest: unknown key ID %q: the data was sealed with a key this keyring does not hold (removed key or wrong keyring?)", e.ID)
}

// Is makes errors.Is(err, ErrUnknownKey) true.
func (e *UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// DataKey is one AES-256 data key.
type DataKey struct {
	// ID names the key inside sealed data: 1 to MaxKeyIDLen printable ASCII
	// bytes without spaces.
	ID string
	// Key is the KeySize-byte key material.
	Key []byte
	// Created is when the key was made (informational).
	Created time.Time
}

// NewDataKey returns a fresh random data key with a new time-ordered ID.
func NewDataKey() DataKey {
	now := time.Now().UTC()
	return DataKey{ID: newKeyID(now), Key: randomBytes(KeySize), Created: now}
}

// newKeyID returns an ID like "k20260102T150405Z-1a2b3c4d".
func newKeyID(now time.Time) string {
	return "k" + now.Format("20060102T150405Z") + "-" + hex.EncodeToString(randomBytes(4))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return b
}

// validKeyID reports whether id can be written into an envelope.
func validKeyID(id string) error {
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		return fmt.Errorf("atrest: key ID %q must be 1 to %d bytes", id, MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("atrest: key ID %q must be printable ASCII without spaces", id)
		}
	}
	return nil
}

type keyEntry struct {
	id      string
	created time.Time
	raw     []byte
	aead    cipher.AEAD
}

func newKeyEntry(k DataKey) (*keyEntry, error) {
	if err := validKeyID(k.ID); err != nil {
		return nil, err
	}
	if len(k.Key) != KeySize {
		return nil, fmt.Errorf("atrest: key %q is %d bytes, want %d", k.ID, len(k.Key), KeySize)
	}
	raw := bytes.Clone(k.Key)
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &keyEntry{id: k.ID, created: k.Created, raw: raw, aead: aead}, nil
}

// Keyring is a set of data keys with one active key. Seal uses the active
// key; Open uses whichever key the sealed data names. It is safe for
// concurrent use, and Replace swaps its keys in place so stores that already
// hold the keyring pick up a rotation.
type Keyring struct {
	mu     sync.RWMutex
	keys   map[string]*keyEntry
	order  []string
	active string
}

// NewKeyring returns a keyring holding keys, with activeID the key that
// seals. Key IDs must be unique and valid, every key KeySize bytes, and
// activeID one of them.
func NewKeyring(keys []DataKey, activeID string) (*Keyring, error) {
	kr := &Keyring{keys: make(map[string]*keyEntry, len(keys))}
	for _, k := range keys {
		e, err := newKeyEntry(k)
		if err != nil {
			return nil, err
		}
		if _, dup := kr.keys[k.ID]; dup {
			return nil, fmt.Errorf("atrest: duplicate key ID %q", k.ID)
		}
		kr.keys[k.ID] = e
		kr.order = append(kr.order, k.ID)
	}
	if _, ok := kr.keys[activeID]; !ok {
		return nil, fmt.Errorf("atrest: active key %q is not in the keyring", activeID)
	}
	kr.active = activeID
	return kr, nil
}

// ActiveKeyID returns the ID of the key that Seal uses.
func (k *Keyring) ActiveKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active
}

// KeyIDs returns the IDs of all keys, in the order they were given.
func (k *Keyring) KeyIDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Clone(k.order)
}

// Replace makes k hold src's keys and active key. Use it to apply a
// rotation to a keyring that stores already use. Keep the old keys in src,
// or data sealed under them becomes unreadable.
func (k *Keyring) Replace(src *Keyring) {
	if src == k {
		return
	}
	src.mu.RLock()
	keys := make(map[string]*keyEntry, len(src.keys))
	for id, e := range src.keys {
		keys[id] = e
	}
	order := slices.Clone(src.order)
	active := src.active
	src.mu.RUnlock()

	k.mu.Lock()
	k.keys, k.order, k.active = keys, order, active
	k.mu.Unlock()
}

func (k *Keyring) activeEntry() *keyEntry {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[k.active]
}

func (k *Keyring) entry(id string) (*keyEntry, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e, ok := k.keys[id]
	if !ok {
		return nil, &UnknownKeyError{ID: id}
	}
	return e, nil
}

// aadTag is the short fingerprint of the caller's associated data that
// envelopes and stream headers carry so a mismatch can be named.
func aadTag(aad []byte) [aadTagSize]byte {
	h := sha256.New()
	h.Write([]byte("perfleet atrest aad v1\x00"))
	h.Write(aad)
	var t [aadTagSize]byte
	copy(t[:], h.Sum(nil))
	return t
}

// Seal encrypts plaintext with the active key and returns a self-describing
// envelope (see the package documentation). aad is authenticated but not
// stored; Open must be given the same aad.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	e := k.activeEntry()
	if e == nil {
		return nil, errors.New("atrest: keyring has no active key")
	}
	return sealWith(e, plaintext, aad), nil
}

func sealWith(e *keyEntry, plaintext, aad []byte) []byte {
	hdrLen := len(envelopeMagic) + 2 + len(e.id) + aadTagSize
	out := make([]byte, hdrLen, hdrLen+nonceSize+len(plaintext)+tagSize)
	n := copy(out, envelopeMagic)
	out[n] = envelopeVersion
	out[n+1] = byte(len(e.id))
	n += 2
	n += copy(out[n:], e.id)
	tag := aadTag(aad)
	copy(out[n:], tag[:])

	ad := make([]byte, 0, hdrLen+len(aad))
	ad = append(append(ad, out[:hdrLen]...), aad...)
	nonce := randomBytes(nonceSize)
	out = append(out, nonce...)
	return e.aead.Seal(out, nonce, plaintext, ad)
}

// envelope is a parsed, not yet authenticated, envelope.
type envelope struct {
	header []byte
	keyID  string
	aadTag []byte
	nonce  []byte
	ct     []byte
}

func parseEnvelope(b []byte) (envelope, bool) {
	const fixed = len(envelopeMagic) + 2
	if len(b) < fixed || string(b[:len(envelopeMagic)]) != envelopeMagic || b[4] != envelopeVersion {
		return envelope{}, false
	}
	idLen := int(b[5])
	if idLen == 0 || idLen > MaxKeyIDLen {
		return envelope{}, false
	}
	hdrLen := fixed + idLen + aadTagSize
	if len(b) < hdrLen+nonceSize+tagSize {
		return envelope{}, false
	}
	return envelope{
		header: b[:hdrLen],
		keyID:  string(b[fixed : fixed+idLen]),
		aadTag: b[fixed+idLen : hdrLen],
		nonce:  b[hdrLen : hdrLen+nonceSize],
		ct:     b[hdrLen+nonceSize:],
	}, true
}

// IsSealed reports whether b is a sealed envelope (by its header; it does
// not authenticate). Callers migrating from plaintext use it to decide
// whether to Open or to take b as it is.
func IsSealed(b []byte) bool {
	_, ok := parseEnvelope(b)
	return ok
}

// SealedKeyID returns the ID of the key that sealed envelope b, without
// authenticating it.
func SealedKeyID(b []byte) (string, error) {
	env, ok := parseEnvelope(b)
	if !ok {
		return "", ErrNotSealed
	}
	return env.keyID, nil
}

// Open authenticates and decrypts an envelope made by Seal with the same
// aad. It fails with ErrNotSealed if b is not an envelope, an
// *UnknownKeyError if the keyring lacks the key, ErrWrongAAD if aad differs,
// and ErrTampered if the data was altered.
func (k *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	env, ok := parseEnvelope(ciphertext)
	if !ok {
		if bytes.HasPrefix(ciphertext, []byte(envelopeMagic)) {
			return nil, fmt.Errorf("%w: malformed or truncated envelope", ErrTampered)
		}
		return nil, ErrNotSealed
	}
	e, err := k.entry(env.keyID)
	if err != nil {
		return nil, err
	}
	if tag := aadTag(aad); !bytes.Equal(tag[:], env.aadTag) {
		return nil, ErrWrongAAD
	}
	ad := make([]byte, 0, len(env.header)+len(aad))
	ad = append(append(ad, env.header...), aad...)
	pt, err := e.aead.Open(nil, env.nonce, env.ct, ad)
	if err != nil {
		return nil, fmt.Errorf("%w (key %q)", ErrTampered, env.keyID)
	}
	return pt, nil
}
