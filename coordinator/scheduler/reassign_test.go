package scheduler

import (
	"errors"
	"reflect"
	"testing"

	"github.com/perfleet/perfleet/pkg/workload"
)

// threeShards is a request-rate level of 100/3 req/s, cap 10 and 100
// requests, split over a, b and c.
func threeShards(t *testing.T) LevelPlan {
	t.Helper()
	level := workload.Level{Index: 1, Name: "concurrency_10", Mode: workload.ModeRequestRate,
		Concurrency: 10, RequestRate: 100.0 / 3, RequestCount: 100}
	plan, err := Schedule(Input{Seed: 7, Levels: []workload.Level{level}, Placement: workload.Placement{Agents: 3},
		Candidates: []Candidate{live("a"), live("b"), live("c")}})
	if err != nil {
		t.Fatal(err)
	}
	return plan.Levels[0]
}

func TestReassign(t *testing.T) {
	tests := []struct {
		name   string
		lost   string
		spares []Candidate
		want   string
	}{
		{"first spare by ID", "b", []Candidate{live("e"), live("d")}, "d"},
		{"fewest assigned streams first", "b", []Candidate{busy(live("d"), 2), busy(live("e"), 1)}, "e"},
		{"agents holding a shard skipped", "a", []Candidate{live("b"), live("c"), live("z")}, "z"},
		{"lost agent never its own spare", "c", []Candidate{live("c"), live("x")}, "x"},
		{"dead spares skipped", "a", []Candidate{with(live("d"), StatusAlive, false), with(live("e"), "failed", true), live("f")}, "f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			level := threeShards(t)
			before := reflect.ValueOf(level.Shards).Pointer()
			orig := append([]Shard(nil), level.Shards...)
			got, err := Reassign(level, tt.lost, tt.spares)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(level.Shards, orig) || reflect.ValueOf(got.Shards).Pointer() == before {
				t.Error("Reassign changed its input")
			}
			if got.Name != level.Name || got.Index != level.Index || len(got.Shards) != len(orig) {
				t.Fatalf("level %+v", got)
			}
			var rates []float64
			var conc, count int
			for i, s := range got.Shards {
				want := orig[i]
				if want.AgentID == tt.lost {
					want.AgentID = tt.want
				}
				if s != want {
					t.Errorf("shard %d = %+v, want %+v", i, s, want)
				}
				rates, conc, count = append(rates, s.Rate), conc+s.Concurrency, count+s.RequestCount
			}
			if sumInOrder(rates) != 100.0/3 || conc != 10 || count != 100 {
				t.Errorf("totals %v %d %d after reassign", sumInOrder(rates), conc, count)
			}
		})
	}
}

func TestReassignErrors(t *testing.T) {
	tests := []struct {
		name   string
		lost   string
		spares []Candidate
		reason string
	}{
		{"no spares", "b", nil,
			"agent b was lost during level concurrency_10 and no spare agent can take its shard (index 1 of 3)"},
		{"every spare busy or dead", "b", []Candidate{live("a"), live("c"), with(live("d"), StatusAlive, false), with(live("e"), "suspect", true)},
			"agent b was lost during level concurrency_10 and no spare agent can take its shard (index 1 of 3); " +
				"a runs shard 0; c runs shard 2; d is alive but not connected; e is suspect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Reassign(threeShards(t), tt.lost, tt.spares)
			var pe *PlacementError
			if !errors.Is(err, ErrPlacement) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a PlacementError", err)
			}
			if err.Error() != tt.reason || pe.Agent != tt.lost || pe.Level != "concurrency_10" {
				t.Errorf("error %+v\nwant reason %s", pe, tt.reason)
			}
		})
	}
	if _, err := Reassign(threeShards(t), "nobody", []Candidate{live("d")}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("unknown agent: err = %v, want ErrInvalidInput", err)
	}
}
