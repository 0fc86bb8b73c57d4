package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// TraceEntry is one line of a replay trace (mooncake style): a timestamp in
// milliseconds from the trace's start, and optional lengths.
type TraceEntry struct {
	TimestampMs  float64 `json:"timestamp"`
	InputLength  int     `json:"input_length,omitempty"`
	OutputLength int     `json:"output_length,omitempty"`
	HashIDs      []int   `json:"hash_ids,omitempty"`
}

// ReadTrace reads a JSONL trace. Entries are sorted by timestamp (stable),
// and a bad line is reported with its line number.
func ReadTrace(r io.Reader) ([]TraceEntry, error) {
	var out []TraceEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(trimSpace(b)) == 0 {
			continue
		}
		var raw struct {
			Timestamp *float64 `json:"timestamp"`
			TraceEntry
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("%w: trace line %d: %v", ErrSchedule, line, err)
		}
		if raw.Timestamp == nil || *raw.Timestamp < 0 {
			return nil, fmt.Errorf("%w: trace line %d: missing or negative timestamp", ErrSchedule, line)
		}
		e := raw.TraceEntry
		e.TimestampMs = *raw.Timestamp
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: trace line %d: %v", ErrSchedule, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty trace", ErrSchedule)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].TimestampMs < out[j].TimestampMs })
	return out, nil
}

// TraceOffsets converts timestamps to offsets from the first entry.
func TraceOffsets(entries []TraceEntry) []time.Duration {
	out := make([]time.Duration, len(entries))
	if len(entries) == 0 {
		return out
	}
	t0 := entries[0].TimestampMs
	for i, e := range entries {
		out[i] = time.Duration((e.TimestampMs - t0) * float64(time.Millisecond))
	}
	return out
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
