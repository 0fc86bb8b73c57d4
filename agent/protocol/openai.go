package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// OpenAI endpoints.
const (
	PathChat        = "/v1/chat/completions"
	PathCompletions = "/v1/completions"
)

// OpenAI is the client for OpenAI-compatible chat completions and
// completions, streamed (SSE, with stream_options.include_usage) or not.
type OpenAI struct {
	eng   *httpEngine
	url   string
	chat  bool
	extra []byte          // pre-encoded `"k":v` pairs of ExtraInputs
	over  map[string]bool // keys set by ExtraInputs
}

var _ Client = (*OpenAI)(nil)

// NewOpenAI returns a chat (chat=true) or completions client.
func NewOpenAI(cfg Config, chat bool) (*OpenAI, error) {
	path := cfg.Path
	if path == "" {
		path = PathCompletions
		if chat {
			path = PathChat
		}
	}
	c := &OpenAI{eng: newEngine(cfg), url: strings.TrimRight(cfg.BaseURL, "/") + path, chat: chat, over: map[string]bool{}}
	keys := make([]string, 0, len(cfg.ExtraInputs))
	for k := range cfg.ExtraInputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "payload_template" || k == "response_field" {
			continue
		}
		v, err := json.Marshal(cfg.ExtraInputs[k])
		if err != nil {
			return nil, fmt.Errorf("protocol: extra_inputs %s: %w", k, err)
		}
		kb, _ := json.Marshal(k)
		c.extra = append(c.extra, ',')
		c.extra = append(c.extra, kb...)
		c.extra = append(c.extra, ':')
		c.extra = append(c.extra, v...)
		c.over[k] = true
	}
	return c, nil
}

// Body builds the JSON request body. Keys from extra_inputs override the
// generated ones.
func (c *OpenAI) Body(req *Request) []byte {
	b := make([]byte, 0, 256+len(req.Prompt)+len(c.extra))
	b = append(b, '{')
	first := true
	key := func(k string) bool {
		if c.over[k] {
			return false
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return true
	}
	if key("model") {
		b = appendJSONString(b, req.Model)
	}
	if c.chat {
		if key("messages") {
			msgs, _ := json.Marshal(req.Messages)
			b = append(b, msgs...)
		}
	} else if key("prompt") {
		b = appendJSONString(b, req.Text())
	}
	if req.MaxTokens > 0 && key("max_tokens") {
		b = fmt.Appendf(b, "%d", req.MaxTokens)
	}
	if c.eng.cfg.Streaming {
		if key("stream") {
			b = append(b, "true"...)
		}
		if key("stream_options") {
			b = append(b, `{"include_usage":true}`...)
		}
	} else if key("stream") {
		b = append(b, "false"...)
	}
	if first && len(c.extra) > 0 {
		b = append(b, c.extra[1:]...)
	} else {
		b = append(b, c.extra...)
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

type openaiUsage struct {
	PromptTokens            int64 `json:"prompt_tokens"`
	CompletionTokens        int64 `json:"completion_tokens"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

func (u *openaiUsage) usage() *Usage {
	if u == nil {
		return nil
	}
	out := &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	if u.CompletionTokensDetails != nil {
		out.ReasoningTokens = u.CompletionTokensDetails.ReasoningTokens
	}
	return out
}

type openaiDelta struct {
	Content          string            `json:"content"`
	ReasoningContent string            `json:"reasoning_content"`
	Reasoning        string            `json:"reasoning"`
	ToolCalls        []json.RawMessage `json:"tool_calls"`
}

type openaiChunk struct {
	Choices []struct {
		Delta        *openaiDelta `json:"delta"`
		Message      *openaiDelta `json:"message"`
		Text         string       `json:"text"`
		FinishReason *string      `json:"finish_reason"`
	} `json:"choices"`
	Usage *openaiUsage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Do implements Client.
func (c *OpenAI) Do(ctx context.Context, req *Request, rec *metrics.RequestRecord, out *Output) {
	rec.Model = req.Model
	keep := c.eng.cfg.KeepText
	var fast fastChunk
	nChoices := 0
	parse := func(data []byte) eventResult {
		fast = fastChunk{d: data, keep: keep, text: out.Text, reasoning: out.Reasoning}
		if fast.parse() {
			nChoices = fast.choices
			if fast.hasError {
				return eventResult{code: CodeServer, msg: string(fast.errMsg)}
			}
			if fast.usage != nil {
				out.Usage = fast.usage
			}
			out.Text, out.Reasoning = fast.text, fast.reasoning
			return fast.r
		}
		var r eventResult
		r, nChoices = parseOpenAISlow(data, out, keep)
		return r
	}
	body := func(b []byte) eventResult {
		r := parse(b)
		if r.code == "" && nChoices == 0 {
			return eventResult{code: CodeParse, msg: "response has no choices"}
		}
		return eventResult{code: r.code, msg: r.msg}
	}
	c.eng.post(ctx, c.url, c.Body(req), c.eng.cfg.Streaming, false, rec, parse, body)
}

// parseOpenAISlow is Do's encoding/json path, for what fastChunk gives up
// on. It returns the result and the number of choices.
func parseOpenAISlow(data []byte, out *Output, keep bool) (eventResult, int) {
	var ch openaiChunk
	if err := json.Unmarshal(data, &ch); err != nil {
		return eventResult{code: CodeParse, msg: fmt.Sprintf("bad JSON chunk: %v", err)}, 0
	}
	if ch.Error != nil {
		return eventResult{code: CodeServer, msg: ch.Error.Message}, 0
	}
	var r eventResult
	if u := ch.Usage.usage(); u != nil {
		out.Usage = u
	}
	for _, choice := range ch.Choices {
		d := choice.Delta
		if d == nil {
			d = choice.Message
		}
		if d != nil {
			if d.Content != "" || d.ReasoningContent != "" || d.Reasoning != "" || len(d.ToolCalls) > 0 {
				r.content = true
			}
			if d.Content != "" || len(d.ToolCalls) > 0 {
				r.output = true
			}
			if keep {
				out.Text = append(out.Text, d.Content...)
				out.Reasoning = append(out.Reasoning, d.ReasoningContent...)
				out.Reasoning = append(out.Reasoning, d.Reasoning...)
			}
		}
		if choice.Text != "" {
			r.content, r.output = true, true
			if keep {
				out.Text = append(out.Text, choice.Text...)
			}
		}
		if choice.FinishReason != nil && *choice.FinishReason != "" {
			r.done = true
		}
	}
	return r, len(ch.Choices)
}
