package endpoint_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// listReq is the filter and paging part every List request shares.
type listReq struct {
	nameContains, status, sortBy, sortOrder, token string
	maxResults                                     int32
	after, before                                  *timestamppb.Timestamp
}

// listOp is one List operation with the create call that fills it.
type listOp struct {
	name   string
	kind   string
	create func(v *env, name string)
	call   func(v *env, q listReq) (names []string, next string, err error)
}

var listOps = []listOp{
	{"ListAIWorkloadConfigs", state.KindWorkloadConfig,
		func(v *env, n string) { v.mustCreateConfig(configReq(n)) },
		func(v *env, q listReq) ([]string, string, error) {
			resp, err := v.e.ListAIWorkloadConfigs(v.ctx, &pb.ListAIWorkloadConfigsRequest{NameContains: q.nameContains,
				CreationTimeAfter: q.after, CreationTimeBefore: q.before, SortBy: q.sortBy, SortOrder: q.sortOrder, MaxResults: q.maxResults, NextToken: q.token})
			var names []string
			for _, s := range resp.GetAiWorkloadConfigs() {
				names = append(names, s.GetAiWorkloadConfigName())
			}
			return names, resp.GetNextToken(), mapErr(err)
		}},
	{"ListAIBenchmarkJobs", state.KindBenchmark,
		func(v *env, n string) { v.mustCreateBench(benchReq(n)) },
		func(v *env, q listReq) ([]string, string, error) {
			resp, err := v.e.ListAIBenchmarkJobs(v.ctx, &pb.ListAIBenchmarkJobsRequest{NameContains: q.nameContains, StatusEquals: q.status,
				CreationTimeAfter: q.after, CreationTimeBefore: q.before, SortBy: q.sortBy, SortOrder: q.sortOrder, MaxResults: q.maxResults, NextToken: q.token})
			var names []string
			for _, s := range resp.GetAiBenchmarkJobs() {
				names = append(names, s.GetAiBenchmarkJobName())
			}
			return names, resp.GetNextToken(), mapErr(err)
		}},
	{"ListAIRecommendationJobs", state.KindRecommendation,
		func(v *env, n string) { v.mustCreateRec(recReq(n)) },
		func(v *env, q listReq) ([]string, string, error) {
			resp, err := v.e.ListAIRecommendationJobs(v.ctx, &pb.ListAIRecommendationJobsRequest{NameContains: q.nameContains, StatusEquals: q.status,
				CreationTimeAfter: q.after, CreationTimeBefore: q.before, SortBy: q.sortBy, SortOrder: q.sortOrder, MaxResults: q.maxResults, NextToken: q.token})
			var names []string
			for _, s := range resp.GetAiRecommendationJobs() {
				names = append(names, s.GetAiRecommendationJobName())
			}
			return names, resp.GetNextToken(), mapErr(err)
		}},
}

func (op listOp) isJob() bool { return op.kind != state.KindWorkloadConfig }

func at(sec int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
}

func TestListFilterRules(t *testing.T) {
	cases := []struct {
		name string
		q    listReq
		w    *want // nil: valid
		jobs bool  // only List*Jobs have status_equals
	}{
		{"defaults", listReq{}, nil, false},
		{"max_results 0 means the default", listReq{maxResults: 0}, nil, false},
		{"max_results 1", listReq{maxResults: 1}, nil, false},
		{"max_results 100", listReq{maxResults: 100}, nil, false},
		{"every option", listReq{nameContains: "res-", sortBy: "Name", sortOrder: "Ascending", after: at(1), before: at(2)}, nil, false},
		{"status", listReq{status: "Stopping", sortBy: "Status"}, nil, true},
		{"name_contains pattern", listReq{nameContains: "res_1"}, ptr(invalid("name_contains", "must match [a-zA-Z0-9-]*")), false},
		{"64-char name_contains", listReq{nameContains: strings.Repeat("r", 64)}, ptr(invalid("name_contains", "at most 63 characters")), false},
		{"status_equals", listReq{status: "Running"}, ptr(invalid("status_equals", `got "Running"`)), true},
		{"sort_by", listReq{sortBy: "Size"}, ptr(invalid("sort_by", `got "Size"`)), false},
		{"sort_by lower case", listReq{sortBy: "name"}, ptr(invalid("sort_by", `got "name"`)), false},
		{"sort_order", listReq{sortOrder: "Up"}, ptr(invalid("sort_order", "must be Ascending or Descending")), false},
		{"max_results 101", listReq{maxResults: 101}, ptr(invalid("max_results", "between 1 and 100; got 101")), false},
		{"max_results -1", listReq{maxResults: -1}, ptr(invalid("max_results", "between 1 and 100; got -1")), false},
		{"after equals before", listReq{after: at(5), before: at(5)}, ptr(invalid("creation_time_after", "earlier than creation_time_before")), false},
		{"after later than before", listReq{after: at(6), before: at(5)}, ptr(invalid("creation_time_after", "earlier than creation_time_before")), false},
	}
	for _, op := range listOps {
		t.Run(op.name, func(t *testing.T) {
			v := newEnv(t)
			for _, tc := range cases {
				if tc.jobs && !op.isJob() {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					_, _, err := op.call(v, tc.q)
					if tc.w == nil {
						if err != nil {
							t.Fatalf("List = %v", err)
						}
						return
					}
					checkErr(t, err, *tc.w)
				})
			}
			_, _, err := op.call(v, listReq{sortBy: "Status"})
			if op.isJob() && err != nil {
				t.Fatalf("sort_by Status: %v", err)
			}
			if !op.isJob() {
				checkErr(t, err, invalid("sort_by", `must be one of Name, CreationTime; got "Status"`))
			}
		})
	}
}

// item is what a List sorts and filters on.
type item struct {
	name, status string
	created      time.Time
}

var statuses = []string{state.StatusInProgress, state.StatusCompleted, state.StatusFailed, state.StatusStopped}

// fill creates 25 resources whose names do not follow creation order: four
// with distinct creation times and 21 in groups of three equal times, so
// equal sort keys straddle page boundaries. Jobs get four statuses.
func fill(t *testing.T, v *env, op listOp) []item {
	t.Helper()
	var items []item
	for i := 0; i < 25; i++ {
		sec := 100 + i
		if i >= 4 {
			sec = i % 7
		}
		it := item{name: fmt.Sprintf("res-%02d", (i*11)%25), created: t0.Add(time.Duration(sec) * time.Second), status: state.StatusInProgress}
		v.b.clock.now = it.created
		op.create(v, it.name)
		if op.isJob() && i%4 != 0 {
			it.status = statuses[i%4]
			v.setStatus(op.kind, it.name, it.status, state.StatusInProgress)
		}
		items = append(items, it)
	}
	return items
}

// envFor returns an env holding the workload config that jobs need, created
// before the list's resources.
func envFor(t *testing.T, op listOp) *env {
	v := newEnv(t)
	if op.isJob() {
		v.b.clock.now = t0.Add(-time.Hour)
		v.mustCreateConfig(configReq("wl"))
	}
	return v
}

// expected sorts items by (key, name) in the given direction.
func expected(items []item, sortBy, order string) []string {
	sorted := append([]item(nil), items...)
	cmp := func(a, b item) int {
		switch sortBy {
		case "Name":
			return strings.Compare(a.name, b.name)
		case "Status":
			if c := strings.Compare(a.status, b.status); c != 0 {
				return c
			}
		default:
			if c := a.created.Compare(b.created); c != 0 {
				return c
			}
		}
		return strings.Compare(a.name, b.name)
	}
	for i := 1; i < len(sorted); i++ { // insertion sort keeps this independent of the code under test
		for j := i; j > 0; j-- {
			c := cmp(sorted[j-1], sorted[j])
			if (order == "Descending" && c < 0) || (order != "Descending" && c > 0) {
				sorted[j-1], sorted[j] = sorted[j], sorted[j-1]
			}
		}
	}
	names := make([]string, len(sorted))
	for i, it := range sorted {
		names[i] = it.name
	}
	return names
}

// pageAll follows next_token to the end and returns every name and the size
// of each page.
func pageAll(t *testing.T, v *env, op listOp, q listReq) (names []string, sizes []int) {
	t.Helper()
	for range 50 {
		page, next, err := op.call(v, q)
		if err != nil {
			t.Fatalf("List page %d: %v", len(sizes)+1, err)
		}
		names, sizes = append(names, page...), append(sizes, len(page))
		if next == "" {
			return names, sizes
		}
		q.token = next
	}
	t.Fatal("next_token never ran out")
	return nil, nil
}

func TestListPagesEveryResourceOnceInOrder(t *testing.T) {
	for _, op := range listOps {
		t.Run(op.name, func(t *testing.T) {
			v := envFor(t, op)
			items := fill(t, v, op)
			sorts := []string{"", "Name", "CreationTime"}
			if op.isJob() {
				sorts = append(sorts, "Status")
			}
			for _, sortBy := range sorts {
				for _, order := range []string{"", "Ascending", "Descending"} {
					t.Run(sortBy+"/"+order, func(t *testing.T) {
						got, sizes := pageAll(t, v, op, listReq{sortBy: sortBy, sortOrder: order, maxResults: 10})
						effOrder := order
						if effOrder == "" {
							effOrder = "Descending" // the default, with CreationTime
						}
						if want := expected(items, sortBy, effOrder); strings.Join(got, " ") != strings.Join(want, " ") {
							t.Fatalf("order\n got %v\nwant %v", got, want)
						}
						if fmt.Sprint(sizes) != "[10 10 5]" {
							t.Fatalf("page sizes %v, want [10 10 5]", sizes)
						}
					})
				}
			}
		})
	}
}

func TestListFilters(t *testing.T) {
	for _, op := range listOps {
		t.Run(op.name, func(t *testing.T) {
			v := envFor(t, op)
			items := fill(t, v, op)
			type filter struct {
				name string
				q    listReq
				keep func(item) bool
				jobs bool
			}
			filters := []filter{
				{"name_contains", listReq{nameContains: "res-1"}, func(it item) bool { return strings.Contains(it.name, "res-1") }, false},
				{"name_contains none", listReq{nameContains: "zzz"}, func(item) bool { return false }, false},
				{"creation_time_after", listReq{after: at(3)}, func(it item) bool { return it.created.After(at(3).AsTime()) }, false},
				{"creation_time_before", listReq{before: at(3)}, func(it item) bool { return it.created.Before(at(3).AsTime()) }, false},
				{"time window", listReq{after: at(1), before: at(5)}, func(it item) bool {
					return it.created.After(at(1).AsTime()) && it.created.Before(at(5).AsTime())
				}, false},
				{"status_equals", listReq{status: state.StatusCompleted}, func(it item) bool { return it.status == state.StatusCompleted }, true},
				{"status and name", listReq{status: state.StatusInProgress, nameContains: "0"}, func(it item) bool {
					return it.status == state.StatusInProgress && strings.Contains(it.name, "0")
				}, true},
			}
			for _, f := range filters {
				if f.jobs && !op.isJob() {
					continue
				}
				t.Run(f.name, func(t *testing.T) {
					var kept []item
					for _, it := range items {
						if f.keep(it) {
							kept = append(kept, it)
						}
					}
					f.q.maxResults = 4
					got, _ := pageAll(t, v, op, f.q)
					if want := expected(kept, "", "Descending"); strings.Join(got, " ") != strings.Join(want, " ") {
						t.Fatalf("got %v, want %v", got, want)
					}
				})
			}
		})
	}
}
