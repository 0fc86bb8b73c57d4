package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// KServeV2 is the client for the KServe v2 / Triton HTTP inference
// protocol. Not streaming: POST /v2/models/{model}/infer with a BYTES
// text_input tensor (and max_tokens), reading the text_output tensor.
// Streaming: POST /v2/models/{model}/generate_stream (Triton's generate
// extension), one SSE event per output piece with "text_output".
// ExtraInputs go into "parameters" (infer) or the top level (generate).
type KServeV2 struct {
	eng  *httpEngine
	base string
	path string
}

var _ Client = (*KServeV2)(nil)

// NewKServeV2 returns a KServe v2 client. cfg.Path may contain {model}.
func NewKServeV2(cfg Config) *KServeV2 {
	path := cfg.Path
	if path == "" {
		path = "/v2/models/{model}/infer"
		if cfg.Streaming {
			path = "/v2/models/{model}/generate_stream"
		}
	}
	return &KServeV2{eng: newEngine(cfg), base: strings.TrimRight(cfg.BaseURL, "/"), path: path}
}

type kserveTensor struct {
	Name     string `json:"name"`
	Shape    []int  `json:"shape"`
	Datatype string `json:"datatype"`
	Data     []any  `json:"data"`
}

// Body builds the request body.
func (c *KServeV2) Body(req *Request) []byte {
	extra := map[string]any{}
	for k, v := range c.eng.cfg.ExtraInputs {
		if k != "payload_template" && k != "response_field" {
			extra[k] = v
		}
	}
	if c.eng.cfg.Streaming {
		body := map[string]any{"text_input": req.Text(), "stream": true}
		if req.MaxTokens > 0 {
			body["max_tokens"] = req.MaxTokens
		}
		for k, v := range extra {
			body[k] = v
		}
		b, _ := json.Marshal(body)
		return b
	}
	inputs := []kserveTensor{{Name: "text_input", Shape: []int{1}, Datatype: "BYTES", Data: []any{req.Text()}}}
	if req.MaxTokens > 0 {
		inputs = append(inputs, kserveTensor{Name: "max_tokens", Shape: []int{1}, Datatype: "INT32", Data: []any{req.MaxTokens}})
	}
	body := map[string]any{"inputs": inputs}
	if len(extra) > 0 {
		body["parameters"] = extra
	}
	b, _ := json.Marshal(body)
	return b
}

type kserveResponse struct {
	Outputs []struct {
		Name     string `json:"name"`
		Datatype string `json:"datatype"`
		Data     []any  `json:"data"`
	} `json:"outputs"`
	TextOutput *string `json:"text_output"`
	Error      string  `json:"error"`
}

// Do implements Client.
func (c *KServeV2) Do(ctx context.Context, req *Request, rec *metrics.RequestRecord, out *Output) {
	rec.Model = req.Model
	url := c.base + strings.ReplaceAll(c.path, "{model}", req.Model)
	parse := func(data []byte) eventResult {
		var r kserveResponse
		if err := json.Unmarshal(data, &r); err != nil {
			return eventResult{code: CodeParse, msg: fmt.Sprintf("bad JSON: %v", err)}
		}
		if r.Error != "" {
			return eventResult{code: CodeServer, msg: r.Error}
		}
		text := ""
		if r.TextOutput != nil {
			text = *r.TextOutput
		}
		for _, o := range r.Outputs {
			if (o.Name == "text_output" || o.Datatype == "BYTES") && len(o.Data) > 0 {
				if s, ok := o.Data[0].(string); ok {
					text = s
					break
				}
			}
		}
		out.Text = append(out.Text, text...)
		return eventResult{content: text != "", output: text != ""}
	}
	body := func(b []byte) eventResult {
		r := parse(b)
		return eventResult{code: r.code, msg: r.msg}
	}
	c.eng.post(ctx, url, c.Body(req), c.eng.cfg.Streaming, true, rec, parse, body)
}
