package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"

	"github.com/perfleet/perfleet/agent/protocol"
)

// Entry is one prompt of a dataset.
type Entry struct {
	Messages []protocol.Message
	Prompt   string
	// MaxTokens is the requested output length (0: server default).
	MaxTokens int
	// InputTokens is the tokenizer's count of the prompt.
	InputTokens int
}

// Synthetic configures synthetic prompts. Lengths follow a normal
// distribution (mean, stddev), rounded and at least 1; AIPerf's
// prompt_input_tokens_* and output_tokens_* parameters.
type Synthetic struct {
	ISLMean, ISLStddev float64
	OSLMean, OSLStddev float64
	// Count is how many distinct prompts to make (default 100).
	Count int
	Seed  uint64
}

// GenerateSynthetic makes Count prompts: windows of the sonnet corpus of
// the drawn token length (re-counted after decoding, since a window's text
// can re-tokenize differently). The same seed gives the same prompts.
func GenerateSynthetic(tok *Tokenizer, cfg Synthetic) ([]Entry, error) {
	if cfg.ISLMean < 1 {
		return nil, fmt.Errorf("%w: input token mean %v must be ≥ 1", ErrDataset, cfg.ISLMean)
	}
	if cfg.Count <= 0 {
		cfg.Count = 100
	}
	toks := tok.Encode(strings.Join(strings.Fields(corpus), " "))
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	draw := func(mean, std float64) int {
		if mean <= 0 {
			return 0
		}
		return max(1, int(math.Round(mean+std*rng.NormFloat64())))
	}
	out := make([]Entry, cfg.Count)
	window := make([]int, 0, int(cfg.ISLMean)*2)
	for i := range out {
		n := draw(cfg.ISLMean, cfg.ISLStddev)
		start := rng.IntN(len(toks))
		window = window[:0]
		for len(window) < n {
			take := min(n-len(window), len(toks)-start)
			window = append(window, toks[start:start+take]...)
			start = 0
		}
		text := tok.Decode(window)
		out[i] = Entry{Messages: []protocol.Message{{Role: "user", Content: text}}, Prompt: text,
			MaxTokens: draw(cfg.OSLMean, cfg.OSLStddev), InputTokens: tok.Count(text)}
	}
	return out, nil
}

// Sampler draws entries: "sequential" in order (wrapping), "shuffle" a
// seeded permutation per pass, "random" with replacement. It is safe for
// concurrent use.
type Sampler struct {
	entries []Entry
	mode    string
	seed    uint64
	n       atomic.Uint64
	perms   atomic.Pointer[permEpoch]
}

type permEpoch struct {
	epoch uint64
	perm  []int
}

// NewSampler returns a sampler over entries (which must not be empty).
func NewSampler(entries []Entry, mode string, seed uint64) (*Sampler, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: no entries to sample", ErrDataset)
	}
	switch mode {
	case "", "shuffle", "sequential", "random":
	default:
		return nil, fmt.Errorf("%w: unknown sampling strategy %q", ErrDataset, mode)
	}
	if mode == "" {
		mode = "shuffle"
	}
	return &Sampler{entries: entries, mode: mode, seed: seed}, nil
}

// Len returns the number of entries.
func (s *Sampler) Len() int { return len(s.entries) }

// At returns the entry for request seq (deterministic in seq).
func (s *Sampler) At(seq uint64) *Entry {
	n := uint64(len(s.entries))
	switch s.mode {
	case "sequential":
		return &s.entries[seq%n]
	case "random":
		r := rand.New(rand.NewPCG(s.seed, seq))
		return &s.entries[r.IntN(int(n))]
	}
	epoch := seq / n
	p := s.perms.Load()
	if p == nil || p.epoch != epoch {
		r := rand.New(rand.NewPCG(s.seed, epoch))
		p = &permEpoch{epoch: epoch, perm: r.Perm(int(n))}
		s.perms.Store(p)
	}
	return &s.entries[p.perm[seq%n]]
}

// Next returns the next entry.
func (s *Sampler) Next() *Entry { return s.At(s.n.Add(1) - 1) }
