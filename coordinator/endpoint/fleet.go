package endpoint

import (
	"context"
	"fmt"
	"strings"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// Fleet implements FleetService over the replicated agent registry.
type Fleet struct {
	pb.UnimplementedFleetServiceServer
	b Backend
}

// NewFleet returns the fleet service over a backend.
func NewFleet(b Backend) *Fleet { return &Fleet{b: b} }

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
