package llmsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// maxBodyBytes bounds a request body.
const maxBodyBytes = 32 << 20

// completionRequest holds the fields of an OpenAI chat or text completion
// request that the simulator uses; the others (temperature, top_p, …) are
// accepted and ignored.
type completionRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	MinTokens           int             `json:"min_tokens"`
	IgnoreEOS           bool            `json:"ignore_eos"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Seed *int64 `json:"seed"`
	N    *int   `json:"n"`
}

// chatMessage is one chat message; content is a string, an array of parts
// or null.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// apiError is an error answered to the client as OpenAI's error JSON:
// {"error":{"message":…,"type":…,"param":null,"code":…}}.
type apiError struct {
	status  int
	typ     string
	code    string // empty: null
	message string
}

// badRequest returns a 400 invalid_request_error.
func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", message: fmt.Sprintf(format, args...)}
}

// writeAPIError writes e with its status code.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	body := struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}{}
	body.Error.Message, body.Error.Type = e.message, e.typ
	if e.code != "" {
		body.Error.Code = &e.code
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// decodeRequest parses and validates a request body and returns it with its
// prompt token count.
func decodeRequest(r *http.Request, chat bool) (*completionRequest, int, *apiError) {
	var req completionRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err := dec.Decode(&req); err != nil {
		return nil, 0, badRequest("invalid JSON body: %v", err)
	}
	if req.Model == "" {
		return nil, 0, badRequest("model is required")
	}
	if req.N != nil && *req.N != 1 {
		return nil, 0, badRequest("llmsim supports only n=1")
	}
	var prompt int
	var err *apiError
	if chat {
		prompt, err = chatPromptTokens(req.Messages)
	} else {
		prompt, err = completionPromptTokens(req.Prompt)
	}
	return &req, prompt, err
}

// chatPromptTokens counts a chat prompt: per message CountTokens of the role
// and of every text part plus chatFramingTokens, then chatPrimerTokens once.
func chatPromptTokens(msgs []chatMessage) (int, *apiError) {
	if len(msgs) == 0 {
		return 0, badRequest("messages must not be empty")
	}
	n := chatPrimerTokens
	for i, m := range msgs {
		n += chatFramingTokens + CountTokens(m.Role)
		c := strings.TrimSpace(string(m.Content))
		switch {
		case c == "" || c == "null":
		case c[0] == '"':
			var s string
			if err := json.Unmarshal(m.Content, &s); err != nil {
				return 0, badRequest("messages[%d].content: %v", i, err)
			}
			n += CountTokens(s)
		case c[0] == '[':
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				return 0, badRequest("messages[%d].content: %v", i, err)
			}
			for _, p := range parts {
				n += CountTokens(p.Text)
			}
		default:
			return 0, badRequest("messages[%d].content must be a string or an array of parts", i)
		}
	}
	return n, nil
}

// completionPromptTokens counts a completion prompt: a string (counted with
// CountTokens), an array of token ids (one token each), or a one-element
// array of either.
func completionPromptTokens(raw json.RawMessage) (int, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return CountTokens(s), nil
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil && len(ids) > 0 {
		return len(ids), nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && len(list) == 1 {
		return completionPromptTokens(list[0])
	}
	return 0, badRequest("prompt must be a string, an array of token ids, or an array with one of them (llmsim serves one prompt per request)")
}

// plan is everything decided about a request before it runs; all draws come
// from streams seeded by Config.Seed and the request index (or the
// request's own seed for the text), so a seed and a request sequence always
// give the same plans.
type plan struct {
	id           string // response id suffix
	promptTokens int
	outLen       int
	eos          bool // "stop" rather than "length"
	errStatus    int  // injected error: 429 or 500; 0 for none
	dropAfter    int  // close the connection after this many tokens; 0 for none
	stallBefore  int  // token whose gap is lengthened; 0 for none
	tokens       rng  // the token text stream
}

// newPlan decides output length, faults and text for request number idx.
// Output length: max_completion_tokens, else max_tokens, else
// min(DefaultMaxTokens, MaxModelLen − prompt); with ignore_eos exactly that
// many tokens, otherwise the natural length (see Config.MeanOutputTokens)
// raised to min_tokens and capped there.
func (s *Server) newPlan(req *completionRequest, prompt int, idx uint64) (plan, *apiError) {
	maxLen := s.cfg.Profile.MaxModelLen
	if prompt >= maxLen {
		return plan{}, badRequest("This model's maximum context length is %d tokens. However, your prompt has %d tokens.", maxLen, prompt)
	}
	limit := min(s.cfg.DefaultMaxTokens, maxLen-prompt)
	if req.MaxTokens != nil {
		limit = *req.MaxTokens
	}
	if req.MaxCompletionTokens != nil {
		limit = *req.MaxCompletionTokens
	}
	if limit < 1 {
		return plan{}, badRequest("max_tokens must be at least 1, got %d", limit)
	}
	if prompt+limit > maxLen {
		return plan{}, badRequest("This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion).", maxLen, prompt+limit, prompt, limit)
	}
	seed := uint64(s.cfg.Seed)
	faults := rng{deriveSeed(seed, 2*idx)}
	textSeed := deriveSeed(seed, 2*idx+1)
	if req.Seed != nil {
		textSeed = deriveSeed(seed^mix64(uint64(*req.Seed)), 1<<63)
	}
	p := plan{promptTokens: prompt, tokens: rng{textSeed}}
	p.id = strconv.FormatUint(mix64(textSeed^idx), 16)
	p.outLen = limit
	if nat := max(naturalLength(&p.tokens, s.cfg.MeanOutputTokens), req.MinTokens); !req.IgnoreEOS && nat < limit {
		p.outLen, p.eos = nat, true
	}
	// Fault draws always happen, in this order, so enabling one fault does
	// not change the others' decisions.
	f := s.cfg.Faults
	uErr, uKind, uDrop, uDropAt, uStall, uStallAt := faults.float(), faults.float(), faults.float(), faults.float(), faults.float(), faults.float()
	switch {
	case uErr < f.ErrorRate && uKind < f.RateLimitShare:
		p.errStatus = http.StatusTooManyRequests
	case uErr < f.ErrorRate:
		p.errStatus = http.StatusInternalServerError
	}
	if uDrop < f.DropRate {
		p.dropAfter = 1 + int(uDropAt*float64(p.outLen))
	}
	if uStall < f.StallRate && p.outLen >= 2 && f.StallDuration > 0 {
		p.stallBefore = 2 + int(uStallAt*float64(p.outLen-1))
	}
	return p, nil
}

// injectedError is the error answered for an injected fault.
func injectedError(status int) *apiError {
	if status == http.StatusTooManyRequests {
		return &apiError{status: status, typ: "requests", code: "rate_limit_exceeded", message: "Rate limit reached (injected by llmsim)."}
	}
	return &apiError{status: status, typ: "server_error", message: "The server had an error while processing your request (injected by llmsim)."}
}
