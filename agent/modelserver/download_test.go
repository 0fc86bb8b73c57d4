package modelserver

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// fakeS3 is a gofakes3 server on loopback with a client that counts GETs
// and can fail chosen keys.
type fakeS3 struct {
	*s3.Client
	backend *s3mem.Backend
	gets    atomic.Int64
	fail    atomic.Value // func(key string) error
}

// GetObject counts the request and applies the failure hook.
func (f *fakeS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.gets.Add(1)
	if fail, _ := f.fail.Load().(func(string) error); fail != nil {
		if err := fail(aws.ToString(in.Key)); err != nil {
			return nil, err
		}
	}
	return f.Client.GetObject(ctx, in, opts...)
}

// put stores an object through the backend.
func (f *fakeS3) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := f.backend.PutObject("models", key, map[string]string{}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatal(err)
	}
}

// newFakeS3 starts gofakes3 with a "models" bucket.
func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("models"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server()) // 127.0.0.1
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "test"}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 &http.Client{Transport: &http.Transport{Proxy: nil}},
	})
	return &fakeS3{Client: client, backend: backend}
}

// weights is a body larger than one download part (5 MiB).
var weights = bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16)

// putModel stores a small model under llama/ and a neighbour under llama-2/.
func putModel(t *testing.T, f *fakeS3) {
	f.put(t, "llama/config.json", []byte(`{"arch":"llama"}`))
	f.put(t, "llama/weights/model-00001.safetensors", weights)
	f.put(t, "llama-2/config.json", []byte(`{"arch":"other"}`))
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModelCacheFetchAndReuse(t *testing.T) {
	f := newFakeS3(t)
	putModel(t, f)
	c := NewModelCache(t.TempDir(), f)
	ctx := context.Background()
	dir, err := c.Fetch(ctx, "s3://models/llama")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "config.json")); string(got) != `{"arch":"llama"}` {
		t.Fatalf("config %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "weights", "model-00001.safetensors")); !bytes.Equal(got, weights) {
		t.Fatalf("weights differ (%d bytes)", len(got))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("model dir has %d entries, want config.json and weights/ only (llama-2 is a neighbour)", len(entries))
	}
	gets := f.gets.Load()
	again, err := c.Fetch(ctx, "s3://models/llama/")
	if err != nil || again != dir {
		t.Fatalf("second fetch %q %v, want %q", again, err, dir)
	}
	if n := f.gets.Load(); n != gets {
		t.Fatalf("second fetch with the same ETags sent %d GETs", n-gets)
	}

	// A changed object has a new ETag, hence a new entry.
	f.put(t, "llama/config.json", []byte(`{"arch":"llama","v":2}`))
	changed, err := c.Fetch(ctx, "s3://models/llama")
	if err != nil || changed == dir {
		t.Fatalf("after a change: %q %v", changed, err)
	}
	if got := readFile(t, filepath.Join(changed, "config.json")); string(got) != `{"arch":"llama","v":2}` {
		t.Fatalf("config %q", got)
	}

	// One object is a file in its own entry.
	file, err := c.Fetch(ctx, "s3://models/llama-2/config.json")
	if err != nil || filepath.Base(file) != "config.json" || string(readFile(t, file)) != `{"arch":"other"}` {
		t.Fatalf("single object: %q %v", file, err)
	}
}

func TestModelCacheNeverKeepsPartialDownloads(t *testing.T) {
	f := newFakeS3(t)
	putModel(t, f)
	root := t.TempDir()
	c := NewModelCache(root, f)
	ctx := context.Background()
	boom := errors.New("connection reset mid-download")
	f.fail.Store(func(key string) error {
		if strings.Contains(key, "weights") {
			return boom
		}
		return nil
	})
	if _, err := c.Fetch(ctx, "s3://models/llama"); !errors.Is(err, ErrModelSource) || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want ErrModelSource wrapping the GET error", err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "s3")); len(left) != 0 {
		t.Fatalf("a failed download left %d entries: %v", len(left), left[0].Name())
	}
	f.fail.Store(func(string) error { return nil })
	dir, err := c.Fetch(ctx, "s3://models/llama")
	if err != nil {
		t.Fatal(err)
	}
	hash := filepath.Base(filepath.Dir(dir))

	// A crash leaves a partial directory (and maybe a bare entry without a
	// manifest); a fresh cache never uses either.
	root2 := t.TempDir()
	partial := filepath.Join(root2, "s3", ".partial-"+hash+"-crashed", "model")
	bare := filepath.Join(root2, "s3", hash, "model")
	for _, d := range []string{partial, bare} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.json"), []byte("trunc"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir2, err := NewModelCache(root2, f).Fetch(ctx, "s3://models/llama")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir2, "config.json")); string(got) != `{"arch":"llama"}` {
		t.Fatalf("used a partial entry: %q", got)
	}
	if _, err := os.Stat(filepath.Dir(partial)); !os.IsNotExist(err) {
		t.Fatalf("stale partial directory still there: %v", err)
	}
}

func TestModelCacheErrors(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	for _, uri := range []string{"s3://models/absent", "s3:///key", "s3://"} {
		if _, err := NewModelCache(t.TempDir(), f).Fetch(ctx, uri); !errors.Is(err, ErrModelSource) {
			t.Errorf("%s: err = %v", uri, err)
		}
	}
	if _, err := NewModelCache(t.TempDir(), nil).Fetch(ctx, "s3://models/x"); !errors.Is(err, ErrModelSource) {
		t.Errorf("no client: err = %v", err)
	}
	f.put(t, "evil/../../escape", []byte("x"))
	if _, err := NewModelCache(t.TempDir(), f).Fetch(ctx, "s3://models/evil"); !errors.Is(err, ErrModelSource) {
		t.Errorf("escaping key: err = %v", err)
	}
}

func TestModelCacheResolve(t *testing.T) {
	c := NewModelCache(t.TempDir(), nil)
	ctx := context.Background()
	dir := t.TempDir()
	if got, err := c.Resolve(ctx, "file://"+dir); err != nil || got != dir {
		t.Fatalf("file: %q %v", got, err)
	}
	if _, err := c.Resolve(ctx, "file://"+dir+"/missing"); !errors.Is(err, ErrModelSource) {
		t.Fatalf("missing file: %v", err)
	}
	if got, err := c.Resolve(ctx, "meta-llama/Llama-3.1-8B"); err != nil || got != "meta-llama/Llama-3.1-8B" {
		t.Fatalf("hub ID: %q %v", got, err)
	}
}
