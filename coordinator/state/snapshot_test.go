package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// populated returns a store with a record of every kind.
func populated(t *testing.T) *Store {
	t.Helper()
	s := New()
	if err := s.SetMeta(&pb.ClusterMeta{ClusterId: "c1", PageTokenKey: []byte("key")}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterServer(&pb.ServerIdentity{NodeId: "n1", RaftAddr: "127.0.0.1:1", GrpcAddr: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, withToken(configCmd(acct, "wl"), "CreateAIWorkloadConfig", "t1", "h", 0))
	mustCreate(t, s, benchCmd(acct, "b1", "wl"))
	mustCreate(t, s, benchCmd(acct, "b2", "wl"))
	mustCreate(t, s, recCmd(acct, "r1", "wl"))
	if _, err := setStatus(s, KindBenchmark, "b2", StatusCompleted, StatusInProgress); err != nil {
		t.Fatal(err)
	}
	return s
}

func persist(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := populated(t)
	data := persist(t, s)
	r, err := Restore(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash() != s.Hash() {
		t.Fatal("restored store hashes differently")
	}
	if !bytes.Equal(persist(t, r), data) {
		t.Fatal("persisting the restored store gives other bytes")
	}
	// Indexes are rebuilt, not only the primary table.
	if jobs, err := r.JobsInStatus(nil, KindBenchmark, StatusCompleted); err != nil || len(jobs) != 1 || jobs[0].Name != "b2" {
		t.Fatalf("JobsInStatus after restore = %v, %v", jobs, err)
	}
	if r.ClientToken(acct, "CreateAIWorkloadConfig", "t1") == nil || r.Server("n1") == nil || r.Meta().GetClusterId() != "c1" {
		t.Fatal("restore lost a token, server or meta")
	}
	if _, err := r.Delete(&pb.DeleteResourceCommand{Kind: KindWorkloadConfig, AccountId: acct, Name: "wl"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("restored store lost the workload index: %v", err)
	}
}

func TestSnapshotIsPointInTime(t *testing.T) {
	s := populated(t)
	want := s.Hash()
	snap := s.Snapshot()
	mustCreate(t, s, configCmd(acct, "later"))
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash() != want || s.Hash() == want {
		t.Fatal("the snapshot saw a later write, or the write was lost")
	}
}

func TestHashTracksContent(t *testing.T) {
	a, b := populated(t), populated(t)
	if a.Hash() != b.Hash() {
		t.Fatal("equal stores hash differently")
	}
	if New().Hash() == a.Hash() {
		t.Fatal("an empty store hashes like a full one")
	}
	if _, err := setStatus(b, KindBenchmark, "b1", StatusStopping, StatusInProgress); err != nil {
		t.Fatal(err)
	}
	if a.Hash() == b.Hash() {
		t.Fatal("a status change left the hash unchanged")
	}
}

func TestRestoreRejectsBadStreams(t *testing.T) {
	good := persist(t, populated(t))
	header := len(snapshotHeader)
	// The first record is the meta: type byte, one length byte, payload.
	firstLen := int(good[header+1])
	replace := func(i int, b ...byte) []byte {
		out := append([]byte(nil), good[:i]...)
		out = append(out, b...)
		return append(out, good[i+1:]...)
	}
	huge := binary.AppendUvarint(nil, 1<<40)
	cases := map[string][]byte{
		"empty":              nil,
		"bad header":         append([]byte("perfleet-state v2\n"), good[header:]...),
		"unknown record":     replace(header, 99),
		"huge length":        replace(header+1, huge...),
		"length past end":    replace(header+1, 0x7f),
		"bad protobuf":       append(append(append([]byte(nil), good[:header]...), recordMeta, 2, 0xff, 0xff), recordEnd),
		"missing end record": good[:len(good)-1],
		"cut in a payload":   good[:header+2+firstLen/2],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Restore(bytes.NewReader(data)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("Restore = %v, want ErrBadSnapshot", err)
			}
		})
	}
	for n := 0; n < len(good); n++ {
		if _, err := Restore(bytes.NewReader(good[:n])); err == nil {
			t.Fatalf("Restore of the first %d of %d bytes succeeded", n, len(good))
		}
	}
}

func TestAbandon(t *testing.T) {
	s := New()
	select {
	case <-s.AbandonCh():
		t.Fatal("a fresh store is abandoned")
	default:
	}
	s.Abandon()
	<-s.AbandonCh()
}
