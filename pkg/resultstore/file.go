package resultstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// File permissions for file:// stores.
const (
	dirPerm  fs.FileMode = 0o750
	filePerm fs.FileMode = 0o640
)

// fileStore keeps objects as files below root. It never retries: a local
// I/O error is reported as is.
type fileStore struct {
	root string // absolute, cleaned
}

var _ Store = (*fileStore)(nil)

func newFileStore(root string) (*fileStore, error) {
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Created by the first write.
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("%s exists and is not a directory", root)
	}
	return &fileStore{root: root}, nil
}

func (s *fileStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// URI returns the file:// URI of key.
func (s *fileStore) URI(key string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(s.path(key))}).String()
}

// Put writes r to a temporary file beside the target, syncs it and renames
// it into place.
func (s *fileStore) Put(ctx context.Context, key string, r io.Reader, size int64, _ string) error {
	w, err := s.Writer(ctx, key)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, newCheckedReader(ctx, r, size)); err != nil {
		_ = w.CloseWithError(err)
		return fmt.Errorf("put %s: %w", s.URI(key), err)
	}
	return w.Close()
}

// Writer creates the temporary file at once; Close commits it.
func (s *fileStore) Writer(ctx context.Context, key string) (ObjectWriter, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	final := s.path(key)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("create directory for %s: %w", s.URI(key), err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(final)+"-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", s.URI(key), err)
	}
	if err := f.Chmod(filePerm); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("create %s: %w", s.URI(key), err)
	}
	return &fileWriter{ctx: ctx, f: f, buf: bufio.NewWriterSize(f, 256<<10), final: final}, nil
}

// fileWriter is an in-progress file:// object.
type fileWriter struct {
	ctx   context.Context
	final string

	mu     sync.Mutex
	f      *os.File
	buf    *bufio.Writer
	err    error // first write error; makes Close abort
	closed bool
}

// Write buffers p into the temporary file.
func (w *fileWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = err
		return 0, err
	}
	n, err := w.buf.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close flushes, syncs and renames the file into place, then syncs the
// directory so the rename survives a crash. On any failure it removes the
// temporary file and nothing appears under the key.
func (w *fileWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.ctx.Err()
	}
	if err == nil {
		err = w.buf.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.final)
	}
	if err != nil {
		_ = os.Remove(w.f.Name())
		return fmt.Errorf("write %s: %w", w.final, err)
	}
	return syncDir(filepath.Dir(w.final))
}

// CloseWithError discards the temporary file.
func (w *fileWriter) CloseWithError(error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	_ = w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Get opens the file under key.
func (s *fileStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", s.URI(key), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", s.URI(key), err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("get %s: not a regular file: %w", s.URI(key), ErrNotFound)
	}
	return f, nil
}

// List walks the directory tree under prefix, skipping in-progress writes.
func (s *fileStore) List(ctx context.Context, prefix string) ([]Object, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	base := s.path(p)
	if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var objs []Object
	err = filepath.WalkDir(base, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, name)
		if err != nil {
			return err
		}
		objs = append(objs, Object{Key: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.URI(p), err)
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// DeletePrefix removes the listed files, then the directories they leave
// empty (never the root itself).
func (s *fileStore) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	dirs := map[string]bool{}
	for _, o := range objs {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := os.Remove(s.path(o.Key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("delete %s: %w", s.URI(o.Key), err)
		}
		n++
		for d := filepath.Dir(s.path(o.Key)); d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	ordered := make([]string, 0, len(dirs))
	for d := range dirs {
		ordered = append(ordered, d)
	}
	// Deepest first, so children go before their parents.
	slices.SortFunc(ordered, func(a, b string) int { return len(b) - len(a) })
	for _, d := range ordered {
		_ = os.Remove(d) // fails, harmlessly, while a directory still holds something
	}
	return n, nil
}
