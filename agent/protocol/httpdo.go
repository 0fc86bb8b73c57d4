package protocol

import (
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
	// lean serves non-streamed requests to http:// targets (nil: net/http).
	lean *leanClient
	path string   // request path of the lean client
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
		e.lean, _ = newLeanClient(cfg.BaseURL)
	}
	return e
}

// postLean is post's path for non-streamed requests over the lean client.
func (e *httpEngine) postLean(ctx context.Context, rawURL string, body []byte, rec *metrics.RequestRecord,
	onBody func(body []byte) eventResult) {
	path := rawURL[len(strings.TrimRight(e.cfg.BaseURL, "/")):]
	if path == "" {
		path = "/"
	}
	status, b, err := e.lean.post(ctx, path, e.hdr, body, rec)
	now := metrics.Now()
	rec.EndNs = now
	if err != nil {
		var ms midStream
		rec.Error, rec.ErrorMsg = Classify(ctx, err, errors.As(err, &ms)), err.Error()
		return
	}
	rec.HTTPStatus = status
	if code := StatusCode(status); code != "" {
		if len(b) > 2048 {
			b = b[:2048]
		}
		rec.Error, rec.ErrorMsg = code, strings.TrimSpace(string(b))
		return
	}
	rec.ChunkNs = append(rec.ChunkNs, now)
	if r := onBody(b); r.code != "" {
		rec.Error, rec.ErrorMsg = r.code, r.msg
	}
}

var ssePool = sync.Pool{New: func() any { return NewSSEReader(bytes.NewReader(nil), 0) }}

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
	if !stream && e.lean != nil && strings.HasPrefix(url, e.cfg.BaseURL) {
		e.postLean(ctx, url, body, rec, onBody)
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
	defer ssePool.Put(sse)
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
