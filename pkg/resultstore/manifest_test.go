package resultstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestWriteManifest(t *testing.T) {
	s, _ := openFileStore(t)
	ctx := context.Background()
	files := map[string]string{
		"job-1/concurrency_8/profile_export_aiperf.json": `{"request_latency":{"unit":"ms"}}`,
		"job-1/concurrency_8/profile_export.jsonl":       "{}\n",
		"job-1/inputs.json":                              "[]",
		"job-1/plots/ttft p99.png":                       "png",
		"job-1/MANIFEST.txt":                             "stale",
	}
	for k, v := range files {
		if err := s.Put(ctx, k, strings.NewReader(v), -1, ""); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := s.List(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	// A caller that hashed while writing passes the digest; List leaves it empty.
	for i := range objs {
		if objs[i].Key == "job-1/inputs.json" {
			objs[i].SHA256 = sha("[]")
		}
	}
	if err := WriteManifest(ctx, s, "job-1", objs); err != nil {
		t.Fatal(err)
	}
	text := readKey(t, s, "job-1/MANIFEST.txt")
	want := fmt.Sprintf("%d %s concurrency_8/profile_export.jsonl\n", 3, sha("{}\n")) +
		fmt.Sprintf("%d %s concurrency_8/profile_export_aiperf.json\n", 33, sha(files["job-1/concurrency_8/profile_export_aiperf.json"])) +
		fmt.Sprintf("%d %s inputs.json\n", 2, sha("[]")) +
		fmt.Sprintf("%d %s plots/ttft p99.png\n", 3, sha("png"))
	if text != want {
		t.Errorf("MANIFEST.txt =\n%s\nwant\n%s", text, want)
	}
	parsed, err := ReadManifest(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(parsed); !slices.Equal(got, []string{"concurrency_8/profile_export.jsonl",
		"concurrency_8/profile_export_aiperf.json", "inputs.json", "plots/ttft p99.png"}) {
		t.Errorf("ReadManifest keys = %v", got)
	}
	for _, o := range parsed {
		if content := files["job-1/"+o.Key]; o.SHA256 != sha(content) || o.Size != int64(len(content)) {
			t.Errorf("entry %+v does not match the file", o)
		}
	}
}

func TestWriteManifestRejects(t *testing.T) {
	s, _ := openFileStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		files   []Object
		wantErr string
	}{
		{"outside prefix", []Object{{Key: "job-10/a.json", SHA256: sha("")}}, "not below manifest prefix"},
		{"prefix itself", []Object{{Key: "job-1", SHA256: sha("")}}, "not below manifest prefix"},
		{"bad digest", []Object{{Key: "job-1/a.json", SHA256: "XYZ"}}, "64 lowercase hex"},
		{"duplicate", []Object{{Key: "job-1/a", SHA256: sha("")}, {Key: "job-1/a", SHA256: sha("")}}, "listed twice"},
		{"missing file", []Object{{Key: "job-1/gone.json"}}, "object not found"},
		{"bad key", []Object{{Key: "job-1/../x"}}, `".." segment`},
	} {
		err := WriteManifest(ctx, s, "job-1", tc.files)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if _, err := s.Get(ctx, "job-1/MANIFEST.txt"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a rejected manifest was written: %v", err)
	}
}

func TestReadManifestRejects(t *testing.T) {
	for _, text := range []string{
		"12 " + sha("") + "\n",
		"-1 " + sha("") + " a\n",
		"x " + sha("") + " a\n",
		"1 abc a\n",
		"1 " + sha("") + " ../a\n",
	} {
		if _, err := ReadManifest(strings.NewReader(text)); err == nil {
			t.Errorf("ReadManifest(%q) accepted", text)
		}
	}
}
