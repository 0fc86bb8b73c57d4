package protocol

import (
	"context"
	"crypto/tls"
	"net/http"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is one inference request, independent of the wire format.
type Request struct {
	Model string
	// Messages (chat) or Prompt (completions, KServe, generic HTTP).
	Messages []Message
	Prompt   string
	// MaxTokens is the requested output length (0: server default).
	MaxTokens int
	// InputTokens is the client tokenizer's count of the prompt, used when
	// the server does not report usage.
	InputTokens int
	SessionNum  int64
	RequestID   string
}

// Text returns the prompt text (messages joined by newlines).
func (r *Request) Text() string {
	if r.Prompt != "" || len(r.Messages) == 0 {
		return r.Prompt
	}
	if len(r.Messages) == 1 {
		return r.Messages[0].Content
	}
	n := 0
	for _, m := range r.Messages {
		n += len(m.Content) + 1
	}
	b := make([]byte, 0, n)
	for i, m := range r.Messages {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, m.Content...)
	}
	return string(b)
}

// Usage is the server-reported token usage.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	ReasoningTokens  int64
}

// Output is what a client read from the response besides timings: the
// generated text (for tokenizer fallback counts) and the server's usage.
type Output struct {
	Text      []byte
	Reasoning []byte
	Usage     *Usage
}

// Reset clears o for reuse.
func (o *Output) Reset() { o.Text, o.Reasoning, o.Usage = o.Text[:0], o.Reasoning[:0], nil }

// Client sends one request and fills the timing record: SendNs, AckNs,
// ChunkNs, EndNs, HTTPStatus and Error (a stable code). Token counts are
// left to the caller, which reads out.Usage or tokenizes out.Text.
type Client interface {
	Do(ctx context.Context, req *Request, rec *metrics.RequestRecord, out *Output)
}

// Config is shared by the HTTP clients.
type Config struct {
	// BaseURL is the target, e.g. http://host:8000.
	BaseURL string
	// Path overrides the endpoint path.
	Path string
	// Streaming asks for SSE responses.
	Streaming bool
	// Headers are sent with every request (an API key from a secret goes
	// in APIKey, sent as "Authorization: Bearer").
	Headers map[string]string
	APIKey  string
	// Timeout is request_timeout_seconds (0: none).
	Timeout time.Duration
	// ExtraInputs are merged into every JSON body (they override the
	// generated keys, e.g. max_tokens, ignore_eos).
	ExtraInputs map[string]any
	// KeepText makes clients collect the generated text into Output.
	KeepText bool
	// MaxConns bounds connections per host (0: unbounded).
	MaxConns int
	// InsecureSkipVerify disables TLS verification (self-signed targets).
	InsecureSkipVerify bool
	// NoLeanClient turns off perfleet's own HTTP/1.1 client, which
	// otherwise serves requests to http:// targets, streamed or not
	// (net/http still serves https://, HTTPClient and MaxConns).
	NoLeanClient bool
	// LocalAddrs are source IP addresses to spread connections over,
	// round-robin (e.g. 127.0.0.1…127.0.0.4 for more than ~28k
	// connections to one loopback server); empty: the kernel's choice.
	LocalAddrs []string
	// OnChunk, if set, is called with the data of every streamed event
	// that got a chunk timestamp and with that timestamp (metrics.Now
	// nanoseconds). It runs on the request's goroutine, must be fast and
	// must not keep data. For benchmarks and tests.
	OnChunk func(data []byte, ns int64)
	// HTTPClient overrides the default tuned client.
	HTTPClient *http.Client
}

// NewHTTPClient returns a net/http client tuned for load generation:
// keep-alive pools as large as the load, no compression, no HTTP/2 (each
// stream gets its own connection, as LLM benchmarks expect), short dial
// timeout.
func NewHTTPClient(cfg Config) *http.Client {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           newDialer(cfg),
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   100_000,
		MaxConnsPerHost:       cfg.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 0,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify}, //nolint:gosec // opt-in for self-signed targets
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &http.Client{Transport: tr}
}
