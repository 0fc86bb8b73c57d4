package protocol

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
)

func TestLeanClientBodies(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("X-A") != "b" {
			t.Errorf("headers %v", r.Header)
		}
		switch n % 3 {
		case 0: // chunked
			w.(http.Flusher).Flush()
			io.WriteString(w, `{"choices":[{"text":"chunked"}]}`)
		case 1: // content-length, then close the connection
			w.Header().Set("Connection", "close")
			io.WriteString(w, `{"choices":[{"text":"closed"}]}`)
		default:
			io.WriteString(w, `{"choices":[{"text":"plain"}]}`)
		}
	}))
	defer srv.Close()
	c, _ := NewOpenAI(Config{BaseURL: srv.URL, APIKey: "k", Headers: map[string]string{"X-A": "b"}, KeepText: true}, false)
	if c.eng.lean == nil {
		t.Fatal("lean client not used for http://")
	}
	for i := 0; i < 9; i++ {
		rec, out := &metrics.RequestRecord{}, &Output{}
		c.Do(context.Background(), &Request{Model: "m", Prompt: "p"}, rec, out)
		if rec.Error != "" || rec.HTTPStatus != 200 || len(out.Text) == 0 || rec.AckNs < rec.SendNs || rec.EndNs < rec.AckNs {
			t.Fatalf("request %d: %+v %q", i, rec, out.Text)
		}
	}
	srv.CloseClientConnections() // idle keep-alive connections die: the next request must retry
	rec := &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m", Prompt: "p"}, rec, &Output{})
	if rec.Error != "" {
		t.Fatalf("after idle close: %s %s", rec.Error, rec.ErrorMsg)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c, _ = NewOpenAI(Config{BaseURL: "http://" + addr}, false)
	rec = &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m"}, rec, &Output{})
	if rec.Error != CodeConnect {
		t.Fatalf("refused: %q %s", rec.Error, rec.ErrorMsg)
	}
}

func TestLeanBodyChunked(t *testing.T) {
	cases := []struct {
		name, in, want string
		err            error
	}{
		{"chunks", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "abcde", nil},
		{"hex, extension, trailer", "A;x=y\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n", "0123456789", nil},
		{"bare LF", "1\nz\n0\n\n", "z", nil},
		{"bad size", "zz\r\nabc\r\n0\r\n\r\n", "", errBadChunk},
		{"missing CRLF after data", "2\r\nabX\r\n0\r\n\r\n", "ab", errBadChunk},
		{"truncated data", "5\r\nab", "ab", io.ErrUnexpectedEOF},
		{"no last chunk", "2\r\nab\r\n", "ab", io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		for _, onebyte := range []bool{false, true} {
			in := tc.in
			if tc.err == nil {
				in += "NEXT"
			}
			var r io.Reader = strings.NewReader(in)
			if onebyte {
				r = iotest.OneByteReader(r)
			}
			br := bufio.NewReaderSize(r, 16)
			b := &leanBody{br: br, mode: bodyChunked}
			got, err := io.ReadAll(b)
			if string(got) != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("%s (onebyte %v): %q %v, want %q %v", tc.name, onebyte, got, err, tc.want, tc.err)
			}
			if tc.err == nil {
				if !b.finished() {
					t.Fatalf("%s: not finished", tc.name)
				}
				rest, _ := io.ReadAll(br)
				if string(rest) != "NEXT" {
					t.Fatalf("%s: read past the body: rest %q", tc.name, rest)
				}
			}
		}
	}
	b := &leanBody{br: bufio.NewReader(strings.NewReader("abcdef")), mode: bodyLength, left: 4}
	if got, err := io.ReadAll(b); string(got) != "abcd" || err != nil || !b.finished() {
		t.Fatalf("length: %q %v", got, err)
	}
	b = &leanBody{br: bufio.NewReader(strings.NewReader("ab")), mode: bodyLength, left: 4}
	if _, err := io.ReadAll(b); !errors.Is(err, io.ErrUnexpectedEOF) || b.finished() {
		t.Fatalf("short length body: %v", err)
	}
}

// TestLeanStreaming checks SSE over the lean client: chunked bodies split
// anywhere, connection reuse after [DONE], OnChunk, and that a failed
// stream's connection is not reused.
func TestLeanStreaming(t *testing.T) {
	var conns atomic.Int32
	var fail atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		fl := w.(http.Flusher)
		// One event split over two flushes (two chunks), then whole events.
		io.WriteString(w, `data: {"choices":[{"delta":{"con`)
		fl.Flush()
		io.WriteString(w, `tent":"a"}}]}`+"\n\n")
		fl.Flush()
		if fail.Load() {
			io.WriteString(w, "data: {\"error\":{\"message\":\"boom\"}}\n\n")
			fl.Flush()
			time.Sleep(20 * time.Millisecond)
		}
		io.WriteString(w, chunk(strings.Repeat("b", 10_000))) // longer than the read buffers
		io.WriteString(w, chunk("c")+"data: [DONE]\n\n")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	var chunks []string
	var stamps []int64
	c, _ := NewOpenAI(Config{BaseURL: srv.URL, Streaming: true, KeepText: true,
		OnChunk: func(data []byte, ns int64) { chunks = append(chunks, string(data)); stamps = append(stamps, ns) }}, true)
	for i := 0; i < 5; i++ {
		chunks, stamps = nil, nil
		rec, out := &metrics.RequestRecord{}, &Output{}
		c.Do(context.Background(), &Request{Model: "m", Prompt: "p"}, rec, out)
		if rec.Error != "" || len(rec.ChunkNs) != 3 || string(out.Text) != "a"+strings.Repeat("b", 10_000)+"c" {
			t.Fatalf("stream %d: %s %s chunks %d text %d bytes", i, rec.Error, rec.ErrorMsg, len(rec.ChunkNs), len(out.Text))
		}
		if len(stamps) != 3 || stamps[0] != rec.ChunkNs[0] || stamps[2] != rec.ChunkNs[2] || !strings.Contains(chunks[2], `"c"`) {
			t.Fatalf("OnChunk: %d calls", len(stamps))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential streams, want 1", n)
	}
	fail.Store(true)
	rec := &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m", Prompt: "p"}, rec, &Output{})
	if rec.Error != CodeServer {
		t.Fatalf("error event: %q", rec.Error)
	}
	fail.Store(false)
	rec = &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m", Prompt: "p"}, rec, &Output{})
	if rec.Error != "" || conns.Load() != 2 {
		t.Fatalf("after a failed stream: %q, %d connections (want a new one)", rec.Error, conns.Load())
	}
}

func TestLocalAddrs(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen[host] = true
		mu.Unlock()
		w.Header().Set("Connection", "close")
		io.WriteString(w, `{"choices":[{"text":"x"}]}`)
	}))
	defer srv.Close()
	for _, noLean := range []bool{false, true} {
		seen = map[string]bool{}
		c, _ := NewOpenAI(Config{BaseURL: srv.URL, NoLeanClient: noLean, LocalAddrs: []string{"127.0.0.2", "127.0.0.3"}}, false)
		for i := 0; i < 4; i++ {
			rec := &metrics.RequestRecord{}
			c.Do(context.Background(), &Request{Model: "m"}, rec, &Output{})
			if rec.Error != "" {
				t.Fatalf("noLean %v: %s %s", noLean, rec.Error, rec.ErrorMsg)
			}
		}
		if len(seen) != 2 || !seen["127.0.0.2"] || !seen["127.0.0.3"] {
			t.Fatalf("noLean %v: source addresses %v", noLean, seen)
		}
	}
	c, _ := NewOpenAI(Config{BaseURL: srv.URL, LocalAddrs: []string{"not-an-ip"}}, false)
	rec := &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m"}, rec, &Output{})
	if rec.Error == "" {
		t.Fatal("bad local address accepted")
	}
}
