package audit

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultMaxBytes is the file size at which an Exporter rotates when
// ExporterOptions.MaxBytes is 0: 64 MiB.
const DefaultMaxBytes = 64 << 20

// DefaultRetryDelay is the first delay before an Exporter retries a failed
// compression or upload when ExporterOptions.RetryDelay is 0. The delay
// doubles after each failure up to MaxRetryDelay.
const DefaultRetryDelay = time.Second

// MaxRetryDelay caps the delay between retries of a failed compression or
// upload.
const MaxRetryDelay = time.Minute

// ErrClosed is returned by Write, Rotate and Close of a closed Exporter.
var ErrClosed = errors.New("audit: exporter closed")

// Uploader ships rotated audit files to long-term storage.
type Uploader interface {
	// Upload stores size bytes read from r under name, the file's base name
	// (audit-<timestamp>.jsonl or audit-<timestamp>.jsonl.gz), replacing
	// any object already there so a retried upload is harmless.
	Upload(ctx context.Context, name string, r io.Reader, size int64) error
}

// ExporterOptions configure NewExporter. Only Dir is required.
type ExporterOptions struct {
	// Dir is the local directory for audit files; it is created if needed.
	// The Exporter owns the files named audit-* and the .uploaded
	// subdirectory in it.
	Dir string
	// MaxBytes is the size a file may reach: a write that would take the
	// current file past it goes to a new file instead (a single event
	// larger than MaxBytes gets a file of its own). 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Gzip compresses rotated files to audit-<timestamp>.jsonl.gz.
	Gzip bool
	// Uploader, when set, receives every rotated file once. A file is
	// marked uploaded (an empty file of the same name under Dir/.uploaded)
	// only after Upload succeeds; retention never deletes a file that is
	// not yet uploaded.
	Uploader Uploader
	// MaxAge, when positive, deletes rotated files last modified more than
	// MaxAge ago.
	MaxAge time.Duration
	// MaxFiles, when positive, keeps at most the newest MaxFiles rotated
	// files, deleting older ones (files still waiting for compression or
	// upload are kept but counted).
	MaxFiles int
	// RetryDelay is the first delay before retrying a failed compression or
	// upload; 0 means DefaultRetryDelay.
	RetryDelay time.Duration
	// OnError, when set, is called with errors of the background work
	// (compression, upload, retention). It must not call the Exporter.
	OnError func(error)
	// Now is the clock, for file names and MaxAge; nil means time.Now.
	Now func() time.Time
}

// Exporter appends audit events as JSON lines to files named
// <Dir>/audit-<UTC timestamp>.jsonl, where the timestamp is the file's
// creation time as 20060102T150405.000000000Z. Names sort in creation
// order: a name never repeats or goes back, even if the clock does.
//
// A file is rotated when the next event would take it past MaxBytes and on
// Rotate and Close: it is fsynced and closed, and then, in the background
// and in rotation order, compressed (with Gzip), uploaded (with an
// Uploader) and subjected to retention (MaxAge, MaxFiles). Failures are
// retried with backoff and reported to OnError; files left behind by a
// previous process (after a crash, say) are picked up by NewExporter.
//
// The caller is responsible for the order and uniqueness of events: Write
// appends what it is given, in the order calls acquire the Exporter's lock,
// and does not deduplicate by eventID. Each event is written with a single
// write call but not fsynced; call Sync for that.
//
// An Exporter is safe for concurrent use.
type Exporter struct {
	opts    ExporterOptions
	markDir string

	mu     sync.Mutex // guards the active file and closed
	f      *os.File
	name   string // base name of the active file; "" when none
	size   int64
	last   time.Time // timestamp of the newest file name
	closed bool

	qmu     sync.Mutex      // guards queue, pending and idle
	queue   []string        // rotated files awaiting background work, oldest first
	pending map[string]bool // files queued or in process (and their .gz)
	idle    chan struct{}   // closed while pending is empty

	wake   chan struct{} // nudges the worker; capacity 1
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker exits
}

const (
	filePrefix   = "audit-"
	rawSuffix    = ".jsonl"
	gzSuffix     = ".jsonl.gz"
	tmpPrefix    = ".audit-tmp-"
	markDirName  = ".uploaded"
	stampLayout  = "20060102T150405.000000000Z"
	maxNameTries = 1000
)

// isLogName reports whether name is an audit file's base name.
func isLogName(name string) bool {
	return strings.HasPrefix(name, filePrefix) &&
		(strings.HasSuffix(name, rawSuffix) || strings.HasSuffix(name, gzSuffix))
}

// NewExporter opens an Exporter on opts.Dir. Files there from an earlier
// Exporter are treated as rotated: ones not yet compressed or uploaded are
// queued for it, and retention applies to them.
func NewExporter(opts ExporterOptions) (*Exporter, error) {
	if opts.Dir == "" {
		return nil, errors.New("audit: ExporterOptions.Dir is required")
	}
	if opts.MaxBytes < 0 || opts.MaxAge < 0 || opts.MaxFiles < 0 || opts.RetryDelay < 0 {
		return nil, errors.New("audit: negative ExporterOptions limit")
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	e := &Exporter{
		opts:    opts,
		markDir: filepath.Join(opts.Dir, markDirName),
		pending: map[string]bool{},
		idle:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	close(e.idle)
	if opts.Uploader != nil {
		if err := os.MkdirAll(e.markDir, 0o750); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	if err := e.recover(); err != nil {
		return nil, err
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	go e.run()
	e.nudge()
	return e, nil
}

// recover queues the files an earlier Exporter left behind.
func (e *Exporter) recover() error {
	entries, err := os.ReadDir(e.opts.Dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	present := map[string]bool{}
	var names []string
	for _, ent := range entries {
		n := ent.Name()
		switch {
		case strings.HasPrefix(n, tmpPrefix):
			_ = os.Remove(filepath.Join(e.opts.Dir, n)) // an interrupted compression
		case isLogName(n) && ent.Type().IsRegular():
			present[n] = true
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		if strings.HasSuffix(n, rawSuffix) && present[n+".gz"] {
			// Compressed and synced before a crash; the raw copy is stale.
			if err := os.Remove(filepath.Join(e.opts.Dir, n)); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			continue
		}
		if stamp, ok := nameStamp(n); ok && stamp.After(e.last) {
			e.last = stamp
		}
		if e.needsWork(n) {
			e.enqueue(n)
		}
	}
	if e.opts.Uploader != nil { // drop markers of deleted files
		marks, err := os.ReadDir(e.markDir)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		for _, m := range marks {
			if !present[m.Name()] {
				_ = os.Remove(filepath.Join(e.markDir, m.Name()))
			}
		}
	}
	return nil
}

// nameStamp parses the timestamp of an audit file name.
func nameStamp(name string) (time.Time, bool) {
	s := strings.TrimPrefix(name, filePrefix)
	s = strings.TrimSuffix(strings.TrimSuffix(s, ".gz"), rawSuffix)
	t, err := time.Parse(stampLayout, s)
	return t, err == nil
}

// needsWork reports whether a rotated file still needs compression or upload.
func (e *Exporter) needsWork(name string) bool {
	if e.opts.Gzip && strings.HasSuffix(name, rawSuffix) {
		return true
	}
	return e.opts.Uploader != nil && !e.uploaded(name)
}

// uploaded reports whether name carries an upload marker.
func (e *Exporter) uploaded(name string) bool {
	_, err := os.Stat(filepath.Join(e.markDir, name))
	return err == nil
}

// Write appends ev as one JSON line, rotating first if the line would take
// the current file past MaxBytes. After a failed write the file is rotated,
// so a torn line ends its file.
func (e *Exporter) Write(ev *Event) error {
	if ev == nil {
		return errors.New("audit: nil event")
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: marshal event %s: %w", ev.EventID, err)
	}
	line = append(line, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.f != nil && e.size > 0 && e.size+int64(len(line)) > e.opts.MaxBytes {
		if err := e.rotateLocked(); err != nil {
			return err
		}
	}
	if e.f == nil {
		if err := e.openLocked(); err != nil {
			return err
		}
	}
	n, err := e.f.Write(line)
	e.size += int64(n)
	if err != nil {
		return errors.Join(fmt.Errorf("audit: write %s: %w", e.name, err), e.rotateLocked())
	}
	return nil
}

// Sync fsyncs the current file, if any.
func (e *Exporter) Sync() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f == nil {
		return nil
	}
	return e.f.Sync()
}

// Rotate closes the current file and hands it to the background work
// (compression, upload, retention); the next Write starts a new file. It
// does nothing when no event was written since the last rotation. Use Flush
// to wait for the background work.
func (e *Exporter) Rotate() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return e.rotateLocked()
}

// Flush waits until every file rotated so far is compressed and uploaded
// (as configured), or until ctx is done.
func (e *Exporter) Flush(ctx context.Context) error {
	e.qmu.Lock()
	idle := e.idle
	e.qmu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close rotates the current file, waits for the background work as Flush
// does, and stops it. Files whose work did not finish before ctx was done
// stay in Dir for the next Exporter. Later calls return ErrClosed.
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.closed = true
	rerr := e.rotateLocked()
	e.mu.Unlock()
	ferr := e.Flush(ctx)
	e.cancel()
	<-e.done
	return errors.Join(rerr, ferr)
}

// Prune applies retention now: it deletes rotated files older than MaxAge
// and those beyond the newest MaxFiles, except files that still wait for
// compression or upload. The Exporter also prunes after each rotated file's
// background work and when it starts.
func (e *Exporter) Prune() error {
	if e.opts.MaxAge <= 0 && e.opts.MaxFiles <= 0 {
		return nil
	}
	// Holding mu keeps a new active file from appearing mid-prune.
	e.mu.Lock()
	defer e.mu.Unlock()
	entries, err := os.ReadDir(e.opts.Dir)
	if err != nil {
		return fmt.Errorf("audit: prune: %w", err)
	}
	var names []string
	for _, ent := range entries {
		if n := ent.Name(); isLogName(n) && n != e.name && ent.Type().IsRegular() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	e.qmu.Lock()
	pending := make(map[string]bool, len(e.pending))
	for n := range e.pending {
		pending[n] = true
	}
	e.qmu.Unlock()
	now := e.opts.Now()
	var errs []error
	for i, n := range names {
		beyond := e.opts.MaxFiles > 0 && i < len(names)-e.opts.MaxFiles
		old := false
		if e.opts.MaxAge > 0 && !beyond {
			if info, err := os.Stat(filepath.Join(e.opts.Dir, n)); err == nil {
				old = now.Sub(info.ModTime()) > e.opts.MaxAge
			}
		}
		if !beyond && !old || pending[n] || e.opts.Uploader != nil && !e.uploaded(n) {
			continue
		}
		if err := os.Remove(filepath.Join(e.opts.Dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("audit: prune: %w", err))
			continue
		}
		if e.opts.Uploader != nil {
			_ = os.Remove(filepath.Join(e.markDir, n))
		}
	}
	return errors.Join(errs...)
}

// openLocked creates the next file. e.mu is held.
func (e *Exporter) openLocked() error {
	ts := e.opts.Now().UTC()
	if !ts.After(e.last) {
		ts = e.last.Add(time.Nanosecond)
	}
	for range maxNameTries {
		name := filePrefix + ts.Format(stampLayout) + rawSuffix
		path := filepath.Join(e.opts.Dir, name)
		if _, err := os.Lstat(path + ".gz"); err == nil {
			ts = ts.Add(time.Nanosecond)
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
		if errors.Is(err, fs.ErrExist) {
			ts = ts.Add(time.Nanosecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		e.f, e.name, e.size, e.last = f, name, 0, ts
		syncDir(e.opts.Dir)
		return nil
	}
	return fmt.Errorf("audit: no free file name near %s", ts.Format(stampLayout))
}

// rotateLocked closes the active file and queues it. e.mu is held.
func (e *Exporter) rotateLocked() error {
	if e.f == nil {
		return nil
	}
	serr := e.f.Sync()
	cerr := e.f.Close()
	name := e.name
	e.f, e.name, e.size = nil, "", 0
	e.enqueue(name)
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", name, err)
	}
	return nil
}

// enqueue adds a rotated file to the background queue.
func (e *Exporter) enqueue(name string) {
	e.qmu.Lock()
	if len(e.pending) == 0 {
		e.idle = make(chan struct{})
	}
	e.queue = append(e.queue, name)
	e.pending[name] = true
	e.qmu.Unlock()
	e.nudge()
}

// nudge wakes the worker.
func (e *Exporter) nudge() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// addPending marks name as in process.
func (e *Exporter) addPending(name string) {
	e.qmu.Lock()
	e.pending[name] = true
	e.qmu.Unlock()
}

// head returns the oldest queued file.
func (e *Exporter) head() (string, bool) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if len(e.queue) == 0 {
		return "", false
	}
	return e.queue[0], true
}

// finish removes the head of the queue and its names from pending.
func (e *Exporter) finish(names ...string) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	e.queue = e.queue[1:]
	for _, n := range names {
		delete(e.pending, n)
	}
	if len(e.pending) == 0 {
		close(e.idle)
	}
}

// report passes a background error to OnError.
func (e *Exporter) report(err error) {
	if err != nil && e.opts.OnError != nil {
		e.opts.OnError(err)
	}
}

// run is the background worker: it processes queued files in order and
// prunes.
func (e *Exporter) run() {
	defer close(e.done)
	e.report(e.Prune())
	for {
		name, ok := e.head()
		if !ok {
			select {
			case <-e.wake:
				continue
			case <-e.ctx.Done():
				return
			}
		}
		final, err := e.process(name)
		if err != nil { // stopped by Close
			return
		}
		e.finish(name, final)
		e.report(e.Prune())
	}
}

// process compresses and uploads one rotated file, retrying with backoff
// until it succeeds or the Exporter stops. It returns the file's final
// name.
func (e *Exporter) process(name string) (string, error) {
	delay := e.opts.RetryDelay
	for {
		final, err := e.processOnce(name)
		if err == nil {
			return final, nil
		}
		if e.ctx.Err() != nil {
			return final, e.ctx.Err()
		}
		e.report(err)
		if errors.Is(err, fs.ErrNotExist) {
			return final, nil // deleted behind our back: nothing left to do
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			return final, e.ctx.Err()
		}
		delay = min(2*delay, MaxRetryDelay)
		if strings.HasSuffix(final, gzSuffix) {
			name = final // compressed already; only the upload is left
		}
	}
}

// processOnce does the remaining work on a rotated file once.
func (e *Exporter) processOnce(name string) (string, error) {
	if e.opts.Gzip && strings.HasSuffix(name, rawSuffix) {
		gz, err := e.compress(name)
		if err != nil {
			return name, err
		}
		name = gz
	}
	if e.opts.Uploader != nil && !e.uploaded(name) {
		if err := e.upload(name); err != nil {
			return name, err
		}
	}
	return name, nil
}

// compress gzips a rotated file to <name>.gz, keeping its modification
// time, and removes the original.
func (e *Exporter) compress(name string) (gzName string, err error) {
	dir := e.opts.Dir
	src, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("audit: compress: %w", err)
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return "", fmt.Errorf("audit: compress: %w", err)
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("audit: compress: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := gzip.NewWriter(tmp)
	zw.Name = name
	zw.ModTime = info.ModTime()
	if _, err = io.Copy(zw, src); err != nil {
		return "", fmt.Errorf("audit: compress %s: %w", name, err)
	}
	if err = zw.Close(); err != nil {
		return "", fmt.Errorf("audit: compress %s: %w", name, err)
	}
	if err = tmp.Sync(); err != nil {
		return "", fmt.Errorf("audit: compress %s: %w", name, err)
	}
	if err = tmp.Close(); err != nil {
		return "", fmt.Errorf("audit: compress %s: %w", name, err)
	}
	if err = os.Chtimes(tmp.Name(), info.ModTime(), info.ModTime()); err != nil {
		return "", fmt.Errorf("audit: compress %s: %w", name, err)
	}
	gzName = name + ".gz"
	e.addPending(gzName) // before it appears, so Prune leaves it alone
	if err = os.Rename(tmp.Name(), filepath.Join(dir, gzName)); err != nil {
		return "", fmt.Errorf("audit: compress %s: %w", name, err)
	}
	syncDir(dir)
	if rerr := os.Remove(filepath.Join(dir, name)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		e.report(fmt.Errorf("audit: compress %s: %w", name, rerr))
	}
	return gzName, nil
}

// upload hands a finished file to the Uploader and marks it uploaded.
func (e *Exporter) upload(name string) error {
	f, err := os.Open(filepath.Join(e.opts.Dir, name))
	if err != nil {
		return fmt.Errorf("audit: upload: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: upload: %w", err)
	}
	if err := e.opts.Uploader.Upload(e.ctx, name, f, info.Size()); err != nil {
		return fmt.Errorf("audit: upload %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(e.markDir, name), nil, 0o640); err != nil {
		return fmt.Errorf("audit: mark %s uploaded: %w", name, err)
	}
	return nil
}

// syncDir fsyncs a directory so that creations and renames in it are
// durable; errors are ignored (some file systems refuse it).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
