package report

import (
	"math"
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

func pts(xy ...float64) []Point {
	var out []Point
	for i := 0; i+1 < len(xy); i += 2 {
		out = append(out, Point{LatencyMs: xy[i], TokensPerSecond: xy[i+1]})
	}
	return out
}

func TestParetoFront(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name   string
		points []Point
		want   []int
	}{
		{"empty", nil, []int{}},
		{"single", pts(10, 100), []int{0}},
		{"classic curve, all optimal", pts(100, 10, 200, 20, 300, 25), []int{0, 1, 2}},
		{"input order irrelevant", pts(300, 25, 100, 10, 200, 20), []int{1, 2, 0}},
		{"dominated middle point", pts(100, 10, 200, 8, 300, 25), []int{0, 2}},
		{"saturation: more latency, same throughput", pts(100, 10, 200, 30, 400, 30), []int{0, 1}},
		{"same latency keeps the higher throughput", pts(100, 10, 100, 15, 200, 20), []int{1, 2}},
		{"exact duplicates reported once, lowest index", pts(100, 10, 100, 10, 50, 5), []int{2, 0}},
		{"one point dominates all", pts(300, 5, 10, 100, 200, 50), []int{1}},
		{"zeros", pts(0, 0, 0, 5, 10, 0), []int{1}},
		{"NaN and Inf ignored", []Point{
			{LatencyMs: nan, TokensPerSecond: 1000},
			{LatencyMs: 100, TokensPerSecond: inf},
			{LatencyMs: 200, TokensPerSecond: 20},
			{LatencyMs: -inf, TokensPerSecond: 5},
			{LatencyMs: 100, TokensPerSecond: 10},
		}, []int{4, 2}},
		{"all invalid", []Point{{LatencyMs: nan, TokensPerSecond: nan}}, []int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParetoFront(tc.points)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParetoFront = %v, want %v", got, tc.want)
			}
		})
	}
}

// bruteFront is the definition: a finite point not dominated by any other
// finite point, and not a duplicate of a lower-indexed point.
func bruteFront(p []Point) []int {
	var out []int
	for i, a := range p {
		if !finite(a.LatencyMs) || !finite(a.TokensPerSecond) {
			continue
		}
		ok := true
		for j, b := range p {
			if i == j || !finite(b.LatencyMs) || !finite(b.TokensPerSecond) {
				continue
			}
			dominates := b.LatencyMs <= a.LatencyMs && b.TokensPerSecond >= a.TokensPerSecond &&
				(b.LatencyMs < a.LatencyMs || b.TokensPerSecond > a.TokensPerSecond)
			dup := b.LatencyMs == a.LatencyMs && b.TokensPerSecond == a.TokensPerSecond && j < i
			if dominates || dup {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(x, y int) bool { return p[out[x]].LatencyMs < p[out[y]].LatencyMs })
	return out
}

func TestParetoFrontMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 2000; iter++ {
		n := rng.Intn(12)
		p := make([]Point, n)
		for i := range p {
			// Small integer grid to get many ties and duplicates.
			p[i] = Point{LatencyMs: float64(rng.Intn(6)), TokensPerSecond: float64(rng.Intn(6))}
			if rng.Intn(15) == 0 {
				p[i].LatencyMs = math.NaN()
			}
		}
		got, want := ParetoFront(p), bruteFront(p)
		if want == nil {
			want = []int{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("points %v: ParetoFront = %v, definition gives %v", p, got, want)
		}
		// Along the front, latency and throughput both strictly increase.
		for k := 1; k < len(got); k++ {
			a, b := p[got[k-1]], p[got[k]]
			if !(a.LatencyMs < b.LatencyMs && a.TokensPerSecond < b.TokensPerSecond) {
				t.Fatalf("front %v not strictly increasing at %d: %v then %v", got, k, a, b)
			}
		}
	}
}
