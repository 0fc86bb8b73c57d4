package endpoint

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// AgentCaller sends a request to a connected agent over its control stream
// and returns the agent's answer.
type AgentCaller interface {
	CallAgent(ctx context.Context, agentID string, build func(requestID uint64) *pb.ConnectResponse) (*pb.ModelServerEvent, error)
}

// Fleet implements FleetService over the replicated agent registry.
type Fleet struct {
	pb.UnimplementedFleetServiceServer
	b     Backend
	calls AgentCaller
}

// NewFleet returns the fleet service over a backend.
func NewFleet(b Backend, calls AgentCaller) *Fleet { return &Fleet{b: b, calls: calls} }

// Model server frameworks an agent can launch.
var modelServerFrameworks = []string{"VLLM", "SGLANG", "TGI", "TRITON", "LMI", "COMMAND", "SIMULATOR"}

var serverIDRE = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

// LaunchModelServer validates the spec against the agent's hardware, relays
// it to the agent and waits for the server to be ready or to fail.
func (f *Fleet) LaunchModelServer(ctx context.Context, req *pb.LaunchModelServerRequest) (*pb.LaunchModelServerResponse, error) {
	agent, err := f.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	if err := checkModelServerSpec(req.GetSpec(), agent); err != nil {
		return nil, err
	}
	ev, err := f.calls.CallAgent(ctx, agent.GetAgentId(), func(id uint64) *pb.ConnectResponse {
		return &pb.ConnectResponse{Body: &pb.ConnectResponse_LaunchModelServer{LaunchModelServer: &pb.LaunchModelServer{RequestId: id, Spec: req.GetSpec()}}}
	})
	if err != nil {
		return nil, err
	}
	if ev.GetError() != "" {
		return nil, validate.Field("spec", "agent "+agent.GetAgentId()+" refused it: "+ev.GetError())
	}
	return &pb.LaunchModelServerResponse{Status: ev.GetStatus()}, nil
}

// StopModelServer relays a stop to the agent.
func (f *Fleet) StopModelServer(ctx context.Context, req *pb.StopModelServerRequest) (*pb.StopModelServerResponse, error) {
	agent, err := f.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, validate.Field("id", "is required")
	}
	ev, err := f.calls.CallAgent(ctx, agent.GetAgentId(), func(id uint64) *pb.ConnectResponse {
		return &pb.ConnectResponse{Body: &pb.ConnectResponse_StopModelServer{StopModelServer: &pb.StopModelServer{RequestId: id, Id: req.GetId()}}}
	})
	if err != nil {
		return nil, err
	}
	if ev.GetError() != "" {
		return nil, fmt.Errorf("%w: %s", state.ErrNotFound, ev.GetError())
	}
	return &pb.StopModelServerResponse{Status: ev.GetStatus()}, nil
}

func (f *Fleet) agent(id string) (*pb.Agent, error) {
	if id == "" {
		return nil, validate.Field("agent_id", "is required")
	}
	return f.b.State().Agent(id)
}

// checkModelServerSpec checks a launch request before it is relayed.
func checkModelServerSpec(spec *pb.ModelServerSpec, agent *pb.Agent) error {
	var c validate.Checker
	if spec == nil {
		return validate.Field("spec", "is required")
	}
	if spec.GetId() != "" && !serverIDRE.MatchString(spec.GetId()) {
		c.Addf("spec.id", "must be 1-63 characters matching [a-zA-Z0-9](-*[a-zA-Z0-9])*; got %q", spec.GetId())
	}
	if !contains(modelServerFrameworks, spec.GetFramework()) {
		c.Addf("spec.framework", "must be one of %s; got %q", strings.Join(modelServerFrameworks, ", "), spec.GetFramework())
	}
	if spec.GetFramework() == "COMMAND" && len(spec.GetCommand()) == 0 {
		c.Add("spec.command", "is required for the COMMAND framework")
	}
	if spec.GetFramework() != "COMMAND" && spec.GetModel() == "" {
		c.Add("spec.model", "is required (for SIMULATOR it is the model name to serve)")
	}
	copies := max(spec.GetCopies(), 1)
	if n := agent.GetGpus().GetCount(); spec.GetGpuCount()*copies > n {
		if copies > 1 {
			c.Addf("spec.copies", "agent %s has %d GPUs; %d copies of %d GPUs need %d", agent.GetAgentId(), n, copies, spec.GetGpuCount(), spec.GetGpuCount()*copies)
		} else {
			c.Addf("spec.gpu_count", "agent %s has %d GPUs; asked for %d", agent.GetAgentId(), n, spec.GetGpuCount())
		}
	}
	if spec.GetPort() > 65535 {
		c.Add("spec.port", "must be 0-65535")
	}
	if r := spec.GetRuntime(); r != "" && r != "process" && r != "docker" {
		c.Addf("spec.runtime", "must be process or docker; got %q", r)
	}
	if spec.GetHealthPath() != "" && !strings.HasPrefix(spec.GetHealthPath(), "/") {
		c.Add("spec.health_path", "must start with /")
	}
	return c.Err()
}

var agentStatuses = []string{"alive", "suspect", "failed", "left"}

// ListAgents returns the agents matching every given filter, sorted by ID.
func (f *Fleet) ListAgents(ctx context.Context, req *pb.ListAgentsRequest) (*pb.ListAgentsResponse, error) {
	var c validate.Checker
	if req.GetStatus() != "" && !contains(agentStatuses, req.GetStatus()) {
		c.Addf("status", "must be one of %s; got %q", strings.Join(agentStatuses, ", "), req.GetStatus())
	}
	labels := map[string]string{}
	for i, l := range req.GetLabels() {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			c.Addf(fmt.Sprintf("labels[%d]", i), "must be key=value; got %q", l)
		}
		labels[k] = v
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	agents, err := f.b.State().Agents(nil)
	if err != nil {
		return nil, err
	}
	resp := &pb.ListAgentsResponse{}
	for _, a := range agents {
		if agentMatches(a, req, labels) {
			resp.Agents = append(resp.Agents, a)
		}
	}
	return resp, nil
}

func agentMatches(a *pb.Agent, req *pb.ListAgentsRequest, labels map[string]string) bool {
	if req.GetStatus() != "" && a.GetStatus() != req.GetStatus() {
		return false
	}
	if req.GetInstanceType() != "" && a.GetInstanceType() != req.GetInstanceType() {
		return false
	}
	if req.GetGpuModel() != "" && !strings.Contains(strings.ToLower(a.GetGpus().GetModel()), strings.ToLower(req.GetGpuModel())) {
		return false
	}
	for k, v := range labels {
		if a.GetLabels()[k] != v {
			return false
		}
	}
	return true
}

// DescribeAgent returns one agent.
func (f *Fleet) DescribeAgent(ctx context.Context, req *pb.DescribeAgentRequest) (*pb.DescribeAgentResponse, error) {
	if req.GetAgentId() == "" {
		return nil, validate.Field("agent_id", "is required")
	}
	a, err := f.b.State().Agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	return &pb.DescribeAgentResponse{Agent: a}, nil
}
