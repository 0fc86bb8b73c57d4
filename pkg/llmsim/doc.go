// Package llmsim is a simulated OpenAI-compatible LLM server with a
// performance model. It needs no GPU: it answers /v1/chat/completions and
// /v1/completions (streaming over SSE or not), /v1/models, /health and a
// vLLM-like /metrics, and shapes its timing like a continuous-batching
// engine on a chosen GPU type and tensor-parallel degree. perfleet uses it to
// test load generators, to run whole clusters with no GPU (`perfleet dev`),
// and to benchmark its own client timing.
//
// # Performance model
//
// One engine runs per copy of the model (Config.Copies, one by default; all
// served model names share the copies). In virtual nanoseconds since New,
// each engine follows:
//
//	admission : FIFO; the queue head joins the batch when
//	            running < MaxNumSeqs and kv_used + prompt + output ≤ KVCacheTokens
//	            (a sequence reserves its whole KV need on admission, so the
//	            engine never preempts)
//	prefill   : one prompt at a time, start = max(admitted, previous prefill end),
//	            duration = prompt_tokens / PrefillTokensPerSec
//	TTFT      = (admitted − arrival) + (start − admitted) + prompt_tokens / PrefillTokensPerSec
//	            (queue wait for a batch slot, wait for the prefill engine, prefill)
//	ITL       : token k+1 is due ITL(running) after token k, with
//	            ITL(running) = BaseITL + PerSeqITL × running
//	            and running the batch size (this sequence included) when token k
//	            was emitted; an injected stall adds its duration to one gap.
//
// More concurrency therefore raises ITL (a bigger batch) and TTFT (prefill
// contention, then queueing past MaxNumSeqs or the KV capacity); longer
// prompts raise TTFT. Profiles come from a per-GPU table scaled by
// tensor parallelism (see ProfileFor and TPExponent).
//
// # Data-parallel copies
//
// With Config.Copies = N the server holds N independent engines behind its
// one listener, like vLLM with --data-parallel-size N or a SageMaker
// inference component with N copies per instance: each has the whole
// Profile (its own batch of MaxNumSeqs, KV cache and prefill queue, on
// Profile.GPUCount GPUs), so the server serves on N × GPUCount GPUs. A
// request goes to the copy with the fewest outstanding requests (routed,
// response not yet ended), ties to the lowest index, as SageMaker's
// LEAST_OUTSTANDING_REQUESTS routing does. The vLLM metrics on /metrics are
// sums over the copies (the KV usage is a fraction of all copies' caches),
// llmsim_copy_* families give each copy's figures labelled copy="i", and
// power scales with the copies (N × IdleWatts idle, N × MaxWatts full).
//
// # Implementation
//
// Each engine keeps token deadlines in a timing wheel with one bucket per
// tick (Config.Tick, 1 ms by default); a single loop, shared by the copies,
// wakes every tick and fires the deadlines due in every engine (in bounded
// steps when it is behind), so the cost
// is per token, not per stream, and no timer or allocation is made per
// token. Handlers share no lock with the loop. Each handler goroutine sleeps
// on a one-slot channel, wakes when the engine releases tokens, appends the
// chunks' JSON by hand into a pooled buffer and writes and flushes all the
// tokens released since its last write at once: a server short of CPU
// keeps the token schedule and sends bigger, rarer writes. Virtual times are exact; only the release is rounded up to the tick.
// The histogram llmsim_stream_write_lateness_seconds on /metrics shows how
// late writes left compared with the schedule: when it grows, the simulator
// itself (CPU, sockets) is the bottleneck, not the simulated GPU.
//
// # Determinism
//
// Request number i (counting, from 0 in arrival order, the completion
// requests that name a served model) draws its output
// length, token texts and faults from streams seeded by Config.Seed and i;
// a request carrying OpenAI's "seed" field draws its length and text from
// that seed instead (faults still follow i). The plan is drawn before the
// request is routed to a copy, so the number of copies changes timing only:
// the same seed and the same request sequence give the same texts, lengths
// and faults.
package llmsim
