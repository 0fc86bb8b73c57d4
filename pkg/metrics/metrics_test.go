package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %v, want %v (±%v)", name, got, want, tol)
	}
}

func TestSummarizeMatchesNumpy(t *testing.T) {
	vals := []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	s := SummarizeValues(vals)
	// np.percentile(range(1,11), [1,5,10,25,50,75,90,95,99,99.9]), np.std
	want := []float64{1.09, 1.45, 1.9, 3.25, 5.5, 7.75, 9.1, 9.55, 9.91, 9.991}
	for i, w := range want {
		near(t, "p", s.P[i], w, 1e-9)
	}
	near(t, "avg", s.Avg, 5.5, 1e-12)
	near(t, "std", s.Std, 2.8722813232690143, 1e-12)
	if s.Min != 1 || s.Max != 10 || s.Count != 10 || s.Sum != 55 {
		t.Fatalf("bad stats %+v", s)
	}
	if one := SummarizeValues([]float64{4}); one.P[4] != 4 || one.Std != 0 {
		t.Fatalf("single value: %+v", one)
	}
}

// trace builds a streamed request: scheduled at 0, sent 2 ms late, first
// content chunk at 102 ms, then 10 more chunks 10 ms apart, end at 202 ms.
func trace() *RequestRecord {
	const base = int64(1_700_000_000_000_000_000)
	ms := func(x float64) int64 { return base + int64(x*1e6) }
	r := &RequestRecord{Phase: PhaseProfiling, Streaming: true, ScheduledNs: base, SendNs: ms(2), AckNs: ms(50),
		EndNs: ms(202), InputTokens: 500, OutputTokens: 11, TokenSource: TokensServer}
	for i := 0; i <= 10; i++ {
		r.ChunkNs = append(r.ChunkNs, ms(102+10*float64(i)))
	}
	return r
}

func TestComputeFormulas(t *testing.T) {
	v := Compute(trace())
	near(t, "request_latency", v.RequestLatency, 202, 1e-9)
	near(t, "ttft", v.TimeToFirstToken, 102, 1e-9)
	near(t, "ttst", v.TimeToSecondToken, 10, 1e-9)
	near(t, "itl", v.InterTokenLatency, (202.0-102)/10, 1e-9)
	near(t, "per_user", v.OutputTokenThroughputPerU, 100, 1e-9)
	near(t, "prefill", v.PrefillThroughputPerUser, 500/0.102, 1e-6)
	near(t, "e2e", v.E2EOutputTokenThroughput, 11/0.202, 1e-9)
	near(t, "osl", v.OutputSequenceLength, 11, 0)
	near(t, "latency_actual", v.RequestLatencyActualSend, 200, 1e-9)
	near(t, "ttft_actual", v.TimeToFirstTokenActualSend, 100, 1e-9)
	near(t, "lag", v.ScheduleLag, 2, 1e-9)
	var gaps []float64
	ChunkGaps(trace(), func(ms float64) { gaps = append(gaps, ms) })
	if len(gaps) != 10 {
		t.Fatalf("gaps %v", gaps)
	}
	for _, g := range gaps {
		near(t, "gap", g, 10, 1e-9)
	}
	// Reasoning tokens count in OSL.
	r := trace()
	r.OutputTokens, r.ReasoningTokens = 6, 5
	near(t, "itl reasoning", Compute(r).InterTokenLatency, 10, 1e-9)
	// One output token: no ITL.
	r.OutputTokens, r.ReasoningTokens = 1, 0
	if !math.IsNaN(Compute(r).InterTokenLatency) {
		t.Fatal("ITL must be NaN for OSL 1")
	}
	// Non-streaming: no TTFT.
	r = trace()
	r.Streaming = false
	if !math.IsNaN(Compute(r).TimeToFirstToken) {
		t.Fatal("TTFT must be NaN when not streaming")
	}
}

func TestGoodput(t *testing.T) {
	g, err := ParseGoodput("time_to_first_token:100 inter_token_latency:10")
	if err != nil {
		t.Fatal(err)
	}
	r := trace() // ttft 102 → not good
	v := Compute(r)
	if g.Good(r, &v) {
		t.Fatal("ttft 102 > 100 must not be good")
	}
	g2, _ := ParseGoodput("ttft:150 itl:10 output_token_throughput_per_user:90")
	if !g2.Good(r, &v) {
		t.Fatal("should be good")
	}
	r.Error = "http_5xx"
	if g2.Good(r, &v) {
		t.Fatal("errors are never good")
	}
	for _, bad := range []string{"foo:1", "ttft", "ttft:x", "ttft:1 ttft:2", "request_count:3"} {
		if _, err := ParseGoodput(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func lognormal(rng *rand.Rand) float64 { return math.Exp(rng.NormFloat64()*0.8 + 3) }

func TestHistogramMergeEqualsSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	single := NewHistogram(1000)
	parts := make([]*Histogram, 7)
	for i := range parts {
		parts[i] = NewHistogram(1000)
	}
	var all []float64
	for i := 0; i < 200_000; i++ {
		x := lognormal(rng)
		all = append(all, x)
		single.Record(x)
		parts[i%7].Record(x)
	}
	merged := NewHistogram(1000)
	for _, p := range parts {
		// through the wire, like agents → coordinator
		w := NewWindow("a", 1, 0, 1000)
		w.Hists[RequestLatency] = p
		back, err := UnmarshalWindow(MarshalWindow(w))
		if err != nil {
			t.Fatal(err)
		}
		merged.Merge(back.Hists[RequestLatency])
	}
	ms, ss := merged.Stats(), single.Stats()
	if ms.Count != ss.Count || ms.P != ss.P || ms.Min != ss.Min || ms.Max != ss.Max {
		t.Fatalf("merged %+v != single %+v", ms, ss)
	}
	near(t, "sum", ms.Sum, ss.Sum, 1e-6*ss.Sum)
	exact := SummarizeValues(all)
	for i, p := range Percentiles {
		if rel := math.Abs(ms.P[i]-exact.P[i]) / exact.P[i]; rel > 0.002 {
			t.Errorf("p%v: hdr %v exact %v (rel %.4f)", p, ms.P[i], exact.P[i], rel)
		}
	}
	near(t, "avg", ms.Avg, exact.Avg, 1e-9*exact.Avg)
	near(t, "std", ms.Std, exact.Std, 1e-6*exact.Std)
}

func TestWindowWireRoundTrip(t *testing.T) {
	acc := NewAccumulator("agent-1", nil, 0)
	var got []*Window
	acc.OnWindow = func(w *Window) { got = append(got, w) }
	r := trace()
	acc.Add(r)
	r2 := trace()
	r2.EndNs += 2e9
	r2.Error, r2.HTTPStatus = "http_5xx", 503
	acc.Add(r2)
	acc.Flush()
	if len(got) != 2 {
		t.Fatalf("windows: %d", len(got))
	}
	for _, w := range got {
		b := MarshalWindow(w)
		back, err := UnmarshalWindow(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(MarshalWindow(back), b) {
			t.Fatal("re-encoding differs")
		}
		if back.Source != "agent-1" || back.Seq != w.Seq || back.StartMs != w.StartMs {
			t.Fatalf("header mismatch %+v", back)
		}
	}
	total := MergeWindows(got...)
	if total.Counters[CounterOK] != 1 || total.Counters[ErrorCounterPrefix+"http_5xx"] != 1 || total.Counters[StatusCounterPrefix+"503"] != 1 {
		t.Fatalf("counters %v", total.Counters)
	}
	if _, err := UnmarshalWindow([]byte{0x08, 0x02}); err == nil {
		t.Fatal("wrong version must fail")
	}
	if _, err := UnmarshalWindow([]byte{0xff}); err == nil {
		t.Fatal("garbage must fail")
	}
}

func FuzzUnmarshalWindow(f *testing.F) {
	acc := NewAccumulator("s", nil, 0)
	var ws []*Window
	acc.OnWindow = func(w *Window) { ws = append(ws, w) }
	acc.Add(trace())
	acc.Flush()
	f.Add(MarshalWindow(ws[0]))
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := UnmarshalWindow(b)
		if err != nil {
			return
		}
		b2 := MarshalWindow(w)
		w2, err := UnmarshalWindow(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(MarshalWindow(w2), b2) {
			t.Fatal("not stable")
		}
		for _, h := range w.Hists {
			_ = h.Stats()
		}
	})
}

func TestSummaryExports(t *testing.T) {
	g, _ := ParseGoodput("time_to_first_token:150")
	acc := NewAccumulator("", g, 1000)
	for i := 0; i < 10; i++ {
		r := trace()
		r.EndNs += int64(i) * 1e6
		acc.Add(r)
	}
	bad := trace()
	bad.Error = "timeout"
	acc.Add(bad)
	s := Summarize(acc.Total(), acc.Exact(), g)
	if m, _ := s.Get(RequestCount); m.Value != 10 {
		t.Fatalf("request_count %v", m.Value)
	}
	if m, _ := s.Get(GoodRequestFraction); math.Abs(m.Value-10.0/11) > 1e-12 {
		t.Fatalf("fraction %v", m.Value)
	}
	var jb bytes.Buffer
	if err := WriteJSON(&jb, s, ExportMeta{}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(jb.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, jb.String())
	}
	for _, k := range []string{"request_latency", "time_to_first_token", "inter_token_latency", "request_throughput",
		"output_token_throughput", "request_count", "error_request_count", "goodput", "good_request_count",
		"benchmark_duration", "error_summary", "was_cancelled"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("missing key %s", k)
		}
	}
	var rl map[string]any
	_ = json.Unmarshal(doc["request_latency"], &rl)
	for _, k := range []string{"unit", "avg", "p1", "p50", "p90", "p99", "min", "max", "std", "count", "sum"} {
		if _, ok := rl[k]; !ok {
			t.Errorf("request_latency lacks %s", k)
		}
	}
	if rl["unit"] != "ms" {
		t.Errorf("unit %v", rl["unit"])
	}
	var rt map[string]any
	_ = json.Unmarshal(doc["request_throughput"], &rt)
	if rt["unit"] != "requests/sec" || len(rt) != 2 {
		t.Errorf("request_throughput %v", rt)
	}
	var cb bytes.Buffer
	if err := WriteCSV(&cb, s); err != nil {
		t.Fatal(err)
	}
	csv := cb.String()
	for _, want := range []string{"Metric,avg,min,max,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\r\n",
		"Request Latency (ms),", "Metric,Value\r\n", "Request Throughput (requests/sec),", "Request Count,10.00"} {
		if !strings.Contains(csv, want) {
			t.Errorf("csv lacks %q:\n%s", want, csv)
		}
	}
	var lb bytes.Buffer
	rw := NewRecordWriter(&lb)
	r := trace()
	v := Compute(r)
	_ = rw.Write(r, &v)
	_ = rw.Write(bad, &v)
	_ = rw.Flush()
	lines := strings.Split(strings.TrimSpace(lb.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"time_to_first_token":{"value":102,"unit":"ms"}`) ||
		!strings.Contains(lines[1], `"error":{"code":null,"type":"timeout"`) {
		t.Fatalf("jsonl:\n%s", lb.String())
	}
}

func TestSaturation(t *testing.T) {
	ok := CheckSaturation(SaturationInput{TargetRate: 100, Sent: 990, SendSeconds: 10, LagP99Ms: 0.5})
	if ok.Verdict != VerdictOK {
		t.Fatalf("%+v", ok)
	}
	lag := CheckSaturation(SaturationInput{TargetRate: 100, Sent: 1000, SendSeconds: 10, LagP99Ms: 6})
	slow := CheckSaturation(SaturationInput{TargetRate: 100, Sent: 900, SendSeconds: 10, LagP99Ms: 1})
	if lag.Verdict != VerdictGeneratorBound || slow.Verdict != VerdictGeneratorBound {
		t.Fatalf("%+v %+v", lag, slow)
	}
}
