package protocol

import (
	"reflect"
	"testing"
)

var fastCorpus = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}],"llmsim_sent_ns":1700000000000000000}`,
	`{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
	`{"choices":[{"delta":{"reasoning_content":"think"}}]}`,
	`{"choices":[{"delta":{"reasoning":"r","content":null}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"id":"t","function":{"name":"f","arguments":"{}"}}]}}]}`,
	`{"choices":[{"delta":{"tool_calls":[]}}]}`,
	`{"choices":[{"delta":{},"finish_reason":"stop"}]}`,
	`{"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"completion_tokens_details":{"reasoning_tokens":1}}}`,
	`{"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"completion_tokens_details":null}}`,
	`{"choices":[{"text":"hello","finish_reason":"length"}],"usage":null}`,
	`{"choices":[{"message":{"role":"assistant","content":"hello world"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2}}`,
	`{"choices":[{"delta":{"content":"a"},"message":{"content":"b"}}]}`,
	`{"choices":[{"delta":null,"message":{"content":"b"}}]}`,
	`{"choices":[null,{"text":"x"}]}`,
	`{"choices":null}`,
	`{"error":{"message":"boom","type":"server_error","code":500}}`,
	`{"error":{"message":null}}`,
	`{"error":null,"choices":[{"text":"ok"}]}`,
	`{"error":"string"}`,
	`{"choices":[{"delta":{"content":"esc\"aped\\n\u00e9"}}]}`,
	`{"choices":[{"delta":{"content":"naïve ☃"}}]}`,
	"{\"choices\":[{\"delta\":{\"content\":\"bad\xffutf8\"}}]}",
	`{"Choices":[{"text":"case"}]}`,
	`{"choices":[{"TEXT":"case"}]}`,
	`{"choices":[{"text":"a"}],"choices":[{"text":"b"}]}`,
	`{"choices":[{"text":5}]}`,
	`{"choices":{}}`,
	`{"usage":{"prompt_tokens":1.5}}`,
	`{"usage":{"prompt_tokens":1e3}}`,
	`{"usage":{"prompt_tokens":-3,"completion_tokens":99999999999999999999}}`,
	`{"usage":{"prompt_tokens":"3"}}`,
	`{"x":[1,-0.5e+3,true,false,null,{"a":[]},"s"],"choices":[{"text":"t"}]}`,
	`{"x":01}`, `{"x":-}`, `{"x":1.}`, `{"x":.5}`, `{"x":tru}`, `{"x":"\q"}`, `{"x":"\u12"}`,
	"{\"x\":\"tab\there\"}",
	`{nope`, ``, `[]`, `null`, `"s"`, `{"choices":[{"text":"t"}]} x`, `{"choices":[{"text":"t"}]}  `,
	`{"choices":[{"text":"t",}]}`, `{"choices":[{"text":"t"},]}`, `{,}`, `{"a" 1}`, `{"a":1 "b":2}`,
	` { "choices" : [ { "delta" : { "content" : "sp" } } ] } `,
}

// checkFast compares fastChunk with the encoding/json path on one input.
func checkFast(t *testing.T, in string, keep bool) {
	t.Helper()
	slowOut := &Output{Text: []byte("pre"), Reasoning: []byte("r0")}
	slowR, slowN := parseOpenAISlow([]byte(in), slowOut, keep)
	f := fastChunk{d: []byte(in), keep: keep, text: []byte("pre"), reasoning: []byte("r0")}
	if !f.parse() {
		return // gave up: the caller uses encoding/json
	}
	if slowR.code == CodeParse {
		t.Fatalf("%q: fast path accepted what encoding/json rejects (%s)", in, slowR.msg)
	}
	fastOut := &Output{Text: f.text, Reasoning: f.reasoning, Usage: f.usage}
	fastR := f.r
	if f.hasError {
		fastR = eventResult{code: CodeServer, msg: string(f.errMsg)}
		fastOut = &Output{Text: []byte("pre"), Reasoning: []byte("r0")}
	}
	if fastR != slowR {
		t.Fatalf("%q keep=%v: fast %+v, json %+v", in, keep, fastR, slowR)
	}
	if slowR.code == "" && f.choices != slowN {
		t.Fatalf("%q: choices fast %d json %d", in, f.choices, slowN)
	}
	if string(fastOut.Text) != string(slowOut.Text) || string(fastOut.Reasoning) != string(slowOut.Reasoning) ||
		!reflect.DeepEqual(fastOut.Usage, slowOut.Usage) {
		t.Fatalf("%q keep=%v: fast %q %q %+v, json %q %q %+v", in, keep, fastOut.Text, fastOut.Reasoning, fastOut.Usage,
			slowOut.Text, slowOut.Reasoning, slowOut.Usage)
	}
}

func TestFastChunkMatchesJSON(t *testing.T) {
	accepted := 0
	for _, in := range fastCorpus {
		for _, keep := range []bool{false, true} {
			checkFast(t, in, keep)
		}
		if f := (fastChunk{d: []byte(in)}); f.parse() {
			accepted++
		}
	}
	if accepted < 20 {
		t.Fatalf("fast path accepted only %d inputs", accepted)
	}
	// The common chunk must take the fast path without allocating.
	data := []byte(fastCorpus[0])
	var f fastChunk
	if n := testing.AllocsPerRun(100, func() { f = fastChunk{d: data}; f.parse() }); n != 0 || !f.r.content {
		t.Fatalf("%v allocations per chunk, content %v", n, f.r.content)
	}
}

func FuzzFastChunk(f *testing.F) {
	for _, in := range fastCorpus {
		f.Add(in, false)
	}
	f.Fuzz(func(t *testing.T, in string, keep bool) { checkFast(t, in, keep) })
}

func BenchmarkOpenAIChunk(b *testing.B) {
	data := []byte(fastCorpus[0])
	b.Run("fast", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f := fastChunk{d: data}
			f.parse()
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		out := &Output{}
		for i := 0; i < b.N; i++ {
			parseOpenAISlow(data, out, false)
		}
	})
}
