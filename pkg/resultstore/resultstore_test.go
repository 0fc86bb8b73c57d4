package resultstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestOpenLocation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		loc     string
		wantErr string // substring; empty means success
	}{
		{loc: "http://x", wantErr: `output location "http://x": must be s3://bucket/prefix or file:///absolute/path`},
		{loc: "", wantErr: "must be s3://bucket/prefix or file:///absolute/path"},
		{loc: "results/job-1", wantErr: "must be s3://"},
		{loc: "file://relative/dir", wantErr: "three slashes"},
		{loc: "file:relative", wantErr: "three slashes"},
		{loc: "file:///tmp/x?y=1", wantErr: "query"},
		{loc: "s3://", wantErr: "missing bucket"},
		{loc: "s3:///prefix", wantErr: "missing bucket"},
		{loc: "s3://Bad_Bucket/p", wantErr: "lowercase"},
		{loc: "s3://ab/p", wantErr: "3 to 63"},
		{loc: "s3://bucket/a/../b", wantErr: `".." segment`},
		{loc: "s3://bucket/a//b", wantErr: "empty path segment"},
		{loc: "s3://user@bucket/p", wantErr: "user info"},
		{loc: "file://" + t.TempDir() + "/results"},
		{loc: "file://localhost" + t.TempDir()},
	} {
		_, err := Open(ctx, tc.loc, Options{})
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("Open(%q): %v", tc.loc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Open(%q) error = %v, want it to contain %q", tc.loc, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidLocation) {
			t.Errorf("Open(%q) error %v does not wrap ErrInvalidLocation", tc.loc, err)
		}
	}
}

func TestOpenS3Options(t *testing.T) {
	hermeticAWSEnv(t)
	_, err := Open(context.Background(), "s3://bucket/p", Options{Region: "us-east-1", PartSize: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "below the S3 minimum") {
		t.Errorf("small part size: err = %v", err)
	}
	s, err := Open(context.Background(), "s3://bucket/runs/", Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.URI("job-1/MANIFEST.txt"); got != "s3://bucket/runs/job-1/MANIFEST.txt" {
		t.Errorf("URI = %q", got)
	}
}

func TestValidateKey(t *testing.T) {
	for _, tc := range []struct {
		key     string
		wantErr string
	}{
		{key: "job-1/concurrency_8/profile_export_aiperf.json"},
		{key: "MANIFEST.txt"},
		{key: "job 1/plots/ttft.png"},
		{key: ".hidden/x"},
		{key: "", wantErr: "empty key"},
		{key: "a/../b", wantErr: `".." segment`},
		{key: "..", wantErr: `".." segment`},
		{key: "./a", wantErr: `"." segment`},
		{key: "/etc/passwd", wantErr: "absolute path"},
		{key: "a//b", wantErr: "empty path segment"},
		{key: "a/", wantErr: "empty path segment"},
		{key: "a\x00b", wantErr: "NUL byte"},
		{key: "a\nb", wantErr: "control character"},
		{key: `a\b`, wantErr: "backslash"},
		{key: "a/\xff", wantErr: "UTF-8"},
		{key: strings.Repeat("k", 1025), wantErr: "longer than 1024"},
		{key: "a/.perfleet-tmp-x", wantErr: "reserved prefix"},
	} {
		err := ValidateKey(tc.key)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateKey(%q) = %v", tc.key, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey mentioning %q", tc.key, err, tc.wantErr)
		}
	}
}

func TestCheckedReader(t *testing.T) {
	ctx := context.Background()
	read := func(size int64) error {
		_, err := io.ReadAll(newCheckedReader(ctx, strings.NewReader("hello"), size))
		return err
	}
	if err := read(5); err != nil {
		t.Errorf("exact size: %v", err)
	}
	if err := read(-1); err != nil {
		t.Errorf("unknown size: %v", err)
	}
	for _, size := range []int64{4, 6} {
		if err := read(size); !errors.Is(err, ErrSizeMismatch) {
			t.Errorf("size %d: err = %v, want ErrSizeMismatch", size, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := io.ReadAll(newCheckedReader(cctx, strings.NewReader("x"), -1)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// testStoreContract exercises the behaviour every Store shares.
func testStoreContract(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	files := map[string]string{
		"job-1/concurrency_8/profile_export_aiperf.json": `{"request_latency":{}}`,
		"job-1/concurrency_8/profile_export.jsonl":       "{}\n{}\n",
		"job-1/MANIFEST.txt":                             "old\n",
		"job-10/profile_export_aiperf.json":              "{}",
		"job-1.json":                                     "{}",
	}
	for k, v := range files {
		if err := s.Put(ctx, k, strings.NewReader(v), int64(len(v)), ""); err != nil {
			t.Fatalf("Put(%s): %v", k, err)
		}
	}
	for k, v := range files {
		if got := readKey(t, s, k); got != v {
			t.Errorf("Get(%s) = %q, want %q", k, got, v)
		}
	}
	// Overwrite.
	if err := s.Put(ctx, "job-1/MANIFEST.txt", strings.NewReader("new\n"), -1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, s, "job-1/MANIFEST.txt"); got != "new\n" {
		t.Errorf("after overwrite: %q", got)
	}
	if _, err := s.Get(ctx, "job-1/missing.json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) err = %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "job-1/short", strings.NewReader("abc"), 10, ""); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("short Put err = %v, want ErrSizeMismatch", err)
	}
	if _, err := s.Get(ctx, "job-1/short"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed Put left an object: %v", err)
	}
	if err := s.Put(ctx, "../escape", strings.NewReader(""), 0, ""); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Put(../escape) err = %v", err)
	}

	objs, err := s.List(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"job-1/MANIFEST.txt", "job-1/concurrency_8/profile_export.jsonl",
		"job-1/concurrency_8/profile_export_aiperf.json"}
	if got := keys(objs); !slices.Equal(got, want) {
		t.Errorf("List(job-1) = %v, want %v", got, want)
	}
	if objs[0].Size != 4 || objs[0].ModTime.IsZero() {
		t.Errorf("List object = %+v", objs[0])
	}
	all, err := s.List(ctx, "")
	if err != nil || len(all) != len(files) {
		t.Errorf("List(\"\") = %v, %v", keys(all), err)
	}
	if one, err := s.List(ctx, "job-1.json"); err != nil || !slices.Equal(keys(one), []string{"job-1.json"}) {
		t.Errorf("List(job-1.json) = %v, %v", keys(one), err)
	}
	if _, err := s.List(ctx, "a/../b"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("List(bad prefix) err = %v", err)
	}

	n, err := s.DeletePrefix(ctx, "job-1/")
	if err != nil || n != 3 {
		t.Fatalf("DeletePrefix(job-1/) = %d, %v; want 3", n, err)
	}
	rest, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(rest); !slices.Equal(got, []string{"job-1.json", "job-10/profile_export_aiperf.json"}) {
		t.Errorf("after DeletePrefix: %v", got)
	}
	if n, err := s.DeletePrefix(ctx, "nothing-here"); err != nil || n != 0 {
		t.Errorf("DeletePrefix(nothing-here) = %d, %v", n, err)
	}
}

func readKey(t *testing.T, s Store, key string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return buf.String()
}

func keys(objs []Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}
