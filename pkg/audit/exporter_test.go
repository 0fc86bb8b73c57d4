package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// makeEvents returns n events of roughly the same size.
func makeEvents(n int) []*Event {
	evs := make([]*Event, n)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := range evs {
		ev := NewEvent(t0.Add(time.Duration(i) * time.Second))
		ev.EventSource = "perfleet.amazonaws.com"
		ev.EventName = "DescribeAIBenchmarkJob"
		ev.AWSRegion = "us-west-2"
		ev.RecipientAccountID = "123456789012"
		ev.ReadOnly = true
		ev.UserIdentity.ARN = "arn:aws:iam::123456789012:user/alice"
		ev.RequestParameters = json.RawMessage(fmt.Sprintf(`{"aiBenchmarkJobName":"job-%06d"}`, i))
		evs[i] = ev
	}
	return evs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newExporter(t *testing.T, opts ExporterOptions) *Exporter {
	t.Helper()
	e, err := NewExporter(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Uploads a test leaves failing would keep Close waiting.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

// logFiles returns the audit files in dir, sorted by name.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if isLogName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// readEventIDs reads the event IDs of an audit file's content, gunzipping
// a .gz name.
func readEventIDs(t *testing.T, name string, r io.Reader) []string {
	t.Helper()
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer zr.Close()
		r = zr
	}
	var ids []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: bad line %q: %v", name, sc.Text(), err)
		}
		ids = append(ids, ev.EventID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// dirEventIDs concatenates the event IDs of every audit file in dir, in
// file-name order.
func dirEventIDs(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	for _, n := range logFiles(t, dir) {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, readEventIDs(t, n, f)...)
		f.Close()
	}
	return ids
}

func eventIDs(evs []*Event) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.EventID
	}
	return ids
}

// recordingUploader records uploads; it fails the first failures calls.
type recordingUploader struct {
	mu       sync.Mutex
	failures int
	calls    int
	counts   map[string]int
	data     map[string][]byte
}

func (u *recordingUploader) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls++
	if u.calls <= u.failures {
		return errors.New("injected upload failure")
	}
	if int64(len(b)) != size {
		return fmt.Errorf("size %d, read %d", size, len(b))
	}
	if u.counts == nil {
		u.counts, u.data = map[string]int{}, map[string][]byte{}
	}
	u.counts[name]++
	u.data[name] = b
	return nil
}

func (u *recordingUploader) snapshot() (map[string]int, map[string][]byte, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps(u.counts), u.data, u.calls
}

func maps(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestExporterRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock() // never advances: names must still be unique and ordered
	const maxBytes = 2000
	e := newExporter(t, ExporterOptions{Dir: dir, MaxBytes: maxBytes, Now: clock.Now})
	evs := makeEvents(60)
	for _, ev := range evs {
		if err := e.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("want several files, got %v", files)
	}
	for _, n := range files {
		if !strings.HasPrefix(n, "audit-20260506T070809.") || !strings.HasSuffix(n, "Z.jsonl") {
			t.Errorf("unexpected name %s", n)
		}
		info, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > maxBytes || info.Size() == 0 {
			t.Errorf("%s has %d bytes, limit %d", n, info.Size(), maxBytes)
		}
	}
	if got, want := dirEventIDs(t, dir), eventIDs(evs); !slices.Equal(got, want) {
		t.Errorf("events across files differ:\n got %v\nwant %v", got, want)
	}
	if err := e.Write(evs[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if err := e.Close(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

func TestExporterOversizedEvent(t *testing.T) {
	dir := t.TempDir()
	e := newExporter(t, ExporterOptions{Dir: dir, MaxBytes: 100})
	evs := makeEvents(3) // each larger than 100 bytes
	for _, ev := range evs {
		if err := e.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if files := logFiles(t, dir); len(files) != 3 {
		t.Errorf("want one file per oversized event, got %v", files)
	}
	if got := dirEventIDs(t, dir); !slices.Equal(got, eventIDs(evs)) {
		t.Errorf("got %v", got)
	}
}

func TestExporterGzipUploadsOncePerFile(t *testing.T) {
	dir := t.TempDir()
	up := &recordingUploader{}
	e := newExporter(t, ExporterOptions{Dir: dir, MaxBytes: 1500, Gzip: true, Uploader: up})
	evs := makeEvents(40)
	for i, ev := range evs {
		if err := e.Write(ev); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			if err := e.Rotate(); err != nil {
				t.Fatal(err)
			}
			if err := e.Rotate(); err != nil { // nothing written: no-op
				t.Fatal(err)
			}
		}
	}
	if err := e.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, dir)
	counts, data, calls := up.snapshot()
	if len(files) < 3 || len(counts) != len(files) || calls != len(files) {
		t.Fatalf("files %v, uploads %v (%d calls)", files, counts, calls)
	}
	var ids []string
	for _, n := range files {
		if !strings.HasSuffix(n, ".jsonl.gz") {
			t.Errorf("%s is not compressed", n)
		}
		if counts[n] != 1 {
			t.Errorf("%s uploaded %d times", n, counts[n])
		}
		local, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(local, data[n]) {
			t.Errorf("%s: uploaded bytes differ from the local file", n)
		}
		if _, err := os.Stat(filepath.Join(dir, markDirName, n)); err != nil {
			t.Errorf("%s: no upload marker: %v", n, err)
		}
		ids = append(ids, readEventIDs(t, n, bytes.NewReader(data[n]))...)
	}
	if !slices.Equal(ids, eventIDs(evs)) {
		t.Errorf("uploaded events differ:\n got %v\nwant %v", ids, eventIDs(evs))
	}

	// A new Exporter on the same directory uploads nothing again.
	e2 := newExporter(t, ExporterOptions{Dir: dir, Gzip: true, Uploader: up})
	if err := e2.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, _, calls2 := up.snapshot(); calls2 != calls {
		t.Errorf("restart re-uploaded: %d calls, was %d", calls2, calls)
	}
}

func TestExporterRetriesFailedUploads(t *testing.T) {
	dir := t.TempDir()
	up := &recordingUploader{failures: 2}
	var mu sync.Mutex
	var errs []error
	e := newExporter(t, ExporterOptions{
		Dir: dir, Uploader: up, RetryDelay: time.Millisecond,
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
	})
	for _, ev := range makeEvents(3) {
		if err := e.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	counts, _, calls := up.snapshot()
	if calls != 3 || len(counts) != 1 {
		t.Errorf("calls %d, uploads %v; want 2 failures then 1 success", calls, counts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 2 {
		t.Errorf("OnError got %v", errs)
	}
}

func TestExporterCloseGivesUpOnStuckUpload(t *testing.T) {
	dir := t.TempDir()
	up := &recordingUploader{failures: 1 << 30}
	e := newExporter(t, ExporterOptions{Dir: dir, Uploader: up, RetryDelay: time.Millisecond})
	if err := e.Write(makeEvents(1)[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want deadline exceeded", err)
	}
	if files := logFiles(t, dir); len(files) != 1 {
		t.Errorf("the unuploaded file must stay: %v", files)
	}
}

func TestExporterRetentionMaxFiles(t *testing.T) {
	dir := t.TempDir()
	e := newExporter(t, ExporterOptions{Dir: dir, MaxFiles: 3, Gzip: true})
	evs := makeEvents(7)
	for _, ev := range evs {
		if err := e.Write(ev); err != nil {
			t.Fatal(err)
		}
		if err := e.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := e.Prune(); err != nil { // Close's last rotation is pruned by now
		t.Fatal(err)
	}
	if got := dirEventIDs(t, dir); !slices.Equal(got, eventIDs(evs[4:])) {
		t.Errorf("kept %v, want the newest three %v", got, eventIDs(evs[4:]))
	}
}

func TestExporterRetentionKeepsUnuploaded(t *testing.T) {
	dir := t.TempDir()
	up := &recordingUploader{failures: 1 << 30}
	e := newExporter(t, ExporterOptions{Dir: dir, MaxFiles: 1, Uploader: up, RetryDelay: time.Hour})
	for _, ev := range makeEvents(3) {
		if err := e.Write(ev); err != nil {
			t.Fatal(err)
		}
		if err := e.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Prune(); err != nil {
		t.Fatal(err)
	}
	if files := logFiles(t, dir); len(files) != 3 {
		t.Errorf("unuploaded files were deleted: %v", files)
	}
}

func TestExporterRetentionMaxAge(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	e := newExporter(t, ExporterOptions{Dir: dir, MaxAge: time.Hour, Now: clock.Now})
	evs := makeEvents(4)
	for _, ev := range evs {
		if err := e.Write(ev); err != nil {
			t.Fatal(err)
		}
		if err := e.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, dir)
	if len(files) != 4 {
		t.Fatalf("files %v", files)
	}
	// The first two files were last written two hours before the clock.
	clock.Advance(10 * time.Hour)
	now := clock.Now()
	for i, n := range files {
		mtime := now.Add(-10 * time.Minute)
		if i < 2 {
			mtime = now.Add(-2 * time.Hour)
		}
		if err := os.Chtimes(filepath.Join(dir, n), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// The active file is never pruned, whatever its age.
	if err := e.Write(makeEvents(1)[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.Prune(); err != nil {
		t.Fatal(err)
	}
	got := logFiles(t, dir)
	if len(got) != 3 || !slices.Equal(got[:2], files[2:]) {
		t.Errorf("after prune %v, want %v plus the active file", got, files[2:])
	}
}

func TestExporterRecoversLeftovers(t *testing.T) {
	dir := t.TempDir()
	evs := makeEvents(4)
	writeLines := func(name string, evs []*Event, gz bool) {
		var buf bytes.Buffer
		var w io.Writer = &buf
		var zw *gzip.Writer
		if gz {
			zw = gzip.NewWriter(&buf)
			w = zw
		}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			w.Write(append(b, '\n'))
		}
		if zw != nil {
			zw.Close()
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// A compressed file never uploaded, a raw file (the last active file of
	// a crashed process), a raw file whose compression finished, and an
	// interrupted compression.
	writeLines("audit-20260101T000000.000000000Z.jsonl.gz", evs[:1], true)
	writeLines("audit-20260101T000001.000000000Z.jsonl", evs[1:2], false)
	writeLines("audit-20260101T000002.000000000Z.jsonl", evs[2:3], false)
	writeLines("audit-20260101T000002.000000000Z.jsonl.gz", evs[2:3], true)
	writeLines(tmpPrefix+"123", evs, false)

	up := &recordingUploader{}
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} // behind the leftovers
	e := newExporter(t, ExporterOptions{Dir: dir, Gzip: true, Uploader: up, Now: clock.Now})
	if err := e.Write(evs[3]); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, dir)
	counts, _, _ := up.snapshot()
	if len(files) != 4 || len(counts) != 4 {
		t.Fatalf("files %v, uploads %v", files, counts)
	}
	for _, n := range files {
		if counts[n] != 1 || !strings.HasSuffix(n, ".gz") {
			t.Errorf("%s: uploaded %d times", n, counts[n])
		}
	}
	if got := dirEventIDs(t, dir); !slices.Equal(got, eventIDs(evs)) {
		t.Errorf("events %v, want %v", got, eventIDs(evs))
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
}

func TestExporterConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	up := &recordingUploader{}
	e := newExporter(t, ExporterOptions{Dir: dir, MaxBytes: 4096, Gzip: true, Uploader: up, MaxFiles: 1000})
	const writers, per = 4, 100
	evs := makeEvents(writers * per)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := e.Write(evs[w*per+i]); err != nil {
					t.Error(err)
					return
				}
				if i%37 == 0 {
					if err := e.Rotate(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	got := dirEventIDs(t, dir)
	want := eventIDs(evs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got %d events, want %d", len(got), len(want))
	}
	counts, _, _ := up.snapshot()
	for _, n := range logFiles(t, dir) {
		if counts[n] != 1 {
			t.Errorf("%s uploaded %d times", n, counts[n])
		}
	}
}

func TestNewExporterValidates(t *testing.T) {
	if _, err := NewExporter(ExporterOptions{}); err == nil {
		t.Error("missing Dir accepted")
	}
	if _, err := NewExporter(ExporterOptions{Dir: t.TempDir(), MaxFiles: -1}); err == nil {
		t.Error("negative MaxFiles accepted")
	}
}
