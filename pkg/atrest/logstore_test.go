package atrest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func testLog(index uint64, data, ext string) *raft.Log {
	l := &raft.Log{Index: index, Term: 3, Type: raft.LogCommand, AppendedAt: time.Unix(1700000000, 0).UTC()}
	if data != "" {
		l.Data = []byte(data)
	}
	if ext != "" {
		l.Extensions = []byte(ext)
	}
	return l
}

func TestLogStoreRoundTrip(t *testing.T) {
	kr := testKeyring(t)
	inner := raft.NewInmemStore()
	s := NewLogStore(inner, kr)

	one := testLog(1, "\x01create job SECRET-1", "ext-1")
	if err := s.StoreLog(one); err != nil {
		t.Fatal(err)
	}
	batch := []*raft.Log{testLog(2, "\x02SECRET-2", ""), testLog(3, "", ""), testLog(4, "\x03SECRET-4", "ext-4")}
	batch[1].Type = raft.LogNoop
	if err := s.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
	// The caller's entries are untouched: raft keeps using them.
	if string(one.Data) != "\x01create job SECRET-1" || string(batch[2].Data) != "\x03SECRET-4" {
		t.Fatal("StoreLog/StoreLogs modified the caller's entries")
	}

	for _, want := range append([]*raft.Log{one}, batch...) {
		var got raft.Log
		if err := s.GetLog(want.Index, &got); err != nil {
			t.Fatal(err)
		}
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
			!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, got, want)
		}

		var raw raft.Log
		if err := inner.GetLog(want.Index, &raw); err != nil {
			t.Fatal(err)
		}
		if len(want.Data) > 0 && (!IsSealed(raw.Data) || bytes.Contains(raw.Data, []byte("SECRET"))) {
			t.Fatalf("log %d stored in the clear: %q", want.Index, raw.Data)
		}
		if len(want.Extensions) > 0 && (!IsSealed(raw.Extensions) || bytes.Contains(raw.Extensions, []byte("ext"))) {
			t.Fatalf("log %d extensions stored in the clear: %q", want.Index, raw.Extensions)
		}
		if len(want.Data) == 0 && len(raw.Data) != 0 {
			t.Fatalf("empty data of log %d stored as %d bytes", want.Index, len(raw.Data))
		}
	}

	if first, _ := s.FirstIndex(); first != 1 {
		t.Fatalf("FirstIndex = %d", first)
	}
	if last, _ := s.LastIndex(); last != 4 {
		t.Fatalf("LastIndex = %d", last)
	}
	if err := s.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog of deleted entry: %v, want ErrLogNotFound", err)
	}
}

func TestLogStoreDetectsMovedAndTamperedEntries(t *testing.T) {
	kr := testKeyring(t)
	inner := raft.NewInmemStore()
	s := NewLogStore(inner, kr)
	if err := s.StoreLogs([]*raft.Log{testLog(1, "\x01first", ""), testLog(2, "\x01second", "")}); err != nil {
		t.Fatal(err)
	}
	var raw1 raft.Log
	if err := inner.GetLog(1, &raw1); err != nil {
		t.Fatal(err)
	}

	// The store hands back entry 1, index and all, when asked for 2 (a
	// swapped record on disk).
	var got raft.Log
	if err := NewLogStore(remapStore{inner, 2, 1}, kr).GetLog(2, &got); !errors.Is(err, ErrWrongAAD) {
		t.Fatalf("swapped record: %v, want ErrWrongAAD", err)
	}

	// Entry 1's sealed data stored at index 2 (a swapped entry).
	moved := raw1
	moved.Index = 2
	if err := inner.StoreLog(&moved); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(2, &got); !errors.Is(err, ErrWrongAAD) {
		t.Fatalf("moved entry: %v, want ErrWrongAAD", err)
	}

	// A flipped bit in the ciphertext.
	tampered := raw1
	tampered.Data = bytes.Clone(raw1.Data)
	tampered.Data[len(tampered.Data)-3] ^= 0x10
	if err := inner.StoreLog(&tampered); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(1, &got); !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered entry: %v, want ErrTampered", err)
	}

	// Data sealed as extensions cannot be passed off as data.
	swapped := testLog(5, "", "")
	sealedExt, err := NewLogStore(raft.NewInmemStore(), kr).(*logStore).seal(testLog(5, "", "\x01ext"))
	if err != nil {
		t.Fatal(err)
	}
	swapped.Data = sealedExt.Extensions
	if err := inner.StoreLog(swapped); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(5, &got); !errors.Is(err, ErrWrongAAD) {
		t.Fatalf("extensions as data: %v, want ErrWrongAAD", err)
	}
}

func TestLogStoreReadsPlaintextFromBeforeEncryption(t *testing.T) {
	inner := raft.NewInmemStore()
	// Written before encryption was enabled.
	if err := inner.StoreLogs([]*raft.Log{testLog(1, "\x01legacy", "legacy-ext"), testLog(2, "\x01legacy two", "")}); err != nil {
		t.Fatal(err)
	}
	kr := testKeyring(t)
	s := NewLogStore(inner, kr)
	if err := s.StoreLog(testLog(3, "\x01new", "")); err != nil {
		t.Fatal(err)
	}
	for i, want := range map[uint64]string{1: "\x01legacy", 2: "\x01legacy two", 3: "\x01new"} {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatal(err)
		}
		if string(got.Data) != want {
			t.Fatalf("log %d = %q, want %q", i, got.Data, want)
		}
	}
	var got raft.Log
	_ = s.GetLog(1, &got)
	if string(got.Extensions) != "legacy-ext" {
		t.Fatalf("legacy extensions = %q", got.Extensions)
	}
}

func TestLogStoreRotation(t *testing.T) {
	kr := testKeyring(t)
	oldID := kr.ActiveKeyID()
	inner := raft.NewInmemStore()
	s := NewLogStore(inner, kr)
	if err := s.StoreLog(testLog(1, "\x01before", "")); err != nil {
		t.Fatal(err)
	}
	next, newID := rotated(t, kr)
	kr.Replace(next) // the store sees the rotation without being rebuilt
	if err := s.StoreLog(testLog(2, "\x01after", "")); err != nil {
		t.Fatal(err)
	}
	for i, wantKey := range map[uint64]string{1: oldID, 2: newID} {
		var raw raft.Log
		_ = inner.GetLog(i, &raw)
		if id, _ := SealedKeyID(raw.Data); id != wantKey {
			t.Fatalf("log %d sealed with %q, want %q", i, id, wantKey)
		}
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("log %d: %v", i, err)
		}
	}
}

// remapStore reads entry to when asked for entry from.
type remapStore struct {
	raft.LogStore
	from, to uint64
}

func (r remapStore) GetLog(index uint64, l *raft.Log) error {
	if index == r.from {
		index = r.to
	}
	return r.LogStore.GetLog(index, l)
}

type monoStore struct {
	raft.LogStore
	mono bool
}

func (m monoStore) IsMonotonic() bool { return m.mono }

func TestLogStoreMonotonic(t *testing.T) {
	kr := testKeyring(t)
	if _, ok := NewLogStore(raft.NewInmemStore(), kr).(raft.MonotonicLogStore); ok {
		t.Error("wrapper of a non-monotonic store claims MonotonicLogStore")
	}
	for _, mono := range []bool{true, false} {
		s := NewLogStore(monoStore{raft.NewInmemStore(), mono}, kr)
		m, ok := s.(raft.MonotonicLogStore)
		if !ok {
			t.Fatalf("wrapper of a MonotonicLogStore (%v) does not implement it", mono)
		}
		if m.IsMonotonic() != mono {
			t.Fatalf("IsMonotonic = %v, want %v", m.IsMonotonic(), mono)
		}
	}
	if m, ok := NewLogStore(&raft.MockMonotonicLogStore{}, kr).(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Error("raft.MockMonotonicLogStore not passed through")
	}
}
