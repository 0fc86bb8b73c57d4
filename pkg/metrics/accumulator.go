package metrics

import (
	"strconv"
	"sync"
)

// Accumulator is the metrics sink of a load generator: it turns request
// records into 1-second windows (by response end time), hands each closed
// window to OnWindow, and keeps the merged total of the run. Warmup records
// are dropped. It is safe for concurrent use.
type Accumulator struct {
	// OnWindow, if set, receives every closed, non-empty window.
	OnWindow func(*Window)

	mu       sync.Mutex
	source   string
	goodput  Goodput
	cur      *Window
	curSec   int64
	seq      uint64
	total    *Window
	exact    map[string][]float64
	keepMax  int
	overflow map[string]bool
}

// NewAccumulator returns an accumulator for one source. keepExact > 0 also
// keeps up to that many raw values per metric so that final statistics can
// be exact (numpy percentiles) instead of histogram estimates.
func NewAccumulator(source string, goodput Goodput, keepExact int) *Accumulator {
	a := &Accumulator{source: source, goodput: goodput, keepMax: keepExact,
		total: NewWindow(source, 0, 0, 0), overflow: map[string]bool{}}
	if keepExact > 0 {
		a.exact = map[string][]float64{}
	}
	return a
}

// Add records one request and returns its per-request metric values and
// whether it met the goodput spec.
func (a *Accumulator) Add(r *RequestRecord) (Values, bool) {
	v := Compute(r)
	if r.Phase == PhaseWarmup {
		return v, false
	}
	good := r.OK() && a.goodput.Good(r, &v)
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.windowFor(r.EndNs)
	if r.SendNs != 0 {
		w.FirstSendNs = minNonZero(w.FirstSendNs, r.SendNs)
	}
	switch {
	case r.Cancelled:
		w.Counters[CounterCancelled]++
		return v, false
	case r.Error != "":
		w.Counters[CounterError]++
		w.Counters[ErrorCounterPrefix+r.Error]++
		if r.HTTPStatus != 0 {
			w.Counters[StatusCounterPrefix+strconv.Itoa(r.HTTPStatus)]++
		}
		return v, false
	}
	if r.EndNs > w.LastEndNs {
		w.LastEndNs = r.EndNs
	}
	w.Counters[CounterOK]++
	if good {
		w.Counters[CounterGood]++
	}
	switch r.TokenSource {
	case TokensServer:
		w.Counters[CounterTokensServer]++
	case TokensTokenizer:
		w.Counters[CounterTokensClient]++
	}
	if r.TokenMismatch {
		w.Counters[CounterTokenMismatch]++
	}
	a.rec(w, RequestLatency, v.RequestLatency)
	a.rec(w, RequestLatencyActualSend, v.RequestLatencyActualSend)
	a.rec(w, ScheduleLag, v.ScheduleLag)
	a.rec(w, InputSequenceLength, v.InputSequenceLength)
	a.rec(w, OutputSequenceLength, v.OutputSequenceLength)
	a.rec(w, OutputTokenCount, v.OutputTokenCount)
	a.rec(w, ReasoningTokenCount, v.ReasoningTokenCount)
	a.rec(w, E2EOutputTokenThroughput, v.E2EOutputTokenThroughput)
	if r.Streaming {
		a.rec(w, TimeToFirstToken, v.TimeToFirstToken)
		a.rec(w, TimeToFirstTokenActualSend, v.TimeToFirstTokenActualSend)
		a.rec(w, TimeToSecondToken, v.TimeToSecondToken)
		a.rec(w, TimeToFirstOutputToken, v.TimeToFirstOutputToken)
		a.rec(w, StreamSetupLatency, v.StreamSetupLatency)
		a.rec(w, StreamPrefillLatency, v.StreamPrefillLatency)
		a.rec(w, InterTokenLatency, v.InterTokenLatency)
		a.rec(w, OutputTokenThroughputPerUser, v.OutputTokenThroughputPerU)
		a.rec(w, PrefillThroughputPerUser, v.PrefillThroughputPerUser)
		ChunkGaps(r, func(ms float64) { a.rec(w, InterChunkLatency, ms) })
	}
	return v, good
}

func (a *Accumulator) rec(w *Window, tag string, x float64) {
	if x != x { // NaN
		return
	}
	w.Hist(tag).Record(x)
	if a.exact == nil || a.overflow[tag] {
		return
	}
	if len(a.exact[tag]) >= a.keepMax {
		a.overflow[tag] = true
		delete(a.exact, tag)
		return
	}
	a.exact[tag] = append(a.exact[tag], x)
}

// Count adds n to a counter of the current window (schedulers report sends,
// late sends and dropped sends this way).
func (a *Accumulator) Count(name string, n int64, nowNs int64) {
	a.mu.Lock()
	a.windowFor(nowNs).Counters[name] += n
	a.mu.Unlock()
}

// windowFor returns the window for a Unix-ns time, closing the current one
// if the time is in a later second. Records that arrive late for a closed
// second go into the current window. Called with mu held.
func (a *Accumulator) windowFor(ns int64) *Window {
	sec := ns / 1e9
	if a.cur == nil {
		a.cur = NewWindow(a.source, a.seq, sec*1000, 1000)
		a.curSec = sec
		return a.cur
	}
	if sec > a.curSec {
		a.closeLocked()
		a.cur = NewWindow(a.source, a.seq, sec*1000, 1000)
		a.curSec = sec
	}
	return a.cur
}

func (a *Accumulator) closeLocked() {
	if a.cur == nil {
		return
	}
	w := a.cur
	a.cur = nil
	if w.Empty() {
		return
	}
	a.seq++
	a.total.Merge(w)
	if a.OnWindow != nil {
		a.OnWindow(w)
	}
}

// Tick closes the current window if nowNs is past its second, so idle
// periods still emit windows on time.
func (a *Accumulator) Tick(nowNs int64) {
	a.mu.Lock()
	if a.cur != nil && nowNs/1e9 > a.curSec {
		a.closeLocked()
	}
	a.mu.Unlock()
}

// Flush closes the current window.
func (a *Accumulator) Flush() {
	a.mu.Lock()
	a.closeLocked()
	a.mu.Unlock()
}

// Total returns a copy of everything recorded so far (closed windows plus
// the open one).
func (a *Accumulator) Total() *Window {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.total.Clone()
	if a.cur != nil {
		t.Merge(a.cur)
	}
	return t
}

// Exact returns copies of the raw values kept per metric (metrics whose
// count passed the cap are absent).
func (a *Accumulator) Exact() map[string][]float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string][]float64, len(a.exact))
	for k, v := range a.exact {
		out[k] = append([]float64(nil), v...)
	}
	return out
}
