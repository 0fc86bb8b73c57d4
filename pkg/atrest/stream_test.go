package atrest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func sealStream(t *testing.T, kr *Keyring, pt, aad []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := SealWriter(&buf, kr, aad)
	// Write in uneven pieces to exercise chunk boundaries.
	rest := pt
	for step := 1; len(rest) > 0; step = step*3 + 1 {
		n := min(step, len(rest))
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write = %d, %v; want %d", m, err, n)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openStream(kr *Keyring, sealed, aad []byte) ([]byte, error) {
	r, err := OpenReader(bytes.NewReader(sealed), kr, aad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randomPlaintext(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(b)
	return b
}

func TestStreamRoundTripSizes(t *testing.T) {
	kr := testKeyring(t)
	for _, n := range []int{0, 1, StreamChunkSize - 1, StreamChunkSize, StreamChunkSize + 1, 3*StreamChunkSize + 17} {
		pt := randomPlaintext(n)
		sealed := sealStream(t, kr, pt, []byte("results/run-1.json"))
		if int64(len(sealed)) != SealedSize(int64(n)) {
			t.Errorf("size %d: sealed %d bytes, SealedSize says %d", n, len(sealed), SealedSize(int64(n)))
		}
		if got, ok := PlaintextSize(int64(len(sealed))); !ok || got != int64(n) {
			t.Errorf("size %d: PlaintextSize(%d) = %d, %v", n, len(sealed), got, ok)
		}
		if !IsSealedStream(sealed) {
			t.Errorf("size %d: IsSealedStream = false", n)
		}
		got, err := openStream(kr, sealed, []byte("results/run-1.json"))
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("size %d: round trip differs", n)
		}
		// One byte at a time too.
		r, err := OpenReader(bytes.NewReader(sealed), kr, []byte("results/run-1.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(iotest.OneByteReader(r)); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: byte-wise read: %v", n, err)
		}
	}
}

func TestPlaintextSizeRejectsImpossibleSizes(t *testing.T) {
	for _, n := range []int64{0, int64(StreamHeaderSize), int64(StreamHeaderSize) + StreamChunkOverhead - 1,
		int64(StreamHeaderSize) + streamFrameSize + 3} {
		if _, ok := PlaintextSize(n); ok {
			t.Errorf("PlaintextSize(%d) ok", n)
		}
	}
}

func TestStreamHidesPlaintext(t *testing.T) {
	kr := testKeyring(t)
	marker := []byte("MARKER-do-not-store-in-clear")
	pt := bytes.Repeat(marker, 5000)
	sealed := sealStream(t, kr, pt, nil)
	if bytes.Contains(sealed, marker) {
		t.Fatal("sealed stream contains the plaintext marker")
	}
}

func TestStreamTruncationDetected(t *testing.T) {
	kr := testKeyring(t)
	pt := randomPlaintext(2*StreamChunkSize + 100)
	sealed := sealStream(t, kr, pt, []byte("x"))
	cuts := map[string]int{
		"at chunk boundary":   StreamHeaderSize + streamFrameSize,
		"two chunks":          StreamHeaderSize + 2*streamFrameSize,
		"inside final chunk":  len(sealed) - 1,
		"inside middle chunk": StreamHeaderSize + streamFrameSize + 1000,
		"after header":        StreamHeaderSize,
	}
	for name, cut := range cuts {
		got, err := openStream(kr, sealed[:cut], []byte("x"))
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: err = %v (read %d bytes), want ErrTruncated", name, err, len(got))
		}
	}
	if _, err := openStream(kr, sealed[:StreamHeaderSize-1], []byte("x")); !errors.Is(err, ErrTruncated) {
		t.Errorf("cut header: %v, want ErrTruncated", err)
	}
}

func TestStreamTamperDetected(t *testing.T) {
	kr := testKeyring(t)
	pt := randomPlaintext(2*StreamChunkSize + 100)
	sealed := sealStream(t, kr, pt, []byte("x"))

	// Bit flips in the header's salt and in each chunk.
	for _, off := range []int{StreamHeaderSize - 1, StreamHeaderSize, StreamHeaderSize + streamFrameSize + 5, len(sealed) - 1} {
		bad := bytes.Clone(sealed)
		bad[off] ^= 0x80
		if _, err := openStream(kr, bad, []byte("x")); !errors.Is(err, ErrTampered) {
			t.Errorf("flip at %d: %v, want ErrTampered", off, err)
		}
	}
	// Swapped chunks.
	bad := bytes.Clone(sealed)
	c0 := bad[StreamHeaderSize : StreamHeaderSize+streamFrameSize]
	c1 := bytes.Clone(bad[StreamHeaderSize+streamFrameSize : StreamHeaderSize+2*streamFrameSize])
	copy(bad[StreamHeaderSize+streamFrameSize:], c0)
	copy(c0, c1)
	if _, err := openStream(kr, bad, []byte("x")); !errors.Is(err, ErrTampered) {
		t.Errorf("swapped chunks: %v, want ErrTampered", err)
	}
	// Data appended after the final chunk.
	if _, err := openStream(kr, append(bytes.Clone(sealed), 0), []byte("x")); !errors.Is(err, ErrTampered) {
		t.Errorf("appended byte: %v, want ErrTampered", err)
	}
	// A chunk from another stream sealed with the same key and AAD.
	other := sealStream(t, kr, pt, []byte("x"))
	bad = bytes.Clone(sealed)
	copy(bad[StreamHeaderSize:], other[StreamHeaderSize:StreamHeaderSize+streamFrameSize])
	if _, err := openStream(kr, bad, []byte("x")); !errors.Is(err, ErrTampered) {
		t.Errorf("spliced chunk: %v, want ErrTampered", err)
	}
	// No plaintext from an unauthenticated chunk is ever returned.
	bad = bytes.Clone(sealed)
	bad[StreamHeaderSize+3] ^= 1
	r, err := OpenReader(bytes.NewReader(bad), kr, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Errorf("read from tampered first chunk = %d, %v", n, err)
	}
}

func TestOpenReaderErrors(t *testing.T) {
	kr := testKeyring(t)
	sealed := sealStream(t, kr, []byte("hello"), []byte("file-a"))

	if _, err := OpenReader(bytes.NewReader(sealed), kr, []byte("file-b")); !errors.Is(err, ErrWrongAAD) {
		t.Errorf("wrong aad: %v", err)
	}
	if _, err := OpenReader(bytes.NewReader([]byte("plain text file")), kr, nil); !errors.Is(err, ErrNotSealed) {
		t.Errorf("plaintext: %v", err)
	}
	if _, err := OpenReader(bytes.NewReader(nil), kr, nil); !errors.Is(err, ErrNotSealed) {
		t.Errorf("empty: %v", err)
	}
	other := testKeyring(t)
	_, err := OpenReader(bytes.NewReader(sealed), other, []byte("file-a"))
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || uk.ID != kr.ActiveKeyID() {
		t.Errorf("unknown key: %v", err)
	}
}

func TestStreamRotation(t *testing.T) {
	kr := testKeyring(t)
	oldID := kr.ActiveKeyID()
	sealedOld := sealStream(t, kr, []byte("old"), nil)
	next, newID := rotated(t, kr)
	kr.Replace(next)
	sealedNew := sealStream(t, kr, []byte("new"), nil)
	if got := string(sealedNew[6 : 6+len(newID)]); got != newID {
		t.Fatalf("new stream key = %q, want %q", got, newID)
	}
	if got := string(sealedOld[6 : 6+len(oldID)]); got != oldID {
		t.Fatalf("old stream key = %q, want %q", got, oldID)
	}
	for want, s := range map[string][]byte{"old": sealedOld, "new": sealedNew} {
		got, err := openStream(kr, s, nil)
		if err != nil || string(got) != want {
			t.Errorf("%s stream: %q, %v", want, got, err)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestSealWriterErrors(t *testing.T) {
	w := SealWriter(io.Discard, nil, nil)
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write with nil keyring succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close with nil keyring succeeded")
	}

	kr := testKeyring(t)
	w = SealWriter(&failWriter{n: 1}, kr, nil) // header succeeds, first chunk fails
	_, err := w.Write(make([]byte, StreamChunkSize+1))
	if err == nil {
		t.Fatal("Write to failing writer succeeded")
	}
	if _, err2 := w.Write([]byte("x")); err2 == nil {
		t.Error("error is not sticky")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after failure succeeded")
	}

	w = SealWriter(io.Discard, kr, nil)
	_ = w.Close()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}
