package llmsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestStreamFramingChat(t *testing.T) {
	_, url := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t), Seed: 7})
	body := `{"model":"m","messages":[{"role":"user","content":"Say hi."}],"max_tokens":12,"ignore_eos":true,
		"stream":true,"stream_options":{"include_usage":true}}`
	status, raw, truncated := post(t, url+"/v1/chat/completions", body, nil)
	if status != http.StatusOK || truncated {
		t.Fatalf("status %d truncated %v: %s", status, truncated, raw)
	}
	payloads := parseSSE(t, raw)
	if payloads[len(payloads)-1] != "[DONE]" {
		t.Fatalf("last frame %q, want [DONE]", payloads[len(payloads)-1])
	}
	chunks := decodeChunks(t, payloads)
	// role chunk + 12 content chunks + usage chunk
	if len(chunks) != 14 {
		t.Fatalf("got %d chunks, want 14", len(chunks))
	}
	first := chunks[0].Choices[0].Delta
	if first == nil || first.Role == nil || *first.Role != "assistant" {
		t.Fatalf("first chunk does not carry the role: %s", payloads[0])
	}
	for i, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.ID != chunks[0].ID || c.Model != "m" || c.Created == 0 {
			t.Fatalf("chunk %d header wrong: %s", i, payloads[i])
		}
		if c.SentNs != nil {
			t.Fatalf("chunk %d has a timestamp though none was asked for", i)
		}
		if i > 0 && i < 13 && (c.Choices[0].Delta.Role != nil || c.Usage != nil) {
			t.Fatalf("content chunk %d carries role or usage: %s", i, payloads[i])
		}
	}
	last := chunks[len(chunks)-1]
	if len(last.Choices) != 0 || last.Usage == nil {
		t.Fatalf("final chunk is not usage-only: %s", payloads[len(payloads)-2])
	}
	text, n, finish, usage := streamText(chunks)
	if n != 12 || usage.CompletionTokens != 12 || finish != "length" {
		t.Fatalf("content chunks %d, usage %+v, finish %q", n, usage, finish)
	}
	if CountTokens(text) != usage.CompletionTokens {
		t.Fatalf("CountTokens(%q) = %d, usage says %d", text, CountTokens(text), usage.CompletionTokens)
	}
	// "Say hi." = 3 tokens, role "user" 1, framing 4, primer 3.
	if usage.PromptTokens != 11 || usage.TotalTokens != 23 {
		t.Fatalf("usage %+v, want prompt 11 total 23", usage)
	}
}

func TestStreamFramingCompletionsWithoutUsage(t *testing.T) {
	_, url := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t)})
	status, raw, _ := post(t, url+"/v1/completions", `{"model":"m","prompt":"one two","max_tokens":5,"ignore_eos":true,"stream":true}`, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, raw)
	}
	payloads := parseSSE(t, raw)
	chunks := decodeChunks(t, payloads)
	if len(payloads) != 6 || len(chunks) != 5 {
		t.Fatalf("got %d frames / %d chunks, want 6 / 5", len(payloads), len(chunks))
	}
	for i, c := range chunks {
		if c.Object != "text_completion" || c.Usage != nil || len(c.Choices) != 1 || c.Choices[0].Text == nil {
			t.Fatalf("chunk %d malformed: %s", i, payloads[i])
		}
		if fr := c.Choices[0].FinishReason; (fr != nil) != (i == 4) {
			t.Fatalf("chunk %d finish_reason %v", i, fr)
		}
	}
}

// TestUsageStreamingMatchesNonStreaming runs the same request sequence
// against two servers with the same seed, one streaming and one not.
func TestUsageStreamingMatchesNonStreaming(t *testing.T) {
	cfg := Config{Models: []string{"m"}, Profile: fastProfile(t), Seed: 99, MeanOutputTokens: 10}
	_, streamURL := testServer(t, cfg)
	_, fullURL := testServer(t, cfg)
	for i := range 6 {
		for _, chat := range []bool{true, false} {
			path, prompt := "/v1/completions", `"prompt":"The quick brown fox, again."`
			if chat {
				path, prompt = "/v1/chat/completions", `"messages":[{"role":"user","content":"The quick brown fox, again."}]`
			}
			req := fmt.Sprintf(`{"model":"m",%s,"max_tokens":30,"stream":%%v,"stream_options":{"include_usage":true}}`, prompt)
			_, raw, _ := post(t, streamURL+path, fmt.Sprintf(req, true), nil)
			text, n, sfinish, susage := streamText(decodeChunks(t, parseSSE(t, raw)))
			_, raw, _ = post(t, fullURL+path, fmt.Sprintf(req, false), nil)
			var full fullResponse
			if err := json.Unmarshal(raw, &full); err != nil || full.Usage == nil {
				t.Fatalf("non-streaming response %s: %v", raw, err)
			}
			if susage == nil || *susage != *full.Usage || n != full.Usage.CompletionTokens {
				t.Fatalf("request %d chat=%v: stream usage %+v (%d chunks), full usage %+v", i, chat, susage, n, full.Usage)
			}
			if text != full.text() || sfinish != full.Choices[0].FinishReason {
				t.Fatalf("request %d: stream %q/%s, full %q/%s", i, text, sfinish, full.text(), full.Choices[0].FinishReason)
			}
		}
	}
}

func TestMaxTokensAndIgnoreEOS(t *testing.T) {
	_, url := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t), Seed: 3, MeanOutputTokens: 8})
	complete := func(extra string) fullResponse {
		t.Helper()
		_, raw, _ := post(t, url+"/v1/completions", `{"model":"m","prompt":"x"`+extra+`}`, nil)
		var r fullResponse
		if err := json.Unmarshal(raw, &r); err != nil || r.Usage == nil {
			t.Fatalf("response %s: %v", raw, err)
		}
		return r
	}
	for range 5 {
		if r := complete(`,"max_tokens":40,"ignore_eos":true`); r.Usage.CompletionTokens != 40 || r.Choices[0].FinishReason != "length" {
			t.Fatalf("ignore_eos: %+v %s", r.Usage, r.Choices[0].FinishReason)
		}
	}
	if r := complete(`,"max_tokens":3,"max_completion_tokens":17,"ignore_eos":true`); r.Usage.CompletionTokens != 17 {
		t.Fatalf("max_completion_tokens not preferred: %+v", r.Usage)
	}
	stops := 0
	for range 40 {
		r := complete(`,"max_tokens":20`)
		n, fr := r.Usage.CompletionTokens, r.Choices[0].FinishReason
		if n < 1 || n > 20 || (fr == "stop") != (n < 20) {
			t.Fatalf("natural length %d finish %q", n, fr)
		}
		if fr == "stop" {
			stops++
		}
	}
	if stops == 0 || stops == 40 {
		t.Fatalf("%d of 40 requests stopped at EOS; want a mix with mean 8 and cap 20", stops)
	}
	if r := complete(`,"max_tokens":20,"min_tokens":15`); r.Usage.CompletionTokens < 15 {
		t.Fatalf("min_tokens ignored: %+v", r.Usage)
	}
	if r := complete(``); r.Usage.CompletionTokens > DefaultMaxTokens {
		t.Fatalf("default budget exceeded: %+v", r.Usage)
	}
}

func TestDeterministicForSeed(t *testing.T) {
	run := func(seed int64, extra string) []string {
		_, url := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t), Seed: seed})
		var out []string
		for range 4 {
			_, raw, _ := post(t, url+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"stream":true`+extra+`}`, nil)
			text, _, _, _ := streamText(decodeChunks(t, parseSSE(t, raw)))
			out = append(out, text)
		}
		return out
	}
	a, b, c := run(42, ""), run(42, ""), run(43, "")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different outputs:\n%q\n%q", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) || a[0] == a[1] {
		t.Fatalf("outputs do not vary with seed or request: %q %q", a, c)
	}
	if s := run(42, `,"seed":5`); s[0] != s[3] {
		t.Fatalf("request seed should fix the text: %q", s)
	}
}

func TestTimestamps(t *testing.T) {
	check := func(url string, header map[string]string, want bool) {
		t.Helper()
		before := time.Now().UnixNano()
		_, raw, _ := post(t, url+"/v1/completions", `{"model":"m","prompt":"a","max_tokens":4,"ignore_eos":true,"stream":true}`, header)
		after := time.Now().UnixNano()
		prev := before
		for _, c := range decodeChunks(t, parseSSE(t, raw)) {
			if (c.SentNs != nil) != want {
				t.Fatalf("timestamp present=%v, want %v", c.SentNs != nil, want)
			}
			if want && (*c.SentNs < prev || *c.SentNs > after) {
				t.Fatalf("timestamp %d outside [%d, %d] or decreasing", *c.SentNs, prev, after)
			}
			if want {
				prev = *c.SentNs
			}
		}
	}
	_, plain := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t)})
	check(plain, nil, false)
	check(plain, map[string]string{"x-llmsim-timestamps": "1"}, true)
	_, stamped := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t), Timestamps: true})
	check(stamped, nil, true)
}

// TestBurstOfTokens releases hundreds of tokens in one tick (ITL 0), so the
// handler sends them in several pieces of at most maxPendingBytes.
func TestBurstOfTokens(t *testing.T) {
	_, url := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t).WithFixedITL(0)})
	_, raw, truncated := post(t, url+"/v1/chat/completions",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":300,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}`, nil)
	if truncated {
		t.Fatal("stream truncated")
	}
	_, n, finish, usage := streamText(decodeChunks(t, parseSSE(t, raw)))
	if n != 300 || usage == nil || usage.CompletionTokens != 300 || finish != "length" {
		t.Fatalf("%d content chunks, usage %+v, finish %q", n, usage, finish)
	}
}
