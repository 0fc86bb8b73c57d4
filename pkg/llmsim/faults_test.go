package llmsim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"
)

// TestFaultRatesForSeed draws plans for many request indices and checks the
// fault frequencies against the configured rates. The draws are a pure
// function of seed and index, so the test cannot flake; the tolerance (five
// binomial standard deviations) only guards against a biased generator.
func TestFaultRatesForSeed(t *testing.T) {
	f := Faults{ErrorRate: 0.1, RateLimitShare: 0.3, StallRate: 0.2, StallDuration: time.Second, DropRate: 0.05}
	s, err := New(Config{Seed: 11, Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var errs, r429, stalls, drops int
	req := &completionRequest{Model: DefaultModel}
	for i := range uint64(n) {
		p, aerr := s.newPlan(req, 10, i)
		if aerr != nil {
			t.Fatal(aerr.message)
		}
		switch p.errStatus {
		case 0:
		case http.StatusTooManyRequests:
			errs++
			r429++
		case http.StatusInternalServerError:
			errs++
		default:
			t.Fatalf("unexpected status %d", p.errStatus)
		}
		if p.stallBefore != 0 {
			stalls++
			if p.stallBefore < 2 || p.stallBefore > p.outLen {
				t.Fatalf("stall before token %d of %d", p.stallBefore, p.outLen)
			}
		}
		if p.dropAfter != 0 {
			drops++
			if p.dropAfter < 1 || p.dropAfter > p.outLen {
				t.Fatalf("drop after token %d of %d", p.dropAfter, p.outLen)
			}
		}
		if q, _ := s.newPlan(req, 10, i); q != p {
			t.Fatalf("plan %d not deterministic", i)
		}
	}
	check := func(name string, got, trials int, rate float64) {
		t.Helper()
		frac, sd := float64(got)/float64(trials), math.Sqrt(rate*(1-rate)/float64(trials))
		if math.Abs(frac-rate) > 5*sd {
			t.Errorf("%s: %.4f, want %.2f ± %.4f", name, frac, rate, 5*sd)
		}
	}
	check("error rate", errs, n, f.ErrorRate)
	check("429 share", r429, errs, f.RateLimitShare)
	// Stalls need at least two tokens; nearly every drawn length has them.
	check("stall rate", stalls, n, f.StallRate*0.99)
	check("drop rate", drops, n, f.DropRate)
}

func TestInjectedErrorsOverHTTP(t *testing.T) {
	cfg := Config{Models: []string{"m"}, Profile: fastProfile(t), Seed: 5, Faults: Faults{ErrorRate: 0.5, RateLimitShare: 0.5}}
	statuses := func() []int {
		_, url := testServer(t, cfg)
		var out []int
		for range 30 {
			status, raw, _ := post(t, url+"/v1/completions", `{"model":"m","prompt":"a","max_tokens":2}`, nil)
			out = append(out, status)
			if status != http.StatusOK {
				var e struct {
					Error struct {
						Message string `json:"message"`
						Type    string `json:"type"`
					} `json:"error"`
				}
				if err := json.Unmarshal(raw, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
					t.Fatalf("status %d with non-OpenAI error body %s", status, raw)
				}
			}
		}
		return out
	}
	a, b := statuses(), statuses()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("fault sequence differs for the same seed:\n%v\n%v", a, b)
	}
	seen := map[int]bool{}
	for _, code := range a {
		seen[code] = true
	}
	if !seen[200] || !seen[429] || !seen[500] {
		t.Fatalf("want a mix of 200, 429 and 500, got %v", a)
	}
}

func TestDroppedStreamHasNoDone(t *testing.T) {
	s, url := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t), Faults: Faults{DropRate: 1}})
	for range 3 {
		status, raw, truncated := post(t, url+"/v1/completions", `{"model":"m","prompt":"a","max_tokens":20,"ignore_eos":true,"stream":true}`, nil)
		if status != http.StatusOK || !truncated {
			t.Fatalf("status %d truncated %v", status, truncated)
		}
		payloads := parseSSE(t, raw)
		if len(payloads) > 20 || (len(payloads) > 0 && payloads[len(payloads)-1] == "[DONE]") {
			t.Fatalf("dropped stream has %d frames ending %q", len(payloads), payloads[len(payloads)-1])
		}
	}
	if st := s.Stats(); st.RequestsFailed != 3 || st.RequestsCompleted != 0 {
		t.Fatalf("stats %+v, want 3 failed", st)
	}
}

func TestStallDelaysStream(t *testing.T) {
	_, url := testServer(t, Config{Models: []string{"m"}, Profile: fastProfile(t),
		Faults: Faults{StallRate: 1, StallDuration: 300 * time.Millisecond}})
	start := time.Now()
	status, raw, _ := post(t, url+"/v1/completions", `{"model":"m","prompt":"a","max_tokens":5,"ignore_eos":true,"stream":true}`, nil)
	// Only a lower bound: a loaded machine may be slower, never faster.
	if el := time.Since(start); status != http.StatusOK || el < 300*time.Millisecond {
		t.Fatalf("status %d after %v, want a stall of 300ms", status, el)
	}
	if _, n, _, _ := streamText(decodeChunks(t, parseSSE(t, raw))); n != 5 {
		t.Fatalf("%d tokens after the stall, want 5", n)
	}
}
