// Command perfleet-agent runs on each GPU machine of a perfleet fleet. It
// joins the coordinators' gossip pool, starts model servers, generates load
// and streams metric windows back. Its subcommands also run standalone:
// `perfleet-agent run` benchmarks any OpenAI-compatible server with no
// coordinator, and `perfleet-agent simulate` serves the built-in simulated
// LLM server.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the perfleet-agent command. Each subcommand lives in its own
// file and registers itself from an init function.
var rootCmd = &cobra.Command{
	Use:           "perfleet-agent",
	Short:         "perfleet agent: model servers, load generation and GPU sampling",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
