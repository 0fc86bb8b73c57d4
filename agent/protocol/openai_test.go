package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// sseServer streams the given events with a gap between them.
func sseServer(t *testing.T, gap time.Duration, check func(r *http.Request, body map[string]any), events ...string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if check != nil {
			check(r, body)
		}
		if body["stream"] != true {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"choices":[{"message":{"content":"hello world"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, ev := range events {
			if ev == "HANGUP" {
				hj, _, _ := w.(http.Hijacker).Hijack()
				hj.Close()
				return
			}
			io.WriteString(w, ev)
			fl.Flush()
			time.Sleep(gap)
		}
	}))
}

func chunk(content string) string {
	return fmt.Sprintf("data: {\"choices\":[{\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", content)
}

// transports runs f over the lean client and over net/http.
func transports(t *testing.T, f func(t *testing.T, noLean bool)) {
	t.Run("lean", func(t *testing.T) { f(t, false) })
	t.Run("net_http", func(t *testing.T) { f(t, true) })
}

func TestOpenAIChatStreaming(t *testing.T) { transports(t, testOpenAIChatStreaming) }

func testOpenAIChatStreaming(t *testing.T, noLean bool) {
	var seen map[string]any
	var hdr http.Header
	srv := sseServer(t, 5*time.Millisecond, func(r *http.Request, b map[string]any) { seen, hdr = b, r.Header },
		"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n", // role only: not a token
		": keep-alive\n\n",
		"data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}]}\n\n",
		chunk("a"), chunk(""), chunk("b"),
		"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n",
		"data: [DONE]\n\n")
	defer srv.Close()
	c, err := NewOpenAI(Config{BaseURL: srv.URL, Streaming: true, KeepText: true, APIKey: "sekret", NoLeanClient: noLean,
		Headers: map[string]string{"X-Team": "perf"}, ExtraInputs: map[string]any{"ignore_eos": true, "max_tokens": 9}}, true)
	if err != nil {
		t.Fatal(err)
	}
	rec := &metrics.RequestRecord{}
	out := &Output{}
	c.Do(context.Background(), &Request{Model: "m1", Messages: []Message{{Role: "user", Content: "hi"}}, MaxTokens: 3}, rec, out)
	if rec.Error != "" {
		t.Fatalf("error %s: %s", rec.Error, rec.ErrorMsg)
	}
	if len(rec.ChunkNs) != 3 {
		t.Fatalf("content chunks %d, want 3 (reasoning, a, b)", len(rec.ChunkNs))
	}
	if rec.ChunkNs[0]-rec.SendNs < int64(10*time.Millisecond) {
		t.Fatalf("TTFT %v too small: role-only chunk counted?", time.Duration(rec.ChunkNs[0]-rec.SendNs))
	}
	if string(out.Text) != "ab" || string(out.Reasoning) != "think" {
		t.Fatalf("text %q reasoning %q", out.Text, out.Reasoning)
	}
	if out.Usage == nil || out.Usage.PromptTokens != 11 || out.Usage.CompletionTokens != 3 || out.Usage.ReasoningTokens != 1 {
		t.Fatalf("usage %+v", out.Usage)
	}
	if rec.EndNs < rec.ChunkNs[2] || !rec.Streaming || rec.HTTPStatus != 200 {
		t.Fatalf("record %+v", rec)
	}
	if seen["ignore_eos"] != true || seen["max_tokens"] != float64(9) || seen["model"] != "m1" || seen["stream"] != true {
		t.Fatalf("body %v", seen)
	}
	if so, _ := seen["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatalf("stream_options %v", seen["stream_options"])
	}
	if hdr.Get("Authorization") != "Bearer sekret" || hdr.Get("X-Team") != "perf" {
		t.Fatalf("headers %v", hdr)
	}
}

func TestOpenAICompletionsNonStreaming(t *testing.T) {
	var seen map[string]any
	srv := sseServer(t, 0, func(r *http.Request, b map[string]any) {
		seen = b
		if r.URL.Path != PathCompletions {
			t.Errorf("path %s", r.URL.Path)
		}
	})
	defer srv.Close()
	c, _ := NewOpenAI(Config{BaseURL: srv.URL, KeepText: true}, false)
	rec, out := &metrics.RequestRecord{}, &Output{}
	c.Do(context.Background(), &Request{Model: "m", Prompt: "once upon"}, rec, out)
	if rec.Error != "" || rec.Streaming || len(rec.ChunkNs) != 1 || string(out.Text) != "hello world" || out.Usage.CompletionTokens != 2 {
		t.Fatalf("rec %+v out %+v", rec, out)
	}
	if seen["prompt"] != "once upon" || seen["stream"] != false {
		t.Fatalf("body %v", seen)
	}
}

func TestOpenAIErrors(t *testing.T) { transports(t, testOpenAIErrors) }

func testOpenAIErrors(t *testing.T, noLean bool) {
	cases := []struct {
		name   string
		srv    func() *httptest.Server
		cfg    func(*Config)
		code   string
		status int
	}{
		{"http 503", func() *httptest.Server {
			return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "overloaded", 503)
			}))
		}, nil, CodeHTTP5xx, 503},
		{"http 404", func() *httptest.Server {
			return httptest.NewServer(http.NotFoundHandler())
		}, nil, CodeHTTP4xx, 404},
		{"broken stream", func() *httptest.Server {
			return sseServer(t, 0, nil, chunk("a"), "HANGUP")
		}, nil, CodeStreamBroken, 200},
		{"no DONE", func() *httptest.Server { return sseServer(t, 0, nil, chunk("a")) }, nil, CodeStreamBroken, 200},
		{"bad json", func() *httptest.Server { return sseServer(t, 0, nil, "data: {nope\n\n") }, nil, CodeParse, 200},
		{"error event", func() *httptest.Server {
			return sseServer(t, 0, nil, "data: {\"error\":{\"message\":\"boom\"}}\n\n")
		}, nil, CodeServer, 200},
		{"timeout", func() *httptest.Server { return sseServer(t, time.Second, nil, chunk("a"), chunk("b")) },
			func(c *Config) { c.Timeout = 100 * time.Millisecond }, CodeTimeout, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv()
			defer srv.Close()
			cfg := Config{BaseURL: srv.URL, Streaming: true, NoLeanClient: noLean}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			c, _ := NewOpenAI(cfg, true)
			rec := &metrics.RequestRecord{}
			c.Do(context.Background(), &Request{Model: "m", Prompt: "x"}, rec, &Output{})
			if rec.Error != tc.code || rec.HTTPStatus != tc.status {
				t.Fatalf("code %q status %d (%s), want %q %d", rec.Error, rec.HTTPStatus, rec.ErrorMsg, tc.code, tc.status)
			}
			if rec.EndNs < rec.SendNs {
				t.Fatal("end before send")
			}
		})
	}
	// Connection refused.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c, _ := NewOpenAI(Config{BaseURL: "http://" + addr, Streaming: true, NoLeanClient: noLean}, true)
	rec := &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m"}, rec, &Output{})
	if rec.Error != CodeConnect {
		t.Fatalf("refused: %q %s", rec.Error, rec.ErrorMsg)
	}
	// Cancelled by the caller.
	srv := sseServer(t, time.Second, nil, chunk("a"), chunk("b"))
	defer srv.Close()
	c, _ = NewOpenAI(Config{BaseURL: srv.URL, Streaming: true, NoLeanClient: noLean}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	rec = &metrics.RequestRecord{}
	c.Do(ctx, &Request{Model: "m"}, rec, &Output{})
	if rec.Error != CodeCancelled && rec.Error != CodeTimeout {
		t.Fatalf("cancel: %q", rec.Error)
	}
}

func TestBodyExtraOverrides(t *testing.T) {
	c, _ := NewOpenAI(Config{Streaming: true, ExtraInputs: map[string]any{"max_tokens": 5, "temperature": 0.5, "payload_template": "x"}}, false)
	var m map[string]any
	b := c.Body(&Request{Model: "m", Prompt: "p\"q", MaxTokens: 100})
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if m["max_tokens"] != float64(5) || m["temperature"] != 0.5 || m["prompt"] != "p\"q" || m["payload_template"] != nil {
		t.Fatalf("%s", b)
	}
	if strings.Count(string(b), "max_tokens") != 1 {
		t.Fatalf("duplicate key: %s", b)
	}
}

func TestModelSelector(t *testing.T) {
	rr := NewModelSelector([]string{"a", "b", "c"}, "round_robin", 1)
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, rr.Pick())
	}
	if strings.Join(got, "") != "abca" {
		t.Fatalf("round robin %v", got)
	}
	rnd := NewModelSelector([]string{"a", "b"}, "random", 1)
	n := map[string]int{}
	for i := 0; i < 1000; i++ {
		n[rnd.Pick()]++
	}
	if n["a"] < 400 || n["b"] < 400 {
		t.Fatalf("random %v", n)
	}
}
