package atrest

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

// testKeyring returns a keyring with one fresh key.
func testKeyring(t *testing.T) *Keyring {
	t.Helper()
	k := NewDataKey()
	kr, err := NewKeyring([]DataKey{k}, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// rotated returns a copy of kr's keys plus a new active key.
func rotated(t *testing.T, kr *Keyring) (*Keyring, string) {
	t.Helper()
	var keys []DataKey
	for _, id := range kr.KeyIDs() {
		e, err := kr.entry(id)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, DataKey{ID: id, Key: e.raw, Created: e.created})
	}
	k := NewDataKey()
	next, err := NewKeyring(append(keys, k), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	return next, k.ID
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr := testKeyring(t)
	for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("benchmark result "), 1000)} {
		sealed, err := kr.Seal(pt, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if !IsSealed(sealed) {
			t.Fatalf("IsSealed(sealed) = false")
		}
		if len(pt) > 8 && bytes.Contains(sealed, pt[:8]) {
			t.Fatalf("sealed output contains plaintext")
		}
		id, err := SealedKeyID(sealed)
		if err != nil || id != kr.ActiveKeyID() {
			t.Fatalf("SealedKeyID = %q, %v; want %q", id, err, kr.ActiveKeyID())
		}
		got, err := kr.Open(sealed, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, want %q", got, pt)
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	kr := testKeyring(t)
	a, _ := kr.Seal([]byte("same"), nil)
	b, _ := kr.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestRotation(t *testing.T) {
	old := testKeyring(t)
	oldID := old.ActiveKeyID()
	sealedOld, err := old.Seal([]byte("before rotation"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}

	next, newID := rotated(t, old)
	// Apply the rotation in place, as a running store would see it.
	live := old
	live.Replace(next)
	if live.ActiveKeyID() != newID || newID == oldID {
		t.Fatalf("active key = %q, want new key %q (old %q)", live.ActiveKeyID(), newID, oldID)
	}
	got, err := live.Open(sealedOld, []byte("a"))
	if err != nil || string(got) != "before rotation" {
		t.Fatalf("old data after rotation: %q, %v", got, err)
	}
	sealedNew, err := live.Seal([]byte("after rotation"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SealedKeyID(sealedNew); id != newID {
		t.Fatalf("new data sealed with %q, want %q", id, newID)
	}

	// A keyring that only knows the old key names the missing one.
	onlyOld, err := NewKeyring([]DataKey{{ID: oldID, Key: mustEntry(t, live, oldID).raw}}, oldID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = onlyOld.Open(sealedNew, []byte("a"))
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || uk.ID != newID || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with missing key: %v; want UnknownKeyError for %q", err, newID)
	}
	if !strings.Contains(err.Error(), newID) {
		t.Fatalf("error %q does not name the key", err)
	}
}

func mustEntry(t *testing.T, kr *Keyring, id string) *keyEntry {
	t.Helper()
	e, err := kr.entry(id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestOpenErrors(t *testing.T) {
	kr := testKeyring(t)
	sealed, err := kr.Seal([]byte("secret"), []byte("index 7"))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := kr.Open(sealed, []byte("index 8")); !errors.Is(err, ErrWrongAAD) {
		t.Fatalf("wrong AAD: %v, want ErrWrongAAD", err)
	}

	// Flip one bit in every position after the header: each must fail as
	// tampered, never open.
	for i := len(sealed) - nonceSize - len("secret") - tagSize; i < len(sealed); i++ {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := kr.Open(bad, []byte("index 7")); !errors.Is(err, ErrTampered) {
			t.Fatalf("bit flip at %d: %v, want ErrTampered", i, err)
		}
	}
	// Altering the AAD tag in the header is reported as an AAD mismatch.
	bad := bytes.Clone(sealed)
	bad[6+len(kr.ActiveKeyID())] ^= 0xff
	if _, err := kr.Open(bad, []byte("index 7")); !errors.Is(err, ErrWrongAAD) {
		t.Fatalf("altered aad tag: %v, want ErrWrongAAD", err)
	}
	// Truncated envelopes.
	if _, err := kr.Open(sealed[:len(sealed)-1], []byte("index 7")); !errors.Is(err, ErrTampered) {
		t.Fatalf("truncated: %v, want ErrTampered", err)
	}
	if _, err := kr.Open(sealed[:10], []byte("index 7")); !errors.Is(err, ErrTampered) {
		t.Fatalf("cut header: %v, want ErrTampered", err)
	}
	if _, err := kr.Open([]byte("plain old data"), nil); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("plaintext: %v, want ErrNotSealed", err)
	}
}

func TestIsSealedRejectsPlaintext(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{},
		{1, 0x0a, 0x03}, // a perfleet command: type byte then protobuf
		[]byte("perfleet-state v1\n"),
		{0x84, 0xa7}, // msgpack map (raft configuration)
		[]byte(envelopeMagic),
		[]byte(envelopeMagic + "\x01\x02ab"), // header only, too short
	} {
		if IsSealed(b) {
			t.Errorf("IsSealed(%q) = true", b)
		}
	}
}

func TestNewKeyringValidation(t *testing.T) {
	good := NewDataKey()
	cases := map[string]struct {
		keys   []DataKey
		active string
	}{
		"short key":      {[]DataKey{{ID: "a", Key: make([]byte, 16)}}, "a"},
		"empty id":       {[]DataKey{{ID: "", Key: good.Key}}, ""},
		"space in id":    {[]DataKey{{ID: "a b", Key: good.Key}}, "a b"},
		"long id":        {[]DataKey{{ID: strings.Repeat("x", MaxKeyIDLen+1), Key: good.Key}}, strings.Repeat("x", MaxKeyIDLen+1)},
		"duplicate":      {[]DataKey{good, good}, good.ID},
		"missing active": {[]DataKey{good}, "other"},
	}
	for name, c := range cases {
		if _, err := NewKeyring(c.keys, c.active); err == nil {
			t.Errorf("%s: NewKeyring succeeded", name)
		}
	}
}

func TestKeyringConcurrentReplace(t *testing.T) {
	kr := testKeyring(t)
	next, _ := rotated(t, kr)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				b, err := kr.Seal([]byte("x"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := kr.Open(b, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	kr.Replace(next)
	wg.Wait()
}
