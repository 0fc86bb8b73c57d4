package atrest

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/raft"
)

// logAAD is the associated data for a log entry's field: a label and the
// log index, so a sealed value cannot be moved to another index or field.
func logAAD(field string, index uint64) []byte {
	b := make([]byte, 0, len(field)+8)
	b = append(b, field...)
	return binary.BigEndian.AppendUint64(b, index)
}

const (
	logDataAAD = "raft-log-data\x00"
	logExtAAD  = "raft-log-ext\x00"
)

// logStore seals Log.Data and Log.Extensions in an inner raft.LogStore.
type logStore struct {
	inner raft.LogStore
	kr    *Keyring
}

// monotonicLogStore is a logStore whose inner store is a
// raft.MonotonicLogStore.
type monotonicLogStore struct {
	logStore
	mono raft.MonotonicLogStore
}

// IsMonotonic reports what the inner store reports.
func (s *monotonicLogStore) IsMonotonic() bool { return s.mono.IsMonotonic() }

// NewLogStore returns a raft.LogStore that seals each entry's Data and
// Extensions with kr before storing them in inner, and opens them on
// GetLog. The associated data is the entry's index, so a sealed entry read
// back at another index fails. Entries whose fields are not sealed (written
// before encryption was enabled) are returned as stored. Empty fields stay
// empty. Index, term, type and AppendedAt are stored in the clear.
//
// If inner implements raft.MonotonicLogStore (raft-wal does), so does the
// returned store, with the same answer; raft relies on it to clear the log
// after installing a snapshot instead of leaving a gap. Other optional
// interfaces of inner (raft.StableStore, io.Closer) are not passed on: use
// inner for those. NewLogStore panics if inner or kr is nil.
func NewLogStore(inner raft.LogStore, kr *Keyring) raft.LogStore {
	if inner == nil || kr == nil {
		panic("atrest: NewLogStore needs a log store and a keyring")
	}
	s := logStore{inner: inner, kr: kr}
	if m, ok := inner.(raft.MonotonicLogStore); ok {
		return &monotonicLogStore{logStore: s, mono: m}
	}
	return &s
}

// FirstIndex returns the inner store's first index.
func (s *logStore) FirstIndex() (uint64, error) { return s.inner.FirstIndex() }

// LastIndex returns the inner store's last index.
func (s *logStore) LastIndex() (uint64, error) { return s.inner.LastIndex() }

// DeleteRange deletes entries min to max inclusive from the inner store.
func (s *logStore) DeleteRange(min, max uint64) error { return s.inner.DeleteRange(min, max) }

// GetLog reads entry index and opens its sealed fields.
func (s *logStore) GetLog(index uint64, log *raft.Log) error {
	if err := s.inner.GetLog(index, log); err != nil {
		return err
	}
	var err error
	if log.Data, err = s.open(log.Data, logDataAAD, index); err != nil {
		return fmt.Errorf("raft log %d data: %w", index, err)
	}
	if log.Extensions, err = s.open(log.Extensions, logExtAAD, index); err != nil {
		return fmt.Errorf("raft log %d extensions: %w", index, err)
	}
	return nil
}

func (s *logStore) open(b []byte, field string, index uint64) ([]byte, error) {
	if !IsSealed(b) {
		return b, nil // empty, or written before encryption
	}
	return s.kr.Open(b, logAAD(field, index))
}

// seal returns a sealed copy of l; l itself is not changed (raft keeps
// using the entries it stores, e.g. to apply them to the FSM).
func (s *logStore) seal(l *raft.Log) (*raft.Log, error) {
	c := *l
	var err error
	if len(l.Data) > 0 {
		if c.Data, err = s.kr.Seal(l.Data, logAAD(logDataAAD, l.Index)); err != nil {
			return nil, err
		}
	}
	if len(l.Extensions) > 0 {
		if c.Extensions, err = s.kr.Seal(l.Extensions, logAAD(logExtAAD, l.Index)); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// StoreLog seals and stores one entry.
func (s *logStore) StoreLog(l *raft.Log) error {
	c, err := s.seal(l)
	if err != nil {
		return err
	}
	return s.inner.StoreLog(c)
}

// StoreLogs seals and stores entries.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	sealed := make([]*raft.Log, len(logs))
	for i, l := range logs {
		c, err := s.seal(l)
		if err != nil {
			return err
		}
		sealed[i] = c
	}
	return s.inner.StoreLogs(sealed)
}
