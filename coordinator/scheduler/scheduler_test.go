package scheduler

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/perfleet/perfleet/pkg/workload"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// live is a live, connected candidate with labels given as k, v pairs.
func live(id string, kv ...string) Candidate {
	labels := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		labels[kv[i]] = kv[i+1]
	}
	return Candidate{ID: id, Labels: labels, Status: StatusAlive, Connected: true}
}

// with returns c with another status and connection.
func with(c Candidate, status string, connected bool) Candidate {
	c.Status, c.Connected = status, connected
	return c
}

// busy returns c with assigned streams.
func busy(c Candidate, streams int) Candidate {
	c.AssignedStreams = streams
	return c
}

// conc is a closed-loop level.
func conc(c int) workload.Level {
	return workload.Level{Mode: workload.ModeConcurrency, Concurrency: c}
}

// sweep is a concurrency sweep, levels indexed and named as Spec.Levels does.
func sweep(cs ...int) []workload.Level {
	out := make([]workload.Level, len(cs))
	for i, c := range cs {
		out[i] = conc(c)
		out[i].Index, out[i].Name = i, fmt.Sprintf("concurrency_%d", c)
	}
	return out
}

// layout writes a plan as one "agent:concurrency …" line per level.
func layout(p Plan) []string {
	var out []string
	for _, l := range p.Levels {
		var parts []string
		for _, s := range l.Shards {
			parts = append(parts, fmt.Sprintf("%s:%d", s.AgentID, s.Concurrency))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

var fourAgents = []Candidate{live("d"), live("b"), live("a"), live("c")}

func TestSchedulePlacement(t *testing.T) {
	vpc := &pb.VpcConfig{Subnets: []string{"s-1", "s-2"}, SecurityGroupIds: []string{"sg-1"}}
	tests := []struct {
		name string
		in   Input
		want []string
	}{
		{"count takes first by ID", Input{Levels: sweep(8), Placement: workload.Placement{Agents: 2}, Candidates: fourAgents},
			[]string{"a:4 b:4"}},
		{"all", Input{Levels: sweep(8), Placement: workload.Placement{AllAgents: true}, Candidates: fourAgents},
			[]string{"a:2 b:2 c:2 d:2"}},
		{"all beats count", Input{Levels: sweep(4), Placement: workload.Placement{AllAgents: true, Agents: 1}, Candidates: fourAgents},
			[]string{"a:1 b:1 c:1 d:1"}},
		{"unset without budget uses one agent", Input{Levels: sweep(1, 64), Candidates: fourAgents},
			[]string{"a:1", "a:64"}},
		{"unset sizes pool for the busiest level", Input{Levels: sweep(4, 20), Placement: workload.Placement{StreamsPerAgent: 8}, Candidates: fourAgents},
			[]string{"a:2 b:1 c:1", "a:7 b:7 c:6"}},
		{"exact concurrency split", Input{Levels: sweep(10), Placement: workload.Placement{Agents: 4}, Candidates: fourAgents},
			[]string{"a:3 b:3 c:2 d:2"}},
		{"concurrency below agents uses fewer agents", Input{Levels: sweep(1, 3, 5), Placement: workload.Placement{AllAgents: true}, Candidates: fourAgents},
			[]string{"a:1", "a:1 b:1 c:1", "a:2 b:1 c:1 d:1"}},
		{"selector", Input{Levels: sweep(4), Placement: workload.Placement{AllAgents: true, Selector: map[string]string{"gpu": "h100"}},
			Candidates: []Candidate{live("a", "gpu", "a100"), live("b", "gpu", "h100", "rack", "r1"), live("c"), live("d", "gpu", "h100")}},
			[]string{"b:2 d:2"}},
		{"not connected and failed excluded", Input{Levels: sweep(6), Placement: workload.Placement{AllAgents: true},
			Candidates: []Candidate{with(live("a"), StatusAlive, false), live("b"), with(live("c"), "failed", true),
				with(live("d"), "suspect", true), with(live("e"), "left", false), live("f")}},
			[]string{"b:3 f:3"}},
		{"fewer assigned streams first", Input{Levels: sweep(3, 1), Placement: workload.Placement{Agents: 3},
			Candidates: []Candidate{busy(live("a"), 5), live("b"), busy(live("c"), 1), live("d")}},
			[]string{"b:1 d:1 c:1", "b:1"}},
		{"vpc subnet and security group", Input{Levels: sweep(3), Placement: workload.Placement{AllAgents: true}, VPC: vpc,
			Candidates: []Candidate{live("a", "subnet", "s-1", "security-group", "sg-1"), live("b", "subnet", "s-1", "security-group", "sg-2"),
				live("c", "subnet", "s-3", "security-group", "sg-1"), live("d", "subnet", "s-2", "security-group", "sg-1"), live("e", "subnet", "s-2")}},
			[]string{"a:2 d:1"}},
		{"vpc subnets only", Input{Levels: sweep(3), Placement: workload.Placement{AllAgents: true}, VPC: &pb.VpcConfig{Subnets: []string{"s-2"}},
			Candidates: []Candidate{live("a", "subnet", "s-1"), live("d", "subnet", "s-2", "security-group", "sg-9"), live("e")}},
			[]string{"d:3"}},
		{"empty vpc restricts nothing", Input{Levels: sweep(2), Placement: workload.Placement{AllAgents: true}, VPC: &pb.VpcConfig{},
			Candidates: []Candidate{live("a"), live("b")}},
			[]string{"a:1 b:1"}},
		{"budget exactly met", Input{Levels: sweep(16), Placement: workload.Placement{Agents: 2, StreamsPerAgent: 8}, Candidates: fourAgents},
			[]string{"a:8 b:8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Schedule(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := layout(plan); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("layout %q, want %q", got, tt.want)
			}
			for i, l := range plan.Levels {
				if l.Index != tt.in.Levels[i].Index || l.Name != tt.in.Levels[i].Name {
					t.Errorf("level %d is %s #%d", i, l.Name, l.Index)
				}
				for j, s := range l.Shards {
					if s.Index != j || s.Of != len(l.Shards) || s.Slice != (Slice{Start: j, Stride: len(l.Shards)}) {
						t.Errorf("level %d shard %d: %+v", i, j, s)
					}
				}
			}
		})
	}
}

func TestScheduleLevelShapes(t *testing.T) {
	tests := []struct {
		name  string
		level workload.Level
		want  string
	}{
		{"rate with no cap uses every agent", workload.Level{Mode: workload.ModeRequestRate, RequestRate: 10}, "a:0 b:0 c:0 d:0"},
		{"rate cap bounds the agents", workload.Level{Mode: workload.ModeRequestRate, RequestRate: 10, Concurrency: 2}, "a:1 b:1"},
		{"request count bounds the agents", workload.Level{Mode: workload.ModeConcurrency, Concurrency: 8, RequestCount: 3}, "a:3 b:3 c:2"},
		{"trace uses every agent", workload.Level{Mode: workload.ModeTrace}, "a:0 b:0 c:0 d:0"},
		{"phase spreads its peak users", workload.Level{Mode: workload.ModePhase, Concurrency: 1, SpawnRate: 2, DurationSeconds: 60}, "a:1 b:0 c:0"},
		{"search spreads its upper bound", workload.Level{Mode: workload.ModeSearch, Concurrency: 1, ConcurrencyMax: 2}, "a:1 b:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Schedule(Input{Levels: []workload.Level{tt.level}, Placement: workload.Placement{AllAgents: true}, Candidates: fourAgents})
			if err != nil {
				t.Fatal(err)
			}
			if got := layout(plan)[0]; got != tt.want {
				t.Errorf("layout %q, want %q", got, tt.want)
			}
			var rate, spawn float64
			var count int
			for _, s := range plan.Levels[0].Shards {
				rate, spawn, count = rate+s.Rate, spawn+s.SpawnRate, count+s.RequestCount
			}
			if rate != tt.level.RequestRate || spawn != tt.level.SpawnRate || count != tt.level.RequestCount {
				t.Errorf("sums rate %v spawn %v count %d, want %v %v %d", rate, spawn, count, tt.level.RequestRate, tt.level.SpawnRate, tt.level.RequestCount)
			}
		})
	}
}

func TestScheduleRequestCountSplit(t *testing.T) {
	level := conc(4)
	level.RequestCount = 10
	plan, err := Schedule(Input{Levels: []workload.Level{level}, Placement: workload.Placement{Agents: 3}, Candidates: fourAgents})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, s := range plan.Levels[0].Shards {
		got = append(got, s.RequestCount)
	}
	if want := []int{4, 3, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("request counts %v, want %v", got, want)
	}
}

func TestScheduleDeterministic(t *testing.T) {
	in := Input{Seed: 42, Levels: sweep(1, 7, 30), Placement: workload.Placement{AllAgents: true, StreamsPerAgent: 10},
		Candidates: []Candidate{busy(live("x"), 2), live("m"), with(live("q"), "failed", false), live("b"), busy(live("a"), 2)}}
	first, err := Schedule(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		shuffled := in
		shuffled.Candidates = append([]Candidate(nil), in.Candidates[i%5:]...)
		shuffled.Candidates = append(shuffled.Candidates, in.Candidates[:i%5]...)
		again, err := Schedule(shuffled)
		if err != nil || !reflect.DeepEqual(first, again) {
			t.Fatalf("rotation %d gave %+v, %v; want %+v", i%5, again, err, first)
		}
	}
	seeds := map[uint64]bool{}
	for _, s := range first.Levels[2].Shards {
		seeds[s.Seed] = true
		if s.Seed != ShardSeed(42, s.Index) {
			t.Errorf("shard %d seed %d", s.Index, s.Seed)
		}
	}
	if len(seeds) != 4 {
		t.Errorf("%d distinct seeds among 4 shards", len(seeds))
	}
}

func TestScheduleNoLevels(t *testing.T) {
	plan, err := Schedule(Input{})
	if err != nil || len(plan.Levels) != 0 {
		t.Errorf("Schedule(empty) = %+v, %v", plan, err)
	}
}

func TestScheduleInvalidInput(t *testing.T) {
	tests := []struct {
		name string
		in   Input
	}{
		{"negative agents", Input{Levels: sweep(1), Placement: workload.Placement{Agents: -1}, Candidates: fourAgents}},
		{"negative concurrency", Input{Levels: sweep(-1), Candidates: fourAgents}},
		{"NaN rate", Input{Levels: []workload.Level{{Mode: workload.ModeRequestRate, RequestRate: math.NaN()}}, Candidates: fourAgents}},
		{"repeated agent", Input{Levels: sweep(1), Candidates: []Candidate{live("a"), live("a")}}},
		{"empty agent ID", Input{Levels: sweep(1), Candidates: []Candidate{live("")}}},
		{"negative assigned", Input{Levels: sweep(1), Candidates: []Candidate{busy(live("a"), -1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Schedule(tt.in)
			if !errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrPlacement) {
				t.Errorf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
}
