package scheduler

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/perfleet/perfleet/pkg/workload"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func TestSchedulePlacementErrors(t *testing.T) {
	h100r1 := map[string]string{"gpu": "h100", "rack": "r1"}
	gpuFleet := []Candidate{
		live("gpu-b", "gpu", "h100", "rack", "r1"), live("gpu-a", "gpu", "h100", "rack", "r1"),
		with(live("gpu-c", "gpu", "h100", "rack", "r1"), StatusAlive, false),
		live("gpu-d", "gpu", "h100", "rack", "r2"), live("gpu-e", "gpu", "a100", "rack", "r2"),
		with(live("gpu-f", "gpu", "h100", "rack", "r1"), "failed", false),
		live("gpu-g", "gpu", "h100"), live("gpu-h", "rack", "r1", "zone", "z"),
		with(live("gpu-i", "gpu", "a100", "rack", "r1"), "suspect", true),
		{ID: "gpu-j", Labels: h100r1, Connected: true},
	}
	vpc := &pb.VpcConfig{Subnets: []string{"s-1", "s-2"}, SecurityGroupIds: []string{"sg-1"}}
	var many []Candidate
	for i := range 12 {
		many = append(many, live(fmt.Sprintf("n%02d", i)), with(live(fmt.Sprintf("x%02d", i)), "left", false))
	}
	tests := []struct {
		name         string
		in           Input
		reason       string
		wanted       int
		found        int
		level        string
		wantSelector map[string]string
	}{
		{"too few with near misses",
			Input{Levels: sweep(8), Placement: workload.Placement{Agents: 4, Selector: h100r1}, Candidates: gpuFleet},
			"placement needs 4 agents matching {gpu=h100, rack=r1}; 2 match (gpu-a, gpu-b); gpu-c is alive but not connected; " +
				"gpu-d has rack=r2 (wants r1); gpu-f is failed; gpu-g has no rack label (wants r1); " +
				"gpu-h has no gpu label (wants h100); gpu-j has no status", 4, 2, "", h100r1},
		{"all with none matching",
			Input{Levels: sweep(1), Placement: workload.Placement{AllAgents: true, Selector: map[string]string{"gpu": "b200"}}, Candidates: fourAgents},
			"placement needs at least 1 agent matching {gpu=b200}; 0 match", 1, 0, "", map[string]string{"gpu": "b200"}},
		{"no agents at all", Input{Levels: sweep(1)}, "placement needs 1 agent matching {}; 0 match", 1, 0, "", nil},
		{"only dead agents",
			Input{Levels: sweep(1), Candidates: []Candidate{with(live("a"), "left", false), with(live("b"), StatusAlive, false)}},
			"placement needs 1 agent matching {}; 0 match; a is left; b is alive but not connected", 1, 0, "", nil},
		{"long lists are cut",
			Input{Levels: sweep(1), Placement: workload.Placement{Agents: 13}, Candidates: many},
			"placement needs 13 agents matching {}; 12 match (n00, n01, n02, n03, n04, n05, n06, n07, and 4 more); " +
				"x00 is left; x01 is left; x02 is left; x03 is left; x04 is left; x05 is left; x06 is left; x07 is left; and 4 more", 13, 12, "", nil},
		{"no agent in the network",
			Input{Levels: sweep(1), VPC: vpc, Candidates: []Candidate{live("a", "subnet", "s-1", "security-group", "sg-2"),
				with(live("b", "subnet", "s-2", "security-group", "sg-1"), StatusAlive, false), live("c", "subnet", "s-3", "security-group", "sg-1")}},
			"no live agent in subnets [s-1 s-2] with security groups [sg-1]; b is alive but not connected", 1, 0, "", nil},
		{"no agent with the security group",
			Input{Levels: sweep(1), VPC: &pb.VpcConfig{SecurityGroupIds: []string{"sg-1"}}, Candidates: fourAgents},
			"no live agent with security groups [sg-1]", 1, 0, "", nil},
		{"selector misses inside the network",
			Input{Levels: sweep(1), Placement: workload.Placement{Selector: map[string]string{"gpu": "h100"}}, VPC: vpc,
				Candidates: []Candidate{live("a", "subnet", "s-1", "security-group", "sg-1"), live("b", "gpu", "h100", "subnet", "s-9")}},
			"placement needs 1 agent matching {gpu=h100}; 0 match; b is outside the network (subnet s-9, security group none)",
			1, 0, "", map[string]string{"gpu": "h100"}},
		{"budget",
			Input{Levels: sweep(8, 64), Placement: workload.Placement{Agents: 3, StreamsPerAgent: 8, Selector: map[string]string{"pool": "x"}},
				Candidates: []Candidate{live("a", "pool", "x"), live("b", "pool", "x"), live("c", "pool", "x")}},
			"level concurrency_64 needs 64 concurrent streams but 3 agents matching {pool=x} × streams_per_agent 8 allow 24",
			8, 3, "concurrency_64", map[string]string{"pool": "x"}},
		{"budget with the count unset and too few agents",
			Input{Levels: []workload.Level{conc(40)}, Placement: workload.Placement{StreamsPerAgent: 10}, Candidates: fourAgents[:3]},
			"level #0 needs 40 concurrent streams but 3 agents matching {} × streams_per_agent 10 allow 30", 4, 3, "#0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Schedule(tt.in)
			if !errors.Is(err, ErrPlacement) || errors.Is(err, ErrInvalidInput) {
				t.Fatalf("Schedule = %+v, %v; want ErrPlacement", plan, err)
			}
			var pe *PlacementError
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not a *PlacementError", err)
			}
			if err.Error() != tt.reason {
				t.Errorf("reason\n%s\nwant\n%s", err, tt.reason)
			}
			if pe.Wanted != tt.wanted || pe.Found != tt.found || pe.Level != tt.level || !reflect.DeepEqual(pe.Selector, tt.wantSelector) {
				t.Errorf("error fields %+v", pe)
			}
		})
	}
}

func TestNetworkAdmits(t *testing.T) {
	both := newNetwork(&pb.VpcConfig{Subnets: []string{"s-1", "s-2"}, SecurityGroupIds: []string{"sg-1"}})
	tests := []struct {
		name   string
		net    network
		labels map[string]string
		want   bool
	}{
		{"both match", both, map[string]string{LabelSubnet: "s-2", LabelSecurityGroup: "sg-1"}, true},
		{"wrong subnet", both, map[string]string{LabelSubnet: "s-3", LabelSecurityGroup: "sg-1"}, false},
		{"wrong group", both, map[string]string{LabelSubnet: "s-1", LabelSecurityGroup: "sg-2"}, false},
		{"no group label", both, map[string]string{LabelSubnet: "s-1"}, false},
		{"no labels", both, nil, false},
		{"list value is not split", both, map[string]string{LabelSubnet: "s-1", LabelSecurityGroup: "sg-1,sg-2"}, false},
		{"empty string label", newNetwork(&pb.VpcConfig{Subnets: []string{"s-1"}}), map[string]string{LabelSubnet: ""}, false},
		{"subnets only", newNetwork(&pb.VpcConfig{Subnets: []string{"s-1"}}), map[string]string{LabelSubnet: "s-1"}, true},
		{"nil config", newNetwork(nil), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.net.admits(tt.labels); got != tt.want {
				t.Errorf("admits(%v) = %v", tt.labels, got)
			}
		})
	}
}

func TestEligibleOrder(t *testing.T) {
	cands := []Candidate{busy(live("a", "gpu", "h100"), 3), live("z", "gpu", "h100"), live("m", "gpu", "h100"),
		busy(live("b", "gpu", "h100"), 1), live("c", "gpu", "a100"), with(live("d", "gpu", "h100"), StatusAlive, false)}
	var ids []string
	for _, c := range Eligible(workload.Placement{Selector: map[string]string{"gpu": "h100"}}, nil, cands) {
		ids = append(ids, c.ID)
	}
	if want := []string{"m", "z", "b", "a"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Eligible order %v, want %v", ids, want)
	}
	if cands[0].ID != "a" || cands[1].ID != "z" {
		t.Error("Eligible reordered its input")
	}
}

func TestFromAgents(t *testing.T) {
	agents := []*pb.Agent{
		{AgentId: "gpu-a", InstanceType: "p5.48xlarge", Labels: map[string]string{"gpu": "h100"}, Status: "alive", Connected: true},
		nil,
		{AgentId: "gpu-b", Status: "failed"},
	}
	got := FromAgents(agents)
	want := []Candidate{
		{ID: "gpu-a", Labels: map[string]string{"gpu": "h100"}, Status: "alive", Connected: true},
		{ID: "gpu-b", Status: "failed"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromAgents = %+v, want %+v", got, want)
	}
}
