package llmsim

import (
	"testing"
	"time"
)

// arrival is one request of a virtual-time scenario.
type arrival struct {
	at          time.Duration
	prompt, out int
}

// simulate runs arrivals through an engine in virtual time, stepping 1 ms
// like the live loop, and returns the sequences with their token times. The
// results depend only on the model, never on the machine's speed.
func simulate(t *testing.T, prof Profile, arrivals []arrival, probe func(now int64, e *engine)) []*seq {
	t.Helper()
	const res = int64(time.Millisecond)
	e := newEngine(prof, res)
	seqs := make([]*seq, len(arrivals))
	next := 0
	for now := int64(0); ; now += res {
		for next < len(arrivals) && int64(arrivals[next].at) <= now {
			a := arrivals[next]
			s := newSeq(a.prompt, a.out)
			s.arrival, s.record = int64(a.at), true
			seqs[next] = s
			e.submit(s)
			next++
		}
		e.advance(now, 0)
		if probe != nil {
			probe(now, e)
		}
		if next == len(arrivals) && e.idle() {
			return seqs
		}
		if now > int64(time.Hour) {
			t.Fatal("simulation did not finish")
		}
	}
}

// burst returns n requests arriving together.
func burst(n, prompt, out int) []arrival {
	a := make([]arrival, n)
	for i := range a {
		a[i] = arrival{prompt: prompt, out: out}
	}
	return a
}

// means returns the mean TTFT and the mean inter-token gap of seqs.
func means(seqs []*seq) (ttft, itl time.Duration) {
	var tSum, gSum, gN int64
	for _, s := range seqs {
		tSum += s.firstAt - s.arrival
		for i := 1; i < len(s.times); i++ {
			gSum += s.times[i] - s.times[i-1]
			gN++
		}
	}
	return time.Duration(tSum / int64(len(seqs))), time.Duration(gSum / max(gN, 1))
}

func mustProfile(t *testing.T, gpu string, n int) Profile {
	t.Helper()
	p, err := ProfileFor(gpu, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSingleRequestFollowsFormulas(t *testing.T) {
	p := mustProfile(t, "A100-80GB", 1)
	s := simulate(t, p, []arrival{{at: 5 * time.Millisecond, prompt: 2200, out: 6}}, nil)[0]
	if got, want := time.Duration(s.firstAt-s.arrival), p.PrefillTime(2200); got != want {
		t.Fatalf("TTFT %v, want prompt/prefill rate = %v", got, want)
	}
	if len(s.times) != 6 || s.released.Load() != 6 || !s.done.Load() {
		t.Fatalf("emitted %d tokens, released %d", len(s.times), s.released.Load())
	}
	for i := 1; i < 6; i++ {
		if gap := time.Duration(s.times[i] - s.times[i-1]); gap != p.ITL(1) {
			t.Fatalf("gap %d = %v, want BaseITL + PerSeqITL×1 = %v", i, gap, p.ITL(1))
		}
	}
}

func TestMoreConcurrencyRaisesITLAndTTFT(t *testing.T) {
	p := mustProfile(t, "H100-80GB", 1)
	var lastTTFT, lastITL time.Duration
	for _, n := range []int{1, 4, 16, 64, 200} {
		ttft, itl := means(simulate(t, p, burst(n, 500, 50), nil))
		if ttft <= lastTTFT || itl <= lastITL {
			t.Fatalf("concurrency %d: TTFT %v ITL %v, not above %v / %v", n, ttft, itl, lastTTFT, lastITL)
		}
		// With all n in the batch, the ITL is at most ITL(n) and at least ITL(1).
		if itl > p.ITL(n) || itl < p.ITL(1) {
			t.Fatalf("concurrency %d: mean ITL %v outside [%v, %v]", n, itl, p.ITL(1), p.ITL(n))
		}
		lastTTFT, lastITL = ttft, itl
	}
}

func TestLongerPromptRaisesTTFT(t *testing.T) {
	p := mustProfile(t, "L40S", 1)
	var last time.Duration
	for _, prompt := range []int{10, 100, 1000, 8000} {
		ttft, _ := means(simulate(t, p, burst(1, prompt, 2), nil))
		if ttft <= last {
			t.Fatalf("prompt %d: TTFT %v not above %v", prompt, ttft, last)
		}
		last = ttft
	}
}

func TestGPUsAndTensorParallelOrder(t *testing.T) {
	run := func(p Profile) (time.Duration, time.Duration) { return means(simulate(t, p, burst(8, 1000, 20), nil)) }
	h1t, h1i := run(mustProfile(t, "H100-80GB", 1))
	h2t, h2i := run(mustProfile(t, "H100-80GB", 2))
	l4t, l4i := run(mustProfile(t, "L4", 1))
	if !(h2t < h1t && h1t < l4t) || !(h2i < h1i && h1i < l4i) {
		t.Fatalf("want H100x2 < H100x1 < L4: TTFT %v %v %v, ITL %v %v %v", h2t, h1t, l4t, h2i, h1i, l4i)
	}
}

func TestQueueingBeyondMaxNumSeqs(t *testing.T) {
	p := mustProfile(t, "H100-80GB", 1).WithFixedITL(10 * time.Millisecond)
	p.MaxNumSeqs = 2
	maxWaiting := 0
	seqs := simulate(t, p, burst(3, 100, 5), func(_ int64, e *engine) {
		snap := e.snapshot()
		if snap.running > 2 {
			t.Fatalf("running %d > max_num_seqs 2", snap.running)
		}
		maxWaiting = max(maxWaiting, snap.waiting)
	})
	if maxWaiting != 1 {
		t.Fatalf("max waiting %d, want 1", maxWaiting)
	}
	first := min(seqs[0].doneAt, seqs[1].doneAt)
	if seqs[2].admitAt != first {
		t.Fatalf("third admitted at %d, want when the first finished (%d)", seqs[2].admitAt, first)
	}
	if ttft := seqs[2].firstAt - seqs[2].arrival; ttft < first {
		t.Fatalf("queued TTFT %d does not include the wait %d", ttft, first)
	}
}

func TestKVCapacityBoundsBatch(t *testing.T) {
	p := mustProfile(t, "L4", 1)
	p.KVCacheTokens, p.MaxModelLen = 2500, 2500
	seqs := simulate(t, p, burst(3, 1000, 100), func(_ int64, e *engine) {
		if snap := e.snapshot(); snap.kvUsed > 2500 || snap.running > 2 {
			t.Fatalf("KV used %d, running %d: capacity 2500 holds two 1100-token sequences", snap.kvUsed, snap.running)
		}
	})
	if seqs[2].admitAt < min(seqs[0].doneAt, seqs[1].doneAt) {
		t.Fatal("third sequence admitted before KV space was freed")
	}
}

func TestStallLengthensOneGap(t *testing.T) {
	p := mustProfile(t, "H100-80GB", 1).WithFixedITL(5 * time.Millisecond)
	e := newEngine(p, int64(time.Millisecond))
	s := newSeq(10, 6)
	s.record, s.stallBefore, s.stallNs = true, 4, int64(300*time.Millisecond)
	e.submit(s)
	for now := int64(0); !s.done.Load(); now += int64(time.Millisecond) {
		e.advance(now, 0)
	}
	for i := 1; i < 6; i++ {
		want := 5 * time.Millisecond
		if i == 3 { // the gap before token 4 (index 3)
			want += 300 * time.Millisecond
		}
		if gap := time.Duration(s.times[i] - s.times[i-1]); gap != want {
			t.Fatalf("gap %d = %v, want %v", i, gap, want)
		}
	}
}
