package llmsim

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Sentinel errors returned by ProfileFor and Profile.Validate.
var (
	// ErrUnknownGPU reports a GPU type that is not in the profile table.
	ErrUnknownGPU = errors.New("llmsim: unknown GPU type")
	// ErrInvalidGPUCount reports a GPU count that is not 1, 2, 4 or 8.
	ErrInvalidGPUCount = errors.New("llmsim: GPU count must be 1, 2, 4 or 8")
	// ErrInvalidProfile reports a profile with a non-positive rate or capacity.
	ErrInvalidProfile = errors.New("llmsim: invalid profile")
)

// TPExponent is the exponent of the tensor-parallel speed-up: N GPUs make
// prefill and decode N^TPExponent times faster (TP2 ≈ 1.74×, TP4 ≈ 3.03×,
// TP8 ≈ 5.28×). It is below 1 because every layer ends in an all-reduce whose
// cost does not shrink with N.
const TPExponent = 0.8

// DefaultMaxModelLen is the context length of a profile when the KV cache
// can hold more (the same value vLLM picks for many 8B models).
const DefaultMaxModelLen = 32768

// Profile is the performance model of one simulated deployment: a GPU type,
// a tensor-parallel degree and the rates that follow from them. A server
// with several data-parallel copies (Config.Copies) gives each copy the
// whole profile; its capacities, rates and power are those of one copy. All fields
// are plain values: start from ProfileFor and overwrite any field (or call
// WithFixedITL) to override a parameter.
//
// The model (see also the package documentation):
//
//	prefill time    = prompt_tokens / PrefillTokensPerSec   (prefills run one at a time, FIFO)
//	ITL(running)    = BaseITL + PerSeqITL × running         (running = sequences in the batch)
//	batch admission : running < MaxNumSeqs and KV tokens in use + prompt + output ≤ KVCacheTokens
type Profile struct {
	// GPU is the canonical GPU type name, e.g. "H100-80GB".
	GPU string
	// GPUCount is the tensor-parallel degree (GPUs serving one replica).
	GPUCount int
	// PrefillTokensPerSec is the prompt processing rate of the whole replica.
	PrefillTokensPerSec float64
	// BaseITL is the decode step time with an (almost) empty batch.
	BaseITL time.Duration
	// PerSeqITL is how much each running sequence adds to the decode step.
	PerSeqITL time.Duration
	// KVCacheTokens is the KV-cache capacity of the replica, in tokens.
	KVCacheTokens int
	// MaxNumSeqs bounds the number of sequences in the running batch.
	MaxNumSeqs int
	// MaxModelLen bounds prompt plus output tokens of one request.
	MaxModelLen int
	// IdleWatts and MaxWatts are the power draw of the replica (all GPUs)
	// when idle and at full load.
	IdleWatts, MaxWatts float64
	// MemoryGiB is the memory of one GPU.
	MemoryGiB float64
}

// gpuSpec is one row of the GPU table; values are per GPU.
type gpuSpec struct {
	prefill     float64 // tokens/s
	baseITLms   float64
	perSeqITLms float64
	kvTokens    int
	maxNumSeqs  int
	idleW, maxW float64
	memoryGiB   float64
	aliases     []string
}

// gpuTable holds rough figures for serving a Llama-3.1-8B-class model in
// BF16 with vLLM defaults on one GPU. They are order-of-magnitude estimates
// (prefill ≈ 45 % of dense BF16 peak at 16 GFLOP/token, decode ≈ weights read
// at memory bandwidth plus overhead, KV = (0.9·memory − 16 GB weights) at
// 128 KiB/token), not measurements: they make GPUs differ plausibly and
// predictably.
var gpuTable = map[string]gpuSpec{
	"H100-80GB":  {prefill: 24000, baseITLms: 7, perSeqITLms: 0.08, kvTokens: 400000, maxNumSeqs: 256, idleW: 70, maxW: 700, memoryGiB: 80, aliases: []string{"H100", "H100-SXM", "H100-SXM-80GB"}},
	"H200-141GB": {prefill: 26000, baseITLms: 5.5, perSeqITLms: 0.06, kvTokens: 850000, maxNumSeqs: 256, idleW: 75, maxW: 700, memoryGiB: 141, aliases: []string{"H200"}},
	"A100-80GB":  {prefill: 11000, baseITLms: 11, perSeqITLms: 0.14, kvTokens: 400000, maxNumSeqs: 256, idleW: 50, maxW: 400, memoryGiB: 80, aliases: []string{"A100", "A100-SXM-80GB"}},
	"L40S":       {prefill: 8500, baseITLms: 20, perSeqITLms: 0.25, kvTokens: 200000, maxNumSeqs: 256, idleW: 35, maxW: 350, memoryGiB: 48, aliases: []string{"L40S-48GB"}},
	"A10G":       {prefill: 3200, baseITLms: 28, perSeqITLms: 0.40, kvTokens: 30000, maxNumSeqs: 128, idleW: 20, maxW: 300, memoryGiB: 24, aliases: []string{"A10G-24GB"}},
	"L4":         {prefill: 2600, baseITLms: 55, perSeqITLms: 0.60, kvTokens: 30000, maxNumSeqs: 128, idleW: 16, maxW: 72, memoryGiB: 24, aliases: []string{"L4-24GB"}},
}

// GPUTypes returns the canonical names of the simulated GPU types, sorted.
func GPUTypes() []string {
	names := make([]string, 0, len(gpuTable))
	for name := range gpuTable {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// canonicalGPU resolves a GPU name or alias, ignoring case.
func canonicalGPU(gpu string) (string, bool) {
	for name, spec := range gpuTable {
		if strings.EqualFold(name, gpu) {
			return name, true
		}
		for _, a := range spec.aliases {
			if strings.EqualFold(a, gpu) {
				return name, true
			}
		}
	}
	return "", false
}

// TPSpeedup returns the tensor-parallel speed-up N^TPExponent for n GPUs.
func TPSpeedup(n int) float64 {
	return math.Pow(float64(n), TPExponent)
}

// ProfileFor returns the profile of count GPUs of type gpu (a name from
// GPUTypes or an alias such as "H100", case-insensitive) serving one replica
// with tensor parallelism. With s = TPSpeedup(count):
//
//	PrefillTokensPerSec = per-GPU rate × s
//	BaseITL, PerSeqITL  = per-GPU values ÷ s
//	KVCacheTokens       = per-GPU capacity × count   (linear)
//	Idle/MaxWatts       = per-GPU values × count
//	MaxModelLen         = min(DefaultMaxModelLen, KVCacheTokens)
func ProfileFor(gpu string, count int) (Profile, error) {
	name, ok := canonicalGPU(gpu)
	if !ok {
		return Profile{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownGPU, gpu, strings.Join(GPUTypes(), ", "))
	}
	switch count {
	case 1, 2, 4, 8:
	default:
		return Profile{}, fmt.Errorf("%w: got %d", ErrInvalidGPUCount, count)
	}
	spec := gpuTable[name]
	s := TPSpeedup(count)
	ms := func(v float64) time.Duration { return time.Duration(v / s * float64(time.Millisecond)) }
	p := Profile{
		GPU:                 name,
		GPUCount:            count,
		PrefillTokensPerSec: spec.prefill * s,
		BaseITL:             ms(spec.baseITLms),
		PerSeqITL:           ms(spec.perSeqITLms),
		KVCacheTokens:       spec.kvTokens * count,
		MaxNumSeqs:          spec.maxNumSeqs,
		IdleWatts:           spec.idleW * float64(count),
		MaxWatts:            spec.maxW * float64(count),
		MemoryGiB:           spec.memoryGiB,
	}
	p.MaxModelLen = min(DefaultMaxModelLen, p.KVCacheTokens)
	return p, nil
}

// WithFixedITL returns a copy of p whose inter-token latency is d whatever
// the batch size (BaseITL = d, PerSeqITL = 0), e.g. for load-generator
// benchmarks that need a known token rate.
func (p Profile) WithFixedITL(d time.Duration) Profile {
	p.BaseITL, p.PerSeqITL = d, 0
	return p
}

// ITL returns the decode step time with running sequences in the batch:
// BaseITL + PerSeqITL × running.
func (p Profile) ITL(running int) time.Duration {
	return p.BaseITL + p.PerSeqITL*time.Duration(running)
}

// PrefillTime returns promptTokens / PrefillTokensPerSec.
func (p Profile) PrefillTime(promptTokens int) time.Duration {
	return time.Duration(float64(promptTokens) / p.PrefillTokensPerSec * float64(time.Second))
}

// Validate checks that rates and capacities are usable.
func (p Profile) Validate() error {
	switch {
	case p.PrefillTokensPerSec <= 0:
		return fmt.Errorf("%w: prefill rate must be positive", ErrInvalidProfile)
	case p.BaseITL < 0 || p.PerSeqITL < 0:
		return fmt.Errorf("%w: ITL must not be negative", ErrInvalidProfile)
	case p.KVCacheTokens <= 0 || p.MaxNumSeqs <= 0 || p.MaxModelLen <= 0:
		return fmt.Errorf("%w: KV capacity, max_num_seqs and max_model_len must be positive", ErrInvalidProfile)
	case p.MaxModelLen > p.KVCacheTokens:
		return fmt.Errorf("%w: max_model_len %d exceeds KV capacity %d", ErrInvalidProfile, p.MaxModelLen, p.KVCacheTokens)
	case p.MaxWatts < p.IdleWatts:
		return fmt.Errorf("%w: max power below idle power", ErrInvalidProfile)
	}
	return nil
}
