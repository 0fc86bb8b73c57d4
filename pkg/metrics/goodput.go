package metrics

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ErrGoodput is wrapped by every goodput-spec parse error.
var ErrGoodput = errors.New("invalid goodput spec")

// Threshold is one SLO of a goodput spec, in the metric's display unit.
type Threshold struct {
	Tag   string
	Value float64
	// HigherIsBetter thresholds are minimums (throughput per user); the
	// others are maximums (latencies).
	HigherIsBetter bool
}

// Goodput is a parsed goodput spec such as
// "time_to_first_token:100 inter_token_latency:10". A request is good when it
// succeeded and every threshold holds:
//
//	good      ⇔ ok ∧ ∀ latency SLOs: value ≤ threshold ∧ ∀ throughput SLOs: value ≥ threshold
//	goodput   = good_request_count / benchmark_duration          (requests/sec)
//	fraction  = good_request_count / (request_count + error_request_count)
//
// Errors count as not good. A metric a request does not have (NaN) fails the
// SLO, except inter_token_latency (and its inverse) for a request with one
// output token or fewer, which passes as vLLM does (TPOT = 0).
type Goodput []Threshold

var goodputAliases = map[string]string{
	"ttft": TimeToFirstToken, "itl": InterTokenLatency, "tpot": InterTokenLatency,
	"e2e": RequestLatency, "e2el": RequestLatency, "latency": RequestLatency,
	"request_latency": RequestLatency,
}

// ParseGoodput parses a space- (or comma-) separated list of tag:value
// pairs. Tags are AIPerf record metric tags or the aliases ttft, itl, tpot,
// e2e, e2el. An empty string gives a nil Goodput.
func ParseGoodput(spec string) (Goodput, error) {
	fields := strings.FieldsFunc(spec, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' })
	var g Goodput
	seen := map[string]bool{}
	for _, f := range fields {
		k, val, ok := strings.Cut(f, ":")
		if !ok {
			k, val, ok = strings.Cut(f, "=")
		}
		if !ok {
			return nil, fmt.Errorf("%w: %q is not tag:value", ErrGoodput, f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if a, ok := goodputAliases[k]; ok {
			k = a
		}
		d, ok := Lookup(k)
		if !ok || d.Kind != KindRecord {
			return nil, fmt.Errorf("%w: unknown metric %q", ErrGoodput, k)
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(x) || x < 0 {
			return nil, fmt.Errorf("%w: bad value %q for %s", ErrGoodput, val, k)
		}
		if seen[k] {
			return nil, fmt.Errorf("%w: %s given twice", ErrGoodput, k)
		}
		seen[k] = true
		g = append(g, Threshold{Tag: k, Value: x, HigherIsBetter: d.HigherIsBetter})
	}
	sort.Slice(g, func(i, j int) bool { return g[i].Tag < g[j].Tag })
	return g, nil
}

// GoodputFromMap builds a Goodput from a tag → threshold map.
func GoodputFromMap(m map[string]float64) (Goodput, error) {
	var b strings.Builder
	for k, v := range m {
		fmt.Fprintf(&b, "%s:%v ", k, v)
	}
	return ParseGoodput(b.String())
}

// Good reports whether a request meets every threshold.
func (g Goodput) Good(r *RequestRecord, v *Values) bool {
	if !r.OK() {
		return false
	}
	for _, t := range g {
		x := v.Get(t.Tag)
		if math.IsNaN(x) {
			if (t.Tag == InterTokenLatency || t.Tag == OutputTokenThroughputPerUser) && r.OSL() <= 1 {
				continue
			}
			return false
		}
		if t.HigherIsBetter {
			if x < t.Value {
				return false
			}
		} else if x > t.Value {
			return false
		}
	}
	return true
}

// String renders the spec in AIPerf's form.
func (g Goodput) String() string {
	parts := make([]string, len(g))
	for i, t := range g {
		parts[i] = t.Tag + ":" + strconv.FormatFloat(t.Value, 'g', -1, 64)
	}
	return strings.Join(parts, " ")
}
