package shard

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// payload is a distinct 10-byte window body for seq.
func payload(seq uint64) []byte { return []byte(fmt.Sprintf("window%04d", seq)) }

// wantSeqs checks Unacked: the seqs in order, each with its payload.
func wantSeqs(t *testing.T, b *Buffer, want ...uint64) {
	t.Helper()
	got, err := b.Unacked()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("unacked %d windows, want %v", len(got), want)
	}
	for i, p := range got {
		if p.Seq != want[i] || !bytes.Equal(p.Data, payload(p.Seq)) {
			t.Fatalf("unacked[%d] = %d %q, want %d", i, p.Seq, p.Data, want[i])
		}
	}
}

func spilled(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.win"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestBufferAckAndResendOrder(t *testing.T) {
	b, err := NewBuffer("", 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		if err := b.Add(seq, payload(seq)); err != nil {
			t.Fatal(err)
		}
	}
	wantSeqs(t, b, 1, 2, 3, 4, 5)
	b.Ack(2)
	wantSeqs(t, b, 3, 4, 5)
	b.Ack(1) // an old, repeated ack changes nothing
	wantSeqs(t, b, 3, 4, 5)
	if err := b.Add(5, payload(5)); !errors.Is(err, ErrSeqOrder) {
		t.Fatalf("re-adding seq 5: %v", err)
	}
	b.Ack(9)
	wantSeqs(t, b)
	if err := b.Add(7, payload(7)); !errors.Is(err, ErrSeqOrder) {
		t.Fatalf("adding acked seq 7: %v", err)
	}
	if err := b.Add(10, payload(10)); err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, b, 10)
	if s := b.Stats(); s.Windows != 1 || s.MemBytes != 10 || s.DiskBytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBufferSpillsReadsBackAndFills(t *testing.T) {
	dir := t.TempDir()
	b, err := NewBuffer(dir, 25, 30) // two windows in memory, three on disk
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		if err := b.Add(seq, payload(seq)); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.Stats(); s.MemBytes != 20 || s.DiskBytes != 30 || spilled(t, dir) != 3 {
		t.Fatalf("stats %+v, %d files", s, spilled(t, dir))
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000003.win")); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(6, payload(6)); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("add past both limits: %v", err)
	}
	wantSeqs(t, b, 1, 2, 3, 4, 5)
	b.Ack(3)
	if s := b.Stats(); s.MemBytes != 0 || s.DiskBytes != 20 || spilled(t, dir) != 2 {
		t.Fatalf("after ack 3: stats %+v, %d files", s, spilled(t, dir))
	}
	// The refused seq 6 is gone for good; 7 fits in memory again.
	if err := b.Add(7, payload(7)); err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, b, 4, 5, 7)
	if err := b.Close(); err != nil || spilled(t, dir) != 0 {
		t.Fatalf("close: %v, %d files left", err, spilled(t, dir))
	}
}

func TestBufferRoundTripsWindowsThroughDisk(t *testing.T) {
	b, err := NewBuffer(t.TempDir(), 0, 1<<20) // everything spills
	if err != nil {
		t.Fatal(err)
	}
	w := metrics.NewWindow("a/j/l/0", 1, 1000, 1000)
	w.Counters[metrics.CounterOK] = 3
	w.Hist(metrics.RequestLatency).Record(12.5)
	if err := b.Add(1, metrics.MarshalWindow(w)); err != nil {
		t.Fatal(err)
	}
	got, err := b.Unacked()
	if err != nil || len(got) != 1 {
		t.Fatalf("%v, %v", got, err)
	}
	back, err := metrics.UnmarshalWindow(got[0].Data)
	if err != nil || back.Source != w.Source || back.Counters[metrics.CounterOK] != 3 || back.Hists[metrics.RequestLatency].Count != 1 {
		t.Fatalf("read back %+v, %v", back, err)
	}
}

func TestBufferStartsEmptyOverAnOldDirectory(t *testing.T) {
	dir := t.TempDir()
	old, err := NewBuffer(dir, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := old.Add(seq, payload(seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000004.win.tmp"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A new process does not recover the old one's windows.
	b, err := NewBuffer(dir, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, b)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("stale files left: %v", ents)
	}
	if err := b.Add(1, payload(1)); err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, b, 1)
}

func TestBufferConcurrentUse(t *testing.T) {
	b, err := NewBuffer(t.TempDir(), 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for seq := uint64(1); seq <= n; seq++ {
			if err := b.Add(seq, payload(seq)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			ps, err := b.Unacked()
			if err != nil {
				t.Error(err)
				return
			}
			for j := 1; j < len(ps); j++ {
				if ps[j].Seq <= ps[j-1].Seq {
					t.Errorf("unacked out of order: %d after %d", ps[j].Seq, ps[j-1].Seq)
				}
			}
			if len(ps) > 0 {
				b.Ack(ps[len(ps)/2].Seq)
			}
		}
	}()
	wg.Wait()
	b.Ack(n)
	if s := b.Stats(); s.Windows != 0 || s.MemBytes != 0 || s.DiskBytes != 0 {
		t.Fatalf("stats after acking all: %+v", s)
	}
}
