package protocol

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// eventResult is what a protocol makes of one SSE event.
type eventResult struct {
	content bool   // carried non-empty content/reasoning: timestamp it
	output  bool   // carried non-reasoning content (first output token)
	done    bool   // the stream is complete (finish_reason or end event)
	code    string // error code ("" = fine)
	msg     string
}

// httpEngine is the transport part shared by all HTTP protocols.
type httpEngine struct {
	cfg    Config
	client *http.Client
	auth   string
	// lean serves requests to http:// targets (nil: net/http).
	lean *leanClient
	hdr  []string // extra headers of the lean client, name/value pairs
}

func newEngine(cfg Config) *httpEngine {
	e := &httpEngine{cfg: cfg, client: NewHTTPClient(cfg)}
	if cfg.APIKey != "" {
		e.auth = "Bearer " + cfg.APIKey
		e.hdr = append(e.hdr, "Authorization", e.auth)
	}
	for k, v := range cfg.Headers {
		e.hdr = append(e.hdr, k, v)
	}
	if !cfg.NoLeanClient && cfg.HTTPClient == nil && cfg.MaxConns == 0 {
		e.lean, _ = newLeanClient(cfg.BaseURL, newDialer(cfg))
	}
	return e
}

// ssePool serves net/http bodies; leanSSEPool the lean client's, whose
// 4 KiB buffers keep an open stream small (longer lines are joined).
var (
	ssePool     = sync.Pool{New: func() any { return NewSSEReader(bytes.NewReader(nil), 0) }}
	leanSSEPool = sync.Pool{New: func() any { return NewSSEReader(bufio.NewReaderSize(nil, 4<<10), 0) }}
)

// postLean is post over the lean client.
func (e *httpEngine) postLean(ctx context.Context, rawURL string, body []byte, stream, eofEnds bool, rec *metrics.RequestRecord,
	onEvent func(data []byte) eventResult, onBody func(body []byte) eventResult) {
	path := rawURL[len(strings.TrimRight(e.cfg.BaseURL, "/")):]
	if path == "" {
		path = "/"
	}
	c, h, err := e.lean.open(ctx, path, e.hdr, body, stream, rec)
	if err != nil {
		rec.EndNs = metrics.Now()
		rec.Error, rec.ErrorMsg = Classify(ctx, err, false), err.Error()
		return
	}
	reuse := false
	defer func() { e.lean.release(c, reuse) }()
	rec.HTTPStatus = h.status
	if code := StatusCode(h.status); code != "" {
		msg, _ := io.ReadAll(io.LimitReader(&c.body, 2048))
		rec.EndNs = metrics.Now()
		rec.Error, rec.ErrorMsg = code, strings.TrimSpace(string(msg))
		reuse = h.keep && c.drain()
		return
	}
	if !stream || !h.sse {
		rec.Streaming = false
		b, err := c.readAll()
		now := metrics.Now()
		rec.EndNs = now
		if err != nil {
			rec.Error, rec.ErrorMsg = Classify(ctx, err, true), midStream{err}.Error()
			return
		}
		reuse = h.keep
		rec.ChunkNs = append(rec.ChunkNs, now)
		if r := onBody(b); r.code != "" {
			rec.Error, rec.ErrorMsg = r.code, r.msg
		}
		return
	}
	sse := leanSSEPool.Get().(*SSEReader)
	sse.Reset(&c.body)
	e.readSSE(ctx, sse, eofEnds, rec, onEvent)
	sse.Reset(nil)
	leanSSEPool.Put(sse)
	reuse = h.keep && rec.Error == "" && c.drain()
}

// post sends body to url and reads the response, streaming (SSE) or not.
// onEvent handles one SSE data payload; onBody a whole JSON body. The
// literal payload [DONE] ends a stream.
//
// eofEnds says a stream may end at EOF without [DONE] or a finish event
// (KServe generate_stream, generic HTTP); for OpenAI such an EOF is a
// broken stream.
func (e *httpEngine) post(ctx context.Context, url string, body []byte, stream, eofEnds bool, rec *metrics.RequestRecord,
	onEvent func(data []byte) eventResult, onBody func(body []byte) eventResult) {
	if e.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.Timeout)
		defer cancel()
	}
	rec.Streaming = stream
	if e.lean != nil && strings.HasPrefix(url, e.cfg.BaseURL) {
		e.postLean(ctx, url, body, stream, eofEnds, rec, onEvent, onBody)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		rec.Error, rec.ErrorMsg = CodeOther, err.Error()
		rec.SendNs = metrics.Now()
		rec.EndNs = rec.SendNs
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	if e.auth != "" {
		req.Header.Set("Authorization", e.auth)
	}
	for k, v := range e.cfg.Headers {
		req.Header.Set(k, v)
	}
	rec.SendNs = metrics.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		rec.EndNs = metrics.Now()
		rec.Error, rec.ErrorMsg = Classify(ctx, err, false), err.Error()
		return
	}
	rec.AckNs = metrics.Now()
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
	}()
	rec.HTTPStatus = resp.StatusCode
	if code := StatusCode(resp.StatusCode); code != "" {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		rec.EndNs = metrics.Now()
		rec.Error, rec.ErrorMsg = code, strings.TrimSpace(string(msg))
		return
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !stream || ct != "text/event-stream" {
		rec.Streaming = false
		b, err := io.ReadAll(resp.Body)
		now := metrics.Now()
		rec.EndNs = now
		if err != nil {
			rec.Error, rec.ErrorMsg = Classify(ctx, err, true), err.Error()
			return
		}
		rec.ChunkNs = append(rec.ChunkNs, now)
		if r := onBody(b); r.code != "" {
			rec.Error, rec.ErrorMsg = r.code, r.msg
		}
		return
	}
	sse := ssePool.Get().(*SSEReader)
	sse.Reset(resp.Body)
	e.readSSE(ctx, sse, eofEnds, rec, onEvent)
	sse.Reset(nil)
	ssePool.Put(sse)
}

// readSSE reads a stream's events: onEvent handles each data payload;
// the literal payload [DONE] ends the stream. rec gets ChunkNs,
// FirstOutputNs, EndNs and the error, if any.
func (e *httpEngine) readSSE(ctx context.Context, sse *SSEReader, eofEnds bool, rec *metrics.RequestRecord,
	onEvent func(data []byte) eventResult) {
	onChunk := e.cfg.OnChunk
	done := false
	for {
		_, data, err := sse.Next()
		now := metrics.Now()
		if err != nil {
			if errors.Is(err, io.EOF) && (done || eofEnds) {
				break
			}
			rec.EndNs = now
			if errors.Is(err, io.EOF) {
				rec.Error, rec.ErrorMsg = CodeStreamBroken, "stream ended before completion"
			} else {
				rec.Error, rec.ErrorMsg = Classify(ctx, err, true), err.Error()
			}
			return
		}
		if len(data) == 6 && string(data) == "[DONE]" {
			done = true
			break
		}
		rec.EndNs = now
		r := onEvent(data)
		if r.code != "" {
			rec.Error, rec.ErrorMsg = r.code, r.msg
			return
		}
		if r.content {
			rec.ChunkNs = append(rec.ChunkNs, now)
			if onChunk != nil {
				onChunk(data, now)
			}
		}
		if r.output && rec.FirstOutputNs == 0 {
			rec.FirstOutputNs = now
		}
		if r.done {
			done = true
		}
	}
	if rec.EndNs == 0 {
		rec.EndNs = metrics.Now()
	}
}
