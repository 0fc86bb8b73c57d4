package shard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Buffer errors.
var (
	// ErrBufferFull is returned by Add when the window fits neither in
	// memory nor on disk. The window is not kept. The caller (the agent's
	// control loop) keeps the shard running, still sends the window once
	// if the stream is up, and reports the lost sequence number to the
	// leader, which records that second of that shard as lost in the level's
	// result rather than waiting for it.
	ErrBufferFull = errors.New("shard: window buffer full")
	// ErrSeqOrder is returned by Add for a sequence number not above every
	// one added (or acknowledged) before.
	ErrSeqOrder = errors.New("shard: window sequence number out of order")
)

// spillExt names spilled window files: <20-digit seq>.win.
const spillExt = ".win"

// Buffer keeps a shard's encoded windows (metrics.MarshalWindow) until the
// leader acknowledges them, so they can be sent again after a reconnect.
// Windows live in memory up to MemLimit bytes; past that they spill to
// Dir, one fsynced file per window named by its sequence number, up to
// DiskLimit bytes; past that Add fails with ErrBufferFull. It is safe for
// concurrent use.
//
// A Buffer does not survive the agent process: windows of a shard that
// died with its process are not resent (the leader sees the shard fail and
// records its missing seconds), so NewBuffer clears files an earlier
// process left in Dir, and Close removes the files it wrote.
type Buffer struct {
	dir                 string
	memLimit, diskLimit int64

	mu        sync.Mutex
	entries   []bufEntry // unacknowledged windows, by ascending seq
	memBytes  int64
	diskBytes int64
	last      uint64 // highest seq passed to Add or Ack
}

type bufEntry struct {
	seq  uint64
	data []byte // nil when spilled
	size int64
}

// Pending is one unacknowledged window.
type Pending struct {
	// Seq is the window's sequence number.
	Seq uint64
	// Data is the encoded window.
	Data []byte
}

// BufferStats describes what a Buffer holds.
type BufferStats struct {
	// Windows is the number of unacknowledged windows.
	Windows int
	// MemBytes and DiskBytes are their encoded sizes in memory and on disk.
	MemBytes, DiskBytes int64
}

// NewBuffer returns an empty buffer holding up to memLimit bytes of
// windows in memory and diskLimit bytes in files under dir. An empty dir
// (or diskLimit 0) turns spilling off. dir is created if needed and any
// window files in it are removed.
func NewBuffer(dir string, memLimit, diskLimit int64) (*Buffer, error) {
	b := &Buffer{dir: dir, memLimit: memLimit, diskLimit: diskLimit}
	if dir == "" || diskLimit <= 0 {
		b.dir, b.diskLimit = "", 0
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("shard: window buffer: %w", err)
	}
	if err := b.removeFiles(); err != nil {
		return nil, err
	}
	return b, nil
}

// Add keeps window seq (the bytes are copied). seq must exceed every seq
// given to Add or Ack before; a refused (full) window still counts, so the
// next Add takes seq+1.
func (b *Buffer) Add(seq uint64, encoded []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if seq <= b.last {
		return fmt.Errorf("%w: %d after %d", ErrSeqOrder, seq, b.last)
	}
	b.last = seq
	size := int64(len(encoded))
	switch {
	case b.memBytes+size <= b.memLimit:
		b.entries = append(b.entries, bufEntry{seq: seq, data: append([]byte(nil), encoded...), size: size})
		b.memBytes += size
	case b.dir != "" && b.diskBytes+size <= b.diskLimit:
		if err := writeSynced(b.dir, b.path(seq), encoded); err != nil {
			return fmt.Errorf("shard: spill window %d: %w", seq, err)
		}
		b.entries = append(b.entries, bufEntry{seq: seq, size: size})
		b.diskBytes += size
	default:
		return fmt.Errorf("%w: window %d (%d bytes) over %d bytes in memory and %d on disk",
			ErrBufferFull, seq, size, b.memBytes, b.diskBytes)
	}
	return nil
}

// Ack drops every window with seq ≤ upTo (acknowledgements are
// cumulative). A spilled window's file is removed; a failed removal only
// leaves a file that Close or the next NewBuffer removes.
func (b *Buffer) Ack(upTo uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for ; n < len(b.entries) && b.entries[n].seq <= upTo; n++ {
		e := b.entries[n]
		if e.data != nil {
			b.memBytes -= e.size
		} else {
			b.diskBytes -= e.size
			_ = os.Remove(b.path(e.seq))
		}
	}
	b.entries = append(b.entries[:0], b.entries[n:]...)
	b.last = max(b.last, upTo)
}

// Unacked returns every unacknowledged window in ascending seq order, to
// resend after a reconnect; spilled windows are read back from disk. The
// slices are the caller's.
func (b *Buffer) Unacked() ([]Pending, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Pending, 0, len(b.entries))
	for _, e := range b.entries {
		data := e.data
		if data == nil {
			var err error
			if data, err = os.ReadFile(b.path(e.seq)); err != nil {
				return nil, fmt.Errorf("shard: read spilled window %d: %w", e.seq, err)
			}
		} else {
			data = append([]byte(nil), data...)
		}
		out = append(out, Pending{Seq: e.seq, Data: data})
	}
	return out, nil
}

// Stats returns what the buffer holds now.
func (b *Buffer) Stats() BufferStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BufferStats{Windows: len(b.entries), MemBytes: b.memBytes, DiskBytes: b.diskBytes}
}

// Close drops every window and removes the spilled files.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries, b.memBytes, b.diskBytes = nil, 0, 0
	if b.dir == "" {
		return nil
	}
	return b.removeFiles()
}

// path is the file of a spilled window.
func (b *Buffer) path(seq uint64) string {
	return filepath.Join(b.dir, fmt.Sprintf("%020d%s", seq, spillExt))
}

// removeFiles deletes window files (and leftovers of interrupted writes).
func (b *Buffer) removeFiles() error {
	des, err := os.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("shard: window buffer: %w", err)
	}
	for _, de := range des {
		if n := de.Name(); strings.HasSuffix(n, spillExt) || strings.HasSuffix(n, spillExt+".tmp") {
			if err := os.Remove(filepath.Join(b.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("shard: window buffer: %w", err)
			}
		}
	}
	return nil
}

// writeSynced writes data to path through a temporary file, fsyncs it,
// renames it into place and fsyncs the directory.
func writeSynced(dir, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
