package metrics

// Kind says how a metric is aggregated, following AIPerf's metric types:
// record metrics have one value (or several) per request and a distribution;
// aggregate metrics are counts over the run; derived metrics are computed
// from other metrics at the end (throughputs, duration).
type Kind int

const (
	KindRecord Kind = iota
	KindAggregate
	KindDerived
)

// Def describes one metric: its AIPerf tag (the JSON key), the CSV header,
// the display unit, its kind, the histogram scale and whether a larger value
// is better (for goodput thresholds).
type Def struct {
	Tag            string
	Header         string
	Unit           string
	Kind           Kind
	Scale          float64
	HigherIsBetter bool
	// StreamingOnly metrics exist only for streamed responses.
	StreamingOnly bool
}

// AIPerf metric tags (JSON keys of profile_export_aiperf.json) and perfleet's
// additions. Units are AIPerf's display units.
const (
	RequestLatency               = "request_latency"
	TimeToFirstToken             = "time_to_first_token"
	TimeToSecondToken            = "time_to_second_token"
	InterTokenLatency            = "inter_token_latency"
	InterChunkLatency            = "inter_chunk_latency"
	OutputTokenThroughputPerUser = "output_token_throughput_per_user"
	PrefillThroughputPerUser     = "prefill_throughput_per_user"
	E2EOutputTokenThroughput     = "e2e_output_token_throughput"
	InputSequenceLength          = "input_sequence_length"
	OutputSequenceLength         = "output_sequence_length"
	OutputTokenCount             = "output_token_count"
	ReasoningTokenCount          = "reasoning_token_count"
	TimeToFirstOutputToken       = "time_to_first_output_token"
	StreamSetupLatency           = "stream_setup_latency"
	StreamPrefillLatency         = "stream_prefill_latency"

	// perfleet: coordinated-omission companions (open loop). request_latency
	// and time_to_first_token are measured from the scheduled send; these are
	// measured from the actual send, and schedule_lag = actual − scheduled.
	RequestLatencyActualSend   = "request_latency_actual_send"
	TimeToFirstTokenActualSend = "time_to_first_token_actual_send"
	ScheduleLag                = "schedule_lag"

	RequestCount          = "request_count"
	ErrorRequestCount     = "error_request_count"
	GoodRequestCount      = "good_request_count"
	GoodputTag            = "goodput"
	GoodRequestFraction   = "good_request_fraction"
	RequestThroughput     = "request_throughput"
	OutputTokenThroughput = "output_token_throughput"
	TotalTokenThroughput  = "total_token_throughput"
	BenchmarkDuration     = "benchmark_duration"
	TotalOutputTokens     = "total_output_tokens"
	TotalReasoningTokens  = "total_reasoning_tokens"
	TotalISL              = "total_isl"
	TotalOSL              = "total_osl"
	MinRequestTimestamp   = "min_request_timestamp"
	MaxResponseTimestamp  = "max_response_timestamp"
)

// RecordDefs lists the record metrics in output order.
var RecordDefs = []Def{
	{Tag: TimeToFirstToken, Header: "Time to First Token", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: TimeToSecondToken, Header: "Time to Second Token", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: TimeToFirstOutputToken, Header: "Time to First Output Token", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: StreamSetupLatency, Header: "Stream Setup Latency", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: StreamPrefillLatency, Header: "Stream Prefill Latency", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: RequestLatency, Header: "Request Latency", Unit: "ms", Scale: 1000},
	{Tag: InterTokenLatency, Header: "Inter Token Latency", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: InterChunkLatency, Header: "Inter Chunk Latency", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: OutputTokenThroughputPerUser, Header: "Output Token Throughput Per User", Unit: "tokens/sec/user", Scale: 1000, HigherIsBetter: true, StreamingOnly: true},
	{Tag: PrefillThroughputPerUser, Header: "Prefill Throughput Per User", Unit: "tokens/sec/user", Scale: 1000, HigherIsBetter: true, StreamingOnly: true},
	{Tag: E2EOutputTokenThroughput, Header: "E2E Output Token Throughput", Unit: "tokens/sec", Scale: 1000, HigherIsBetter: true},
	{Tag: OutputSequenceLength, Header: "Output Sequence Length", Unit: "tokens", Scale: 1},
	{Tag: InputSequenceLength, Header: "Input Sequence Length", Unit: "tokens", Scale: 1},
	{Tag: OutputTokenCount, Header: "Output Token Count", Unit: "tokens", Scale: 1},
	{Tag: ReasoningTokenCount, Header: "Reasoning Token Count", Unit: "tokens", Scale: 1},
	{Tag: RequestLatencyActualSend, Header: "Request Latency (Actual Send)", Unit: "ms", Scale: 1000},
	{Tag: TimeToFirstTokenActualSend, Header: "Time to First Token (Actual Send)", Unit: "ms", Scale: 1000, StreamingOnly: true},
	{Tag: ScheduleLag, Header: "Schedule Lag", Unit: "ms", Scale: 1000},
}

// ScalarDefs lists the aggregate and derived metrics in output order.
var ScalarDefs = []Def{
	{Tag: RequestThroughput, Header: "Request Throughput", Unit: "requests/sec", Kind: KindDerived},
	{Tag: OutputTokenThroughput, Header: "Output Token Throughput", Unit: "tokens/sec", Kind: KindDerived},
	{Tag: TotalTokenThroughput, Header: "Total Token Throughput", Unit: "tokens/sec", Kind: KindDerived},
	{Tag: RequestCount, Header: "Request Count", Unit: "requests", Kind: KindAggregate},
	{Tag: ErrorRequestCount, Header: "Error Request Count", Unit: "requests", Kind: KindAggregate},
	{Tag: GoodRequestCount, Header: "Good Request Count", Unit: "requests", Kind: KindAggregate},
	{Tag: GoodputTag, Header: "Goodput", Unit: "requests/sec", Kind: KindDerived},
	{Tag: GoodRequestFraction, Header: "Good Request Fraction", Unit: "ratio", Kind: KindDerived},
	{Tag: BenchmarkDuration, Header: "Benchmark Duration", Unit: "sec", Kind: KindDerived},
	{Tag: TotalOutputTokens, Header: "Total Output Tokens", Unit: "tokens", Kind: KindDerived},
	{Tag: TotalReasoningTokens, Header: "Total Reasoning Tokens", Unit: "tokens", Kind: KindDerived},
	{Tag: TotalISL, Header: "Total ISL", Unit: "tokens", Kind: KindDerived},
	{Tag: TotalOSL, Header: "Total OSL", Unit: "tokens", Kind: KindDerived},
	{Tag: MinRequestTimestamp, Header: "Minimum Request Timestamp", Unit: "ns", Kind: KindAggregate},
	{Tag: MaxResponseTimestamp, Header: "Maximum Response Timestamp", Unit: "ns", Kind: KindAggregate},
}

var defsByTag = func() map[string]Def {
	m := make(map[string]Def)
	for _, d := range RecordDefs {
		m[d.Tag] = d
	}
	for _, d := range ScalarDefs {
		m[d.Tag] = d
	}
	return m
}()

// Lookup returns the definition of a metric tag.
func Lookup(tag string) (Def, bool) {
	d, ok := defsByTag[tag]
	return d, ok
}
