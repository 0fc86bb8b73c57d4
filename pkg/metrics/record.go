package metrics

import "math"

// TokenSource says where a request's token counts came from.
type TokenSource uint8

const (
	TokensUnknown   TokenSource = iota
	TokensServer                // the response's usage object
	TokensTokenizer             // the client tokenizer (fallback)
)

func (s TokenSource) String() string {
	switch s {
	case TokensServer:
		return "server"
	case TokensTokenizer:
		return "tokenizer"
	}
	return "unknown"
}

// Phase names, as in AIPerf's benchmark_phase.
const (
	PhaseWarmup    = "warmup"
	PhaseProfiling = "profiling"
)

// RequestRecord is the timing record of one request, built by a protocol
// client. All times are Unix nanoseconds taken from one monotonic clock.
type RequestRecord struct {
	Phase      string
	SessionNum int64
	RequestID  string
	Model      string
	Streaming  bool

	// ScheduledNs is when the schedule wanted the request sent (open loop);
	// in closed loop it equals SendNs.
	ScheduledNs int64
	// SendNs is when the request was actually handed to the connection.
	SendNs int64
	// AckNs is when the response headers arrived.
	AckNs int64
	// ChunkNs holds the arrival time of every response chunk that carried
	// non-empty content or reasoning (streaming); for a non-streamed response
	// it holds the body's arrival time.
	ChunkNs []int64
	// FirstOutputNs is the arrival of the first chunk with non-reasoning
	// content (0: none).
	FirstOutputNs int64
	// EndNs is when the last response data arrived.
	EndNs int64

	InputTokens     int64
	OutputTokens    int64 // answer tokens (excluding reasoning)
	ReasoningTokens int64
	TokenSource     TokenSource
	// TokenMismatch is set when the server's usage and the client tokenizer
	// disagree on the output token count.
	TokenMismatch bool

	// Error is a stable error code ("" when the request succeeded).
	Error      string
	HTTPStatus int
	ErrorMsg   string
	// Cancelled requests were cut by the end of the run (grace period); they
	// are neither successes nor errors.
	Cancelled bool
}

// OK reports whether the request succeeded.
func (r *RequestRecord) OK() bool { return r.Error == "" && !r.Cancelled }

// OSL is the output sequence length: output plus reasoning tokens.
func (r *RequestRecord) OSL() int64 { return r.OutputTokens + r.ReasoningTokens }

// Values holds the per-request metric values in display units; NaN means
// "not applicable to this request".
type Values struct {
	RequestLatency             float64 // ms
	TimeToFirstToken           float64 // ms
	TimeToSecondToken          float64 // ms
	TimeToFirstOutputToken     float64 // ms
	StreamSetupLatency         float64 // ms
	StreamPrefillLatency       float64 // ms
	InterTokenLatency          float64 // ms
	OutputTokenThroughputPerU  float64 // tokens/sec/user
	PrefillThroughputPerUser   float64 // tokens/sec/user
	E2EOutputTokenThroughput   float64 // tokens/sec
	InputSequenceLength        float64
	OutputSequenceLength       float64
	OutputTokenCount           float64
	ReasoningTokenCount        float64
	RequestLatencyActualSend   float64 // ms
	TimeToFirstTokenActualSend float64 // ms
	ScheduleLag                float64 // ms
}

const nsPerMs = 1e6

// Compute derives the per-request metrics of a successful request, with
// AIPerf's formulas. start is the scheduled send time (open loop; equal to
// the actual send in closed loop), so latencies include any schedule lag:
//
//	request_latency                  = end − scheduled_send
//	time_to_first_token              = first_content_chunk − scheduled_send
//	time_to_second_token             = second_content_chunk − first_content_chunk
//	time_to_first_output_token       = first non-reasoning content chunk − scheduled_send
//	stream_setup_latency             = response headers − scheduled_send
//	stream_prefill_latency           = first_content_chunk − response headers
//	inter_token_latency              = (request_latency − TTFT) / (OSL − 1)      (OSL ≥ 2)
//	inter_chunk_latency              = chunk[i] − chunk[i−1], every gap           (see ChunkGaps)
//	output_token_throughput_per_user = 1000 / inter_token_latency(ms)
//	prefill_throughput_per_user      = ISL / TTFT(s)
//	e2e_output_token_throughput      = OSL / request_latency(s)
//	output_sequence_length           = output_token_count + reasoning_token_count
//	request_latency_actual_send      = end − actual_send
//	time_to_first_token_actual_send  = first_content_chunk − actual_send
//	schedule_lag                     = actual_send − scheduled_send
func Compute(r *RequestRecord) Values {
	nan := math.NaN()
	v := Values{
		TimeToFirstToken: nan, TimeToSecondToken: nan, InterTokenLatency: nan,
		TimeToFirstOutputToken: nan, StreamSetupLatency: nan, StreamPrefillLatency: nan,
		OutputTokenThroughputPerU: nan, PrefillThroughputPerUser: nan, E2EOutputTokenThroughput: nan,
		TimeToFirstTokenActualSend: nan,
	}
	sched := r.ScheduledNs
	if sched == 0 || sched > r.SendNs {
		sched = r.SendNs
	}
	v.RequestLatency = float64(r.EndNs-sched) / nsPerMs
	v.RequestLatencyActualSend = float64(r.EndNs-r.SendNs) / nsPerMs
	v.ScheduleLag = float64(r.SendNs-sched) / nsPerMs
	v.InputSequenceLength = float64(r.InputTokens)
	v.OutputTokenCount = float64(r.OutputTokens)
	v.ReasoningTokenCount = float64(r.ReasoningTokens)
	osl := r.OSL()
	v.OutputSequenceLength = float64(osl)
	if v.RequestLatency > 0 {
		v.E2EOutputTokenThroughput = float64(osl) / (v.RequestLatency / 1000)
	}
	if !r.Streaming || len(r.ChunkNs) == 0 {
		return v
	}
	v.TimeToFirstToken = float64(r.ChunkNs[0]-sched) / nsPerMs
	v.TimeToFirstTokenActualSend = float64(r.ChunkNs[0]-r.SendNs) / nsPerMs
	if r.FirstOutputNs > 0 {
		v.TimeToFirstOutputToken = float64(r.FirstOutputNs-sched) / nsPerMs
	}
	if r.AckNs > 0 {
		v.StreamSetupLatency = float64(r.AckNs-sched) / nsPerMs
		v.StreamPrefillLatency = float64(r.ChunkNs[0]-r.AckNs) / nsPerMs
	}
	if len(r.ChunkNs) > 1 {
		v.TimeToSecondToken = float64(r.ChunkNs[1]-r.ChunkNs[0]) / nsPerMs
	}
	if v.TimeToFirstToken > 0 {
		v.PrefillThroughputPerUser = float64(r.InputTokens) / (v.TimeToFirstToken / 1000)
	}
	if osl >= 2 {
		v.InterTokenLatency = (v.RequestLatency - v.TimeToFirstToken) / float64(osl-1)
		if v.InterTokenLatency > 0 {
			v.OutputTokenThroughputPerU = 1000 / v.InterTokenLatency
		}
	}
	return v
}

// ChunkGaps calls fn with every inter-chunk gap in ms (AIPerf's
// inter_chunk_latency: chunk[i] − chunk[i−1] for i ≥ 1).
func ChunkGaps(r *RequestRecord, fn func(ms float64)) {
	for i := 1; i < len(r.ChunkNs); i++ {
		fn(float64(r.ChunkNs[i]-r.ChunkNs[i-1]) / nsPerMs)
	}
}

// Get returns the value of a record metric by tag (NaN if unknown). It is
// used by goodput thresholds and the JSONL export.
func (v *Values) Get(tag string) float64 {
	switch tag {
	case RequestLatency:
		return v.RequestLatency
	case TimeToFirstToken:
		return v.TimeToFirstToken
	case TimeToSecondToken:
		return v.TimeToSecondToken
	case TimeToFirstOutputToken:
		return v.TimeToFirstOutputToken
	case StreamSetupLatency:
		return v.StreamSetupLatency
	case StreamPrefillLatency:
		return v.StreamPrefillLatency
	case InterTokenLatency:
		return v.InterTokenLatency
	case OutputTokenThroughputPerUser:
		return v.OutputTokenThroughputPerU
	case PrefillThroughputPerUser:
		return v.PrefillThroughputPerUser
	case E2EOutputTokenThroughput:
		return v.E2EOutputTokenThroughput
	case InputSequenceLength:
		return v.InputSequenceLength
	case OutputSequenceLength:
		return v.OutputSequenceLength
	case OutputTokenCount:
		return v.OutputTokenCount
	case ReasoningTokenCount:
		return v.ReasoningTokenCount
	case RequestLatencyActualSend:
		return v.RequestLatencyActualSend
	case TimeToFirstTokenActualSend:
		return v.TimeToFirstTokenActualSend
	case ScheduleLag:
		return v.ScheduleLag
	}
	return math.NaN()
}
