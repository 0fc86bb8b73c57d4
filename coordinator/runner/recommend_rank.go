package runner

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/pricing"
	"github.com/perfleet/perfleet/pkg/workload"
)

// defaultMaxErrorRate is the error fraction above which a level is not
// feasible when the workload sets no error_rate_sla.
const defaultMaxErrorRate = 0.01

// minGoodFraction is the share of requests that must meet the workload's
// goodput SLOs for a level to be feasible.
const minGoodFraction = 0.9

// slos are the feasibility rules of a recommendation, from the workload.
type slos struct {
	maxErrorRate float64
	// goodput SLOs (AIPerf's per-request thresholds) exist.
	goodput bool
	// search thresholds (ms) compared with stat, when the workload has them.
	ttft, tpot, e2e *float64
	stat            string
}

func slosFrom(spec *workload.Spec) slos {
	p := spec.Parameters
	s := slos{maxErrorRate: defaultMaxErrorRate, goodput: len(p.Goodput) > 0, ttft: p.TTFTSLAMs, tpot: p.TPOTSLAMs, e2e: p.E2ESLAMs,
		stat: string(p.SearchStat)}
	if p.ErrorRateSLA != nil {
		s.maxErrorRate = *p.ErrorRateSLA
	}
	if s.stat == "" {
		s.stat = "avg"
	}
	return s
}

// describe says in one line what feasible means.
func (s slos) describe() string {
	parts := []string{fmt.Sprintf("error rate <= %g%%", 100*s.maxErrorRate)}
	if s.goodput {
		parts = append(parts, fmt.Sprintf(">= %.0f%% of requests within the goodput SLOs", 100*minGoodFraction))
	}
	add := func(name string, v *float64) {
		if v != nil {
			parts = append(parts, fmt.Sprintf("%s %s <= %g ms", name, s.stat, *v))
		}
	}
	add("TTFT", s.ttft)
	add("ITL", s.tpot)
	add("request latency", s.e2e)
	return strings.Join(parts, ", ")
}

// metricOf returns a level's summary of one metric (nil when absent).
func metricOf(l *pb.LevelResult, tag string) *pb.MetricSummary {
	for _, m := range l.GetMetrics() {
		if m.GetTag() == tag {
			return m
		}
	}
	return nil
}

// statOf returns a statistic (avg, p50, p90, p95, p99, min, max) of a
// summary.
func statOf(m *pb.MetricSummary, stat string) float64 {
	switch stat {
	case "p50":
		return m.GetP50()
	case "p90":
		return m.GetP90()
	case "p95":
		return m.GetP95()
	case "p99":
		return m.GetP99()
	case "min":
		return m.GetMin()
	case "max":
		return m.GetMax()
	}
	return m.GetAvg()
}

// feasible checks a level against the SLOs and says why it fails.
func (s slos) feasible(l *pb.LevelResult) (bool, string) {
	total := l.GetRequestCount()
	if total == 0 {
		return false, "no request completed"
	}
	if rate := float64(l.GetErrorRequestCount()) / float64(total); rate > s.maxErrorRate {
		return false, fmt.Sprintf("error rate %.1f%% above %g%%", 100*rate, 100*s.maxErrorRate)
	}
	if s.goodput {
		if f := metricOf(l, metrics.GoodRequestFraction); f != nil && f.GetValue() < minGoodFraction {
			return false, fmt.Sprintf("only %.0f%% of requests met the goodput SLOs", 100*f.GetValue())
		}
	}
	if b := s.latencyBreach(l, false); b != nil {
		return false, fmt.Sprintf("%s %s %.1f ms above %g ms", slaNames[b.MetricTag], b.Stat, b.Observed, b.Threshold)
	}
	return true, ""
}

// slaNames are the latency SLAs' names in explanations.
var slaNames = map[string]string{metrics.TimeToFirstToken: "TTFT", metrics.InterTokenLatency: "ITL", metrics.RequestLatency: "request latency"}

// latencyBreach checks a level against the *_sla_ms thresholds in order
// (TTFT, ITL, request latency), comparing s.stat; a metric the level lacks
// breaks its threshold only when missingBreaks.
func (s slos) latencyBreach(l *pb.LevelResult, missingBreaks bool) *breach {
	for _, c := range []struct {
		tag   string
		limit *float64
	}{{metrics.TimeToFirstToken, s.ttft}, {metrics.InterTokenLatency, s.tpot}, {metrics.RequestLatency, s.e2e}} {
		if c.limit == nil {
			continue
		}
		m := metricOf(l, c.tag)
		if m == nil {
			if missingBreaks {
				return &breach{MetricTag: c.tag, Stat: s.stat, Op: "<=", Threshold: *c.limit, Observed: -1}
			}
			continue
		}
		if v := statOf(m, s.stat); v > *c.limit {
			return &breach{MetricTag: c.tag, Stat: s.stat, Op: "<=", Threshold: *c.limit, Observed: v}
		}
	}
	return nil
}

// measured is a candidate's evidence at its operating point: the highest
// load level that met the SLOs.
type measured struct {
	cand        *pb.RecommendationCandidate
	op          *pb.LevelResult
	concurrency int // of the operating point; 0 when not a concurrency level
	ttft, itl   *pb.MetricSummary
	latency     *pb.MetricSummary
	outTPS      float64 // output tokens/s per instance
	reqTPS      float64
	goodTPS     float64 // output tokens/s of requests within the SLOs
	usdHour     float64
	priceSource string
	costPerM    float64 // $ per 1M output tokens (within the SLOs)
	points      []point // every level, for the report
	// GPU telemetry at the operating point (0 when not sampled).
	gpuUtil, gpuPower, joulesPerToken float64
	gpuSampled                        bool
}

// point is one measured level of a candidate.
type point struct {
	label              string
	latencyMs, outTPS  float64
	ttftMs             float64
	feasible           bool
	concurrency        int
	requestsPerSeconds float64
}

// levelConcurrency returns a level's concurrency from the plan.
func levelConcurrency(levels []workload.Level, index uint32) int {
	if int(index) < len(levels) {
		return levels[index].Concurrency
	}
	return 0
}

// operatingPoint picks the highest-load feasible level of a child job (the
// plan's levels rise in load) and explains a candidate without one.
func operatingPoint(levels []*pb.LevelResult, plan []workload.Level, s slos) (*measured, string) {
	m := &measured{}
	var why []string
	for _, l := range levels {
		ok, reason := s.feasible(l)
		p := point{label: levelLabel(l, plan), feasible: ok, concurrency: levelConcurrency(plan, l.GetIndex())}
		if l.GetConcurrency() > 0 && l.GetRequestRate() == 0 {
			p.concurrency = int(l.GetConcurrency())
		}
		if x := metricOf(l, metrics.RequestLatency); x != nil {
			p.latencyMs = x.GetP50()
		}
		if x := metricOf(l, metrics.TimeToFirstToken); x != nil {
			p.ttftMs = x.GetP50()
		}
		if x := metricOf(l, metrics.OutputTokenThroughput); x != nil {
			p.outTPS = x.GetValue()
		}
		if x := metricOf(l, metrics.RequestThroughput); x != nil {
			p.requestsPerSeconds = x.GetValue()
		}
		m.points = append(m.points, p)
		if !ok {
			why = append(why, p.label+": "+reason)
			continue
		}
		if m.op == nil || p.outTPS >= m.outTPS {
			m.op, m.concurrency, m.outTPS, m.reqTPS = l, p.concurrency, p.outTPS, p.requestsPerSeconds
		}
	}
	if m.op == nil {
		if len(why) == 0 {
			return m, "the child benchmark job recorded no level"
		}
		return m, "no load level met the SLOs (" + strings.Join(why, "; ") + ")"
	}
	m.ttft = metricOf(m.op, metrics.TimeToFirstToken)
	m.itl = metricOf(m.op, metrics.InterTokenLatency)
	m.latency = metricOf(m.op, metrics.RequestLatency)
	m.gpuSampled = metricOf(m.op, TagGPUUtilization) != nil
	m.gpuUtil = metricOf(m.op, TagGPUUtilization).GetValue()
	m.gpuPower = metricOf(m.op, TagGPUPower).GetValue()
	m.joulesPerToken = metricOf(m.op, TagEnergyPerToken).GetValue()
	m.goodTPS = m.outTPS
	if s.goodput {
		if f := metricOf(m.op, metrics.GoodRequestFraction); f != nil {
			m.goodTPS = m.outTPS * f.GetValue()
		}
	}
	return m, ""
}

// levelLabel names a level for people: "concurrency 16", or its name.
func levelLabel(l *pb.LevelResult, plan []workload.Level) string {
	if l.GetRequestRate() > 0 {
		return fmt.Sprintf("%g requests/s", l.GetRequestRate())
	}
	if l.GetConcurrency() > 0 {
		return "concurrency " + strconv.Itoa(int(l.GetConcurrency()))
	}
	if int(l.GetIndex()) < len(plan) {
		lv := plan[l.GetIndex()]
		switch lv.Mode {
		case workload.ModeConcurrency:
			return "concurrency " + strconv.Itoa(lv.Concurrency)
		case workload.ModeRequestRate:
			return fmt.Sprintf("%g requests/s", lv.RequestRate)
		}
	}
	if l.GetName() != "" {
		return l.GetName()
	}
	return "level " + strconv.Itoa(int(l.GetIndex()))
}

// ttftP50 is the ranking key of the TTFT goal (+Inf without TTFT, e.g. a
// non-streaming workload).
func (m *measured) ttftP50() float64 {
	if m.ttft == nil {
		return math.Inf(1)
	}
	return m.ttft.GetP50()
}

// rankMeasured orders candidates best first for a goal:
//
//	ttft-ms    lowest TTFT p50 at the operating point
//	throughput highest output tokens/s per instance within the SLOs
//	cost       lowest $ per 1M output tokens within the SLOs
//
// Values within 1 % of each other tie, and a tie goes to the cheaper
// deployment ($/hour), then to the candidate's name.
func rankMeasured(goal string, ms []*measured) {
	key := func(m *measured) float64 {
		switch goal {
		case GoalTTFT:
			return m.ttftP50()
		case GoalThroughput:
			return -m.goodTPS
		default:
			return m.costPerM
		}
	}
	sort.SliceStable(ms, func(i, j int) bool {
		a, b := key(ms[i]), key(ms[j])
		if !nearlyEqual(a, b) {
			return a < b
		}
		if ms[i].usdHour != ms[j].usdHour && !math.IsNaN(ms[i].usdHour) && !math.IsNaN(ms[j].usdHour) {
			return ms[i].usdHour < ms[j].usdHour
		}
		return ms[i].cand.GetName() < ms[j].cand.GetName()
	})
}

// nearlyEqual reports whether a and b are within 1 % of each other.
func nearlyEqual(a, b float64) bool {
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 0.01*math.Max(math.Abs(a), math.Abs(b))
}

// costPerMillion is pricing's $ per 1M tokens, +Inf when the price is
// unknown (NaN) as well as at zero throughput.
func costPerMillion(usdHour, tokensPerSecond float64) float64 {
	if math.IsNaN(usdHour) {
		return math.Inf(1)
	}
	return pricing.Entry{USDPerHour: usdHour}.CostPerMillionTokens(tokensPerSecond)
}

// expectedPerformance builds SageMaker's ExpectedPerformance rows with
// CamelCase metric names and avg/pNN stats.
func expectedPerformance(m *measured) []*pb.ExpectedPerformance {
	var rows []*pb.ExpectedPerformance
	add := func(metric, stat string, v float64, unit string) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		rows = append(rows, &pb.ExpectedPerformance{Metric: metric, Stat: stat, Value: strconv.FormatFloat(v, 'f', -1, 64), Unit: unit})
	}
	dist := func(metric string, s *pb.MetricSummary) {
		if s == nil {
			return
		}
		add(metric, "avg", round3(s.GetAvg()), "ms")
		add(metric, "p50", round3(s.GetP50()), "ms")
		add(metric, "p90", round3(s.GetP90()), "ms")
		add(metric, "p99", round3(s.GetP99()), "ms")
	}
	dist("TimeToFirstToken", m.ttft)
	dist("InterTokenLatency", m.itl)
	dist("RequestLatency", m.latency)
	add("OutputTokenThroughput", "avg", round3(m.outTPS), "tokens/second")
	add("RequestThroughput", "avg", round3(m.reqTPS), "requests/second")
	if m.concurrency > 0 {
		add("ClientSideConcurrency", "avg", float64(m.concurrency), "count")
	}
	if m.goodTPS != m.outTPS {
		add("GoodputTokenThroughput", "avg", round3(m.goodTPS), "tokens/second")
	}
	if m.gpuSampled {
		add("GpuUtilization", "avg", round3(m.gpuUtil), "percent")
		add("GpuPower", "avg", round3(m.gpuPower), "watts")
	}
	if m.joulesPerToken > 0 {
		add("EnergyPerToken", "avg", round3(m.joulesPerToken), "joules/token")
	}
	add("CostPerHour", "avg", round3(m.usdHour), "USD")
	add("CostPerMillionTokens", "avg", round3(m.costPerM), "USD")
	return rows
}

// round3 keeps three decimals.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
