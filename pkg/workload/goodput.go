package workload

import (
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// GoodputMetric describes one AIPerf metric tag accepted in `goodput`.
type GoodputMetric struct {
	// Unit is the display unit the SLO value is written in.
	Unit string
	// HigherIsBetter is true when a request meets the SLO at or above the
	// value (throughputs); latencies and counts meet it at or below.
	HigherIsBetter bool
	// NeedsStreaming is true when the metric only exists for streamed
	// responses.
	NeedsStreaming bool
}

// GoodputMetrics lists the AIPerf per-request metric tags a goodput SLO may
// name. Do not modify.
var GoodputMetrics = map[string]GoodputMetric{
	// request_latency: last response − request start.
	"request_latency": {Unit: "ms"},
	// time_to_first_token: first non-empty chunk − request start.
	"time_to_first_token": {Unit: "ms", NeedsStreaming: true},
	// time_to_second_token: second chunk − first chunk.
	"time_to_second_token": {Unit: "ms", NeedsStreaming: true},
	// time_to_first_output_token: first non-reasoning token − request start.
	"time_to_first_output_token": {Unit: "ms", NeedsStreaming: true},
	// inter_token_latency: (request_latency − TTFT) / (OSL − 1).
	"inter_token_latency": {Unit: "ms", NeedsStreaming: true},
	// stream_setup_latency: time until the stream is established.
	"stream_setup_latency": {Unit: "ms", NeedsStreaming: true},
	// stream_prefill_latency: time from stream setup to the first token.
	"stream_prefill_latency": {Unit: "ms", NeedsStreaming: true},
	// output_token_throughput_per_user: 1 / ITL.
	"output_token_throughput_per_user": {Unit: "tokens/sec/user", HigherIsBetter: true, NeedsStreaming: true},
	// prefill_throughput_per_user: ISL / TTFT.
	"prefill_throughput_per_user": {Unit: "tokens/sec/user", HigherIsBetter: true, NeedsStreaming: true},
	// e2e_output_token_throughput: OSL / request_latency.
	"e2e_output_token_throughput": {Unit: "tokens/sec", HigherIsBetter: true},
	// input_sequence_length: prompt tokens.
	"input_sequence_length": {Unit: "tokens"},
	// output_sequence_length: output plus reasoning tokens.
	"output_sequence_length": {Unit: "tokens"},
	// output_token_count: output tokens without reasoning.
	"output_token_count": {Unit: "tokens"},
	// reasoning_token_count: reasoning tokens.
	"reasoning_token_count": {Unit: "tokens"},
}

// goodputMetricNames lists GoodputMetrics' keys, sorted, for suggestions.
var goodputMetricNames = func() []string {
	names := make([]string, 0, len(GoodputMetrics))
	for k := range GoodputMetrics {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}()

// decodeGoodput reads `goodput`: AIPerf's "metric:value metric:value"
// string, or a mapping metric → value.
func decodeGoodput(d *decoder, n *yaml.Node, path string, p *Parameters) {
	slos := map[string]float64{}
	add := func(metric string, value float64, ok bool) {
		mp := joinPath(path, metric)
		switch _, known := GoodputMetrics[metric]; {
		case !known:
			hint := suggestion(metric, goodputMetricNames)
			if hint == "" {
				hint = "; use an AIPerf metric tag such as time_to_first_token, inter_token_latency or request_latency"
			}
			d.fail(mp, "unknown goodput metric"+hint)
		case !ok:
		case value <= 0:
			d.fail(mp, "must be greater than 0")
		default:
			if _, dup := slos[metric]; dup {
				d.fail(mp, "duplicate goodput metric")
				return
			}
			slos[metric] = value
		}
	}
	if n.Kind == yaml.MappingNode {
		entries, _ := d.mapping(n, path)
		for _, e := range entries {
			v, ok := d.number(e.value, e.path)
			add(e.key, v, ok)
		}
	} else {
		s, ok := d.text(n, path)
		if !ok {
			return
		}
		for _, pair := range strings.Fields(s) {
			metric, raw, found := strings.Cut(pair, ":")
			if !found || metric == "" {
				d.fail(path, fmt.Sprintf("entry %q must be metric:value", pair))
				continue
			}
			v, err := strconv.ParseFloat(raw, 64)
			valid := err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
			if !valid {
				if _, known := GoodputMetrics[metric]; known {
					d.fail(joinPath(path, metric), fmt.Sprintf("value %q must be a number", raw))
				}
			}
			add(metric, v, valid)
		}
	}
	if len(slos) > 0 {
		p.Goodput = slos
	}
}

// encodeGoodput writes the SLOs back as a mapping.
func encodeGoodput(p *Parameters) (any, bool) {
	return maps.Clone(p.Goodput), len(p.Goodput) > 0
}
