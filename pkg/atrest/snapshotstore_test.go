package atrest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

var quietLogger = hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Off})

func writeSnapshot(t *testing.T, store raft.SnapshotStore, index uint64, data []byte) string {
	t.Helper()
	_, trans := raft.NewInmemTransport("")
	sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 10000)
		if m, err := sink.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("sink.Write = %d, %v", m, err)
		}
		rest = rest[n:]
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func readSnapshot(store raft.SnapshotStore, id string) (*raft.SnapshotMeta, []byte, error) {
	meta, rc, err := store.Open(id)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return meta, data, err
}

func TestSnapshotStoreFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	inner, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	kr := testKeyring(t)
	s := NewSnapshotStore(inner, kr)
	marker := []byte("SNAPSHOT-PLAINTEXT-MARKER")
	data := bytes.Repeat(append(marker, randomPlaintext(100)...), 2000) // ~250 KB, several chunks
	id := writeSnapshot(t, s, 10, data)

	metas, err := s.List()
	if err != nil || len(metas) != 1 {
		t.Fatalf("List = %v, %v", metas, err)
	}
	if metas[0].Size != int64(len(data)) {
		t.Fatalf("List size = %d, want plaintext size %d", metas[0].Size, len(data))
	}
	meta, got, err := readSnapshot(s, id)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Size != int64(len(data)) || meta.Index != 10 {
		t.Fatalf("Open meta = %+v, want size %d", meta, len(data))
	}
	if !bytes.Equal(got, data) {
		t.Fatal("snapshot round trip differs")
	}

	// On disk: sealed, no plaintext, and the inner store records the
	// sealed size.
	innerMeta, rc, err := inner.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	if innerMeta.Size != SealedSize(int64(len(data))) || int64(len(raw)) != innerMeta.Size {
		t.Fatalf("inner size %d, file %d, want %d", innerMeta.Size, len(raw), SealedSize(int64(len(data))))
	}
	if !IsSealedStream(raw) || bytes.Contains(raw, marker) {
		t.Fatal("snapshot stored in the clear")
	}
	stateBin, err := os.ReadFile(filepath.Join(dir, "snapshots", id, "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stateBin, marker) {
		t.Fatal("state.bin holds the plaintext marker")
	}
}

func TestSnapshotStoreReadsPlaintextFromBeforeEncryption(t *testing.T) {
	inner, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 3, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	legacy := []byte("perfleet-state v1\nlegacy state")
	legacyID := writeSnapshot(t, inner, 5, legacy)
	emptyID := writeSnapshot(t, inner, 6, nil)

	s := NewSnapshotStore(inner, testKeyring(t))
	newData := []byte("perfleet-state v1\nnew state")
	newID := writeSnapshot(t, s, 7, newData)

	for id, want := range map[string][]byte{legacyID: legacy, emptyID: nil, newID: newData} {
		meta, got, err := readSnapshot(s, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !bytes.Equal(got, want) || meta.Size != int64(len(want)) {
			t.Fatalf("%s: got %q (size %d), want %q", id, got, meta.Size, want)
		}
	}
}

// memSnapshots is a minimal in-memory raft.SnapshotStore whose stored
// bytes and sizes tests can alter.
type memSnapshots struct {
	mu    sync.Mutex
	metas map[string]*raft.SnapshotMeta
	data  map[string][]byte
	seq   int
}

func newMemSnapshots() *memSnapshots {
	return &memSnapshots{metas: map[string]*raft.SnapshotMeta{}, data: map[string][]byte{}}
}

type memSink struct {
	s    *memSnapshots
	meta raft.SnapshotMeta
	buf  bytes.Buffer
}

func (m *memSnapshots) Create(version raft.SnapshotVersion, index, term uint64, c raft.Configuration, ci uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	return &memSink{s: m, meta: raft.SnapshotMeta{Version: version, ID: fmt.Sprintf("snap-%d", m.seq), Index: index, Term: term, Configuration: c, ConfigurationIndex: ci}}, nil
}

func (k *memSink) Write(p []byte) (int, error) { return k.buf.Write(p) }
func (k *memSink) ID() string                  { return k.meta.ID }
func (k *memSink) Cancel() error               { return nil }
func (k *memSink) Close() error {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	k.meta.Size = int64(k.buf.Len())
	k.s.metas[k.meta.ID] = &k.meta
	k.s.data[k.meta.ID] = k.buf.Bytes()
	return nil
}

func (m *memSnapshots) List() ([]*raft.SnapshotMeta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*raft.SnapshotMeta
	for _, meta := range m.metas {
		c := *meta
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index > out[j].Index })
	return out, nil
}

func (m *memSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	meta, ok := m.metas[id]
	if !ok {
		return nil, nil, fmt.Errorf("no snapshot %s", id)
	}
	c := *meta
	return &c, io.NopCloser(bytes.NewReader(m.data[id])), nil
}

// set replaces a snapshot's bytes; withSize also updates its recorded size
// (an attacker who edits both).
func (m *memSnapshots) set(id string, data []byte, withSize bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[id] = data
	if withSize {
		m.metas[id].Size = int64(len(data))
	}
}

func TestSnapshotStoreTruncationAndTamperDetected(t *testing.T) {
	kr := testKeyring(t)
	data := randomPlaintext(3*StreamChunkSize + 500)
	cases := []struct {
		name     string
		edit     func([]byte) []byte
		withSize bool
		want     error
	}{
		{"last chunk dropped, size updated", func(b []byte) []byte { return b[:StreamHeaderSize+3*streamFrameSize] }, true, ErrTruncated},
		{"cut inside a chunk, size updated", func(b []byte) []byte { return b[:StreamHeaderSize+2*streamFrameSize+700] }, true, ErrTruncated},
		{"cut inside a chunk, size stale", func(b []byte) []byte { return b[:StreamHeaderSize+2*streamFrameSize+700] }, false, ErrTruncated},
		{"cut after two chunks", func(b []byte) []byte { return b[:StreamHeaderSize+2*streamFrameSize] }, false, ErrTruncated},
		{"bit flip", func(b []byte) []byte { b[StreamHeaderSize+streamFrameSize+9] ^= 4; return b }, false, ErrTampered},
		{"final chunk grown", func(b []byte) []byte { return append(b, 1, 2, 3) }, true, ErrTampered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inner := newMemSnapshots()
			s := NewSnapshotStore(inner, kr)
			id := writeSnapshot(t, s, 9, data)
			inner.set(id, c.edit(bytes.Clone(inner.data[id])), c.withSize)
			_, got, err := readSnapshot(s, id)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v after reading %d bytes, want %v", err, len(got), c.want)
			}
		})
	}

	// A snapshot's bytes presented under another snapshot's ID.
	inner := newMemSnapshots()
	s := NewSnapshotStore(inner, kr)
	a := writeSnapshot(t, s, 1, []byte("state a"))
	b := writeSnapshot(t, s, 2, []byte("state b"))
	inner.set(b, inner.data[a], true)
	if _, _, err := readSnapshot(s, b); !errors.Is(err, ErrWrongAAD) {
		t.Fatalf("snapshot under another ID: %v, want ErrWrongAAD", err)
	}
}

func TestSnapshotStoreRotation(t *testing.T) {
	kr := testKeyring(t)
	inner := newMemSnapshots()
	s := NewSnapshotStore(inner, kr)
	oldSnap := writeSnapshot(t, s, 1, []byte("old"))
	next, newID := rotated(t, kr)
	kr.Replace(next)
	newSnap := writeSnapshot(t, s, 2, []byte("new"))
	if got := string(inner.data[newSnap][6 : 6+len(newID)]); got != newID {
		t.Fatalf("new snapshot sealed with %q, want %q", got, newID)
	}
	for id, want := range map[string]string{oldSnap: "old", newSnap: "new"} {
		if _, got, err := readSnapshot(s, id); err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v", id, got, err)
		}
	}
}

func TestSnapshotSinkCancel(t *testing.T) {
	dir := t.TempDir()
	inner, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSnapshotStore(inner, testKeyring(t))
	_, trans := raft.NewInmemTransport("")
	sink, err := s.Create(raft.SnapshotVersionMax, 3, 1, raft.Configuration{}, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = sink.Write([]byte("partial"))
	if err := sink.Cancel(); err != nil {
		t.Fatal(err)
	}
	if metas, _ := s.List(); len(metas) != 0 {
		t.Fatalf("cancelled snapshot listed: %v", metas)
	}
}
