package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var svgRE = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)

// svgNode is enough of an SVG element tree to check geometry.
type svgNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []svgNode  `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) walk(f func(svgNode)) {
	f(n)
	for _, c := range n.Children {
		c.walk(f)
	}
}

// checkDocument validates a rendered report and returns its visible text
// (whitespace-collapsed) and its SVG elements.
func checkDocument(t *testing.T, doc string) (text string, svgs []svgNode) {
	t.Helper()
	if !strings.HasPrefix(doc, "<!DOCTYPE html>") {
		t.Errorf("document does not start with a doctype: %.40q", doc)
	}
	for _, bad := range []string{"NaN", "Inf", "ZgotmplZ", "<script", "<link", "src=", "href=", "@import", "url("} {
		if strings.Contains(doc, bad) {
			i := strings.Index(doc, bad)
			t.Errorf("document contains %q: …%s…", bad, doc[max(0, i-80):min(len(doc), i+80)])
		}
	}

	// The whole document, parsed loosely as HTML.
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var b strings.Builder
	skip := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("loose HTML parse: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "style" || tok.Name.Local == "title" {
				skip++
			}
		case xml.EndElement:
			if tok.Name.Local == "style" || tok.Name.Local == "title" {
				skip--
			}
		case xml.CharData:
			if skip == 0 {
				b.Write(tok)
				b.WriteByte(' ')
			}
		}
	}
	text = strings.Join(strings.Fields(b.String()), " ")

	// Every SVG, parsed strictly as XML.
	for _, s := range svgRE.FindAllString(doc, -1) {
		var n svgNode
		dec := xml.NewDecoder(strings.NewReader(s))
		dec.Strict = true
		if err := dec.Decode(&n); err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, s)
		}
		if n.XMLName.Local != "svg" || n.XMLName.Space != "http://www.w3.org/2000/svg" {
			t.Errorf("root element %v", n.XMLName)
		}
		svgs = append(svgs, n)
	}
	if got, want := len(svgs), strings.Count(doc, "<svg"); got != want {
		t.Errorf("parsed %d SVGs, document has %d", got, want)
	}
	return text, svgs
}

// plots returns the chart SVGs (not the legend swatches) and checks that
// every marker, line and label lies inside the viewBox.
func plots(t *testing.T, svgs []svgNode) []svgNode {
	t.Helper()
	var out []svgNode
	for _, s := range svgs {
		if s.attr("class") != "plot" {
			continue
		}
		out = append(out, s)
		vb := strings.Fields(s.attr("viewBox"))
		if len(vb) != 4 {
			t.Fatalf("viewBox %q", s.attr("viewBox"))
		}
		w, h := parseCoord(t, vb[2]), parseCoord(t, vb[3])
		in := func(what string, x, y float64) {
			if !(x >= 0 && x <= w && y >= 0 && y <= h) {
				t.Errorf("%s at (%v, %v) is outside the %vx%v viewBox", what, x, y, w, h)
			}
		}
		s.walk(func(n svgNode) {
			switch n.XMLName.Local {
			case "circle":
				in("circle", parseCoord(t, n.attr("cx")), parseCoord(t, n.attr("cy")))
			case "polyline":
				for _, p := range strings.Fields(n.attr("points")) {
					x, y, ok := strings.Cut(p, ",")
					if !ok {
						t.Fatalf("polyline point %q", p)
					}
					in("polyline point", parseCoord(t, x), parseCoord(t, y))
				}
			case "text":
				if n.attr("x") != "" {
					in("text "+strconv.Quote(n.Text), parseCoord(t, n.attr("x")), parseCoord(t, n.attr("y")))
				}
			}
		})
	}
	return out
}

func count(n svgNode, pred func(svgNode) bool) int {
	c := 0
	n.walk(func(m svgNode) {
		if pred(m) {
			c++
		}
	})
	return c
}

func texts(n svgNode) []string {
	var out []string
	n.walk(func(m svgNode) {
		if m.XMLName.Local == "text" {
			out = append(out, m.Text)
		}
	})
	return out
}

func renderBenchmark(t *testing.T, b Benchmark) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteBenchmark(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func renderRecommendation(t *testing.T, r Recommendation) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteRecommendation(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func wantText(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("report text lacks %q", w)
		}
	}
}

func wantOrder(t *testing.T, text string, parts ...string) {
	t.Helper()
	at := 0
	for _, p := range parts {
		i := strings.Index(text[at:], p)
		if i < 0 {
			t.Errorf("%q missing or out of order (expected order %q)", p, parts)
			return
		}
		at += i + len(p)
	}
}

func TestBenchmarkReport(t *testing.T) {
	b := sampleBenchmark()
	doc := renderBenchmark(t, b)
	text, svgs := checkDocument(t, doc)
	wantText(t, text,
		"llama-3-8b-sweep", b.JobARN, "Completed", "endpoint/llama-3-8b (ml.g5.12xlarge)", "chat-1k-in-256-out",
		"2025-03-14 09:26:53 UTC", "2025-03-14 10:28:56 UTC", "1h 02m 03s",
		"TTFT p99 ≤ 2,000 ms",
		"concurrency_8", "s3://perfleet-results/llama-3-8b-sweep/concurrency_8/",
		"Goodput (req/s)", "Events (3)", "10:28:56 job completed",
		"25,400", // total requests: 200 × (1+2+4+8+16+32+64)
	)
	// Level concurrency_8: 1234.5*8/(1+8/24) = 7407.0 tok/s; TTFT p50 78.0 ms.
	wantOrder(t, text, "concurrency_8", "7,407.0", "78.0", "2,770.0" /* p50 latency */)
	wantOrder(t, text, "Output throughput vs load", "Latency vs load", "Throughput vs latency")
	if !strings.Contains(doc, `<span class="badge ok">Completed</span>`) {
		t.Error("no status badge")
	}
	if !strings.Contains(doc, `<td class="num err">1</td>`) {
		t.Error("errors are not highlighted")
	}

	ps := plots(t, svgs)
	if len(ps) != 3 {
		t.Fatalf("%d charts, want 3", len(ps))
	}
	for i, p := range ps {
		if n := count(p, func(n svgNode) bool {
			return n.XMLName.Local == "circle" || n.XMLName.Local == "rect" && n.attr("fill") != "#ffffff"
		}); n < len(b.Levels) {
			t.Errorf("chart %d: %d markers, want at least %d", i, n, len(b.Levels))
		}
	}
	tx := strings.Join(texts(ps[0]), "|")
	for _, w := range []string{"Concurrency (concurrent requests)", "Output throughput (tokens/s)", "|0|", "|10|", "|70|"} {
		if !strings.Contains(tx, w) {
			t.Errorf("throughput chart texts %q lack %q", tx, w)
		}
	}
	if tx := strings.Join(texts(ps[1]), "|"); !strings.Contains(tx, "Latency (ms)") {
		t.Errorf("latency chart texts %q", tx)
	}
	tx = strings.Join(texts(ps[2]), "|")
	for _, w := range []string{"Request latency p50 (ms)", "concurrency_1", "concurrency_64"} {
		if !strings.Contains(tx, w) {
			t.Errorf("curve chart texts %q lack %q", tx, w)
		}
	}
	if !strings.Contains(text, "TTFT p50") || !strings.Contains(text, "Request latency p99") {
		t.Error("latency chart legend missing")
	}
}

func TestBenchmarkRequestRate(t *testing.T) {
	b := Benchmark{JobName: "rate", Status: "InProgress"}
	for _, r := range []float64{2.5, 5, 10, 20} {
		b.Levels = append(b.Levels, Level{Name: "request_rate_" + strconv.FormatFloat(r, 'f', -1, 64), RequestRate: r,
			Requests: 100, OutputTokenThroughput: r * 100, RequestLatency: Stat{P50: 1000 + r}})
	}
	doc := renderBenchmark(t, b)
	text, svgs := checkDocument(t, doc)
	wantText(t, text, "Rate", "2.5 req/s", "20 req/s", "InProgress")
	if strings.Contains(text, "Goodput") {
		t.Error("goodput column shown without SLOs or goodput")
	}
	ps := plots(t, svgs)
	if len(ps) != 3 || !strings.Contains(strings.Join(texts(ps[0]), "|"), "Request rate (req/s)") {
		t.Fatalf("rate x axis missing")
	}
	if !strings.Contains(doc, `<span class="badge run">InProgress</span>`) {
		t.Error("no running badge")
	}
}

func TestBenchmarkEmpty(t *testing.T) {
	doc := renderBenchmark(t, Benchmark{})
	text, svgs := checkDocument(t, doc)
	wantText(t, text, "no measured load levels yet")
	if len(svgs) != 0 {
		t.Errorf("%d SVGs in an empty report", len(svgs))
	}
}

func TestBenchmarkEdgeCases(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	t.Run("single level", func(t *testing.T) {
		doc := renderBenchmark(t, Benchmark{JobName: "one", Levels: []Level{{Name: "concurrency_1", Concurrency: 1,
			Requests: 10, OutputTokenThroughput: 42, RequestLatency: Stat{P50: 900}, TTFT: Stat{P50: 50}}}})
		_, svgs := checkDocument(t, doc)
		if n := len(plots(t, svgs)); n != 3 {
			t.Errorf("%d charts", n)
		}
	})
	t.Run("all zero", func(t *testing.T) {
		doc := renderBenchmark(t, Benchmark{Levels: []Level{{Name: "a", Concurrency: 1}, {Name: "b", Concurrency: 2}}})
		text, svgs := checkDocument(t, doc)
		wantText(t, text, "0.00")
		plots(t, svgs)
	})
	t.Run("NaN and Inf", func(t *testing.T) {
		doc := renderBenchmark(t, Benchmark{Levels: []Level{
			{Name: "bad", Concurrency: 1, OutputTokenThroughput: nan, RequestThroughput: inf,
				TTFT: Stat{P50: nan, P99: inf}, RequestLatency: Stat{P50: -inf, P99: nan}, Goodput: nan},
			{Name: "good", Concurrency: 2, OutputTokenThroughput: 100, TTFT: Stat{P50: 10}, RequestLatency: Stat{P50: 200, P99: 300}},
		}})
		text, svgs := checkDocument(t, doc)
		wantText(t, text, "—")
		ps := plots(t, svgs)
		for i, p := range ps {
			if n := count(p, func(n svgNode) bool { return n.XMLName.Local == "circle" }); n != 1 {
				t.Errorf("chart %d: %d circles, want only the finite point", i, n)
			}
		}
	})
	t.Run("only non-finite values", func(t *testing.T) {
		doc := renderBenchmark(t, Benchmark{Levels: []Level{{Name: "x", OutputTokenThroughput: nan,
			TTFT: Stat{P50: nan}, RequestLatency: Stat{P50: nan, P99: nan}}}})
		text, svgs := checkDocument(t, doc)
		wantText(t, text, "No finite values to plot.")
		if len(plots(t, svgs)) != 0 {
			t.Error("charts drawn without data")
		}
	})
	t.Run("mixed load kinds plot against plan order", func(t *testing.T) {
		doc := renderBenchmark(t, Benchmark{Levels: []Level{
			{Name: "c4", Concurrency: 4, OutputTokenThroughput: 10}, {Name: "r9", RequestRate: 9, OutputTokenThroughput: 20}}})
		text, svgs := checkDocument(t, doc)
		wantText(t, text, "Level (plan order)", "9 req/s")
		plots(t, svgs)
	})
	t.Run("very long names", func(t *testing.T) {
		long := strings.Repeat("very-long-level-name-", 30)
		doc := renderBenchmark(t, Benchmark{JobName: long, Target: long, Levels: []Level{
			{Name: long, Concurrency: 1, OutputTokenThroughput: 1, RequestLatency: Stat{P50: 1}, Location: long}}})
		text, svgs := checkDocument(t, doc)
		wantText(t, text, long)
		for _, p := range plots(t, svgs) {
			for _, s := range texts(p) {
				if len([]rune(s)) > 60 {
					t.Errorf("chart label not truncated: %d runes", len([]rune(s)))
				}
			}
		}
	})
}

func TestRecommendationReport(t *testing.T) {
	r := sampleRecommendation()
	doc := renderRecommendation(t, r)
	text, svgs := checkDocument(t, doc)
	wantText(t, text,
		"llama-3-8b-reco", r.JobARN, "cost", "lowest cost per million output tokens",
		"meta-llama/Meta-Llama-3-8B-Instruct", "chat-1k-in-256-out", "TTFT p50 ≤ 900 ms",
		"Recommended: g5-tp4 on ml.g5.12xlarge, TP4 × 1, at concurrency 32",
		"$0.42", "$7.09", "$1.24", "$37.69", "3,210.5", "9,876.5", "2,345.67"[:5],
		"TP1 × 4", "on-demand catalog 2025-03-01", "user override",
		"0.812", // energy
		"Goodput 12.10 req/s meeting the SLOs",
		"$14.18", // 2 × $7.09 for the target
		"OPTION_TENSOR_PARALLEL_DEGREE", "chunked prefill", "fp8 kv-cache: unsupported on A10G",
		"CUDA out of memory while loading weights", "no capacity for ml.inf2.8xlarge in us-east-1",
		"Skipped", "Failed",
		"Prices from the on-demand catalog dated 2025-03-01.",
	)
	// Ranked table in rank order with its numbers, then the sections in order.
	wantOrder(t, text,
		"Ranked candidates",
		"1 ★ g5-tp4 ml.g5.12xlarge TP4 × 1 concurrency 32 240.2 512.5 13.8 3,210.5 12.54 $7.09 $0.42 on-demand catalog 2025-03-01 arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/llama-3-8b-reco-g5-tp4",
		"2 g6e-tp1x4", "3 p4d-tp8",
		"Pareto chart", "Cost", "Configurations", "Failed and skipped candidates",
		"g5-tp2x2", "inf2-tp2", "Notes")
	if !strings.Contains(doc, `<tr class="win">`) {
		t.Error("winner row not highlighted")
	}

	ps := plots(t, svgs)
	if len(ps) != 1 {
		t.Fatalf("%d charts, want the Pareto chart", len(ps))
	}
	p := ps[0]
	tx := strings.Join(texts(p), "|")
	for _, w := range []string{"TTFT p50 (ms)", "Output throughput per instance (tokens/s)", "★ g5-tp4"} {
		if !strings.Contains(tx, w) {
			t.Errorf("Pareto chart texts %q lack %q", tx, w)
		}
	}
	// Every candidate point is drawn, in its candidate's colour.
	total := 0
	for _, c := range r.Candidates {
		total += len(c.Points)
	}
	dots := count(p, func(n svgNode) bool { return n.XMLName.Local == "circle" && n.attr("fill") != "none" })
	if dots != total {
		t.Errorf("%d points drawn, want %d", dots, total)
	}
	colours := map[string]bool{}
	p.walk(func(n svgNode) {
		if n.XMLName.Local == "circle" && n.attr("fill") != "none" {
			c := n.attr("fill")
			if c == "#ffffff" {
				c = n.attr("stroke") // hollow: misses SLOs
			}
			colours[c] = true
		}
	})
	if len(colours) != 3 {
		t.Errorf("%d point colours, want one per candidate with points (3): %v", len(colours), colours)
	}
	// The Pareto front: one ring per front point, joined by the dark line.
	var all []Point
	for _, c := range []Candidate{r.Candidates[1], r.Candidates[0], r.Candidates[2]} { // rank order
		all = append(all, c.Points...)
	}
	front := ParetoFront(all)
	if len(front) < 2 {
		t.Fatalf("sample front too small: %v", front)
	}
	rings := count(p, func(n svgNode) bool {
		return n.XMLName.Local == "circle" && n.attr("fill") == "none" && n.attr("stroke") == "#111827"
	})
	if rings != len(front) {
		t.Errorf("%d front rings, want %d", rings, len(front))
	}
	var frontLine []string
	p.walk(func(n svgNode) {
		if n.XMLName.Local == "polyline" && n.attr("stroke") == "#111827" {
			frontLine = strings.Fields(n.attr("points"))
		}
	})
	if len(frontLine) != len(front) {
		t.Errorf("front line has %d points, want %d", len(frontLine), len(front))
	}
	for i := 1; i < len(frontLine); i++ {
		x0, y0, _ := strings.Cut(frontLine[i-1], ",")
		x1, y1, _ := strings.Cut(frontLine[i], ",")
		if parseCoord(t, x1) < parseCoord(t, x0) || parseCoord(t, y1) > parseCoord(t, y0) {
			t.Errorf("front line does not go right and up: %v", frontLine)
		}
	}
	// The winner's marker (amber ring) sits on its operating point.
	winner := count(p, func(n svgNode) bool { return n.XMLName.Local == "circle" && n.attr("stroke") == "#d97706" })
	if winner != 1 {
		t.Errorf("%d winner markers, want 1", winner)
	}
	wantText(t, text, "Pareto front", "Winner (rank 1)", "Hollow marker: misses the SLOs", "g6e-tp1x4")
}

func TestRecommendationEmpty(t *testing.T) {
	doc := renderRecommendation(t, Recommendation{JobName: "empty", Status: "InProgress"})
	text, svgs := checkDocument(t, doc)
	wantText(t, text, "no candidates yet")
	if len(svgs) != 0 {
		t.Errorf("%d SVGs in an empty report", len(svgs))
	}
}

func TestRecommendationNothingRanked(t *testing.T) {
	doc := renderRecommendation(t, Recommendation{
		JobName: "none", Status: "Failed", FailureReason: "all candidates failed",
		Candidates: []Candidate{
			{Name: "a", Status: "Failed", Reason: "OOM"},
			{Name: "b", Reason: "TTFT p50 1,200 ms above the 900 ms SLO", Points: []Point{{Label: "concurrency 1", LatencyMs: 1200, TokensPerSecond: 50}}},
		},
	})
	text, svgs := checkDocument(t, doc)
	wantText(t, text, "Failure reason: all candidates failed", "No candidate was ranked", "OOM", "Unranked", "TTFT p50 1,200 ms above")
	if strings.Contains(text, "Recommended:") {
		t.Error("a winner is shown although nothing was ranked")
	}
	ps := plots(t, svgs)
	if len(ps) != 1 {
		t.Fatalf("%d charts", len(ps))
	}
	if n := count(ps[0], func(n svgNode) bool { return n.XMLName.Local == "circle" && n.attr("stroke") == "#d97706" }); n != 0 {
		t.Error("winner marked although nothing was ranked")
	}
}

func TestRecommendationEdgeCases(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(-1)
	many := Recommendation{JobName: "many"}
	for i := 0; i < 25; i++ {
		many.Candidates = append(many.Candidates, Candidate{
			Name: "c" + strconv.Itoa(i), Rank: i + 1,
			Points: []Point{{LatencyMs: float64(10 + i), TokensPerSecond: float64(100 + 7*i%13), Feasible: true}},
		})
	}
	for _, tc := range []struct {
		name string
		r    Recommendation
		want []string
	}{
		{"single point", Recommendation{Candidates: []Candidate{{Name: "only", Rank: 1,
			Points: []Point{{Label: "concurrency 1", LatencyMs: 50, TokensPerSecond: 500, Feasible: true}}}}}, []string{"★ only"}},
		{"zeros", Recommendation{Candidates: []Candidate{{Name: "z", Rank: 1,
			Points: []Point{{LatencyMs: 0, TokensPerSecond: 0, Feasible: true}, {LatencyMs: 0, TokensPerSecond: 0}}}}}, []string{"—"}},
		{"NaN and Inf", Recommendation{Candidates: []Candidate{{Name: "n", Rank: 1, USDPerMillionTokens: nan, OutputTokenThroughput: inf,
			TTFT:   Stat{P50: nan},
			Points: []Point{{LatencyMs: nan, TokensPerSecond: 1}, {LatencyMs: 5, TokensPerSecond: inf}, {LatencyMs: 5, TokensPerSecond: 5, Feasible: true}}}}}, []string{"—"}},
		{"no points at all", Recommendation{Candidates: []Candidate{{Name: "p", Rank: 1}}}, []string{"No candidate has measured points to plot."}},
		{"many candidates", many, []string{"c24"}},
		{"long names and markup", stressRecommendation(), []string{"extra-11", "$0.042"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := renderRecommendation(t, tc.r)
			text, svgs := checkDocument(t, doc)
			plots(t, svgs)
			wantText(t, text, tc.want...)
		})
	}
}

func TestEscaping(t *testing.T) {
	const evil = `<script>alert("x")</script>&'`
	const escaped = `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;`
	b := sampleBenchmark()
	b.JobName, b.JobARN, b.Target, b.WorkloadConfig, b.SLOs, b.FailureReason = evil, evil, evil, evil, evil, evil
	b.Status = evil
	b.Levels[0].Name, b.Levels[0].Location = evil, evil
	b.Events = append(b.Events, evil)

	r := sampleRecommendation()
	r.JobName, r.Goal, r.Model, r.Workload, r.SLOs, r.PointLatency = evil, evil, evil, evil, evil, evil
	r.Status, r.FailureReason = evil, evil
	r.Notes = append(r.Notes, evil)
	for i := range r.Candidates {
		c := &r.Candidates[i]
		c.Name, c.InstanceType, c.Reason, c.Explanation, c.Framework, c.PriceSource = evil, evil, evil, evil, evil, evil
		c.OperatingPoint, c.ChildJobARN, c.Status = evil, evil, evil
		c.Env = map[string]string{evil: evil}
		c.Optimizations, c.NotApplied = []string{evil}, []string{evil}
		for j := range c.Points {
			c.Points[j].Label = evil
		}
	}

	for name, doc := range map[string]string{
		"benchmark":      renderBenchmark(t, b),
		"recommendation": renderRecommendation(t, r),
	} {
		t.Run(name, func(t *testing.T) {
			text, svgs := checkDocument(t, doc) // fails on any "<script"
			if !strings.Contains(doc, escaped) {
				t.Errorf("escaped text %q not found", escaped)
			}
			// Decoded, the visible text shows the original characters.
			wantText(t, text, evil)
			if len(plots(t, svgs)) == 0 {
				t.Error("no charts")
			}
		})
	}
}

func TestWriteErrorPropagates(t *testing.T) {
	w := failingWriter{}
	if err := WriteBenchmark(w, sampleBenchmark()); err == nil {
		t.Error("WriteBenchmark: no error from a failing writer")
	}
	if err := WriteRecommendation(w, sampleRecommendation()); err == nil {
		t.Error("WriteRecommendation: no error from a failing writer")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
