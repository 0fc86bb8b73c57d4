package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfleet/perfleet/pkg/llmsim"
)

// simulateFlags holds the flags of `perfleet-agent simulate`.
type simulateFlags struct {
	listen           string
	gpu              string
	gpus             int
	copies           int
	models           []string
	seed             int64
	timestamps       bool
	errorRate        float64
	rateLimitShare   float64
	stallRate        float64
	stall            time.Duration
	dropRate         float64
	itlMs            float64
	baseITLMs        float64
	perSeqITLMs      float64
	prefillTPS       float64
	kvTokens         int
	maxNumSeqs       int
	maxModelLen      int
	defaultMaxTokens int
	meanOutputTokens int
	tick             time.Duration
}

func init() {
	rootCmd.AddCommand(newSimulateCmd())
}

// newSimulateCmd returns the `simulate` subcommand.
func newSimulateCmd() *cobra.Command {
	f := &simulateFlags{}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Serve a simulated OpenAI-compatible LLM server (no GPU needed)",
		Long: `Serve the built-in simulated LLM server (pkg/llmsim).

It answers POST /v1/chat/completions and /v1/completions (streaming over SSE
or not, stream_options.include_usage, ignore_eos, max_tokens), GET /v1/models,
GET /health and GET /metrics (vLLM metric names), and times its output like a
continuous-batching engine on the chosen GPUs:

  TTFT = queue wait + prompt_tokens / prefill rate   (prefills run one at a time)
  ITL  = base ITL + per-seq ITL × running sequences
  batch bounded by max_num_seqs and the KV-cache capacity; the rest queue FIFO

GPU types: ` + strings.Join(llmsim.GPUTypes(), ", ") + `.
--gpus N (1, 2, 4, 8) is the tensor-parallel degree: prefill and decode get
N^0.8 times faster, the KV cache N times larger. Flags such as --itl-ms or
--kv-tokens override one parameter of the GPU's profile.

--copies C runs C data-parallel copies of the model behind the one listener
(like vLLM's --data-parallel-size or SageMaker's copies per instance), each
on --gpus GPUs with its own batch, KV cache and prefill queue, so the server
stands for C x --gpus GPUs and its power scales with C. Each request goes to
the copy with the fewest outstanding requests (ties to the lowest copy). The
vLLM metrics are summed over the copies; llmsim_copy_* metrics give each
copy's figures with a copy="i" label.

The same --seed and request sequence give the same texts, lengths and faults.
One line "llmsim ready on http://ADDR ..." is printed when the server listens.`,
		Example: `  perfleet-agent simulate --listen 127.0.0.1:8000 --gpu H100-80GB --gpus 1 --model llama-3.1-8b --seed 42
  perfleet-agent simulate --gpu H100-80GB --gpus 1 --copies 8   # 8 copies at TP 1 on 8 GPUs
  perfleet-agent simulate --gpu L4 --itl-ms 20 --max-num-seqs 100000 --kv-tokens 1000000000
  perfleet-agent simulate --error-rate 0.05 --drop-rate 0.01 --stall-rate 0.02 --stall 2s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8000", "address to listen on (port 0 picks a free port)")
	fl.StringVar(&f.gpu, "gpu", "H100-80GB", "simulated GPU type: "+strings.Join(llmsim.GPUTypes(), ", "))
	fl.IntVar(&f.gpus, "gpus", 1, "GPUs per copy of the model (tensor-parallel degree): 1, 2, 4 or 8")
	fl.IntVar(&f.copies, "copies", 1, "data-parallel copies of the model, each on --gpus GPUs; requests go to the least busy copy")
	fl.StringSliceVar(&f.models, "model", []string{llmsim.DefaultModel}, "served model name (repeat or comma-separate for several)")
	fl.Int64Var(&f.seed, "seed", 0, "seed for token texts, output lengths and faults")
	fl.BoolVar(&f.timestamps, "timestamps", false, `add "llmsim_sent_ns" send times to every streamed chunk (per request: header x-llmsim-timestamps: 1)`)
	fl.Float64Var(&f.errorRate, "error-rate", 0, "fraction of requests answered with an injected 429 or 500")
	fl.Float64Var(&f.rateLimitShare, "rate-limit-share", 0.5, "fraction of injected errors that are 429 (the rest are 500)")
	fl.Float64Var(&f.stallRate, "stall-rate", 0, "fraction of requests whose output pauses once for --stall")
	fl.DurationVar(&f.stall, "stall", 2*time.Second, "length of an injected stall")
	fl.Float64Var(&f.dropRate, "drop-rate", 0, "fraction of requests whose connection is closed mid-stream without [DONE]")
	fl.Float64Var(&f.itlMs, "itl-ms", 0, "fixed inter-token latency in ms, whatever the batch size (overrides the model)")
	fl.Float64Var(&f.baseITLMs, "base-itl-ms", 0, "override the base ITL in ms")
	fl.Float64Var(&f.perSeqITLMs, "per-seq-itl-ms", 0, "override the ITL added per running sequence, in ms")
	fl.Float64Var(&f.prefillTPS, "prefill-tps", 0, "override the prefill rate in tokens/s")
	fl.IntVar(&f.kvTokens, "kv-tokens", 0, "override the KV-cache capacity in tokens")
	fl.IntVar(&f.maxNumSeqs, "max-num-seqs", 0, "override the maximum running batch size")
	fl.IntVar(&f.maxModelLen, "max-model-len", 0, "override the context length (prompt + output tokens)")
	fl.IntVar(&f.defaultMaxTokens, "default-max-tokens", llmsim.DefaultMaxTokens, "output budget of requests without max_tokens")
	fl.IntVar(&f.meanOutputTokens, "mean-output-tokens", llmsim.DefaultMeanOutputTokens, "mean natural output length without ignore_eos")
	fl.DurationVar(&f.tick, "tick", llmsim.DefaultTick, "scheduler resolution")
	return cmd
}

// simulateProfile builds the profile from --gpu/--gpus and the overrides.
func simulateProfile(cmd *cobra.Command, f *simulateFlags) (llmsim.Profile, error) {
	p, err := llmsim.ProfileFor(f.gpu, f.gpus)
	if err != nil {
		return p, err
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	changed := cmd.Flags().Changed
	if changed("base-itl-ms") {
		p.BaseITL = ms(f.baseITLMs)
	}
	if changed("per-seq-itl-ms") {
		p.PerSeqITL = ms(f.perSeqITLMs)
	}
	if changed("itl-ms") {
		p = p.WithFixedITL(ms(f.itlMs))
	}
	if changed("prefill-tps") {
		p.PrefillTokensPerSec = f.prefillTPS
	}
	if changed("kv-tokens") {
		p.KVCacheTokens = f.kvTokens
		if !changed("max-model-len") {
			p.MaxModelLen = min(llmsim.DefaultMaxModelLen, p.KVCacheTokens)
		}
	}
	if changed("max-num-seqs") {
		p.MaxNumSeqs = f.maxNumSeqs
	}
	if changed("max-model-len") {
		p.MaxModelLen = f.maxModelLen
	}
	return p, p.Validate()
}

// runSimulate serves the simulator until SIGINT or SIGTERM.
func runSimulate(cmd *cobra.Command, f *simulateFlags) error {
	if f.copies < 1 {
		return fmt.Errorf("simulate: --copies must be at least 1, got %d", f.copies)
	}
	prof, err := simulateProfile(cmd, f)
	if err != nil {
		return err
	}
	sim, err := llmsim.New(llmsim.Config{
		Models:     f.models,
		Profile:    prof,
		Copies:     f.copies,
		Seed:       f.seed,
		Timestamps: f.timestamps,
		Faults: llmsim.Faults{ErrorRate: f.errorRate, RateLimitShare: f.rateLimitShare,
			StallRate: f.stallRate, StallDuration: f.stall, DropRate: f.dropRate},
		DefaultMaxTokens: f.defaultMaxTokens,
		MeanOutputTokens: f.meanOutputTokens,
		Tick:             f.tick,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if err := sim.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	hs := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(cmd.OutOrStdout(), "llmsim ready on http://%s (models %s, %s x%d, copies %d; per copy: prefill %.0f tok/s, ITL %v + %v x running, KV %d tokens, max_num_seqs %d; seed %d)\n",
		ln.Addr(), strings.Join(f.models, ","), prof.GPU, prof.GPUCount, f.copies, prof.PrefillTokensPerSec,
		prof.BaseITL, prof.PerSeqITL, prof.KVCacheTokens, prof.MaxNumSeqs, f.seed)
	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = sim.Close()
		return fmt.Errorf("simulate: %w", err)
	}
	_ = sim.Close() // aborts streams in flight
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
