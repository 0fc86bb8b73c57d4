package metrics

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
)

// RecordWriter writes profile_export.jsonl: one line per request in
// AIPerf's shape {"metadata": {...}, "metrics": {tag: {"value", "unit"}},
// "error": null | {code, type, message}}. It is safe for concurrent use.
type RecordWriter struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	enc *json.Encoder
	err error
}

// NewRecordWriter wraps w (buffered; call Flush at the end).
func NewRecordWriter(w io.Writer) *RecordWriter {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &RecordWriter{bw: bw, enc: enc}
}

type jsonlValue struct {
	Value any    `json:"value"`
	Unit  string `json:"unit"`
}

type jsonlMeta struct {
	SessionNum     int64  `json:"session_num"`
	XRequestID     string `json:"x_request_id,omitempty"`
	RequestStartNs int64  `json:"request_start_ns"`
	RequestAckNs   int64  `json:"request_ack_ns,omitempty"`
	RequestEndNs   int64  `json:"request_end_ns"`
	BenchmarkPhase string `json:"benchmark_phase"`
	WasCancelled   bool   `json:"was_cancelled"`
	// perfleet additions
	ScheduledNs int64  `json:"scheduled_start_ns"`
	Model       string `json:"model,omitempty"`
	TokenSource string `json:"token_count_source,omitempty"`
}

type jsonlLine struct {
	Metadata jsonlMeta             `json:"metadata"`
	Metrics  map[string]jsonlValue `json:"metrics"`
	Error    *ErrorDetails         `json:"error"`
}

// Write appends one record with its computed values.
func (w *RecordWriter) Write(r *RequestRecord, v *Values) error {
	line := jsonlLine{
		Metadata: jsonlMeta{SessionNum: r.SessionNum, XRequestID: r.RequestID, RequestStartNs: r.SendNs,
			RequestAckNs: r.AckNs, RequestEndNs: r.EndNs, BenchmarkPhase: r.Phase, WasCancelled: r.Cancelled,
			ScheduledNs: r.ScheduledNs, Model: r.Model},
		Metrics: map[string]jsonlValue{},
	}
	if r.TokenSource != TokensUnknown {
		line.Metadata.TokenSource = r.TokenSource.String()
	}
	if !r.OK() {
		code := r.Error
		if r.Cancelled {
			code = "cancelled"
		}
		ed := &ErrorDetails{Type: code, Message: r.ErrorMsg}
		if r.HTTPStatus != 0 {
			c := r.HTTPStatus
			ed.Code = &c
		}
		line.Error = ed
	} else {
		for _, d := range RecordDefs {
			if d.Tag == InterChunkLatency {
				continue
			}
			if x := v.Get(d.Tag); finite(x) {
				if d.StreamingOnly && !r.Streaming {
					continue
				}
				line.Metrics[d.Tag] = jsonlValue{Value: x, Unit: d.Unit}
			}
		}
		if r.Streaming && len(r.ChunkNs) > 1 {
			gaps := make([]float64, 0, len(r.ChunkNs)-1)
			ChunkGaps(r, func(ms float64) { gaps = append(gaps, ms) })
			line.Metrics[InterChunkLatency] = jsonlValue{Value: gaps, Unit: "ms"}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.enc.Encode(&line)
	}
	return w.err
}

// Flush writes buffered lines.
func (w *RecordWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}
