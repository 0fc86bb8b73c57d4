package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/jmespath/go-jmespath"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// ErrTemplate is wrapped by payload template and response field errors.
var ErrTemplate = errors.New("protocol: generic HTTP")

// Generic is the client for any HTTP JSON API: the body comes from a Go
// text/template (extra_inputs.payload_template, inline or a file path),
// and the generated text from a JMESPath expression
// (extra_inputs.response_field) applied to the response JSON, or to each
// SSE event's JSON when streaming.
//
// Template data: .Prompt .Model .MaxTokens .Messages .Stream .SessionNum
// .RequestID; the function json quotes a value as JSON, e.g.
// {"input": {{json .Prompt}}, "max_new_tokens": {{.MaxTokens}}}.
type Generic struct {
	eng   *httpEngine
	url   string
	tmpl  *template.Template
	field *jmespath.JMESPath
}

var _ Client = (*Generic)(nil)

// DefaultPayloadTemplate is used when no payload_template is given.
const DefaultPayloadTemplate = `{"model": {{json .Model}}, "prompt": {{json .Prompt}}, "max_tokens": {{.MaxTokens}}, "stream": {{.Stream}}}`

// NewGeneric compiles the template and the response field.
func NewGeneric(cfg Config) (*Generic, error) {
	src, _ := cfg.ExtraInputs["payload_template"].(string)
	if src == "" {
		src = DefaultPayloadTemplate
	} else if p, ok := strings.CutPrefix(src, "file:"); ok || strings.HasPrefix(src, "/") {
		if !ok {
			p = src
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: payload_template: %v", ErrTemplate, err)
		}
		src = string(b)
	}
	t, err := template.New("payload").Funcs(template.FuncMap{"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}}).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w: payload_template: %v", ErrTemplate, err)
	}
	expr, _ := cfg.ExtraInputs["response_field"].(string)
	if expr == "" {
		expr = "choices[0].text || choices[0].delta.content || choices[0].message.content || text || generated_text"
	}
	f, err := jmespath.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: response_field %q: %v", ErrTemplate, expr, err)
	}
	path := cfg.Path
	if path == "" {
		path = "/"
	}
	return &Generic{eng: newEngine(cfg), url: strings.TrimRight(cfg.BaseURL, "/") + path, tmpl: t, field: f}, nil
}

type templateData struct {
	Prompt     string
	Model      string
	MaxTokens  int
	Messages   []Message
	Stream     bool
	SessionNum int64
	RequestID  string
}

// Body renders the payload template for one request.
func (g *Generic) Body(req *Request) ([]byte, error) {
	var b bytes.Buffer
	err := g.tmpl.Execute(&b, templateData{Prompt: req.Text(), Model: req.Model, MaxTokens: req.MaxTokens,
		Messages: req.Messages, Stream: g.eng.cfg.Streaming, SessionNum: req.SessionNum, RequestID: req.RequestID})
	return b.Bytes(), err
}

// Extract applies the response field to one JSON document.
func (g *Generic) Extract(doc []byte) (string, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return "", err
	}
	res, err := g.field.Search(v)
	if err != nil {
		return "", err
	}
	switch x := res.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	default:
		b, _ := json.Marshal(x)
		return string(b), nil
	}
}

// Do implements Client.
func (g *Generic) Do(ctx context.Context, req *Request, rec *metrics.RequestRecord, out *Output) {
	rec.Model = req.Model
	body, err := g.Body(req)
	if err != nil {
		rec.SendNs = metrics.Now()
		rec.EndNs = rec.SendNs
		rec.Error, rec.ErrorMsg = CodeOther, "payload_template: "+err.Error()
		return
	}
	parse := func(data []byte) eventResult {
		text, err := g.Extract(data)
		if err != nil {
			return eventResult{code: CodeParse, msg: err.Error()}
		}
		out.Text = append(out.Text, text...)
		return eventResult{content: text != "", output: text != ""}
	}
	onBody := func(b []byte) eventResult {
		r := parse(b)
		return eventResult{code: r.code, msg: r.msg}
	}
	g.eng.post(ctx, g.url, body, g.eng.cfg.Streaming, true, rec, parse, onBody)
}

// New returns the client for an api name: openai-chat, openai-completions,
// kserve-v2 or http.
func New(api string, cfg Config) (Client, error) {
	switch api {
	case "", "openai-chat", "chat":
		return NewOpenAI(cfg, true)
	case "openai-completions", "completions":
		return NewOpenAI(cfg, false)
	case "kserve-v2", "kserve":
		return NewKServeV2(cfg), nil
	case "http", "generic":
		return NewGeneric(cfg)
	}
	return nil, fmt.Errorf("protocol: unknown api %q", api)
}
