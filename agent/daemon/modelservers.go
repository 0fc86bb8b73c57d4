package daemon

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/perfleet/perfleet/agent/control"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/agent/modelserver"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// modelServers serves the leader's launch and stop requests with the
// agent's model-server Manager. With simulated GPUs, the devices given to a
// SIMULATOR server follow its load: the agent polls the simulator's
// llmsim_gpu_utilization_ratio and feeds it to those devices (with several
// copies, every device of the server gets the mean over the copies).
type modelServers struct {
	agentID string
	m       *modelserver.Manager
	loads   []atomic.Uint64 // per device, float64 bits; only with simulated GPUs
	http    *http.Client
	wg      sync.WaitGroup
}

var _ control.Handler = (*modelServers)(nil)

func newModelServers(agentID string, m *modelserver.Manager, backend gpu.Backend) *modelServers {
	h := &modelServers{agentID: agentID, m: m, http: &http.Client{Timeout: 2 * time.Second}}
	if sim, ok := backend.(*gpu.SimulatedBackend); ok {
		devs := sim.Inventory().Devices
		h.loads = make([]atomic.Uint64, len(devs))
		for i, d := range devs {
			slot := &h.loads[i]
			_ = sim.SetLoad(d.Index, func() float64 { return floatFrom(slot.Load()) })
		}
	}
	return h
}

// LaunchModelServer starts a server and answers once it is ready or failed.
func (h *modelServers) LaunchModelServer(ctx context.Context, spec *pb.ModelServerSpec) (*pb.ModelServerStatus, error) {
	ms := modelServerSpec(spec)
	srv, err := h.m.Launch(ctx, ms)
	if err != nil {
		return nil, err
	}
	_ = srv.Wait(ctx) // the status says whether it became ready
	if ms.Framework == modelserver.FrameworkSimulator && h.loads != nil && srv.Status() == modelserver.StatusReady {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); h.followLoad(srv) }()
	}
	return h.status(srv), nil
}

// modelServerSpec converts a launch request into a Manager spec. The server
// gets gpu_count × copies GPUs (copies 0 meaning 1); the Manager validates
// the values.
func modelServerSpec(spec *pb.ModelServerSpec) modelserver.Spec {
	return modelserver.Spec{ID: spec.GetId(), Framework: modelserver.Framework(spec.GetFramework()), Model: spec.GetModel(),
		ServedModelName: spec.GetServedModelName(), Command: spec.GetCommand(), Args: spec.GetExtraArgs(), Env: spec.GetEnv(),
		GPUs: int(spec.GetGpuCount()), Copies: int(spec.GetCopies()), Port: int(spec.GetPort()), HealthPath: spec.GetHealthPath(),
		ReadinessTimeout: spec.GetReadinessTimeout().AsDuration(), Runtime: modelserver.Runtime(spec.GetRuntime()),
		SimulatedGPU: spec.GetSimulatedGpu()}
}

// StopModelServer stops a server and frees its GPUs.
func (h *modelServers) StopModelServer(ctx context.Context, id string) (*pb.ModelServerStatus, error) {
	srv, ok := h.m.Get(id)
	if !ok {
		return nil, fmt.Errorf("no model server %q on agent %s", id, h.agentID)
	}
	if err := h.m.Stop(ctx, id); err != nil {
		return nil, err
	}
	return h.status(srv), nil
}

func (h *modelServers) status(srv *modelserver.Server) *pb.ModelServerStatus {
	st := &pb.ModelServerStatus{Id: srv.ID(), AgentId: h.agentID, State: string(srv.Status()), Url: srv.URL(),
		FailureReason: srv.FailureReason(), Command: srv.Argv()}
	if d := srv.SetupTime(); d > 0 {
		st.SetupTime = durationpb.New(d)
	}
	for _, d := range srv.Devices() {
		st.Gpus = append(st.Gpus, uint32(d))
	}
	return st
}

// followLoad polls a simulator's utilisation into its devices' load until
// the server exits.
func (h *modelServers) followLoad(srv *modelserver.Server) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	set := func(v float64) {
		for _, d := range srv.Devices() {
			if d >= 0 && d < len(h.loads) {
				h.loads[d].Store(floatBits(v))
			}
		}
	}
	defer set(0)
	for {
		select {
		case <-srv.Done():
			return
		case <-tick.C:
			if v, err := h.simUtilisation(srv.URL()); err == nil {
				set(v)
			}
		}
	}
}

// simUtilisation reads llmsim_gpu_utilization_ratio from a simulator's
// /metrics.
func (h *modelServers) simUtilisation(base string) (float64, error) {
	resp, err := h.http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "llmsim_gpu_utilization_ratio") {
			f := strings.Fields(line)
			return strconv.ParseFloat(f[len(f)-1], 64)
		}
	}
	return 0, fmt.Errorf("no llmsim_gpu_utilization_ratio in %s/metrics", base)
}

func floatBits(f float64) uint64 { return math.Float64bits(f) }
func floatFrom(b uint64) float64 { return math.Float64frombits(b) }
