package modelserver

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLogSinkRing(t *testing.T) {
	l, err := openLogSink(filepath.Join(t.TempDir(), "s.log"), 1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, chunk := range []string{"one\ntw", "o\nthree\r\nfour\n", "fi", "ve"} {
		_, _ = l.Write([]byte(chunk))
	}
	if got, want := l.LastLines(), []string{"two", "three", "four", "five"}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	_, _ = l.Write([]byte(strings.Repeat("x", 3*maxLineBytes) + "\n"))
	if got := l.LastLines(); len(got[2]) != maxLineBytes {
		t.Fatalf("long line kept %d bytes", len(got[2]))
	}
}

func TestLogSinkRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	l, err := openLogSink(path, 1000, 50)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		_, _ = fmt.Fprintf(l, "line %03d padding padding\n", i) // 26 bytes
	}
	if err := l.Close(); err != nil || l.Err() != nil {
		t.Fatal(err, l.Err())
	}
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) > 1000 || len(old) > 1000 || len(old) == 0 {
		t.Fatalf("sizes %d and %d, cap 1000", len(cur), len(old))
	}
	if !strings.HasSuffix(string(cur), "line 199 padding padding\n") {
		t.Fatalf("newest output missing: %q", cur)
	}
	if !strings.HasSuffix(string(old), "padding\n") || !strings.HasPrefix(string(old), "line ") {
		t.Fatalf("rotated file cut mid-line: %q", old)
	}
	// A single write beyond the cap keeps its tail.
	l2, _ := openLogSink(path, 10, 5)
	_, _ = l2.Write([]byte("0123456789abcdef"))
	_ = l2.Close()
	if b, _ := os.ReadFile(path); string(b) != "6789abcdef" {
		t.Fatalf("oversized write kept %q", b)
	}
}
