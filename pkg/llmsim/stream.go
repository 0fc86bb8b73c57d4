package llmsim

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxPendingBytes bounds the chunk buffer of one write: a handler that fell
// behind and has many tokens to send hands them to the ResponseWriter in
// pieces (still flushed once), so buffers stay small under overload.
const maxPendingBytes = 4096

// bufPool recycles chunk buffers between requests, so a stream allocates
// nothing per token.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// responder answers one admitted request.
type responder struct {
	s          *Server
	eng        *engine // the engine of the copy serving the request
	w          http.ResponseWriter
	r          *http.Request
	req        *completionRequest
	plan       *plan
	sq         *seq
	chat       bool
	model      []byte // JSON-quoted
	created    int64
	timestamps bool
	tokHead    []byte // cached by tokenHead
}

// chunkHead appends the fields every chunk starts with:
// `data: {"id":…,"object":…,"created":…,"model":…`.
func (rs *responder) chunkHead(b []byte) []byte {
	if rs.chat {
		b = append(b, `data: {"id":"chatcmpl-`...)
		b = append(b, rs.plan.id...)
		b = append(b, `","object":"chat.completion.chunk","created":`...)
	} else {
		b = append(b, `data: {"id":"cmpl-`...)
		b = append(b, rs.plan.id...)
		b = append(b, `","object":"text_completion","created":`...)
	}
	b = strconv.AppendInt(b, rs.created, 10)
	b = append(b, `,"model":`...)
	return append(b, rs.model...)
}

// tokenHead returns the constant start of this request's token chunks, up
// to the opening quote of the token text; it is built once per request.
func (rs *responder) tokenHead() []byte {
	if rs.tokHead == nil {
		b := rs.chunkHead(make([]byte, 0, 192))
		if rs.chat {
			b = append(b, `,"choices":[{"index":0,"delta":{"content":"`...)
		} else {
			b = append(b, `,"choices":[{"index":0,"text":"`...)
		}
		rs.tokHead = b
	}
	return rs.tokHead
}

// chunkTail closes a chunk: the optional send timestamp, `}` and the SSE
// frame end.
func (rs *responder) chunkTail(b []byte, sentNs int64) []byte {
	if rs.timestamps {
		b = append(b, `,"llmsim_sent_ns":`...)
		b = strconv.AppendInt(b, sentNs, 10)
	}
	return append(b, "}\n\n"...)
}

// appendToken appends the chunk of one token; finish is "" for all tokens
// but the last.
func (rs *responder) appendToken(b, tok []byte, finish string, sentNs int64) []byte {
	b = append(b, rs.tokenHead()...)
	b = append(b, tok...)
	if rs.chat {
		b = append(b, `"},"logprobs":null,"finish_reason":`...)
	} else {
		b = append(b, `","logprobs":null,"finish_reason":`...)
	}
	if finish == "" {
		b = append(b, "null}]"...)
	} else {
		b = append(b, '"')
		b = append(b, finish...)
		b = append(b, `"}]`...)
	}
	return rs.chunkTail(b, sentNs)
}

// appendRole appends the first chat chunk, which carries the role.
func (rs *responder) appendRole(b []byte, sentNs int64) []byte {
	b = rs.chunkHead(b)
	b = append(b, `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]`...)
	return rs.chunkTail(b, sentNs)
}

// appendUsage appends the usage-only chunk of stream_options.include_usage.
func (rs *responder) appendUsage(b []byte, sentNs int64) []byte {
	b = rs.chunkHead(b)
	b = append(b, `,"choices":[],"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(rs.plan.promptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(rs.plan.outLen), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(rs.plan.promptTokens+rs.plan.outLen), 10)
	b = append(b, '}')
	return rs.chunkTail(b, sentNs)
}

// finishReason is the OpenAI finish_reason of the plan.
func (p *plan) finishReason() string {
	if p.eos {
		return "stop"
	}
	return "length"
}

// abandon cancels the sequence after the client went away or the server
// closed, and counts the request as failed.
func (rs *responder) abandon() {
	rs.eng.cancel(rs.sq)
	rs.s.failed.Add(1)
}

// stream writes the SSE response. The handler sleeps until the engine
// releases tokens, then writes every released token (one frame each) in a
// single write and flush. The headers go out at once; the role chunk goes
// out with the first token.
func (rs *responder) stream() {
	flusher, _ := rs.w.(http.Flusher)
	h := rs.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	rs.w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	p, sent, drop := rs.plan, 0, false
	ctx := rs.r.Context()
	defer context.AfterFunc(ctx, rs.sq.wake)()
	for {
		<-rs.sq.notify // a single channel: cheaper than a select per token
		if ctx.Err() != nil {
			rs.abandon()
			return
		}
		if rs.s.isClosed() {
			rs.abandon()
			panic(http.ErrAbortHandler)
		}
		n := int(rs.sq.released.Load())
		if p.dropAfter > 0 && n >= p.dropAfter {
			n, drop = p.dropAfter, true
		}
		if n > sent {
			var ts int64
			if rs.timestamps {
				ts = time.Now().UnixNano()
			}
			b := (*bp)[:0]
			if sent == 0 && rs.chat {
				b = rs.appendRole(b, ts)
			}
			for ; sent < n; sent++ {
				finish := ""
				if sent+1 == p.outLen {
					finish = p.finishReason()
				}
				b = rs.appendToken(b, p.tokens.nextToken(), finish, ts)
				if len(b) >= maxPendingBytes { // a late handler: bound the buffer
					if _, err := rs.w.Write(b); err != nil {
						rs.abandon()
						return
					}
					b = b[:0]
				}
			}
			if sent == p.outLen && !drop {
				if rs.req.StreamOptions != nil && rs.req.StreamOptions.IncludeUsage {
					b = rs.appendUsage(b, ts)
				}
				b = append(b, "data: [DONE]\n\n"...)
			}
			*bp = b
			if _, err := rs.w.Write(b); err != nil {
				rs.abandon()
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			rs.s.lateness.observe(rs.s.now() - rs.sq.relAt.Load())
		}
		switch {
		case drop:
			rs.abandon()
			panic(http.ErrAbortHandler) // closes the connection without [DONE]
		case sent == p.outLen:
			rs.s.completed.Add(1)
			return
		case rs.sq.done.Load() && int(rs.sq.released.Load()) == sent:
			rs.abandon() // removed by the engine without finishing
			return
		}
	}
}

// full waits for the whole output and writes one JSON response, with usage.
func (rs *responder) full() {
	ctx := rs.r.Context()
	defer context.AfterFunc(ctx, rs.sq.wake)()
	for !rs.sq.done.Load() {
		<-rs.sq.notify
		if ctx.Err() != nil {
			rs.abandon()
			return
		}
		if rs.s.isClosed() {
			rs.abandon()
			panic(http.ErrAbortHandler)
		}
	}
	p := rs.plan
	if p.dropAfter > 0 {
		rs.abandon()
		panic(http.ErrAbortHandler)
	}
	text := make([]byte, 0, 6*p.outLen)
	for range p.outLen {
		text = append(text, p.tokens.nextToken()...)
	}
	type choice struct {
		Index        int             `json:"index"`
		Message      *chatReply      `json:"message,omitempty"`
		Text         *string         `json:"text,omitempty"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason string          `json:"finish_reason"`
	}
	resp := struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   Usage    `json:"usage"`
	}{Created: rs.created, Model: rs.req.Model,
		Usage: Usage{PromptTokens: p.promptTokens, CompletionTokens: p.outLen, TotalTokens: p.promptTokens + p.outLen}}
	c := choice{Logprobs: json.RawMessage("null"), FinishReason: p.finishReason()}
	s := string(text)
	if rs.chat {
		resp.ID, resp.Object = "chatcmpl-"+p.id, "chat.completion"
		c.Message = &chatReply{Role: "assistant", Content: s}
	} else {
		resp.ID, resp.Object = "cmpl-"+p.id, "text_completion"
		c.Text = &s
	}
	resp.Choices = []choice{c}
	body, _ := json.Marshal(resp)
	rs.w.Header().Set("Content-Type", "application/json")
	if _, err := rs.w.Write(body); err != nil {
		rs.s.failed.Add(1)
		return
	}
	rs.s.completed.Add(1)
}

// chatReply is the message of a non-streaming chat choice.
type chatReply struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Usage is the token accounting of a response, as in OpenAI's "usage".
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}
