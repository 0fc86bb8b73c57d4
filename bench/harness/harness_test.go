package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const wrkOut = `Running 1s test @ http://127.0.0.1:18555/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   296.39us  777.64us  10.83ms   92.36%
    Req/Sec    33.96k     7.52k   44.91k    70.00%
  Latency Distribution
     50%   69.00us
     75%   91.00us
     90%  700.00us
     99%    3.69ms
  33987 requests in 1.01s, 6.48MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  33700.45
Transfer/sec:      6.43MB
`

func TestParseWrk(t *testing.T) {
	m := parseWrk(wrkOut)
	if m.Err != "" || m.Rate != 33700.45 || m.Requests != 33987 || m.Errors != 12 {
		t.Fatalf("rate %v requests %v errors %v err %q", m.Rate, m.Requests, m.Errors, m.Err)
	}
	if math.Abs(m.P50-0.069) > 1e-9 || math.Abs(m.P99-3.69) > 1e-9 {
		t.Fatalf("p50 %v ms p99 %v ms", m.P50, m.P99)
	}
	if parseWrk("unable to connect to 127.0.0.1:1 Connection refused").Err == "" {
		t.Fatal("wrk output without a rate must be an error")
	}
}

func TestWriteGeneratedKeepsTheHandWrittenPart(t *testing.T) {
	f := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := os.WriteFile(f, []byte("# Earlier\nhand-written\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, gen := range []string{"first run\n", "second run\n"} {
		if err := writeGenerated(f, gen); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(f)
	s := string(b)
	if strings.Contains(s, "first run") || !strings.Contains(s, "second run") {
		t.Fatalf("the generated part was not replaced:\n%s", s)
	}
	if strings.Count(s, beginMarker) != 1 || strings.Count(s, endMarker) != 1 || !strings.HasSuffix(s, "# Earlier\nhand-written\n") {
		t.Fatalf("markers or the hand-written part are wrong:\n%s", s)
	}
	if !strings.HasPrefix(s, beginMarker) {
		t.Fatalf("the generated part is not first:\n%s", s)
	}
}

func TestLastJSON(t *testing.T) {
	var v struct{ Rate float64 }
	if err := lastJSON("progress\n{\"rate\": 1}\nmore\n{\"rate\": 2.5}\n\n", &v); err != nil || v.Rate != 2.5 {
		t.Fatalf("%v %v", v, err)
	}
	if err := lastJSON("no json here\n", &v); err == nil {
		t.Fatal("want an error without a JSON line")
	}
}

func TestNiceTicksCoverTheRange(t *testing.T) {
	for _, c := range [][2]float64{{0, 1}, {0, 47}, {0, 51234}, {3, 7}} {
		ts := niceTicks(c[0], c[1], 5)
		if len(ts) < 2 || ts[0] > c[0] || ts[len(ts)-1] < c[1] || len(ts) > 12 {
			t.Fatalf("%v: ticks %v", c, ts)
		}
	}
}

func TestChartRendersEverySeries(t *testing.T) {
	c := chart{Title: "t <&>", XLabel: "x", YLabel: "y", LogX: true, Series: []series{
		{Name: "a", Color: "#000", X: []float64{1000, 2000, 5000}, Y: []float64{1000, 2000, 4900}},
		{Name: "b", Color: "#f00", X: []float64{1000}, Y: []float64{3}},
	}}
	svg := c.render()
	if strings.Count(svg, "<polyline") != 1 || strings.Count(svg, "<circle") != 4 || !strings.Contains(svg, "t &lt;&amp;&gt;") {
		t.Fatalf("unexpected SVG:\n%s", svg)
	}
	if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Fatalf("SVG has non-finite coordinates:\n%s", svg)
	}
}

func TestGoalsJudgeTheMedianRatio(t *testing.T) {
	r := &report{MaxRate: []maxRateResult{{Target: "go", Reps: [][]measurement{
		{{Rate: 30}, {Rate: 10}, {Rate: 40}}, {{Rate: 12}, {Rate: 10}, {Rate: 40}}, {{Rate: 20}, {Rate: 10}, {Rate: 40}},
	}}}}
	g := r.goals()
	if len(g) != 2 || !strings.HasPrefix(g[0].Measured, "2.00×") || g[0].Verdict != "**met**" || g[1].Verdict != "**not met**" {
		t.Fatalf("%+v", g)
	}
	r.Quick = true
	if v := r.goals()[0].Verdict; !strings.Contains(v, "not judged") {
		t.Fatalf("quick profile verdict %q", v)
	}
}

func TestLogYChartStaysInsideThePlot(t *testing.T) {
	c := chart{Title: "t", LogX: true, LogY: true, Series: []series{
		{Name: "a", Color: "#000", X: []float64{1000, 2000, 40000}, Y: []float64{0.08, 1.8, 3985}},
		{Name: "zero is dropped", Color: "#f00", X: []float64{1000, 2000}, Y: []float64{0, 5}},
	}}
	svg := c.render()
	if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") || strings.Count(svg, "<circle") != 4 {
		t.Fatalf("unexpected SVG:\n%s", svg)
	}
	ticks, e0, e1 := logTicks(0.08, 3985)
	if e0 != -2 || e1 != 4 || ticks[0] != 0.01 || ticks[len(ticks)-1] != 10000 {
		t.Fatalf("ticks %v over 10^%v..10^%v", ticks, e0, e1)
	}
}
