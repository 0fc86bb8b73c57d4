package resultstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const testBucket = "perfleet-results"

// hermeticAWSEnv keeps the SDK's config loading away from the user's files
// and the instance metadata service.
func hermeticAWSEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
}

// request is one request the fake S3 server saw.
type request struct {
	method string
	query  string
	header http.Header
}

// fakeS3 is gofakes3 on a loopback listener, recording request headers.
type fakeS3 struct {
	url string
	mu  sync.Mutex
	log []request
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	hermeticAWSEnv(t)
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	f := &fakeS3{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.log = append(f.log, request{method: r.Method, query: r.URL.RawQuery, header: r.Header.Clone()})
		f.mu.Unlock()
		faker.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// open returns a store for s3://bucket/prefix on the fake server.
func (f *fakeS3) open(t *testing.T, location string, opts Options) Store {
	t.Helper()
	opts.Region = "us-east-1"
	opts.Endpoint = f.url
	opts.Credentials = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	if opts.PartSize == 0 {
		opts.PartSize = MinPartSize
	}
	opts.Concurrency = 2
	s, err := Open(context.Background(), location, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// creates returns the recorded requests that create objects: PutObject and
// CreateMultipartUpload.
func (f *fakeS3) creates() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.log {
		if r.method == http.MethodPut && !strings.Contains(r.query, "partNumber") ||
			r.method == http.MethodPost && strings.Contains(r.query, "uploads") {
			out = append(out, r)
		}
	}
	return out
}

// count returns how many requests had method and a query containing q.
func (f *fakeS3) count(method, q string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.log {
		if r.method == method && strings.Contains(r.query, q) {
			n++
		}
	}
	return n
}

func TestS3StoreContract(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t, "s3://"+testBucket+"/runs", Options{})
	testStoreContract(t, s)
	creates := f.creates()
	if len(creates) == 0 {
		t.Fatal("no uploads recorded")
	}
	for _, r := range creates {
		if got := r.header.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
			t.Errorf("%s ?%s: X-Amz-Server-Side-Encryption = %q, want AES256", r.method, r.query, got)
		}
	}
	// A bucket-rooted store sees the prefix as a directory.
	root := f.open(t, "s3://"+testBucket, Options{})
	objs, err := root.List(context.Background(), "runs")
	if err != nil || len(objs) != 2 || objs[0].Key != "runs/job-1.json" {
		t.Errorf("List(runs) from bucket root = %v, %v", keys(objs), err)
	}
}

func TestS3MultipartUploadWithKMS(t *testing.T) {
	f := newFakeS3(t)
	const keyID = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	s := f.open(t, "s3://"+testBucket+"/runs", Options{PartSize: 5 << 20, KMSKeyID: keyID})
	data := make([]byte, 11<<20)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(data)
	key := "job-1/profile_export.jsonl"
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), ""); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, s, key); got != string(data) {
		t.Fatalf("read back %d bytes, not equal to the %d written", len(got), len(data))
	}
	if n := f.count(http.MethodPost, "uploads"); n != 1 {
		t.Errorf("CreateMultipartUpload calls = %d, want 1", n)
	}
	if n := f.count(http.MethodPut, "partNumber"); n != 3 {
		t.Errorf("UploadPart calls = %d, want 3 (11 MiB in 5 MiB parts)", n)
	}
	for _, r := range f.creates() {
		if got := r.header.Get("X-Amz-Server-Side-Encryption"); got != "aws:kms" {
			t.Errorf("X-Amz-Server-Side-Encryption = %q, want aws:kms", got)
		}
		if got := r.header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != keyID {
			t.Errorf("KMS key ID header = %q, want %q", got, keyID)
		}
	}
}

func TestS3WriterStreams(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t, "s3://"+testBucket+"/runs", Options{})
	ctx := context.Background()
	w, err := s.Writer(ctx, "job-1/profile_export.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	line := []byte(`{"request_latency_ms":12.5,"output_tokens":128}` + "\n")
	for want.Len() < 6<<20 { // more than one part
		want.Write(line)
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, s, "job-1/profile_export.jsonl"); got != want.String() {
		t.Errorf("streamed object differs: %d bytes, want %d", len(got), want.Len())
	}
	if n := f.count(http.MethodPost, "uploadId"); n != 1 {
		t.Errorf("CompleteMultipartUpload calls = %d, want 1", n)
	}
	for _, r := range f.creates() {
		if r.header.Get("X-Amz-Server-Side-Encryption") != "AES256" {
			t.Errorf("streamed upload without SSE header: %s ?%s", r.method, r.query)
		}
		if r.method == http.MethodPost && r.header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
		}
	}
}

func TestS3WriterAbortLeavesNothing(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t, "s3://"+testBucket+"/runs", Options{})
	ctx := context.Background()
	for _, size := range []int{1 << 10, 6 << 20} { // single part; multipart under way
		w, err := s.Writer(ctx, "job-1/aborted.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if err := w.CloseWithError(errors.New("run failed")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "job-1/aborted.jsonl"); !errors.Is(err, ErrNotFound) {
			t.Errorf("size %d: Get after abort = %v, want ErrNotFound", size, err)
		}
	}
	if n := f.count(http.MethodDelete, "uploadId"); n != 1 {
		t.Errorf("AbortMultipartUpload calls = %d, want 1", n)
	}
}

func TestS3MissingBucket(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t, "s3://no-such-bucket/runs", Options{})
	ctx := context.Background()
	err := s.Put(ctx, "job-1/x.json", strings.NewReader("{}"), 2, "")
	if !errors.Is(err, ErrBucketNotFound) || !strings.Contains(err.Error(), `s3 bucket "no-such-bucket"`) {
		t.Errorf("Put err = %v, want ErrBucketNotFound naming the bucket", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, ErrBucketNotFound) {
		t.Errorf("List err = %v", err)
	}
	if _, err := s.Get(ctx, "job-1/x.json"); !errors.Is(err, ErrBucketNotFound) {
		t.Errorf("Get err = %v", err)
	}
	w, err := s.Writer(ctx, "job-1/x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "{}\n")
	if err := w.Close(); !errors.Is(err, ErrBucketNotFound) {
		t.Errorf("Writer.Close err = %v", err)
	}
}
