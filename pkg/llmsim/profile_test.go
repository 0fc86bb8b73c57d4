package llmsim

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestProfileTable(t *testing.T) {
	for _, gpu := range []string{"H100-80GB", "A100-80GB", "L4", "L40S", "A10G"} {
		p, err := ProfileFor(gpu, 1)
		if err != nil {
			t.Fatalf("%s: %v", gpu, err)
		}
		if err := p.Validate(); err != nil || p.GPU != gpu || p.MemoryGiB <= 0 || p.MaxWatts <= p.IdleWatts {
			t.Fatalf("%s: %+v %v", gpu, p, err)
		}
	}
	if p, err := ProfileFor("h100", 1); err != nil || p.GPU != "H100-80GB" {
		t.Fatalf("alias: %+v %v", p, err)
	}
	if _, err := ProfileFor("TPU", 1); !errors.Is(err, ErrUnknownGPU) {
		t.Fatalf("unknown GPU: %v", err)
	}
	for _, n := range []int{0, 3, 16} {
		if _, err := ProfileFor("L4", n); !errors.Is(err, ErrInvalidGPUCount) {
			t.Fatalf("count %d: %v", n, err)
		}
	}
}

func TestTensorParallelScaling(t *testing.T) {
	one, _ := ProfileFor("H100-80GB", 1)
	for _, n := range []int{2, 4, 8} {
		p, _ := ProfileFor("H100-80GB", n)
		s := math.Pow(float64(n), TPExponent)
		if math.Abs(p.PrefillTokensPerSec-one.PrefillTokensPerSec*s) > 1e-6 {
			t.Errorf("TP%d prefill %v, want %v", n, p.PrefillTokensPerSec, one.PrefillTokensPerSec*s)
		}
		if d := p.BaseITL - time.Duration(float64(one.BaseITL)/s); d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("TP%d base ITL %v", n, p.BaseITL)
		}
		if p.KVCacheTokens != n*one.KVCacheTokens || p.MaxWatts != float64(n)*one.MaxWatts {
			t.Errorf("TP%d KV %d power %v not linear", n, p.KVCacheTokens, p.MaxWatts)
		}
		if s >= float64(n) || p.ITL(64) >= one.ITL(64) {
			t.Errorf("TP%d speed-up %v must be sub-linear and positive", n, s)
		}
	}
}

func TestProfileOverrides(t *testing.T) {
	p, _ := ProfileFor("L4", 1)
	f := p.WithFixedITL(20 * time.Millisecond)
	if f.ITL(1) != 20*time.Millisecond || f.ITL(5000) != 20*time.Millisecond {
		t.Fatalf("fixed ITL: %v %v", f.ITL(1), f.ITL(5000))
	}
	if p.ITL(10) != p.BaseITL+10*p.PerSeqITL {
		t.Fatal("ITL formula")
	}
	if got := p.PrefillTime(2600); got != time.Second {
		t.Fatalf("PrefillTime(2600) on L4 = %v, want 1s", got)
	}
	bad := p
	bad.MaxModelLen = p.KVCacheTokens + 1
	if !errors.Is(bad.Validate(), ErrInvalidProfile) {
		t.Fatal("max_model_len above KV capacity accepted")
	}
	if _, err := New(Config{Profile: bad}); err == nil {
		t.Fatal("New accepted an invalid profile")
	}
	if _, err := New(Config{Faults: Faults{ErrorRate: 2}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad fault rate: %v", err)
	}
}

func TestCountTokens(t *testing.T) {
	cases := map[string]int{
		"":                       0,
		"   ":                    0,
		"hello":                  1,
		"hello world":            2,
		"Hello, world!":          4,
		"internationalization":   4, // 20 letters: 1 + 19/5
		"abcdef":                 2,
		"x=1+2":                  5,
		"naïve café":             2,
		"日本語":                    1,
		"{\"a\": [1, 2]}":        11,
		"tab\tand\nnewline":      4, // "newline" has 7 letters
		"The quick brown fox...": 7,
	}
	for in, want := range cases {
		if got := CountTokens(in); got != want {
			t.Errorf("CountTokens(%q) = %d, want %d", in, got, want)
		}
	}
	for _, tok := range vocabulary {
		if CountTokens(string(tok)) != 1 {
			t.Errorf("vocabulary entry %q is not one token", tok)
		}
		for _, c := range tok {
			if c == '"' || c == '\\' || c < 0x20 {
				t.Errorf("vocabulary entry %q needs JSON escaping", tok)
			}
		}
	}
}
