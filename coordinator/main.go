// Command perfleet is the perfleet coordinator and its client, in the manner
// of nomad and consul: `perfleet server` runs a node of the Raft-replicated
// coordinator cluster, `perfleet dev` runs a whole cluster in one process,
// and the other subcommands call the API of a running cluster.
package main

import (
	"os"
	"runtime/debug"

	"github.com/perfleet/perfleet/coordinator/cli"
)

func main() {
	// The coordinator's live heap is small and allocation-heavy (gRPC, Raft,
	// go-memdb copies): collecting at 4x the live heap instead of 2x cut
	// GC work enough to raise committed creates by 20-27 % in
	// bench/raftbench. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
