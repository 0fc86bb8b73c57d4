// Command perfleet is the perfleet coordinator and its client, in the manner
// of nomad and consul: `perfleet server` runs a node of the Raft-replicated
// coordinator cluster, `perfleet dev` runs a whole cluster in one process,
// and the other subcommands call the API of a running cluster.
package main

import (
	"os"

	"github.com/perfleet/perfleet/coordinator/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
