package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/perfleet/perfleet/agent/runner"
	"github.com/perfleet/perfleet/pkg/workload"
)

// defaultWorkload is used when --workload is not given: AIPerf's defaults.
const defaultWorkload = "benchmark:\n  type: aiperf\n"

func init() {
	var (
		target, workloadPath, output string
		models, secretFlags          []string
		quiet, noVerify              bool
	)
	cmd := &cobra.Command{
		Use:   "run --target URL --workload spec.yaml --output DIR",
		Short: "Benchmark a server standalone, like `aiperf profile`, and write AIPerf's result files",
		Long: `run drives the workload against one OpenAI-compatible (or KServe v2, or generic HTTP)
server with no coordinator. It writes profile_export_aiperf.json, profile_export_aiperf.csv
and profile_export.jsonl into DIR (one concurrency_N/ sub-directory per level of a sweep),
shows a live progress line and prints a summary table per level.

Secrets: a workload's api_key reference perfleet:secret/NAME is read from the environment
variable PERFLEET_SECRET_NAME; --secret REF=ENVVAR maps any reference to a variable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				return fmt.Errorf("--target is required")
			}
			doc := []byte(defaultWorkload)
			if workloadPath != "" {
				b, err := os.ReadFile(workloadPath)
				if err != nil {
					return err
				}
				doc = b
			}
			spec, err := workload.Parse(doc)
			if err != nil {
				return err
			}
			overrides := map[string]string{}
			for _, s := range secretFlags {
				ref, env, ok := strings.Cut(s, "=")
				if !ok {
					return fmt.Errorf("--secret %q: want REF=ENVVAR", s)
				}
				overrides[ref] = os.Getenv(env)
			}
			cfg, err := runner.FromSpec(spec, runner.SpecOptions{Target: target, OutputDir: output, Models: models,
				Secrets: runner.ResolveSecrets(spec, overrides)})
			if err != nil {
				return err
			}
			cfg.VerifyTokens = !noVerify
			cfg.Version = "dev"
			if !quiet {
				cfg.Progress, cfg.Summary = cmd.ErrOrStderr(), cmd.OutOrStdout()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := runner.Run(ctx, cfg)
			for _, r := range res {
				fmt.Fprintf(cmd.ErrOrStderr(), "results: %s\n", r.Dir)
			}
			if err == context.Canceled {
				return fmt.Errorf("interrupted; partial results written")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "base URL of the server, e.g. http://localhost:8000")
	f.StringVar(&workloadPath, "workload", "", "workload spec (YAML or JSON); AIPerf defaults when omitted")
	f.StringVar(&output, "output", "artifacts", "directory for the result files")
	f.StringSliceVar(&models, "model", nil, "model name(s) when the workload names none")
	f.StringArrayVar(&secretFlags, "secret", nil, "REF=ENVVAR: read secret reference REF from environment variable ENVVAR")
	f.BoolVar(&quiet, "quiet", false, "no progress line or summary table")
	f.BoolVar(&noVerify, "no-verify-tokens", false, "skip counting server/tokenizer output token mismatches")
	rootCmd.AddCommand(cmd)
}
