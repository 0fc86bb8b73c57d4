package protocol

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/perfleet/perfleet/pkg/metrics"
)

func TestKServeV2Infer(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/models/llama/infer" {
			t.Errorf("path %s", r.URL.Path)
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		io.WriteString(w, `{"model_name":"llama","outputs":[{"name":"text_output","datatype":"BYTES","shape":[1],"data":["hi there"]}]}`)
	}))
	defer srv.Close()
	c := NewKServeV2(Config{BaseURL: srv.URL, ExtraInputs: map[string]any{"temperature": 0.1}})
	rec, out := &metrics.RequestRecord{}, &Output{}
	c.Do(context.Background(), &Request{Model: "llama", Prompt: "hello", MaxTokens: 4}, rec, out)
	if rec.Error != "" || string(out.Text) != "hi there" {
		t.Fatalf("rec %+v text %q", rec, out.Text)
	}
	in := got["inputs"].([]any)[0].(map[string]any)
	if in["name"] != "text_input" || in["datatype"] != "BYTES" || in["data"].([]any)[0] != "hello" {
		t.Fatalf("inputs %v", got)
	}
	if got["parameters"].(map[string]any)["temperature"] != 0.1 {
		t.Fatalf("parameters %v", got)
	}
}

func TestKServeGenerateStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"text_output\":\"a\"}\n\ndata: {\"text_output\":\"b\"}\n\n")
	}))
	defer srv.Close()
	c := NewKServeV2(Config{BaseURL: srv.URL, Streaming: true})
	rec, out := &metrics.RequestRecord{}, &Output{}
	c.Do(context.Background(), &Request{Model: "m", Prompt: "x"}, rec, out)
	if rec.Error != "" || len(rec.ChunkNs) != 2 || string(out.Text) != "ab" {
		t.Fatalf("rec %+v text %q", rec, out.Text)
	}
}

func TestGenericTemplateAndJMESPath(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		io.WriteString(w, `{"result":{"generations":[{"text":"forty two"}]}}`)
	}))
	defer srv.Close()
	c, err := NewGeneric(Config{BaseURL: srv.URL, Path: "/generate", ExtraInputs: map[string]any{
		"payload_template": `{"inputs": {{json .Prompt}}, "parameters": {"max_new_tokens": {{.MaxTokens}}}, "model": {{json .Model}}}`,
		"response_field":   "result.generations[0].text",
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec, out := &metrics.RequestRecord{}, &Output{}
	c.Do(context.Background(), &Request{Model: "m", Prompt: `say "hi"`, MaxTokens: 7}, rec, out)
	if rec.Error != "" || string(out.Text) != "forty two" {
		t.Fatalf("rec %+v text %q", rec, out.Text)
	}
	if got["inputs"] != `say "hi"` || got["parameters"].(map[string]any)["max_new_tokens"] != float64(7) {
		t.Fatalf("body %v", got)
	}
	if _, err := NewGeneric(Config{ExtraInputs: map[string]any{"response_field": "a[["}}); err == nil {
		t.Fatal("bad JMESPath must fail")
	}
	if _, err := NewGeneric(Config{ExtraInputs: map[string]any{"payload_template": "{{.Nope"}}); err == nil {
		t.Fatal("bad template must fail")
	}
}
