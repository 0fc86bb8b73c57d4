package metrics

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"
)

// File names of AIPerf's exports.
const (
	FileJSON  = "profile_export_aiperf.json"
	FileCSV   = "profile_export_aiperf.csv"
	FileJSONL = "profile_export.jsonl"
)

// SchemaVersion is the AIPerf JSON schema version whose per-metric fields
// perfleet writes (unit, avg, p1…p99, min, max, std, count, sum).
const SchemaVersion = "1.1"

// ExportMeta is the run context written beside the metrics.
type ExportMeta struct {
	PerfleetVersion string
	BenchmarkID     string
	InputConfig     any
	RunInfo         any
	WasCancelled    bool
	StartTime       time.Time
	EndTime         time.Time
	// Extra is merged into the "perfleet" object of the JSON export.
	Extra map[string]any
}

// jsonMetric has AIPerf's JsonMetricResult shape and field order.
type jsonMetric struct {
	Unit  string   `json:"unit"`
	Avg   *float64 `json:"avg,omitempty"`
	P1    *float64 `json:"p1,omitempty"`
	P5    *float64 `json:"p5,omitempty"`
	P10   *float64 `json:"p10,omitempty"`
	P25   *float64 `json:"p25,omitempty"`
	P50   *float64 `json:"p50,omitempty"`
	P75   *float64 `json:"p75,omitempty"`
	P90   *float64 `json:"p90,omitempty"`
	P95   *float64 `json:"p95,omitempty"`
	P99   *float64 `json:"p99,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	Std   *float64 `json:"std,omitempty"`
	Count *int64   `json:"count,omitempty"`
	Sum   *float64 `json:"sum,omitempty"`
}

func fp(x float64) *float64 {
	if !finite(x) {
		return nil
	}
	return &x
}

func toJSONMetric(m MetricResult) jsonMetric {
	j := jsonMetric{Unit: m.Unit}
	if m.Stats == nil {
		j.Avg = fp(m.Value)
		return j
	}
	st := m.Stats
	j.Avg, j.Min, j.Max, j.Std, j.Sum = fp(st.Avg), fp(st.Min), fp(st.Max), fp(st.Std), fp(st.Sum)
	c := st.Count
	j.Count = &c
	ps := []**float64{&j.P1, &j.P5, &j.P10, &j.P25, &j.P50, &j.P75, &j.P90, &j.P95, &j.P99}
	for i, p := range ps {
		*p = fp(st.P[i])
	}
	return j
}

// ErrorDetails is AIPerf's error object.
type ErrorDetails struct {
	Code    *int   `json:"code"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

type errorDetailsCount struct {
	ErrorDetails ErrorDetails `json:"error_details"`
	Count        int64        `json:"count"`
}

// WriteJSON writes profile_export_aiperf.json: AIPerf's top-level keys in
// AIPerf's order, one block per metric, then perfleet's own section
// ("perfleet": p99.9 values, coordinated-omission notes, token sources,
// generator self-check).
func WriteJSON(w io.Writer, s *Summary, meta ExportMeta) error {
	var b bytes.Buffer
	b.WriteString("{\n")
	first := true
	field := func(k string, v any) error {
		raw, err := json.MarshalIndent(v, "  ", "  ")
		if err != nil {
			return fmt.Errorf("metrics: encode %s: %w", k, err)
		}
		if !first {
			b.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&b, "  %q: %s", k, raw)
		return nil
	}
	_ = field("schema_version", SchemaVersion)
	if meta.BenchmarkID != "" {
		_ = field("benchmark_id", meta.BenchmarkID)
	}
	for _, m := range s.Metrics {
		if err := field(m.Tag, toJSONMetric(m)); err != nil {
			return err
		}
	}
	if meta.InputConfig != nil {
		if err := field("input_config", meta.InputConfig); err != nil {
			return err
		}
	}
	if meta.RunInfo != nil {
		if err := field("run_info", meta.RunInfo); err != nil {
			return err
		}
	}
	_ = field("was_cancelled", meta.WasCancelled)
	errs := []errorDetailsCount{}
	for _, e := range s.Errors {
		errs = append(errs, errorDetailsCount{ErrorDetails: ErrorDetails{Type: e.Code, Message: e.Code}, Count: e.Count})
	}
	_ = field("error_summary", errs)
	if !meta.StartTime.IsZero() {
		_ = field("start_time", meta.StartTime.UTC().Format(time.RFC3339Nano))
		_ = field("end_time", meta.EndTime.UTC().Format(time.RFC3339Nano))
	}
	if err := field("perfleet", perfleetSection(s, meta)); err != nil {
		return err
	}
	b.WriteString("\n}\n")
	_, err := w.Write(b.Bytes())
	return err
}

func perfleetSection(s *Summary, meta ExportMeta) map[string]any {
	p999 := map[string]float64{}
	stats := map[string]string{}
	for _, m := range s.Metrics {
		if m.Stats != nil {
			if v := m.Stats.Pct(99.9); finite(v) {
				p999[m.Tag] = v
			}
			if s.Exact[m.Tag] {
				stats[m.Tag] = "exact"
			} else {
				stats[m.Tag] = "hdr"
			}
		}
	}
	out := map[string]any{
		"p99_9":                   p999,
		"statistics_source":       stats,
		"token_count_source":      s.TokenSources,
		"token_count_mismatches":  s.TokenMismatch,
		"cancelled_request_count": s.Cancelled,
		"latency_measured_from":   "scheduled_send",
	}
	if meta.PerfleetVersion != "" {
		out["version"] = meta.PerfleetVersion
	}
	if s.GoodputSpec != "" {
		out["goodput_spec"] = s.GoodputSpec
	}
	if len(s.HTTPStatuses) > 0 {
		out["error_http_status"] = s.HTTPStatuses
	}
	if s.Saturation != nil {
		out["saturation"] = s.Saturation
	}
	for k, v := range meta.Extra {
		out[k] = v
	}
	return out
}

// csvStatKeys are AIPerf's CSV stat columns, in order.
var csvStatKeys = []string{"avg", "min", "max", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "std"}

// WriteCSV writes profile_export_aiperf.csv in AIPerf's two-section layout:
// record metrics with their statistics, a blank line, then "Metric,Value"
// rows for scalar metrics. Rows are sorted by tag, names are "Header (unit)"
// (no unit for count-like units), numbers have two decimals.
func WriteCSV(w io.Writer, s *Summary) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // Python's csv module, which AIPerf uses, ends rows with CRLF
	var rec, scal []MetricResult
	for _, m := range s.Metrics {
		if m.Stats != nil {
			rec = append(rec, m)
		} else {
			scal = append(scal, m)
		}
	}
	byTag := func(ms []MetricResult) {
		sort.Slice(ms, func(i, j int) bool { return ms[i].Tag < ms[j].Tag })
	}
	byTag(rec)
	byTag(scal)
	if len(rec) > 0 {
		_ = cw.Write(append([]string{"Metric"}, csvStatKeys...))
		for _, m := range rec {
			st := m.Stats
			vals := []float64{st.Avg, st.Min, st.Max, st.P[0], st.P[1], st.P[2], st.P[3], st.P[4], st.P[5], st.P[6], st.P[7], st.P[8], st.Std}
			row := []string{csvName(m.Def)}
			for _, v := range vals {
				row = append(row, csvNum(v))
			}
			_ = cw.Write(row)
		}
		if len(scal) > 0 {
			_ = cw.Write(nil)
		}
	}
	if len(scal) > 0 {
		_ = cw.Write([]string{"Metric", "Value"})
		for _, m := range scal {
			_ = cw.Write([]string{csvName(m.Def), csvNum(m.Value)})
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvName(d Def) string {
	switch d.Unit {
	case "", "count", "requests":
		return d.Header
	}
	return d.Header + " (" + d.Unit + ")"
}

func csvNum(v float64) string {
	if !finite(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
