package protocol

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t testing.TB, r io.Reader) ([]string, error) {
	s := NewSSEReader(r, 1<<20)
	var out []string
	for {
		ev, data, err := s.Next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		e := string(data)
		if len(ev) > 0 {
			e = string(ev) + "|" + e
		}
		out = append(out, e)
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{"basic", "data: a\n\ndata: b\n\ndata: [DONE]\n\n", []string{"a", "b", "[DONE]"}, nil},
		{"crlf", "data: a\r\n\r\ndata:b\r\n\r\n", []string{"a", "b"}, nil},
		{"keepalive comments", ": ping\n\n:\ndata: x\n\n: ping\n\n", []string{"x"}, nil},
		{"multiline data", "data: l1\ndata: l2\n\n", []string{"l1\nl2"}, nil},
		{"event name", "event: error\ndata: {}\n\ndata: y\n\n", []string{"error|{}", "y"}, nil},
		{"ignored fields", "id: 3\nretry: 10\ndata: z\n\n", []string{"z"}, nil},
		{"no space", "data:nospace\n\n", []string{"nospace"}, nil},
		{"missing last blank line", "data: a\n\ndata: b\n", []string{"a", "b"}, nil},
		{"blank lines only", "\n\n\n", nil, nil},
		{"usage only chunk", "data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\ndata: [DONE]\n\n",
			[]string{`{"choices":[],"usage":{"completion_tokens":3}}`, "[DONE]"}, nil},
		{"truncated line", "data: a\n\ndata: {\"cho", []string{"a"}, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []string{"whole", "onebyte"} {
				var r io.Reader = strings.NewReader(tc.in)
				if split == "onebyte" {
					r = iotest.OneByteReader(r)
				}
				got, err := readAll(t, r)
				if !errors.Is(err, tc.err) && err != tc.err {
					t.Fatalf("%s: err %v, want %v", split, err, tc.err)
				}
				if strings.Join(got, "¦") != strings.Join(tc.want, "¦") {
					t.Fatalf("%s: got %q want %q", split, got, tc.want)
				}
			}
		})
	}
}

func TestSSEBrokenAndLongLines(t *testing.T) {
	broken := io.MultiReader(strings.NewReader("data: a\n\n"), iotest.ErrReader(io.ErrClosedPipe))
	got, err := readAll(t, broken)
	if !errors.Is(err, io.ErrClosedPipe) || len(got) != 1 {
		t.Fatalf("got %q err %v", got, err)
	}
	long := "data: " + strings.Repeat("x", 100_000) + "\n\n"
	got, err = readAll(t, strings.NewReader(long))
	if err != nil || len(got) != 1 || len(got[0]) != 100_000 {
		t.Fatalf("long line: %d %v", len(got), err)
	}
	s := NewSSEReader(strings.NewReader(long), 1000)
	if _, _, err := s.Next(); !errors.Is(err, ErrSSELine) {
		t.Fatalf("want ErrSSELine, got %v", err)
	}
}

// FuzzSSEReader checks that any byte stream parses without panicking and
// that splitting it into one-byte reads gives the same events.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: [DONE]\n\n"))
	f.Add([]byte(": ping\r\ndata: x\r\ndata: y\r\n\r\n"))
	f.Add([]byte("event: e\ndata\n\ndata: {\"c"))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, errA := readAll(t, strings.NewReader(string(in)))
		b, errB := readAll(t, iotest.OneByteReader(strings.NewReader(string(in))))
		if (errA == nil) != (errB == nil) || strings.Join(a, "\x00") != strings.Join(b, "\x00") {
			t.Fatalf("split changes result: %q/%v vs %q/%v", a, errA, b, errB)
		}
	})
}

func BenchmarkSSEReader(b *testing.B) {
	chunk := `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}` + "\n\n"
	stream := strings.Repeat(chunk, 1000)
	b.SetBytes(int64(len(stream)))
	s := NewSSEReader(strings.NewReader(""), 0)
	for i := 0; i < b.N; i++ {
		s.Reset(strings.NewReader(stream))
		for {
			if _, _, err := s.Next(); err != nil {
				break
			}
		}
	}
}
