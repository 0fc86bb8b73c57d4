package dataset

import (
	"math"
	"strings"
	"testing"
)

func TestSyntheticLengthsAndDeterminism(t *testing.T) {
	tok, err := NewTokenizer("")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != DefaultEncoding {
		t.Fatalf("name %s", tok.Name)
	}
	cfg := Synthetic{ISLMean: 200, ISLStddev: 20, OSLMean: 64, OSLStddev: 8, Count: 300, Seed: 42}
	a, err := GenerateSynthetic(tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateSynthetic(tok, cfg)
	var isl, osl []float64
	for i := range a {
		if a[i].Prompt != b[i].Prompt || a[i].MaxTokens != b[i].MaxTokens {
			t.Fatal("not deterministic")
		}
		isl = append(isl, float64(a[i].InputTokens))
		osl = append(osl, float64(a[i].MaxTokens))
	}
	mean := func(x []float64) (m, s float64) {
		for _, v := range x {
			m += v
		}
		m /= float64(len(x))
		for _, v := range x {
			s += (v - m) * (v - m)
		}
		return m, math.Sqrt(s / float64(len(x)))
	}
	if m, s := mean(isl); math.Abs(m-200) > 5 || math.Abs(s-20) > 5 {
		t.Errorf("isl mean %.1f std %.1f", m, s)
	}
	if m, s := mean(osl); math.Abs(m-64) > 2 || math.Abs(s-8) > 2 {
		t.Errorf("osl mean %.1f std %.1f", m, s)
	}
	c, _ := GenerateSynthetic(tok, Synthetic{ISLMean: 200, Count: 3, Seed: 43})
	if c[0].Prompt == a[0].Prompt {
		t.Error("different seeds gave the same prompt")
	}
	if _, err := GenerateSynthetic(tok, Synthetic{}); err == nil {
		t.Error("ISL 0 must fail")
	}
}

func TestLoadJSONL(t *testing.T) {
	tok, _ := NewTokenizer("gpt-4o")
	if tok.Name != "o200k_base" || tok.Requested != "gpt-4o" {
		t.Fatalf("tokenizer %+v", tok)
	}
	cases := []struct {
		format, in, prompt string
		maxTokens          int
	}{
		{"sharegpt", `{"conversations":[{"from":"system","value":"s"},{"from":"human","value":"hello there"},{"from":"gpt","value":"general kenobi"}]}`, "hello there", tok.Count("general kenobi")},
		{"openai-chat", `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":7}`, "be brief\nhi", 7},
		{"openai_completions", `{"prompt":"once upon a time"}`, "once upon a time", 0},
		{"single_turn", `{"text":"t"}`, "t", 0},
	}
	for _, tc := range cases {
		es, err := LoadJSONL(strings.NewReader("\n"+tc.in+"\n"), tc.format, tok)
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if es[0].Prompt != tc.prompt || es[0].MaxTokens != tc.maxTokens || es[0].InputTokens != tok.Count(tc.prompt) {
			t.Errorf("%s: %+v", tc.format, es[0])
		}
	}
	_, err := LoadJSONL(strings.NewReader("{\"prompt\":\"a\"}\n\n{\"prompt\": 3}\n"), "openai-completions", tok)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want line 3 error, got %v", err)
	}
	_, err = LoadJSONL(strings.NewReader(`{"messages":[]}`), "openai-chat", tok)
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("want line 1 error, got %v", err)
	}
}

func TestSampler(t *testing.T) {
	es := make([]Entry, 5)
	for i := range es {
		es[i].Prompt = string(rune('a' + i))
	}
	seq, _ := NewSampler(es, "sequential", 1)
	var got string
	for i := 0; i < 7; i++ {
		got += seq.Next().Prompt
	}
	if got != "abcdeab" {
		t.Fatalf("sequential %s", got)
	}
	sh, _ := NewSampler(es, "shuffle", 1)
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		seen[sh.At(uint64(i)).Prompt] = true
	}
	if len(seen) != 5 {
		t.Fatalf("shuffle pass is not a permutation: %v", seen)
	}
	if _, err := NewSampler(es, "zigzag", 1); err == nil {
		t.Fatal("bad mode must fail")
	}
}
