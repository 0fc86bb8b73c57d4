package llmsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCopiesConfig(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Config().Copies != 1 || s.Copies() != 1 || s.Stats().Copies != 1 || len(s.CopyStats()) != 1 {
		t.Fatalf("zero Copies: config %d, server %d", s.Config().Copies, s.Copies())
	}
	for _, n := range []int{-1, MaxCopies + 1} {
		if _, err := New(Config{Copies: n}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("Copies %d: %v, want ErrInvalidConfig", n, err)
		}
	}
	p := fastProfile(t)
	s, err = New(Config{Copies: 3, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	// Idle: every copy draws its idle power, none is busy.
	if s.Copies() != 3 || s.PowerWatts() != 3*p.IdleWatts || s.GPUUtilisation() != 0 || s.Profile() != p {
		t.Fatalf("3 idle copies: %d copies, power %v, util %v", s.Copies(), s.PowerWatts(), s.GPUUtilisation())
	}
}

func TestRouterLeastOutstanding(t *testing.T) {
	r := newRouter(3)
	var got []int
	for range 4 {
		got = append(got, r.acquire())
	}
	if fmt.Sprint(got) != "[0 1 2 0]" {
		t.Fatalf("first picks %v, want [0 1 2 0] (ties go to the lowest index)", got)
	}
	r.release(2)
	r.release(1)
	if c := r.acquire(); c != 1 { // copies 1 and 2 hold 0: the lower wins
		t.Fatalf("after releases picked %d, want 1", c)
	}
	if c := r.acquire(); c != 2 {
		t.Fatalf("then picked %d, want 2", c)
	}
	if r.load(0) != 2 || r.load(1) != 1 || r.load(2) != 1 {
		t.Fatalf("outstanding %d %d %d, want 2 1 1", r.load(0), r.load(1), r.load(2))
	}

	// Concurrent arrivals with no release split exactly evenly.
	r = newRouter(4)
	var wg sync.WaitGroup
	for range 400 {
		wg.Go(func() { r.acquire() })
	}
	wg.Wait()
	for i := range 4 {
		if r.load(i) != 100 {
			t.Fatalf("copy %d holds %d of 400, want 100", i, r.load(i))
		}
	}
	// One copy: a plain counter.
	r = newRouter(1)
	if r.acquire() != 0 || r.acquire() != 0 || r.load(0) != 2 {
		t.Fatal("single copy router")
	}
	r.release(0)
	if r.load(0) != 1 {
		t.Fatal("single copy release")
	}
}

// simulateCopies runs arrivals through copies engines behind a router in
// virtual time, stepping 1 ms like the live loop; a request stays
// outstanding on its copy until the engine finishes it. It returns the
// sequences, the copy each was routed to and the time the last finished.
func simulateCopies(t *testing.T, prof Profile, copies int, arrivals []arrival) (seqs []*seq, routed []int, end time.Duration) {
	t.Helper()
	const res = int64(time.Millisecond)
	engs := make([]*engine, copies)
	for i := range engs {
		engs[i] = newEngine(prof, res)
	}
	r := newRouter(copies)
	seqs, routed = make([]*seq, len(arrivals)), make([]int, len(arrivals))
	released := make([]bool, len(arrivals))
	next, left := 0, len(arrivals)
	for now := int64(0); ; now += res {
		for next < len(arrivals) && int64(arrivals[next].at) <= now {
			a := arrivals[next]
			s := newSeq(a.prompt, a.out)
			s.arrival = int64(a.at)
			seqs[next], routed[next] = s, r.acquire()
			engs[routed[next]].submit(s)
			next++
		}
		for _, e := range engs {
			e.advance(now, 0)
		}
		for i, s := range seqs[:next] {
			if !released[i] && s.done.Load() {
				released[i] = true
				left--
				r.release(routed[i])
				end = max(end, time.Duration(s.doneAt))
			}
		}
		if next == len(arrivals) && left == 0 {
			return seqs, routed, end
		}
		if now > int64(time.Hour) {
			t.Fatal("simulation did not finish")
		}
	}
}

// TestCopiesMultiplyThroughput checks in virtual time (exact, whatever the
// machine's speed) that four copies of a small batch serve a burst about
// four times faster than one copy, and that the router spreads the burst
// and a steady arrival stream evenly.
func TestCopiesMultiplyThroughput(t *testing.T) {
	p := mustProfile(t, "H100-80GB", 1).WithFixedITL(10 * time.Millisecond)
	p.MaxNumSeqs = 2
	reqs := burst(32, 100, 50)
	_, _, one := simulateCopies(t, p, 1, reqs)
	seqs, routed, four := simulateCopies(t, p, 4, reqs)
	if ratio := float64(one) / float64(four); ratio < 3.5 || ratio > 4.5 {
		t.Fatalf("burst of 32: one copy %v, four copies %v: throughput ratio %.2f, want about 4", one, four, ratio)
	}
	perCopy := make([]int, 4)
	for i, c := range routed {
		perCopy[c]++
		if seqs[i].released.Load() != 50 {
			t.Fatalf("request %d emitted %d tokens", i, seqs[i].released.Load())
		}
	}
	if fmt.Sprint(perCopy) != "[8 8 8 8]" {
		t.Fatalf("burst routed %v, want 8 per copy", perCopy)
	}

	// A steady stream above one copy's capacity: one request every 50 ms,
	// each holding a slot for 500 ms, is 10 in flight; one copy (2 slots)
	// falls behind, four copies (8 slots) nearly keep up.
	var steady []arrival
	for i := range 80 {
		steady = append(steady, arrival{at: time.Duration(i) * 50 * time.Millisecond, prompt: 100, out: 50})
	}
	_, _, one = simulateCopies(t, p, 1, steady)
	_, routed, four = simulateCopies(t, p, 4, steady)
	if ratio := float64(one) / float64(four); ratio < 3 {
		t.Fatalf("steady stream: one copy %v, four copies %v: ratio %.2f, want ≥ 3", one, four, ratio)
	}
	perCopy = make([]int, 4)
	for _, c := range routed {
		perCopy[c]++
	}
	for c, n := range perCopy {
		if n < 15 || n > 25 {
			t.Fatalf("steady stream routed %v: copy %d got %d of 80", perCopy, c, n)
		}
	}
}

// streamOnce posts a streaming completion and discards the body.
func streamOnce(url, body string) error {
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// TestCopiesThroughputOverHTTP runs the same concurrent load against one
// copy and four copies of a two-slot batch over HTTP. In the model, 16
// requests of 30 tokens at 10 ms take 8 rounds of 300 ms on one copy and 2
// on four; the assertion (≥ 2.5×) leaves room for a slow machine.
func TestCopiesThroughputOverHTTP(t *testing.T) {
	p := fastProfile(t).WithFixedITL(10 * time.Millisecond)
	p.MaxNumSeqs = 2
	run := func(copies int) time.Duration {
		s, url := testServer(t, Config{Models: []string{"m"}, Profile: p, Copies: copies})
		const n = 16
		errs := make(chan error, n)
		start := time.Now()
		for range n {
			go func() {
				errs <- streamOnce(url, `{"model":"m","prompt":"x","max_tokens":30,"ignore_eos":true,"stream":true}`)
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		took := time.Since(start)
		st := s.Stats()
		if st.RequestsCompleted != n || st.GenerationTokens != n*30 || st.Running != 0 {
			t.Fatalf("%d copies: %+v", copies, st)
		}
		var tokens uint64
		for i, c := range s.CopyStats() {
			if c.Outstanding != 0 || c.GenerationTokens == 0 {
				t.Fatalf("%d copies: copy %d %+v after the load", copies, i, c)
			}
			tokens += c.GenerationTokens
		}
		if tokens != st.GenerationTokens {
			t.Fatalf("copies generated %d tokens, server %d", tokens, st.GenerationTokens)
		}
		return took
	}
	one, four := run(1), run(4)
	t.Logf("16 requests: one copy %v, four copies %v", one, four)
	if ratio := float64(one) / float64(four); ratio < 2.5 {
		t.Fatalf("one copy %v, four copies %v: throughput ratio %.2f, want ≥ 2.5", one, four, ratio)
	}
}

// TestCopiesBalanceAndMetrics holds six long streams on four copies of a
// two-slot batch: the router places them 2, 2, 1, 1 whatever the timing
// (none finishes), and /metrics, Stats and CopyStats agree.
func TestCopiesBalanceAndMetrics(t *testing.T) {
	p := fastProfile(t).WithFixedITL(20 * time.Millisecond)
	p.MaxNumSeqs = 2
	s, url := testServer(t, Config{Models: []string{"m"}, Profile: p, Copies: 4})
	if w := s.PowerWatts(); w != 4*p.IdleWatts {
		t.Fatalf("idle power %v, want 4 × %v", w, p.IdleWatts)
	}
	done := make(chan struct{}, 6)
	for range 6 {
		go func() {
			defer func() { done <- struct{}{} }()
			_ = streamOnce(url, `{"model":"m","prompt":"x","max_tokens":5000,"ignore_eos":true,"stream":true}`)
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for st := s.Stats(); st.Running != 6; st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("never saw 6 running: %+v %+v", st, s.CopyStats())
		}
		time.Sleep(time.Millisecond)
	}
	want := []int{2, 2, 1, 1}
	for i, c := range s.CopyStats() {
		if c.Outstanding != want[i] || c.Running != want[i] || c.Waiting != 0 || c.Load != float64(want[i])/2 {
			t.Fatalf("copy %d: %+v, want %d outstanding and running", i, c, want[i])
		}
	}
	st := s.Stats()
	if st.Copies != 4 || st.Load != 6.0/8 {
		t.Fatalf("stats %+v, want 4 copies and load 6/8", st)
	}
	// Copies 0 and 1 are full, 2 and 3 half full.
	half := busyUtilFloor + (1-busyUtilFloor)*0.5
	wantUtil := (1 + 1 + 2*half) / 4
	wantPower := 2*p.MaxWatts + 2*(p.IdleWatts+(p.MaxWatts-p.IdleWatts)*(busyPowerFloor+(1-busyPowerFloor)*0.5))
	if u, w := s.GPUUtilisation(), s.PowerWatts(); math.Abs(u-wantUtil) > 1e-9 || math.Abs(w-wantPower) > 1e-9 {
		t.Fatalf("util %v power %v, want %v and %v", u, w, wantUtil, wantPower)
	}

	m := scrape(t, url)
	l := `{model_name="m"}`
	for k, v := range map[string]float64{
		"vllm:num_requests_running" + l:    6,
		"vllm:num_requests_waiting" + l:    0,
		"llmsim_copies" + l:                4,
		"llmsim_gpu_utilization_ratio" + l: wantUtil,
		"llmsim_power_watts" + l:           wantPower,
	} {
		if got, ok := m[k]; !ok || math.Abs(got-v) > 1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	var running, outstanding, gen float64
	for i := range 4 {
		c := fmt.Sprintf(`{model_name="m",copy="%d"}`, i)
		if got := m["llmsim_copy_requests_running"+c]; got != float64(want[i]) {
			t.Errorf("copy %d running %v, want %d", i, got, want[i])
		}
		running += m["llmsim_copy_requests_running"+c]
		outstanding += m["llmsim_copy_requests_outstanding"+c]
		gen += m["llmsim_copy_generation_tokens_total"+c]
	}
	if running != 6 || outstanding != 6 || gen != m["vllm:generation_tokens_total"+l] {
		t.Errorf("per-copy sums: running %v, outstanding %v, tokens %v (server %v)", running, outstanding, gen, m["vllm:generation_tokens_total"+l])
	}
	// Each running stream reserves prompt + 5000 tokens of its copy's cache.
	wantKV := float64(6*(CountTokens("x")+5000)) / float64(4*p.KVCacheTokens)
	if kv := m["vllm:kv_cache_usage_perc"+l]; math.Abs(kv-wantKV) > 1e-12 || math.Abs(st.KVCacheUsage-wantKV) > 1e-12 {
		t.Errorf("KV usage %v (Stats %v), want %v", kv, st.KVCacheUsage, wantKV)
	}
	_ = s.Close() // aborts the streams
	for range 6 {
		<-done
	}
	for i, c := range s.CopyStats() {
		if c.Outstanding != 0 {
			t.Fatalf("copy %d still has %d outstanding after the streams ended", i, c.Outstanding)
		}
	}
}

// TestCopiesKeepDeterminism checks that the number of copies changes no
// text, length or fault: the plan is drawn before routing.
func TestCopiesKeepDeterminism(t *testing.T) {
	run := func(copies int) []string {
		cfg := Config{Models: []string{"m"}, Profile: fastProfile(t), Seed: 9, Copies: copies,
			Faults: Faults{ErrorRate: 0.3, RateLimitShare: 0.5}}
		_, url := testServer(t, cfg)
		var out []string
		for range 8 {
			status, raw, _ := post(t, url+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":40}`, nil)
			if status != http.StatusOK {
				out = append(out, fmt.Sprintf("%d %s", status, raw)) // error bodies are fixed
				continue
			}
			var r fullResponse
			if err := json.Unmarshal(raw, &r); err != nil || r.Usage == nil || len(r.Choices) != 1 {
				t.Fatalf("response %s: %v", raw, err)
			}
			out = append(out, fmt.Sprintf("%s %s %d %q", r.ID, r.Choices[0].FinishReason, r.Usage.CompletionTokens, r.text()))
		}
		return out
	}
	one, four := run(1), run(4)
	if fmt.Sprint(one) != fmt.Sprint(four) {
		t.Fatalf("outputs differ with 4 copies:\n%q\n%q", one, four)
	}
	errs := 0
	for _, o := range one {
		if !strings.HasPrefix(o, "chatcmpl-") {
			errs++
		}
	}
	if errs == 0 || errs == len(one) {
		t.Fatalf("no mix of answers and injected errors: %q", one)
	}
}
