package report

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// isNiceStep reports whether step is 1, 2 or 5 times a power of ten.
func isNiceStep(step float64) bool {
	exp := math.Floor(math.Log10(step))
	f := step / math.Pow(10, exp)
	for _, n := range []float64{1, 2, 5, 10} {
		if math.Abs(f-n) < 1e-9 {
			return true
		}
	}
	return false
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct {
		lo, hi           float64
		n                int
		wantMin, wantMax float64
		wantStep         float64
	}{
		{0, 97, 6, 0, 100, 20},
		{0, 1, 6, 0, 1, 0.2},
		{0, 0.013, 6, 0, 0.014, 0.002},
		{0, 12345, 6, 0, 14000, 2000},
		{0, 64, 7, 0, 70, 10},
		{-3, 7, 6, -4, 8, 2},
		{5, 5, 6, 2, 8, 1},   // degenerate: widened by half its value
		{0, 0, 6, 0, 1, 0.2}, // all zero
		{12, 3, 6, 2, 12, 2}, // swapped bounds
	} {
		mn, mx, step := niceScale(tc.lo, tc.hi, tc.n)
		if math.Abs(mn-tc.wantMin) > 1e-9 || math.Abs(mx-tc.wantMax) > 1e-9 || math.Abs(step-tc.wantStep) > 1e-12 {
			t.Errorf("niceScale(%v, %v, %d) = %v, %v, %v; want %v, %v, %v",
				tc.lo, tc.hi, tc.n, mn, mx, step, tc.wantMin, tc.wantMax, tc.wantStep)
		}
	}
	// Properties over many ranges.
	for _, lo := range []float64{0, 0.001, 1, 7.3, 99, 1e6, -50} {
		for _, span := range []float64{1e-4, 0.37, 1, 3, 10, 42, 999, 123456, 9.9e9} {
			hi := lo + span
			mn, mx, step := niceScale(lo, hi, 6)
			if !isNiceStep(step) {
				t.Errorf("niceScale(%v, %v): step %v is not 1-2-5", lo, hi, step)
			}
			if mn > lo+step*1e-6 || mx < hi-step*1e-6 {
				t.Errorf("niceScale(%v, %v) = [%v, %v] does not cover the data", lo, hi, mn, mx)
			}
			ts := ticks(mn, mx, step)
			if len(ts) < 2 || len(ts) > 13 {
				t.Errorf("niceScale(%v, %v): %d ticks", lo, hi, len(ts))
			}
			dec := tickDecimals(step)
			for i, v := range ts {
				if k := (v - mn) / step; math.Abs(k-math.Round(k)) > 1e-3 {
					t.Errorf("tick %v is not a multiple of %v", v, step)
				}
				if i > 0 {
					if a, b := formatFloat(ts[i-1], dec), formatFloat(v, dec); a == b {
						t.Errorf("ticks %v and %v both print as %q", ts[i-1], v, a)
					}
				}
			}
		}
	}
	if _, _, step := niceScale(math.NaN(), math.Inf(1), 6); !isNiceStep(step) {
		t.Errorf("non-finite input gives step %v", step)
	}
}

func TestTickLabels(t *testing.T) {
	mn, mx, step := niceScale(0, 0.9, 6)
	var got []string
	for _, v := range ticks(mn, mx, step) {
		got = append(got, formatFloat(v, tickDecimals(step)))
	}
	want := []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}
	if len(got) != len(want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("labels %v, want %v", got, want)
		}
	}
}

func parseCoord(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("coordinate %q: %v", s, err)
	}
	return v
}

func TestBuildChart(t *testing.T) {
	nan := math.NaN()
	t.Run("empty", func(t *testing.T) {
		v := buildChart(chartSpec{Title: "x", Empty: "nothing here",
			Series: []series{{Points: []xy{{X: nan, Y: 1}, {X: 1, Y: math.Inf(-1)}}}}})
		if v.Empty != "nothing here" {
			t.Fatalf("Empty = %q", v.Empty)
		}
		if v := buildChart(chartSpec{}); v.Empty == "" {
			t.Fatal("no series: want the default empty message")
		}
	})
	t.Run("single point", func(t *testing.T) {
		v := buildChart(chartSpec{Series: []series{{Color: "#000", Marker: markDot, Line: true,
			Points: []xy{{X: 8, Y: 1234.5}}}}})
		if v.Empty != "" || len(v.Marks) != 1 || len(v.Lines) != 0 {
			t.Fatalf("Empty %q, %d marks, %d lines", v.Empty, len(v.Marks), len(v.Lines))
		}
		if len(v.XTicks) < 2 || len(v.YTicks) < 2 {
			t.Fatalf("ticks %v %v", v.XTicks, v.YTicks)
		}
	})
	t.Run("line breaks at invalid points, projection inside plot", func(t *testing.T) {
		v := buildChart(chartSpec{Series: []series{{Color: "#000", Marker: markDot, Line: true, SortX: true,
			Points: []xy{{X: 4, Y: 40}, {X: 1, Y: 10}, {X: 2, Y: 20}, {X: nan, Y: 5}, {X: 8, Y: 80}, {X: 16, Y: 100}}}}})
		if len(v.Marks) != 5 {
			t.Fatalf("%d marks, want 5", len(v.Marks))
		}
		// Sorted by X: the invalid point is dropped, one line remains.
		if len(v.Lines) != 1 {
			t.Fatalf("%d lines, want 1", len(v.Lines))
		}
		prevX := -1.0
		for _, m := range v.Marks {
			x, y := parseCoord(t, m.X), parseCoord(t, m.Y)
			if x < marginLeft || x > defaultW-marginRight || y < marginTop || y > defaultH-marginBottom {
				t.Errorf("marker (%v, %v) outside the plot", x, y)
			}
			if x <= prevX {
				t.Errorf("markers not in X order")
			}
			prevX = x
		}
		v = buildChart(chartSpec{Series: []series{{Color: "#000", Line: true,
			Points: []xy{{X: 1, Y: 1}, {X: 2, Y: 2}, {X: 3, Y: nan}, {X: 4, Y: 4}, {X: 5, Y: 5}}}}})
		if len(v.Lines) != 2 {
			t.Fatalf("unsorted series with a gap: %d lines, want 2", len(v.Lines))
		}
	})
	t.Run("integer x axis", func(t *testing.T) {
		v := buildChart(chartSpec{XInteger: true, Series: []series{{Color: "#000", Marker: markDot,
			Points: []xy{{X: 1, Y: 5}, {X: 2, Y: 7}}}}})
		var got []string
		for _, tk := range v.XTicks {
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != "0 1 2" {
			t.Errorf("x ticks %q, want 0 1 2", got)
		}
	})
	t.Run("many series get distinct colours", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 40; i++ {
			c := seriesColor(i)
			if len(c) != 7 || c[0] != '#' {
				t.Fatalf("colour %d = %q", i, c)
			}
			if seen[c] {
				t.Fatalf("colour %d = %q repeats", i, c)
			}
			seen[c] = true
		}
	})
}
