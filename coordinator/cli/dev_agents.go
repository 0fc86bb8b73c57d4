package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/agent/modelserver"
	"github.com/perfleet/perfleet/coordinator/server"
)

// devAgents are the simulated agents `perfleet dev --agents N` runs in its
// own process.
type devAgents struct {
	list []*daemon.Agent
}

// agentExecutable finds perfleet-agent, whose simulate subcommand serves
// the SIMULATOR framework: beside this binary, then on PATH.
func agentExecutable() string {
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "perfleet-agent"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("perfleet-agent"); err == nil {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// startDevAgents starts n agents with simulated GPUs (spec such as
// 8xH100-80GB) and the given instance type, joined to the node s's gossip
// pool, with their data under dir; their metrics are served with the node's
// and their spans go where the node's go.
func startDevAgents(n int, spec, instanceType string, s *server.Server, dir string, out io.Writer) (*devAgents, error) {
	sim, err := gpu.ParseSimulated(spec)
	if err != nil {
		return nil, fmt.Errorf("--simulate-gpus: %w", err)
	}
	if instanceType == "" {
		instanceType = "lab-" + strings.ToLower(strings.SplitN(spec, "-", 2)[0])
	}
	exe := agentExecutable()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &devAgents{}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("dev-agent-%d", i)
		adir := filepath.Join(dir, id)
		a, err := daemon.Start(daemon.Config{ID: id, InstanceType: instanceType, GossipAddr: "127.0.0.1:0", Join: []string{s.GossipAddr()},
			GPUs: gpu.NewSimulated(sim, gpu.SimOptions{Seed: id}), DataDir: adir, Logger: logger,
			MeterProvider: s.MeterProvider(), TracerProvider: s.TracerProvider(),
			ModelServers: modelserver.Config{Executable: exe, LogDir: filepath.Join(adir, "model-servers"), CacheDir: filepath.Join(adir, "cache")}})
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("agent %s: %w", id, err)
		}
		d.list = append(d.list, a)
	}
	note := ""
	if exe == "" {
		note = " (perfleet-agent not found beside perfleet or on PATH: SIMULATOR model servers cannot start)"
	}
	fmt.Fprintf(out, "%d simulated agent(s) dev-agent-1..%d: %s each, instance type %s%s\n", n, n, spec, instanceType, note)
	return d, nil
}

// stop makes every agent leave the fleet.
func (d *devAgents) stop() {
	for _, a := range d.list {
		_ = a.Stop()
	}
}
