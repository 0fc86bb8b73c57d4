package metrics

import (
	"math"
	"strings"
)

// MetricResult is one metric of a summary. Record metrics carry Stats;
// aggregate and derived metrics carry Value.
type MetricResult struct {
	Def
	Stats *Stats
	Value float64
}

// Summary is the result of one benchmark level, ready to be written in
// AIPerf's formats.
type Summary struct {
	Metrics []MetricResult
	Errors  []CodeCount
	// HTTPStatuses counts error responses by HTTP status.
	HTTPStatuses map[string]int64
	// Exact says which record metrics have exact (numpy) statistics; the
	// others come from HDR histograms (≤ 0.1 % error on percentiles).
	Exact          map[string]bool
	GoodputSpec    string
	TokenSources   map[string]int64
	TokenMismatch  int64
	Cancelled      int64
	StartNs, EndNs int64
	Saturation     *Saturation
}

// Get returns the metric with a tag.
func (s *Summary) Get(tag string) (MetricResult, bool) {
	for _, m := range s.Metrics {
		if m.Tag == tag {
			return m, true
		}
	}
	return MetricResult{}, false
}

// Summarize builds a summary from a merged window. exact, if not nil, holds
// raw values for record metrics whose statistics should be exact. Formulas:
//
//	request_count          = successful requests
//	error_request_count    = failed requests (cancelled ones excluded)
//	benchmark_duration     = (last response end − first request send) in s
//	request_throughput     = request_count / benchmark_duration
//	output_token_throughput= Σ OSL / benchmark_duration    (OSL = output + reasoning tokens)
//	total_token_throughput = Σ (ISL + OSL) / benchmark_duration
//	good_request_count     = requests meeting every goodput SLO
//	goodput                = good_request_count / benchmark_duration
//	good_request_fraction  = good_request_count / (request_count + error_request_count)
func Summarize(w *Window, exact map[string][]float64, goodput Goodput) *Summary {
	s := &Summary{Exact: map[string]bool{}, TokenSources: map[string]int64{}, HTTPStatuses: map[string]int64{},
		StartNs: w.FirstSendNs, EndNs: w.LastEndNs, GoodputSpec: goodput.String()}
	for _, d := range RecordDefs {
		h, ok := w.Hists[d.Tag]
		if !ok || h.Count == 0 {
			continue
		}
		var st Stats
		if vals, ok := exact[d.Tag]; ok && int64(len(vals)) == h.Count {
			st = SummarizeValues(append([]float64(nil), vals...))
			s.Exact[d.Tag] = true
		} else {
			st = h.Stats()
		}
		s.Metrics = append(s.Metrics, MetricResult{Def: d, Stats: &st})
	}
	ok := w.Counters[CounterOK]
	errs := w.Counters[CounterError]
	dur := 0.0
	if w.LastEndNs > w.FirstSendNs && w.FirstSendNs > 0 {
		dur = float64(w.LastEndNs-w.FirstSendNs) / 1e9
	}
	sumOf := func(tag string) float64 {
		if h, ok := w.Hists[tag]; ok {
			return h.Sum
		}
		return 0
	}
	isl, osl := sumOf(InputSequenceLength), sumOf(OutputSequenceLength)
	rate := func(x float64) float64 {
		if dur <= 0 {
			return 0
		}
		return x / dur
	}
	add := func(tag string, v float64) {
		d, _ := Lookup(tag)
		s.Metrics = append(s.Metrics, MetricResult{Def: d, Value: v})
	}
	add(RequestThroughput, rate(float64(ok)))
	add(OutputTokenThroughput, rate(osl))
	add(TotalTokenThroughput, rate(isl+osl))
	add(RequestCount, float64(ok))
	add(ErrorRequestCount, float64(errs))
	if len(goodput) > 0 {
		good := float64(w.Counters[CounterGood])
		add(GoodRequestCount, good)
		add(GoodputTag, rate(good))
		frac := 0.0
		if ok+errs > 0 {
			frac = good / float64(ok+errs)
		}
		add(GoodRequestFraction, frac)
	}
	add(BenchmarkDuration, dur)
	add(TotalOutputTokens, sumOf(OutputTokenCount))
	add(TotalReasoningTokens, sumOf(ReasoningTokenCount))
	add(TotalISL, isl)
	add(TotalOSL, osl)
	if w.FirstSendNs > 0 {
		add(MinRequestTimestamp, float64(w.FirstSendNs))
	}
	if w.LastEndNs > 0 {
		add(MaxResponseTimestamp, float64(w.LastEndNs))
	}
	s.Errors = w.ErrorCounts()
	for k, c := range w.Counters {
		if strings.HasPrefix(k, StatusCounterPrefix) {
			s.HTTPStatuses[strings.TrimPrefix(k, StatusCounterPrefix)] = c
		}
	}
	s.TokenSources["server"] = w.Counters[CounterTokensServer]
	s.TokenSources["tokenizer"] = w.Counters[CounterTokensClient]
	s.TokenMismatch = w.Counters[CounterTokenMismatch]
	s.Cancelled = w.Counters[CounterCancelled]
	return s
}

// SummarizeValues is the exact numpy-style summary (alias kept next to
// Summarize for readability at call sites).
func SummarizeValues(values []float64) Stats { return summarizeExact(values) }

// finite reports whether x can be written to JSON.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
