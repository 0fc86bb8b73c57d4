package llmsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testServer starts a Server for cfg behind an httptest server on loopback.
func testServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		_ = s.Close()
		hs.Close()
	})
	return s, hs.URL
}

// fastProfile is an H100 profile with a fixed 1 ms ITL so tests run quickly.
func fastProfile(t *testing.T) Profile {
	t.Helper()
	p, err := ProfileFor("H100-80GB", 1)
	if err != nil {
		t.Fatal(err)
	}
	return p.WithFixedITL(time.Millisecond)
}

// post sends a JSON body and returns the status and the raw response body.
// A connection closed mid-body is not an error: the bytes read so far are
// returned with truncated set.
func post(t *testing.T, url, body string, header map[string]string) (status int, raw []byte, truncated bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err != nil
}

// streamChunk is the union of the chat and text completion chunk shapes.
type streamChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta *struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         *string `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage  *Usage `json:"usage"`
	SentNs *int64 `json:"llmsim_sent_ns"`
}

// parseSSE checks the raw SSE framing — every frame is exactly
// "data: <payload>\n\n" — and returns the payloads in order.
func parseSSE(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	rest := raw
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, []byte("data: ")) {
			t.Fatalf("frame does not start with %q: %q", "data: ", truncate(rest))
		}
		end := bytes.Index(rest, []byte("\n\n"))
		if end < 0 {
			t.Fatalf("frame not terminated by a blank line: %q", truncate(rest))
		}
		payload := rest[len("data: "):end]
		if bytes.ContainsAny(payload, "\r\n") {
			t.Fatalf("frame payload spans lines: %q", payload)
		}
		out = append(out, string(payload))
		rest = rest[end+2:]
	}
	return out
}

// decodeChunks parses every payload but the final [DONE] as a chunk.
func decodeChunks(t *testing.T, payloads []string) []streamChunk {
	t.Helper()
	var chunks []streamChunk
	for i, p := range payloads {
		if p == "[DONE]" {
			if i != len(payloads)-1 {
				t.Fatalf("[DONE] at %d of %d frames", i, len(payloads))
			}
			break
		}
		var c streamChunk
		if err := json.Unmarshal([]byte(p), &c); err != nil {
			t.Fatalf("frame %d is not valid JSON: %v: %s", i, err, p)
		}
		chunks = append(chunks, c)
	}
	return chunks
}

// streamText concatenates the content of chat or text chunks and counts
// the chunks that carry content.
func streamText(chunks []streamChunk) (text string, contentChunks int, finish string, usage *Usage) {
	var b strings.Builder
	for _, c := range chunks {
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			var s *string
			if ch.Delta != nil {
				s = ch.Delta.Content
			} else {
				s = ch.Text
			}
			if s != nil && *s != "" {
				b.WriteString(*s)
				contentChunks++
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	return b.String(), contentChunks, finish, usage
}

// fullResponse is a non-streaming chat or text completion response.
type fullResponse struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Message *struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Text         *string `json:"text"`
		FinishReason string  `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage `json:"usage"`
}

// text returns the single choice's text or message content.
func (r fullResponse) text() string {
	if len(r.Choices) != 1 {
		return ""
	}
	if r.Choices[0].Message != nil {
		return r.Choices[0].Message.Content
	}
	if r.Choices[0].Text != nil {
		return *r.Choices[0].Text
	}
	return ""
}

// truncate shortens b for error messages.
func truncate(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
