package llmsim

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig reports a Config that New cannot use.
var ErrInvalidConfig = errors.New("llmsim: invalid config")

// Defaults applied by New to zero Config fields.
const (
	// DefaultModel is the served model name when Config.Models is empty.
	DefaultModel = "llmsim"
	// DefaultMaxTokens is the output budget of a request that sets neither
	// max_tokens nor max_completion_tokens (bounded by the context length).
	DefaultMaxTokens = 256
	// DefaultMeanOutputTokens is the mean natural output length (see
	// Config.MeanOutputTokens).
	DefaultMeanOutputTokens = 128
	// DefaultTick is the resolution of the scheduler loop.
	DefaultTick = time.Millisecond
	// MaxCopies bounds Config.Copies (each copy holds an engine with its
	// own timing wheel).
	MaxCopies = 1024
)

// Faults configures fault injection. Every decision is drawn from the
// request's seeded random stream, so a seed and a request sequence give the
// same faults on every run. Rates are probabilities per request in [0, 1].
type Faults struct {
	// ErrorRate is the fraction of requests answered with an OpenAI-style
	// error instead of a completion.
	ErrorRate float64
	// RateLimitShare is the fraction of injected errors that are 429 (rate
	// limited); the rest are 500.
	RateLimitShare float64
	// StallRate is the fraction of requests whose output pauses once for
	// StallDuration at a token drawn uniformly from the second to the last.
	StallRate float64
	// StallDuration is the length of an injected pause.
	StallDuration time.Duration
	// DropRate is the fraction of requests whose connection is closed after
	// a uniformly drawn number of tokens (1..output length), without the
	// rest of the stream or [DONE].
	DropRate float64
}

// Config configures a simulated server. The zero value serves DefaultModel on
// one copy of one H100-80GB with seed 0 and no faults.
type Config struct {
	// Models are the served model names; requests naming another model get
	// a 404. The first name labels the metrics. All names share the
	// server's engines.
	Models []string
	// Profile is the performance model of one copy; a zero Profile means
	// ProfileFor("H100-80GB", 1).
	Profile Profile
	// Copies is the number of data-parallel copies of the model behind the
	// one listener (vLLM's --data-parallel-size, SageMaker's
	// CopyCountPerInstance); 0 means 1. Each copy is an independent engine
	// with the whole Profile (its own batch, KV cache and prefill queue, on
	// Profile.GPUCount GPUs of its own), and each request goes to the copy
	// with the fewest outstanding requests, ties to the lowest index. At
	// most MaxCopies.
	Copies int
	// Seed makes token texts, output lengths and faults reproducible.
	Seed int64
	// Faults configures fault injection.
	Faults Faults
	// Timestamps adds "llmsim_sent_ns" (Unix nanoseconds, taken just before
	// the write) to every streamed chunk. A request enables it for itself
	// with the header "x-llmsim-timestamps: 1".
	Timestamps bool
	// DefaultMaxTokens replaces 0 with DefaultMaxTokens.
	DefaultMaxTokens int
	// MeanOutputTokens is the mean of the natural output length used when a
	// request does not set ignore_eos: length = 1 + ⌊−mean·ln(1−u)⌋ (an
	// exponential draw, u uniform in [0,1)), then clamped to
	// [min_tokens, max_tokens]. 0 means DefaultMeanOutputTokens.
	MeanOutputTokens int
	// Tick is the scheduler resolution: tokens are released at the first
	// tick at or after their due time (0 means DefaultTick).
	Tick time.Duration
}

// withDefaults fills zero fields and validates the result.
func (c Config) withDefaults() (Config, error) {
	if len(c.Models) == 0 {
		c.Models = []string{DefaultModel}
	}
	for _, m := range c.Models {
		if m == "" {
			return c, fmt.Errorf("%w: empty model name", ErrInvalidConfig)
		}
	}
	if c.Profile == (Profile{}) {
		p, err := ProfileFor("H100-80GB", 1)
		if err != nil {
			return c, err
		}
		c.Profile = p
	}
	if err := c.Profile.Validate(); err != nil {
		return c, err
	}
	if c.DefaultMaxTokens == 0 {
		c.DefaultMaxTokens = DefaultMaxTokens
	}
	if c.MeanOutputTokens == 0 {
		c.MeanOutputTokens = DefaultMeanOutputTokens
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.Copies == 0 {
		c.Copies = 1
	}
	if c.DefaultMaxTokens < 0 || c.MeanOutputTokens < 0 || c.Tick < 0 {
		return c, fmt.Errorf("%w: negative default", ErrInvalidConfig)
	}
	if c.Copies < 0 || c.Copies > MaxCopies {
		return c, fmt.Errorf("%w: copies must be 1 to %d, got %d", ErrInvalidConfig, MaxCopies, c.Copies)
	}
	f := c.Faults
	for _, r := range []float64{f.ErrorRate, f.RateLimitShare, f.StallRate, f.DropRate} {
		if r < 0 || r > 1 {
			return c, fmt.Errorf("%w: fault rates must be in [0,1]", ErrInvalidConfig)
		}
	}
	if f.StallDuration < 0 {
		return c, fmt.Errorf("%w: negative stall duration", ErrInvalidConfig)
	}
	return c, nil
}
