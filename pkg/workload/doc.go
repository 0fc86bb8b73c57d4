// Package workload parses and strictly validates perfleet workload specs:
// the document held in AIWorkloadConfigs.WorkloadSpec.Inline of
// CreateAIWorkloadConfig, written in JSON or YAML.
//
// # Document
//
// A spec has the top-level keys of SageMaker's workload spec plus one
// perfleet extension:
//
//	benchmark:            # required
//	  type: aiperf        # required; the only engine
//	tooling:
//	  api_standard: openai   # openai (default) | kserve | http
//	  version: 0.8.0         # AIPerf version to mirror; empty = latest
//	parameters:           # AIPerf knobs, SageMaker names and aliases
//	  concurrency: [1, 8, 64]
//	  isl: 512            # alias of prompt_input_tokens_mean
//	secrets:
//	  hf_token: arn:aws:secretsmanager:us-west-2:123456789012:secret:hf
//	placement:            # perfleet extension
//	  agents: all
//
// Every parameter of SageMaker's reference (and AIPerf's aliases for it) is
// accepted; see Parameters for the list and meanings. Unknown keys anywhere
// are rejected, with a suggestion when the key looks like a typo. An alias
// given together with its canonical name (or another alias of it) is
// rejected. Values are type-checked strictly: "8" is not an integer, 8.0 is
// not an integer, null is never a value. YAML aliases (*ref), several
// documents in one string and documents over MaxDocumentBytes are rejected.
//
// # perfleet extensions
//
// Beside AIPerf's parameters the `parameters` section accepts:
//
//   - phases: [{initial_users, spawn_rate, duration_seconds}], a SageMaker
//     Inference Recommender PHASES pattern (spawn_rate in users per minute);
//   - stairs: {users_per_step, step_duration_seconds, number_of_steps}, an
//     Inference Recommender STAIRS pattern;
//   - trace_file: a JSONL trace replayed at its recorded timestamps;
//   - api: openai-chat | openai-completions | kserve-v2 | http, the request
//     format, which must agree with tooling.api_standard;
//   - endpoint_path: the request path; headers: extra HTTP headers (never
//     credentials: those go in secrets.api_key).
//
// The top-level `placement` section ({agents: N | "all", selector: {label:
// value}, streams_per_agent: N}) tells the scheduler which agents run the
// load. secrets accepts hf_token and api_key, each a reference
// (arn:aws:secretsmanager:<region>:<account>:secret:<name> or
// perfleet:secret/<name>), never the secret itself. A reference written as
// parameters.hf_token is moved to secrets.hf_token; a plaintext token there
// is rejected.
//
// # Load shapes
//
// A spec has exactly one load shape: a fixed concurrency, a concurrency list
// (a sweep), request_rate (optionally capped by max_concurrency or a single
// concurrency), search_recipe, phases, stairs or trace_file. A concurrency
// list with request_rate and concurrency or request_rate with search_recipe
// are rejected; phases, stairs and trace_file exclude each other and
// concurrency, request_rate and search_recipe. Spec.Levels expands the shape
// into benchmark levels.
//
// # Defaults
//
// Parse applies the SageMaker SDK's defaults, so a Spec is complete:
// concurrency 1 when no other load shape is given; request_count 100 unless
// benchmark_duration, phases, stairs or trace_file bounds the run; input and
// output token means 256 when prompts are synthetic (no public_dataset,
// input_file or trace_file); token stddevs 0; streaming true; random_seed 42;
// model_selection_strategy round_robin; tooling.api_standard openai (or the
// one api implies) and api openai-chat (or the one api_standard implies);
// request_rate_mode poisson (gamma with arrival_smoothness) in a rate run;
// search_stat avg, concurrency_min 1 and concurrency_max 256 in a search.
//
// # Errors
//
// Parse returns Errors, every problem as a FieldError with the key path as
// the document spelled it, sorted by path; errors.Is(err, ErrInvalid) holds.
// At most MaxProblems are listed; one more, with an empty path, counts the
// rest.
package workload
