package resultstore

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfleet/perfleet/pkg/atrest"
)

func TestSealedStoreEncryptsAndReadsBack(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	plain, err := Open(ctx, "file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := atrest.GenerateKeyringFile(filepath.Join(t.TempDir(), "k.json"))
	if err != nil {
		t.Fatal(err)
	}
	st := Sealed(plain, kr)
	const marker = "ttft-marker-4417"
	body := strings.Repeat(marker, 20000) // several stream chunks
	if err := st.Put(ctx, "job/a.json", strings.NewReader(body), int64(len(body)), "application/json"); err != nil {
		t.Fatal(err)
	}
	w, err := st.Writer(ctx, "job/b.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, marker)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := plain.Put(ctx, "job/old.txt", strings.NewReader(marker), int64(len(marker)), "text/plain"); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"job/a.json": body, "job/b.jsonl": marker, "job/old.txt": marker} {
		rc, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != want {
			t.Fatalf("%s: read back %d bytes, %v", key, len(got), err)
		}
	}
	for _, f := range []string{"a.json", "b.jsonl"} {
		raw, _ := os.ReadFile(filepath.Join(dir, "job", f))
		if bytes.Contains(raw, []byte(marker)) {
			t.Fatalf("%s is stored in plain text", f)
		}
	}
}
