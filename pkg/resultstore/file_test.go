package resultstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openFileStore(t *testing.T) (Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "results") // does not exist yet
	s, err := Open(context.Background(), "file://"+root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func TestFileStoreContract(t *testing.T) {
	s, _ := openFileStore(t)
	testStoreContract(t, s)
}

func TestFileStoreLayoutAndPermissions(t *testing.T) {
	s, root := openFileStore(t)
	key := "job-1/concurrency_8/profile_export_aiperf.json"
	if err := s.Put(context.Background(), key, strings.NewReader("{}"), 2, "application/json"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "job-1", "concurrency_8", "profile_export_aiperf.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("file mode = %v, want 0640", fi.Mode().Perm())
	}
	for _, d := range []string{"job-1", "job-1/concurrency_8"} {
		di, err := os.Stat(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		if perm := di.Mode().Perm(); perm&^0o750 != 0 {
			t.Errorf("dir %s mode = %v, want at most 0750", d, perm)
		}
	}
	if got, want := s.URI(key), "file://"+filepath.ToSlash(root)+"/"+key; got != want {
		t.Errorf("URI = %q, want %q", got, want)
	}
	// DeletePrefix removes the directories it empties, never the root.
	if n, err := s.DeletePrefix(context.Background(), ""); err != nil || n != 1 {
		t.Fatalf("DeletePrefix = %d, %v", n, err)
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Errorf("root after DeletePrefix: %v, %v", entries, err)
	}
}

func TestFileOpenNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), "file://"+f, Options{})
	if !errors.Is(err, ErrInvalidLocation) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("err = %v", err)
	}
}

func TestFileWriterCommitsOnClose(t *testing.T) {
	s, _ := openFileStore(t)
	ctx := context.Background()
	w, err := s.Writer(ctx, "job-1/profile_export.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := range 1000 {
		line := fmt.Sprintf("{\"request\":%d}\n", i)
		want.WriteString(line)
		if _, err := io.WriteString(w, line); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is visible until Close, and the temporary file is not listed.
	if _, err := s.Get(ctx, "job-1/profile_export.jsonl"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get before Close: %v", err)
	}
	if objs, err := s.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Errorf("List before Close = %v, %v", keys(objs), err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, s, "job-1/profile_export.jsonl"); got != want.String() {
		t.Errorf("content differs: %d bytes, want %d", len(got), want.Len())
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
}

func TestFileWriterAbortLeavesNothing(t *testing.T) {
	s, root := openFileStore(t)
	ctx := context.Background()
	w, err := s.Writer(ctx, "job-1/profile_export.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.CloseWithError(errors.New("load generator failed")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "job-1")); len(entries) != 0 {
		t.Errorf("abort left %v", entries)
	}
	if objs, err := s.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Errorf("List after abort = %v, %v", keys(objs), err)
	}

	// A cancelled context aborts too: Close fails and commits nothing.
	cctx, cancel := context.WithCancel(ctx)
	w, err = s.Writer(cctx, "job-1/other.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "job-1")); len(entries) != 0 {
		t.Errorf("cancelled write left %v", entries)
	}
}

// TestFileStoreReaderNeverSeesPartialFile overwrites one key with files of a
// fixed size, each filled with one byte value, while a reader checks that
// every read is complete and uniform.
func TestFileStoreReaderNeverSeesPartialFile(t *testing.T) {
	s, _ := openFileStore(t)
	ctx := context.Background()
	const size, versions = 256 << 10, 40
	key := "job-1/profile_export_aiperf.json"
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for v := 1; v <= versions; v++ {
			if err := s.Put(ctx, key, bytes.NewReader(bytes.Repeat([]byte{byte(v)}, size)), size, ""); err != nil {
				t.Errorf("Put v%d: %v", v, err)
				return
			}
		}
	}()
	reads := 0
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true // one last read below
		default:
		}
		rc, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != size || bytes.Count(b, b[:1]) != size {
			t.Fatalf("read a partial or mixed file: %d bytes", len(b))
		}
		reads++
	}
	wg.Wait()
	if reads == 0 {
		t.Error("reader never saw the file")
	}
}
