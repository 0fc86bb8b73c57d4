package workload

// Parameters is the `parameters` section with canonical names. A nil pointer
// or an empty string means "not set and no default applies"; Parse fills the
// defaults listed in the package documentation. Comments give AIPerf's
// meaning and, in brackets, the aliases the document may use instead.
type Parameters struct {
	// PromptInputTokensMean is the mean synthetic prompt length in tokens
	// (normal distribution) [synthetic_input_tokens_mean, isl]. Defaults to
	// 256 when prompts are synthetic; nil with a dataset or trace.
	PromptInputTokensMean *int
	// PromptInputTokensStddev is the standard deviation of the synthetic
	// prompt length [synthetic_input_tokens_stddev, isl_stddev].
	PromptInputTokensStddev float64
	// OutputTokensMean is the mean requested output length, sent as the
	// max tokens of each request [prompt_output_tokens_mean, osl]. Defaults
	// to 256 when prompts are synthetic; nil lets the model decide.
	OutputTokensMean *int
	// OutputTokensStddev is the standard deviation of the requested output
	// length [prompt_output_tokens_stddev, osl_stddev].
	OutputTokensStddev float64

	// Concurrency is the number of in-flight requests a closed-loop run
	// keeps: a new request starts as soon as one completes. With
	// request_rate it caps in-flight requests instead. Defaults to [1] when
	// no other load shape is given.
	Concurrency []int
	// ConcurrencySweep is true when concurrency was written as a list: one
	// benchmark level per value, results under concurrency_{N}/.
	ConcurrencySweep bool
	// RequestCount is how many requests the profiling phase sends
	// [num_requests]. Defaults to 100 unless benchmark_duration, phases,
	// stairs or trace_file bounds the run.
	RequestCount *int
	// RequestRate is the target open-loop rate in requests per second.
	RequestRate *float64
	// RequestRateMode is the arrival pattern of a request-rate run
	// [arrival_pattern]; defaults to poisson (gamma when arrival_smoothness
	// is set) once request_rate is set.
	RequestRateMode ArrivalPattern
	// ArrivalSmoothness is the gamma shape: 1 is Poisson-like, <1 burstier,
	// >1 smoother; same value as vLLM's --burstiness [vllm_burstiness].
	ArrivalSmoothness *float64
	// MaxConcurrency caps in-flight requests in a request-rate run.
	MaxConcurrency *int
	// PrefillConcurrency caps requests still waiting for their first token.
	PrefillConcurrency *int
	// BenchmarkDuration stops issuing requests after this many seconds.
	BenchmarkDuration *float64
	// BenchmarkGracePeriod is how many seconds after benchmark_duration
	// responses still count (AIPerf default 30).
	BenchmarkGracePeriod *float64
	// ConcurrencyRampDuration ramps concurrency from 1 to target over this
	// many seconds.
	ConcurrencyRampDuration *float64
	// PrefillConcurrencyRampDuration ramps prefill_concurrency from 1 to
	// target over this many seconds.
	PrefillConcurrencyRampDuration *float64
	// RequestRateRampDuration ramps the request rate up to target over this
	// many seconds.
	RequestRateRampDuration *float64

	// Streaming asks for streamed (SSE) responses, which TTFT, ITL and the
	// other per-token metrics need. Defaults to true.
	Streaming bool
	// Tokenizer is the Hugging Face tokenizer id or path used to count
	// tokens; empty means the model's own.
	Tokenizer string
	// RequestTimeoutSeconds is the per-request limit; a request past it is
	// cancelled and counted as failed (AIPerf default 21600).
	RequestTimeoutSeconds *float64
	// Goodput maps an AIPerf metric tag to its SLO in the metric's display
	// unit (ms for latencies, tokens/s for throughputs); a request is good
	// when it meets every SLO. Written as "metric:value metric:value" or as
	// a mapping.
	Goodput map[string]float64
	// ExtraInputs are merged into every request body (e.g. ignore_eos,
	// max_tokens), plus payload_template / response_field for template
	// mode. Written as space-separated key:value pairs or as a mapping;
	// values are bool, int64, float64, string, nil, []any or map[string]any.
	ExtraInputs map[string]any
	// RandomSeed makes synthetic prompts, sampling and arrival gaps
	// reproducible. Defaults to 42.
	RandomSeed int64
	// Verbose turns on verbose engine logging.
	Verbose bool
	// NumConversations is how many unique synthetic conversations
	// (sessions) to generate [conversation_num, num_sessions].
	NumConversations *int
	// ModelSelectionStrategy picks among several models. Defaults to
	// round_robin.
	ModelSelectionStrategy ModelSelectionStrategy
	// Models are the model names sent in requests; a single string is read
	// as a one-element list [model_names].
	Models []string

	// WarmupDuration is the longest the warmup phase runs, in seconds.
	WarmupDuration *float64
	// WarmupRequestCount is how many warmup requests to send
	// [num_warmup_requests]; no warmup when neither this nor
	// warmup_duration is set.
	WarmupRequestCount *int
	// WarmupConcurrency is the warmup concurrency (else concurrency).
	WarmupConcurrency *int
	// WarmupPrefillConcurrency is the warmup prefill concurrency.
	WarmupPrefillConcurrency *int
	// WarmupRequestRate is the warmup request rate (else request_rate).
	WarmupRequestRate *float64
	// WarmupArrivalPattern is the warmup arrival pattern.
	WarmupArrivalPattern ArrivalPattern
	// WarmupGracePeriod is how long to wait for warmup responses after
	// warmup_duration; unset waits for all of them.
	WarmupGracePeriod *float64
	// NumWarmupSessions is how many sessions the warmup uses.
	NumWarmupSessions *int
	// WarmupConcurrencyRampDuration ramps warmup concurrency, in seconds.
	WarmupConcurrencyRampDuration *float64
	// WarmupPrefillConcurrencyRampDuration ramps warmup prefill
	// concurrency, in seconds.
	WarmupPrefillConcurrencyRampDuration *float64
	// WarmupRequestRateRampDuration ramps the warmup rate, in seconds.
	WarmupRequestRateRampDuration *float64

	// PublicDataset is a named public dataset to download (e.g. sharegpt).
	PublicDataset string
	// CustomDatasetType is the layout of input_file.
	CustomDatasetType DatasetType
	// InputFile is the dataset path, usually under a mounted dataset
	// channel (/opt/ml/input/data/{channel}/...). Agents resolve it.
	InputFile string
	// DatasetSamplingStrategy is how entries are drawn from the dataset.
	DatasetSamplingStrategy SamplingStrategy

	// ImageWidthMean is the mean synthetic image width in pixels.
	ImageWidthMean *float64
	// ImageWidthStddev is the standard deviation of the image width.
	ImageWidthStddev *float64
	// ImageHeightMean is the mean synthetic image height in pixels.
	ImageHeightMean *float64
	// ImageHeightStddev is the standard deviation of the image height.
	ImageHeightStddev *float64
	// ImageBatchSize is how many images each request carries
	// [batch_size_image]; 0 disables images.
	ImageBatchSize *int
	// ImageFormat is png, jpeg or random.
	ImageFormat string
	// VideoBatchSize is how many videos each request carries
	// [batch_size_video]; 0 disables videos.
	VideoBatchSize *int
	// VideoDuration is the length of each synthetic clip in seconds.
	VideoDuration *float64
	// VideoFPS is the frame rate of synthetic clips.
	VideoFPS *int
	// VideoWidth is the frame width in pixels (set with video_height).
	VideoWidth *int
	// VideoHeight is the frame height in pixels (set with video_width).
	VideoHeight *int
	// VideoSynthType is moving_shapes, grid_clock or noise.
	VideoSynthType string
	// VideoFormat is the container, mp4 or webm.
	VideoFormat string
	// VideoCodec is the FFmpeg video codec (e.g. libvpx-vp9).
	VideoCodec string
	// VideoAudioSampleRate is the embedded audio sample rate (8–96000).
	VideoAudioSampleRate *float64
	// VideoAudioNumChannels is 0 (no audio track), 1 or 2.
	VideoAudioNumChannels *int
	// VideoAudioCodec is aac, libvorbis or libopus.
	VideoAudioCodec string
	// VideoAudioDepth is the audio bit depth: 8, 16, 24 or 32.
	VideoAudioDepth *int

	// SearchRecipe turns the benchmark into a search; excludes concurrency.
	SearchRecipe SearchRecipe
	// TTFTSLAMs is the time-to-first-token threshold in ms (needs streaming).
	TTFTSLAMs *float64
	// TPOTSLAMs is the time-per-output-token (inter-token latency)
	// threshold in ms (needs streaming).
	TPOTSLAMs *float64
	// E2ESLAMs is the request latency threshold in ms.
	E2ESLAMs *float64
	// ErrorRateSLA is the highest acceptable error fraction, 0 to 1.
	ErrorRateSLA *float64
	// SearchStat is the statistic compared with the thresholds; defaults
	// to avg in a search.
	SearchStat SearchStat
	// ConcurrencyMin is the lowest concurrency searched (default 1).
	ConcurrencyMin *int
	// ConcurrencyMax is the highest concurrency searched (default 256).
	ConcurrencyMax *int
	// SearchMaxIterations bounds the number of trials; nil lets the
	// engine decide.
	SearchMaxIterations *int

	// Phases is the perfleet extension for a SageMaker Inference
	// Recommender PHASES traffic pattern; one benchmark level per phase.
	Phases []Phase
	// Stairs is the perfleet extension for a STAIRS traffic pattern; one
	// benchmark level per step.
	Stairs *Stairs
	// TraceFile is the perfleet extension that replays a JSONL trace at
	// its recorded timestamps.
	TraceFile string
	// API is the perfleet extension naming the request format; defaults
	// from tooling.api_standard (openai-chat for openai).
	API API
	// EndpointPath overrides the request path (e.g. /v1/chat/completions).
	EndpointPath string
	// Headers are extra HTTP headers sent with every request; credentials
	// belong in secrets, not here.
	Headers map[string]string
}
