package atrest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// plaintextMarker is planted in every command and so in every snapshot.
const plaintextMarker = "PERFLEET-PLAINTEXT-MARKER-7f3a"

// kvFSM is a trivial state machine: commands are "key=value".
type kvFSM struct {
	mu       sync.Mutex
	m        map[string]string
	restored int
}

func newKVFSM() *kvFSM { return &kvFSM{m: map[string]string{}} }

func (f *kvFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	k, v, ok := strings.Cut(string(l.Data), "=")
	if !ok {
		return fmt.Errorf("bad command %q", l.Data)
	}
	f.mu.Lock()
	f.m[k] = v
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := json.Marshal(f.m)
	return kvSnapshot(data), err
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return err
	}
	f.mu.Lock()
	f.m = m
	f.restored++
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) state() (map[string]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(map[string]string, len(f.m))
	for k, v := range f.m {
		c[k] = v
	}
	return c, f.restored
}

type kvSnapshot []byte

func (s kvSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (kvSnapshot) Release() {}

// node is one single-server raft node over raft-wal and a file snapshot
// store, both wrapped for encryption.
type node struct {
	r     *raft.Raft
	fsm   *kvFSM
	wal   *raftwal.WAL
	meta  *metadb.BoltMetaDB
	trans *raft.InmemTransport
}

func openWAL(t *testing.T, dir string) (*raftwal.WAL, *metadb.BoltMetaDB) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(dir, raftwal.WithMetaStore(meta), raftwal.WithSegmentSize(256<<10), raftwal.WithLogger(quietLogger))
	if err != nil {
		meta.Close()
		t.Fatal(err)
	}
	return wal, meta
}

func startNode(t *testing.T, dir string, kr *Keyring, bootstrap bool) *node {
	t.Helper()
	wal, meta := openWAL(t, filepath.Join(dir, "wal"))
	files, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	addr, trans := raft.NewInmemTransport("node1")
	conf := raft.DefaultConfig()
	conf.LocalID = "node1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 1 << 30 // snapshots only when asked
	conf.SnapshotInterval = time.Hour
	conf.TrailingLogs = 4 // compact most of the log into the snapshot
	conf.Logger = quietLogger

	fsm := newKVFSM()
	logs := NewLogStore(wal, kr)
	if m, ok := logs.(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatal("wrapped raft-wal store is not monotonic")
	}
	r, err := raft.NewRaft(conf, fsm, logs, wal, NewSnapshotStore(files, kr), trans)
	if err != nil {
		t.Fatal(err)
	}
	if bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: "node1", Address: addr}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("no leader after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &node{r: r, fsm: fsm, wal: wal, meta: meta, trans: trans}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	_ = n.trans.Close()
	if err := n.wal.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.meta.Close(); err != nil {
		t.Fatal(err)
	}
}

func (n *node) apply(t *testing.T, k, v string) {
	t.Helper()
	f := n.r.Apply([]byte(k+"="+v), 2*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if resp := f.Response(); resp != nil {
		t.Fatal(resp)
	}
}

// filesContaining returns the files under dir whose bytes contain needle,
// and how many files and bytes it read.
func filesContaining(t *testing.T, dir string, needle []byte) (hits []string, files int, total int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		total += int64(len(b))
		if bytes.Contains(b, needle) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, files, total
}

func TestRaftEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keyfile := filepath.Join(t.TempDir(), "keyring.json")
	kr, err := GenerateKeyringFile(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	firstKey := kr.ActiveKeyID()

	want := map[string]string{}
	value := func(i int) string { return fmt.Sprintf("%s-%d-%s", plaintextMarker, i, strings.Repeat("v", 3000)) }

	n := startNode(t, dir, kr, true)
	for i := range 40 {
		k := fmt.Sprintf("key%02d", i)
		n.apply(t, k, value(i))
		want[k] = value(i)
	}
	if err := n.r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}

	// Rotate the key while running: later entries use the new key.
	rotatedKr, err := RotateFile(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	kr.Replace(rotatedKr)
	secondKey := kr.ActiveKeyID()
	for i := 40; i < 50; i++ {
		k := fmt.Sprintf("key%02d", i)
		n.apply(t, k, value(i))
		want[k] = value(i)
	}
	lastIndex := n.r.LastIndex()
	n.stop(t)

	// What is on disk is sealed, under the key in force when written.
	{
		wal, meta := openWAL(t, filepath.Join(dir, "wal"))
		first, _ := wal.FirstIndex()
		if first <= 1 {
			t.Errorf("log was not compacted by the snapshot (first index %d)", first)
		}
		var raw raft.Log
		if err := wal.GetLog(lastIndex, &raw); err != nil {
			t.Fatal(err)
		}
		if id, err := SealedKeyID(raw.Data); err != nil || id != secondKey {
			t.Errorf("last entry sealed with %q (%v), want rotated key %q", id, err, secondKey)
		}
		sealedCmds := 0
		for i := first; i <= lastIndex; i++ {
			if err := wal.GetLog(i, &raw); err != nil {
				t.Fatal(err)
			}
			if raw.Type == raft.LogCommand {
				if !IsSealed(raw.Data) {
					t.Errorf("log %d stored in the clear", i)
				}
				sealedCmds++
			}
		}
		if sealedCmds == 0 {
			t.Error("no command entries left in the log to check")
		}
		wal.Close()
		meta.Close()
	}

	// Restart from the same stores with the keyring reloaded from its file.
	kr2, err := LoadKeyringFile(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	if ids := kr2.KeyIDs(); len(ids) != 2 || ids[0] != firstKey || ids[1] != secondKey {
		t.Fatalf("reloaded keys %v", ids)
	}
	n = startNode(t, dir, kr2, false)
	if err := n.r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	got, restored := n.fsm.state()
	if restored == 0 {
		t.Error("restart did not restore the FSM from the snapshot")
	}
	if len(got) != len(want) {
		t.Fatalf("recovered %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("recovered %s = %.40q..., want %.40q...", k, got[k], v)
		}
	}
	// The recovered node keeps working.
	n.apply(t, "after-restart", value(99))
	n.stop(t)

	// Finally: the planted marker is nowhere in the raw bytes on disk.
	segments, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	states, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(segments) == 0 || len(states) == 0 {
		t.Fatalf("expected raft-wal segments and snapshot files, got %v and %v", segments, states)
	}
	hits, files, total := filesContaining(t, dir, []byte(plaintextMarker))
	if len(hits) > 0 {
		t.Fatalf("plaintext marker found on disk in %v", hits)
	}
	t.Logf("scanned %d files, %d bytes: no plaintext marker", files, total)
}

// TestRaftWALStoresPlaintextWithoutWrapper is the control for the disk scan
// above: without the wrapper the marker is found in the raft-wal segment.
func TestRaftWALStoresPlaintextWithoutWrapper(t *testing.T) {
	dir := t.TempDir()
	wal, meta := openWAL(t, dir)
	if err := wal.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("k=" + plaintextMarker)}); err != nil {
		t.Fatal(err)
	}
	wal.Close()
	meta.Close()
	if hits, _, _ := filesContaining(t, dir, []byte(plaintextMarker)); len(hits) == 0 {
		t.Fatal("control: marker not found in an unencrypted raft-wal segment; the disk scan proves nothing")
	}
}
