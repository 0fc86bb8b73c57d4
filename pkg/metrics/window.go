package metrics

import "sort"

// Counter names carried in windows. Error counters are ErrorCounterPrefix +
// the stable error code, HTTP status counters StatusCounterPrefix + code.
const (
	CounterOK            = "requests_ok"
	CounterError         = "requests_error"
	CounterCancelled     = "requests_cancelled"
	CounterGood          = "requests_good"
	CounterSent          = "requests_sent"
	CounterLateSends     = "late_sends"
	CounterDroppedSends  = "dropped_sends"
	CounterTokensServer  = "token_source_server"
	CounterTokensClient  = "token_source_tokenizer"
	CounterTokenMismatch = "token_count_mismatch"
	CounterGeneratorCPU  = "generator_cpu_ns"
	// GPU telemetry of the target's GPUs, when the agent serves the target
	// itself: device-windows, and the sums over them of the mean
	// utilisation (percent × 1000) and mean power (mW), and the energy (mJ)
	// over the covered time (ms).
	CounterGPUWindows      = "gpu_device_windows"
	CounterGPUUtilMilli    = "gpu_util_milli_pct"
	CounterGPUPowerMilliW  = "gpu_power_mw"
	CounterGPUEnergyMilliJ = "gpu_energy_mj"
	CounterGPUCoveredMs    = "gpu_energy_covered_ms"
	ErrorCounterPrefix     = "error."
	StatusCounterPrefix    = "http_status."
)

// Window holds the aggregated metrics of one source (agent, shard) over one
// time slice, normally one second: a mergeable histogram per record metric
// plus counters. Windows from many sources and many seconds merge into one
// whose statistics equal those of all samples (within the histograms' error).
type Window struct {
	Source     string
	Seq        uint64
	StartMs    int64 // Unix ms of the window's start
	DurationMs int64
	Hists      map[string]*Histogram
	Counters   map[string]int64
	// FirstSendNs is the earliest request send in the window (0: none);
	// LastEndNs the latest response end. They bound benchmark_duration.
	FirstSendNs int64
	LastEndNs   int64
}

// NewWindow returns an empty window.
func NewWindow(source string, seq uint64, startMs, durationMs int64) *Window {
	return &Window{Source: source, Seq: seq, StartMs: startMs, DurationMs: durationMs,
		Hists: map[string]*Histogram{}, Counters: map[string]int64{}}
}

// Hist returns the histogram for tag, creating it with the tag's scale.
func (w *Window) Hist(tag string) *Histogram {
	h, ok := w.Hists[tag]
	if !ok {
		scale := 1.0
		if d, ok := Lookup(tag); ok {
			scale = d.Scale
		}
		h = NewHistogram(scale)
		w.Hists[tag] = h
	}
	return h
}

// Empty reports whether the window holds no data.
func (w *Window) Empty() bool {
	if w.FirstSendNs != 0 || w.LastEndNs != 0 {
		return false
	}
	for _, h := range w.Hists {
		if h.Count > 0 {
			return false
		}
	}
	for _, c := range w.Counters {
		if c != 0 {
			return false
		}
	}
	return true
}

// Merge adds o into w: histograms merge, counters add, the time span widens.
func (w *Window) Merge(o *Window) {
	if o == nil {
		return
	}
	for tag, h := range o.Hists {
		w.Hist(tag).Merge(h)
	}
	for k, c := range o.Counters {
		w.Counters[k] += c
	}
	w.FirstSendNs = minNonZero(w.FirstSendNs, o.FirstSendNs)
	if o.LastEndNs > w.LastEndNs {
		w.LastEndNs = o.LastEndNs
	}
	if w.StartMs == 0 || (o.StartMs != 0 && o.StartMs < w.StartMs) {
		end := w.StartMs + w.DurationMs
		w.StartMs = o.StartMs
		w.DurationMs = end - w.StartMs
	}
	if e := o.StartMs + o.DurationMs; e > w.StartMs+w.DurationMs {
		w.DurationMs = e - w.StartMs
	}
}

// Clone returns a deep copy.
func (w *Window) Clone() *Window {
	c := NewWindow(w.Source, w.Seq, w.StartMs, w.DurationMs)
	c.FirstSendNs, c.LastEndNs = w.FirstSendNs, w.LastEndNs
	for k, h := range w.Hists {
		c.Hists[k] = h.Clone()
	}
	for k, v := range w.Counters {
		c.Counters[k] = v
	}
	return c
}

// MergeWindows merges windows (from any sources) into a new window.
func MergeWindows(ws ...*Window) *Window {
	out := NewWindow("", 0, 0, 0)
	for _, w := range ws {
		out.Merge(w)
	}
	return out
}

// ErrorCounts returns error code → count, sorted by code.
func (w *Window) ErrorCounts() []CodeCount {
	var out []CodeCount
	for k, c := range w.Counters {
		if len(k) > len(ErrorCounterPrefix) && k[:len(ErrorCounterPrefix)] == ErrorCounterPrefix && c > 0 {
			out = append(out, CodeCount{Code: k[len(ErrorCounterPrefix):], Count: c})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// CodeCount is one error code and how often it occurred.
type CodeCount struct {
	Code  string
	Count int64
}

func minNonZero(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
