package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func newAgentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "List and describe the fleet's agents"}
	req := &pb.ListAgentsRequest{}
	list := &cobra.Command{
		Use: "list", Short: "List agents with their hardware and status", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *pb.ListAgentsResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewFleetServiceClient(c).ListAgents(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			t := newTable(g.out, "AGENT", "STATUS", "CONNECTED", "INSTANCE TYPE", "GPUS", "LABELS", "SINCE")
			for _, a := range resp.GetAgents() {
				t.row(a.GetAgentId(), a.GetStatus(), fmt.Sprint(a.GetConnected()), a.GetInstanceType(), gpuString(a.GetGpus()),
					labelString(a.GetLabels()), ts(a.GetStatusTime()))
			}
			t.flush()
			return nil
		},
	}
	f := list.Flags()
	f.StringVar(&req.Status, "status", "", "only agents in this status: alive, suspect, failed or left")
	f.StringVar(&req.InstanceType, "instance-type", "", "only agents of this instance type")
	f.StringVar(&req.GpuModel, "gpu-model", "", "only agents whose GPU model contains this text")
	f.StringArrayVar(&req.Labels, "label", nil, "only agents with this label, key=value (repeatable)")
	describe := &cobra.Command{
		Use: "describe AGENT", Short: "Show one agent", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.DescribeAgentResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewFleetServiceClient(c).DescribeAgent(ctx, &pb.DescribeAgentRequest{AgentId: a[0]})
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			ag := resp.GetAgent()
			kv(g.out, "Agent", ag.GetAgentId(), "Status", ag.GetStatus(), "Since", ts(ag.GetStatusTime()),
				"Connected", fmt.Sprint(ag.GetConnected()), "Instance type", ag.GetInstanceType(), "Region", ag.GetRegion(),
				"GPUs", gpuString(ag.GetGpus()), "GPU source", ag.GetGpus().GetSource(), "Labels", labelString(ag.GetLabels()),
				"Gossip address", ag.GetGossipAddr(), "gRPC address", ag.GetGrpcAddr(), "Version", ag.GetVersion(),
				"First seen", ts(ag.GetFirstSeen()))
			return nil
		},
	}
	cmd.AddCommand(list, describe, launchModelServerCmd(g), stopModelServerCmd(g))
	return cmd
}

func launchModelServerCmd(g *globals) *cobra.Command {
	spec := &pb.ModelServerSpec{}
	var gpus, port uint32
	var env []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "launch-model-server AGENT --framework F [--model M]",
		Short: "Start a model server on an agent and wait until it is ready",
		Long: `Start a model server on an agent: VLLM, SGLANG, TGI, TRITON, LMI, COMMAND or
SIMULATOR (the built-in simulated LLM server). The agent assigns GPUs through
CUDA_VISIBLE_DEVICES, downloads s3:// models into its cache, starts the
server, polls its health path and answers when it is ready or has failed
(the reason includes the server's last log lines).

Examples:
  perfleet agent launch-model-server gpu-01 --framework VLLM --model meta-llama/Llama-3.1-8B --gpus 2
  perfleet agent launch-model-server gpu-01 --framework SIMULATOR --model demo-llm --gpus 1
  perfleet agent launch-model-server gpu-01 --framework COMMAND --gpus 1 -- ./serve.sh --port {port}`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			spec.GpuCount, spec.Port = gpus, port
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				spec.Command = a[dash:]
				a = a[:dash]
			}
			if len(a) != 1 {
				return usageError{fmt.Errorf("give exactly one AGENT (and the COMMAND argv after --)")}
			}
			if timeout > 0 {
				spec.ReadinessTimeout = durationpb.New(timeout)
			}
			spec.Env = map[string]string{}
			for _, e := range env {
				k, v, ok := strings.Cut(e, "=")
				if !ok {
					return usageError{fmt.Errorf("--env %q must be KEY=VALUE", e)}
				}
				spec.Env[k] = v
			}
			callTimeout := g.timeout
			if timeout+30*time.Second > callTimeout {
				g.timeout = timeout + 30*time.Second // wait for readiness
			}
			defer func() { g.timeout = callTimeout }()
			var resp *pb.LaunchModelServerResponse
			err := g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewFleetServiceClient(c).LaunchModelServer(ctx, &pb.LaunchModelServerRequest{AgentId: a[0], Spec: spec})
				return err
			})
			if err != nil {
				return err
			}
			return g.showModelServer(resp, resp.GetStatus())
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Id, "id", "", "server ID on the agent (default: generated)")
	f.StringVar(&spec.Framework, "framework", "", "VLLM, SGLANG, TGI, TRITON, LMI, COMMAND or SIMULATOR (required)")
	f.StringVar(&spec.Model, "model", "", "model: s3://..., file:///... or a hub ID")
	f.StringVar(&spec.ServedModelName, "served-model-name", "", "name clients use for the model")
	f.Uint32Var(&gpus, "gpus", 0, "GPUs to assign")
	f.Uint32Var(&port, "port", 0, "port on 127.0.0.1 (0: a free one)")
	f.StringVar(&spec.HealthPath, "health-path", "", "readiness path (default: the framework's)")
	f.StringVar(&spec.Runtime, "runtime", "process", "process or docker")
	f.StringArrayVar(&spec.ExtraArgs, "arg", nil, "extra argument for the server (repeatable)")
	f.StringArrayVar(&env, "env", nil, "extra environment KEY=VALUE (repeatable)")
	f.StringVar(&spec.SimulatedGpu, "simulated-gpu", "", "GPU type the SIMULATOR models (default: the agent's)")
	f.DurationVar(&timeout, "readiness-timeout", 0, "how long to wait for readiness (default 10m)")
	return cmd
}

func stopModelServerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "stop-model-server AGENT ID", Short: "Stop a model server (SIGTERM, then SIGKILL) and free its GPUs", Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.StopModelServerResponse
			err := g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewFleetServiceClient(c).StopModelServer(ctx, &pb.StopModelServerRequest{AgentId: a[0], Id: a[1]})
				return err
			})
			if err != nil {
				return err
			}
			return g.showModelServer(resp, resp.GetStatus())
		},
	}
}

func (g *globals) showModelServer(resp proto.Message, st *pb.ModelServerStatus) error {
	if g.output == "json" {
		return g.printJSON(resp)
	}
	var gpus []string
	for _, d := range st.GetGpus() {
		gpus = append(gpus, fmt.Sprint(d))
	}
	setup := ""
	if st.GetSetupTime() != nil {
		setup = st.GetSetupTime().AsDuration().Round(time.Millisecond).String()
	}
	kv(g.out, "Server", st.GetId(), "Agent", st.GetAgentId(), "State", st.GetState(), "URL", st.GetUrl(), "GPUs", strings.Join(gpus, ","),
		"Setup time", setup, "Failure reason", st.GetFailureReason(), "Command", strings.Join(st.GetCommand(), " "))
	if st.GetState() == "failed" {
		return fmt.Errorf("model server %s failed", st.GetId())
	}
	return nil
}

func gpuString(g *pb.GPUSummary) string {
	if g.GetCount() == 0 {
		return "none"
	}
	return fmt.Sprintf("%dx%s (%d MiB)", g.GetCount(), g.GetModel(), g.GetMemoryMib())
}

func labelString(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
