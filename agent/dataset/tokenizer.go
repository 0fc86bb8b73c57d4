// Package dataset makes the prompts of a benchmark: synthetic prompts of a
// chosen token length (deterministic for a seed) and JSONL datasets
// (ShareGPT, OpenAI chat, completions), with a real tokenizer to count
// tokens.
package dataset

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// ErrDataset is wrapped by every dataset error.
var ErrDataset = errors.New("dataset")

// DefaultEncoding is the tokenizer used when none (or a Hugging Face id
// that cannot be loaded offline) is asked for.
const DefaultEncoding = "cl100k_base"

// Tokenizer counts tokens with one of tiktoken's bundled BPE encodings
// (loaded offline). Name records which one, for the results.
type Tokenizer struct {
	// Name is the encoding actually used ("cl100k_base", "o200k_base", …).
	Name string
	// Requested is what the workload asked for ("" or a Hugging Face id).
	Requested string
	enc       *tiktoken.Tiktoken
}

var (
	loaderOnce sync.Once
	encMu      sync.Mutex
	encCache   = map[string]*tiktoken.Tiktoken{}
)

// NewTokenizer returns a tokenizer for a tiktoken encoding name, an OpenAI
// model name, or anything else (e.g. a Hugging Face id), which falls back
// to DefaultEncoding; Requested keeps what was asked.
func NewTokenizer(requested string) (*Tokenizer, error) {
	loaderOnce.Do(func() { tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader()) })
	name := DefaultEncoding
	switch r := strings.TrimSpace(requested); {
	case r == "":
	case r == "cl100k_base" || r == "o200k_base" || r == "p50k_base" || r == "r50k_base":
		name = r
	default:
		if e, ok := tiktoken.MODEL_TO_ENCODING[r]; ok {
			name = e
		}
	}
	encMu.Lock()
	defer encMu.Unlock()
	enc, ok := encCache[name]
	if !ok {
		var err error
		enc, err = tiktoken.GetEncoding(name)
		if err != nil {
			return nil, fmt.Errorf("%w: tokenizer %s: %v", ErrDataset, name, err)
		}
		encCache[name] = enc
	}
	return &Tokenizer{Name: name, Requested: requested, enc: enc}, nil
}

// Count returns the number of tokens of s (no special tokens added).
func (t *Tokenizer) Count(s string) int {
	if s == "" {
		return 0
	}
	return len(t.enc.EncodeOrdinary(s))
}

// Encode returns the tokens of s.
func (t *Tokenizer) Encode(s string) []int { return t.enc.EncodeOrdinary(s) }

// Decode returns the text of tokens.
func (t *Tokenizer) Decode(tokens []int) string { return t.enc.Decode(tokens) }
