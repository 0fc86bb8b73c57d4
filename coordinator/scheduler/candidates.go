package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/perfleet/perfleet/pkg/workload"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Agent status and labels the scheduler reads.
const (
	// StatusAlive is the gossip status of an agent that may take load.
	StatusAlive = "alive"
	// LabelSubnet is the agent label naming the subnet it sends load from.
	LabelSubnet = "subnet"
	// LabelSecurityGroup is the agent label naming its security group.
	LabelSecurityGroup = "security-group"
)

// Candidate is an agent as the scheduler sees it.
type Candidate struct {
	// ID is the agent's ID; unique among the candidates.
	ID string
	// Labels are the agent's labels (--label k=v).
	Labels map[string]string
	// Status is the gossip status: alive, suspect, failed or left.
	Status string
	// Connected is true while the agent holds a control stream to the leader.
	Connected bool
	// AssignedStreams is how many streams the agent already runs for other
	// jobs; agents with fewer are preferred. It does not count against
	// streams_per_agent, which budgets this job only.
	AssignedStreams int
}

// FromAgent makes a Candidate of a fleet record, with no assigned streams.
func FromAgent(a *pb.Agent) Candidate {
	return Candidate{ID: a.GetAgentId(), Labels: a.GetLabels(), Status: a.GetStatus(), Connected: a.GetConnected()}
}

// FromAgents makes Candidates of fleet records, skipping nil ones.
func FromAgents(agents []*pb.Agent) []Candidate {
	out := make([]Candidate, 0, len(agents))
	for _, a := range agents {
		if a != nil {
			out = append(out, FromAgent(a))
		}
	}
	return out
}

// live reports whether the agent may take load: alive and connected.
func (c Candidate) live() bool {
	return c.Status == StatusAlive && c.Connected
}

// Eligible returns the live candidates that are in the VPC config's network
// and match the placement's selector, in preference order: fewest
// AssignedStreams first, then by ID. Schedule picks its pool from the front;
// the runner passes it to Reassign as the spares.
func Eligible(p workload.Placement, vpc *pb.VpcConfig, cands []Candidate) []Candidate {
	net := newNetwork(vpc)
	var out []Candidate
	for _, c := range cands {
		if c.live() && net.admits(c.Labels) && len(mismatches(p.Selector, c.Labels)) == 0 {
			out = append(out, c)
		}
	}
	prefer(out)
	return out
}

// prefer sorts candidates by fewest assigned streams, then by ID.
func prefer(cands []Candidate) {
	slices.SortFunc(cands, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.AssignedStreams, b.AssignedStreams), strings.Compare(a.ID, b.ID))
	})
}

// choosePool picks the job's agents, or explains why the fleet cannot.
func choosePool(in Input) ([]Candidate, error) {
	p := in.Placement
	net := newNetwork(in.VPC)
	if net.restricts() && !slices.ContainsFunc(in.Candidates, func(c Candidate) bool { return c.live() && net.admits(c.Labels) }) {
		var misses []string
		for _, c := range byID(in.Candidates) {
			if net.admits(c.Labels) {
				misses = append(misses, c.ID+" "+liveness(c))
			}
		}
		return nil, &PlacementError{Reason: joinReason("no live agent "+net.String(), misses), Selector: p.Selector, Wanted: 1}
	}
	matched := Eligible(p, in.VPC, in.Candidates)
	want, take := 1, len(matched)
	switch {
	case p.AllAgents:
	case p.Agents > 0:
		want, take = p.Agents, p.Agents
	default:
		take = min(poolSize(in.Levels, p.StreamsPerAgent), len(matched))
	}
	if len(matched) < want {
		return nil, countError(in, want, matched)
	}
	return matched[:take], nil
}

// countError says that too few agents match: the selector, how many were
// wanted and found, and the near misses.
func countError(in Input, want int, matched []Candidate) *PlacementError {
	sel := in.Placement.Selector
	needs := agentCount(want)
	if in.Placement.AllAgents {
		needs = "at least " + needs
	}
	found := fmt.Sprintf("%d match", len(matched))
	if len(matched) > 0 {
		ids := make([]string, len(matched))
		for i, c := range byID(matched) {
			ids[i] = c.ID
		}
		found += " (" + formatList(ids, ", ", maxListed) + ")"
	}
	reason := "placement needs " + needs + " matching " + formatSelector(sel) + "; " + found
	return &PlacementError{
		Reason:   joinReason(reason, nearMisses(sel, newNetwork(in.VPC), in.Candidates)),
		Selector: sel, Wanted: want, Found: len(matched),
	}
}

// nearMisses describes, by ID, the agents that fail exactly one rule: they
// match but are not live, or they are live and match the selector but sit
// outside the network, or they are live in the network and carry some but
// not all of the selector's labels.
func nearMisses(sel map[string]string, net network, cands []Candidate) []string {
	var out []string
	for _, c := range byID(cands) {
		bad := mismatches(sel, c.Labels)
		inNet := net.admits(c.Labels)
		switch {
		case len(bad) == 0 && inNet && !c.live():
			out = append(out, c.ID+" "+liveness(c))
		case len(bad) == 0 && !inNet && c.live():
			out = append(out, fmt.Sprintf("%s is outside the network (subnet %s, security group %s)",
				c.ID, labelOrNone(c.Labels, LabelSubnet), labelOrNone(c.Labels, LabelSecurityGroup)))
		case len(bad) > 0 && len(bad) < len(sel) && inNet && c.live():
			out = append(out, c.ID+" has "+strings.Join(bad, " and "))
		}
	}
	return out
}

// mismatches lists, in key order, the selector labels the agent lacks.
func mismatches(sel, labels map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(sel) {
		switch v, ok := labels[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("no %s label (wants %s)", k, sel[k]))
		case v != sel[k]:
			out = append(out, fmt.Sprintf("%s=%s (wants %s)", k, v, sel[k]))
		}
	}
	return out
}

// liveness says why an agent that is not live is not, after its ID.
func liveness(c Candidate) string {
	switch {
	case c.Status == StatusAlive && !c.Connected:
		return "is alive but not connected"
	case c.Status == "":
		return "has no status"
	}
	return "is " + c.Status
}

// byID returns a copy of the candidates sorted by ID.
func byID(cands []Candidate) []Candidate {
	out := slices.Clone(cands)
	slices.SortFunc(out, func(a, b Candidate) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// network is the placement restriction of a VPC config.
type network struct {
	subnets, groups []string
}

// newNetwork reads a VPC config; nil restricts nothing.
func newNetwork(v *pb.VpcConfig) network {
	return network{subnets: v.GetSubnets(), groups: v.GetSecurityGroupIds()}
}

// restricts reports whether the network excludes any agent.
func (n network) restricts() bool {
	return len(n.subnets) > 0 || len(n.groups) > 0
}

// admits reports whether labels place an agent in the network: its subnet
// label among the subnets and its security-group label among the groups,
// each checked only when its list is not empty.
func (n network) admits(labels map[string]string) bool {
	in := func(key string, ids []string) bool {
		v, ok := labels[key]
		return len(ids) == 0 || ok && slices.Contains(ids, v)
	}
	return in(LabelSubnet, n.subnets) && in(LabelSecurityGroup, n.groups)
}

// String names the network for reasons, e.g. "in subnets [s-1 s-2] with
// security groups [sg-1]".
func (n network) String() string {
	var parts []string
	if len(n.subnets) > 0 {
		parts = append(parts, fmt.Sprintf("in subnets %v", n.subnets))
	}
	if len(n.groups) > 0 {
		parts = append(parts, fmt.Sprintf("with security groups %v", n.groups))
	}
	return strings.Join(parts, " ")
}

// labelOrNone is the label's value, or "none".
func labelOrNone(labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return v
	}
	return "none"
}
