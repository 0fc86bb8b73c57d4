package llmsim

import (
	"net/http"
	"strconv"
	"sync/atomic"
)

// ttftBuckets and itlBuckets are vLLM's histogram bounds, in seconds.
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
		0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	itlBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
		0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	// latenessBuckets bound how late a streamed write left the server
	// compared with the model's schedule, in seconds.
	latenessBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5}
)

// histogram is a copy of an atomicHistogram, as read for /metrics.
type histogram struct {
	bounds []float64 // upper bounds in seconds
	counts []uint64  // per bucket, not cumulative; the last is +Inf
	sumNs  int64
	n      uint64
}

// clone returns a copy of h that shares nothing with it.
func (h histogram) clone() histogram {
	h.counts = append([]uint64(nil), h.counts...)
	return h
}

// add adds the observations of o, which has the same bounds, to h.
func (h *histogram) add(o histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.sumNs += o.sumNs
	h.n += o.n
}

// atomicHistogram is a histogram safe for concurrent observers, used for
// measurements taken in handler goroutines.
type atomicHistogram struct {
	bounds []float64
	limits []int64
	counts []atomic.Uint64
	sumNs  atomic.Int64
}

// newAtomicHistogram returns an empty histogram with the given upper
// bounds in seconds (plus +Inf).
func newAtomicHistogram(bounds []float64) *atomicHistogram {
	limits := make([]int64, len(bounds))
	for i, b := range bounds {
		limits[i] = int64(b * 1e9)
	}
	return &atomicHistogram{bounds: bounds, limits: limits, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// observe adds one duration in ns.
func (h *atomicHistogram) observe(ns int64) {
	i := 0
	for i < len(h.limits) && ns > h.limits[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(ns)
}

// snapshot copies the histogram into a plain one.
func (h *atomicHistogram) snapshot() histogram {
	out := histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts)), sumNs: h.sumNs.Load()}
	for i := range h.counts {
		out.counts[i] = h.counts[i].Load()
		out.n += out.counts[i]
	}
	return out
}

// engineCounters are the engine's Prometheus counters and histograms. The
// engine's goroutine is the only writer; readers load them atomically.
type engineCounters struct {
	promptTokens, generationTokens atomic.Uint64
	successStop, successLength     atomic.Uint64
	ttft, itl                      *atomicHistogram
}

// newEngineCounters returns zeroed counters.
func newEngineCounters() engineCounters {
	return engineCounters{ttft: newAtomicHistogram(ttftBuckets), itl: newAtomicHistogram(itlBuckets)}
}

// promWriter appends Prometheus text exposition format to a buffer.
type promWriter struct {
	b      []byte
	labels string // `model_name="…"`, already escaped
}

// header writes the HELP and TYPE lines of a metric family.
func (w *promWriter) header(name, typ, help string) {
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, help...)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, typ...)
	w.b = append(w.b, '\n')
}

// sample writes one sample line; extra is an optional additional label.
func (w *promWriter) sample(name, extra string, v float64) {
	w.b = append(w.b, name...)
	w.b = append(w.b, '{')
	w.b = append(w.b, w.labels...)
	if extra != "" {
		w.b = append(w.b, ',')
		w.b = append(w.b, extra...)
	}
	w.b = append(w.b, "} "...)
	w.b = strconv.AppendFloat(w.b, v, 'g', -1, 64)
	w.b = append(w.b, '\n')
}

// metric writes a family with a single sample.
func (w *promWriter) metric(name, typ, help string, v float64) {
	w.header(name, typ, help)
	w.sample(name, "", v)
}

// histogram writes a histogram family: cumulative buckets, sum and count.
func (w *promWriter) histogram(name, help string, h histogram) {
	w.header(name, "histogram", help)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		le := "+Inf"
		if i < len(h.bounds) {
			le = strconv.FormatFloat(h.bounds[i], 'g', -1, 64)
		}
		w.sample(name+"_bucket", `le="`+le+`"`, float64(cum))
	}
	w.sample(name+"_sum", "", float64(h.sumNs)/1e9)
	w.sample(name+"_count", "", float64(h.n))
}

// promLabelValue escapes a label value (backslash, quote, newline).
func promLabelValue(v string) string {
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// serveMetrics writes the server's metrics in Prometheus text format with
// vLLM's metric names (values from the engines' virtual schedule, summed
// over the copies as one vLLM server with data parallelism reports them)
// plus llmsim_* families for the request counters, the simulated GPUs and
// each copy (labelled copy="i"). Every value comes from one reading of the
// copies, so the per-copy samples add up to the summed ones.
func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	snaps := s.snapshots()
	snap := mergeSnapshots(snaps)
	st, copies := s.statsFrom(snap), s.copyStatsFrom(snaps)
	pw := promWriter{b: make([]byte, 0, 8192), labels: `model_name="` + promLabelValue(s.cfg.Models[0]) + `"`}
	pw.metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", float64(snap.running))
	pw.metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", float64(snap.waiting))
	kv := st.KVCacheUsage
	pw.metric("vllm:gpu_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", kv)
	pw.metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", kv)
	pw.metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", float64(snap.promptTokens))
	pw.metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", float64(snap.generationTokens))
	pw.header("vllm:request_success_total", "counter", "Count of successfully processed requests.")
	pw.sample("vllm:request_success_total", `finished_reason="stop"`, float64(snap.successStop))
	pw.sample("vllm:request_success_total", `finished_reason="length"`, float64(snap.successLength))
	pw.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", snap.ttft)
	pw.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", snap.itl)
	pw.histogram("llmsim_stream_write_lateness_seconds", "How late streamed tokens were written compared with the model's schedule (tick rounding, handler wake-up and write time); large values mean the simulator itself is overloaded.", s.lateness.snapshot())
	pw.metric("llmsim_requests_received_total", "counter", "Completion requests received.", float64(st.RequestsReceived))
	pw.metric("llmsim_requests_completed_total", "counter", "Completion requests answered in full.", float64(st.RequestsCompleted))
	pw.metric("llmsim_requests_failed_total", "counter", "Completion requests rejected, failed, dropped or abandoned.", float64(st.RequestsFailed))
	pw.metric("llmsim_gpu_utilization_ratio", "gauge", "Simulated GPU utilisation in [0,1], the mean over the copies.", utilisation(copies))
	pw.metric("llmsim_power_watts", "gauge", "Simulated power draw of all GPUs of the server (every copy).", s.power(copies))
	pw.metric("llmsim_copies", "gauge", "Data-parallel copies of the model behind this server.", float64(len(copies)))
	perCopy := func(name, typ, help string, v func(c CopyStats) float64) {
		pw.header(name, typ, help)
		for i, c := range copies {
			pw.sample(name, `copy="`+strconv.Itoa(i)+`"`, v(c))
		}
	}
	perCopy("llmsim_copy_requests_outstanding", "gauge", "Requests routed to the copy whose response has not ended (the router picks the copy with the fewest).",
		func(c CopyStats) float64 { return float64(c.Outstanding) })
	perCopy("llmsim_copy_requests_running", "gauge", "Number of requests in the copy's batch.",
		func(c CopyStats) float64 { return float64(c.Running) })
	perCopy("llmsim_copy_requests_waiting", "gauge", "Number of requests waiting for a slot in the copy's batch.",
		func(c CopyStats) float64 { return float64(c.Waiting) })
	perCopy("llmsim_copy_generation_tokens_total", "counter", "Number of generation tokens processed by the copy.",
		func(c CopyStats) float64 { return float64(c.GenerationTokens) })
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(pw.b)
}
