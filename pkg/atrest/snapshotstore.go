package atrest

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// snapshotAAD is the associated data of a snapshot stream: its ID.
func snapshotAAD(id string) []byte { return []byte("raft-snapshot\x00" + id) }

// snapshotStore seals snapshots written to an inner raft.SnapshotStore.
type snapshotStore struct {
	inner raft.SnapshotStore
	kr    *Keyring
}

// NewSnapshotStore returns a raft.SnapshotStore whose sinks seal the
// snapshot as a chunked stream (see SealWriter) into inner's sinks, with the
// snapshot ID as associated data, and whose Open returns a reader that
// authenticates and decrypts it, failing if the snapshot was altered or
// truncated. A snapshot that is not sealed (taken before encryption was
// enabled) is returned as stored.
//
// Sizes: inner records the sealed size; Open reports the plaintext size in
// SnapshotMeta.Size, which is what raft sends to followers and checks
// against the bytes it reads. List reports plaintext sizes too, derived
// from the sealed sizes (see PlaintextSize); for an unsealed snapshot List
// may under-report slightly, which raft only logs. The inner store must
// record the exact number of bytes written, as raft's FileSnapshotStore and
// InmemSnapshotStore do. NewSnapshotStore panics if inner or kr is nil.
func NewSnapshotStore(inner raft.SnapshotStore, kr *Keyring) raft.SnapshotStore {
	if inner == nil || kr == nil {
		panic("atrest: NewSnapshotStore needs a snapshot store and a keyring")
	}
	return &snapshotStore{inner: inner, kr: kr}
}

// Create starts a snapshot in the inner store and returns a sealing sink.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.inner.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	w, err := newStreamWriter(sink, s.kr, snapshotAAD(sink.ID()))
	if err != nil {
		_ = sink.Cancel()
		return nil, err
	}
	return &sealedSink{inner: sink, w: w}, nil
}

// List returns the inner store's snapshots with plaintext sizes.
func (s *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.inner.List()
	if err != nil {
		return nil, err
	}
	out := make([]*raft.SnapshotMeta, len(metas))
	for i, m := range metas {
		c := *m
		if size, ok := PlaintextSize(m.Size); ok {
			c.Size = size
		}
		out[i] = &c
	}
	return out, nil
}

// Open opens snapshot id, decrypting it if it is sealed.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.inner.Open(id)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(rc)
	prefix, err := br.Peek(len(streamMagic) + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		rc.Close()
		return nil, nil, fmt.Errorf("atrest: snapshot %s: %w", id, err)
	}
	if !IsSealedStream(prefix) {
		// Written before encryption was enabled.
		return meta, &readCloser{Reader: br, Closer: rc}, nil
	}
	size, ok := PlaintextSize(meta.Size)
	if !ok {
		rc.Close()
		return nil, nil, fmt.Errorf("%w: snapshot %s: stored size %d does not fit the sealed framing (truncated?)", ErrTruncated, id, meta.Size)
	}
	sr, err := readStreamHeader(br, s.kr, snapshotAAD(id))
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	sr.want = size
	m := *meta
	m.Size = size
	return &m, &readCloser{Reader: sr, Closer: rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// sealedSink seals what raft writes into the inner sink.
type sealedSink struct {
	inner raft.SnapshotSink
	w     *streamWriter
}

// ID returns the inner sink's snapshot ID.
func (s *sealedSink) ID() string { return s.inner.ID() }

// Write seals p into the snapshot; it returns len(p) on success.
func (s *sealedSink) Write(p []byte) (int, error) { return s.w.Write(p) }

// Close writes the final chunk and closes the inner sink. If sealing fails
// the inner snapshot is cancelled.
func (s *sealedSink) Close() error {
	if err := s.w.Close(); err != nil {
		_ = s.inner.Cancel()
		return err
	}
	return s.inner.Close()
}

// Cancel abandons the snapshot.
func (s *sealedSink) Cancel() error { return s.inner.Cancel() }
