package report

import (
	"io"
	"sort"
	"strconv"
	"strings"
)

// WriteRecommendation writes the HTML report of a recommendation job to w:
// a header with the goal and the recommended candidate, a ranked summary
// table, a Pareto chart of every candidate's measured points (latency against
// output throughput per instance, Pareto front joined and the winner marked),
// a cost table, the configuration of each ranked candidate, the failed and
// skipped candidates with their reasons, and the notes. Nothing is written
// when rendering fails.
func WriteRecommendation(w io.Writer, r Recommendation) error {
	return render(w, "recommendation", newRecommendationView(r))
}

type recommendationView struct {
	Title                          string
	JobName, JobARN, FailureReason string
	Status                         badgeView
	Goal, GoalText                 string
	Model, Workload, SLOs          string
	Created, Ended, Duration       string
	HasCandidates                  bool
	Winner                         *rankedRow
	Ranked                         []rankedRow
	Chart                          chartView
	Cost                           []costRow
	ShowEnergy, ShowTarget         bool
	Configs                        []configView
	Unranked                       []unrankedRow
	Notes                          []string
}

type rankedRow struct {
	Rank, Name, Color, InstanceType, Parallel, OperatingPoint string
	Winner                                                    bool
	TTFT50, TTFT99, ITL50, TokS, ReqS                         string
	USDHour, USDPerM, PriceSource, ChildJobARN, Explanation   string
}

type costRow struct {
	Rank, Name, Color, InstanceType, Instances        string
	Winner                                            bool
	USDHour, TokS, USDPerM, Energy, ForTarget, FleetH string
	PriceSource                                       string
}

type statRow struct{ Metric, Avg, P50, P90, P99 string }

type configView struct {
	Rank, Name, Color, InstanceType, Parallel, Instances string
	Open                                                 bool
	Framework, Explanation, OperatingPoint, ChildJobARN  string
	Goodput                                              string // empty when not measured
	Env                                                  map[string]string
	Optimizations, NotApplied                            []string
	Stats                                                []statRow
}

type unrankedRow struct {
	Name, InstanceType, Parallel string
	Status                       badgeView
	Reason, Explanation          string
	ChildJobARN                  string
}

// goalText explains a recommendation goal.
func goalText(goal string) string {
	switch strings.ToLower(strings.TrimSpace(goal)) {
	case "ttft-ms", "ttft":
		return "lowest time to first token (TTFT p50) among candidates meeting the SLOs"
	case "throughput":
		return "highest output tokens/s per instance among candidates meeting the SLOs"
	case "cost":
		return "lowest cost per million output tokens among candidates meeting the SLOs"
	default:
		return ""
	}
}

func parallelism(c Candidate) string {
	switch {
	case c.TensorParallel > 0 && c.Copies > 0:
		return "TP" + strconv.Itoa(c.TensorParallel) + " × " + strconv.Itoa(c.Copies)
	case c.TensorParallel > 0:
		return "TP" + strconv.Itoa(c.TensorParallel)
	case c.Copies > 0:
		return strconv.Itoa(c.Copies) + " copies"
	default:
		return dash
	}
}

func optionalInt(n int) string {
	if n == 0 {
		return dash
	}
	return formatInt(int64(n))
}

func newRecommendationView(r Recommendation) recommendationView {
	v := recommendationView{
		Title:         "Recommendation report: " + orDash(r.JobName),
		JobName:       orDash(r.JobName),
		JobARN:        orDash(r.JobARN),
		Status:        badge(r.Status),
		FailureReason: strings.TrimSpace(r.FailureReason),
		Goal:          orDash(r.Goal),
		GoalText:      goalText(r.Goal),
		Model:         orDash(r.Model),
		Workload:      orDash(r.Workload),
		SLOs:          strings.TrimSpace(r.SLOs),
		Created:       formatTime(r.Created),
		Ended:         formatTime(r.Ended),
		Duration:      formatDuration(r.Created, r.Ended),
		HasCandidates: len(r.Candidates) > 0,
		Notes:         r.Notes,
	}

	// Ranked candidates first, by rank; then the others in input order.
	order := make([]int, len(r.Candidates))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ra, rb := r.Candidates[order[a]].Rank, r.Candidates[order[b]].Rank
		if (ra > 0) != (rb > 0) {
			return ra > 0
		}
		return ra > 0 && ra < rb
	})
	color := make(map[int]string, len(order))
	for n, i := range order {
		color[i] = seriesColor(n)
	}
	winner := -1
	if len(order) > 0 && r.Candidates[order[0]].Rank > 0 {
		winner = order[0]
	}

	for _, i := range order {
		c := r.Candidates[i]
		if c.Rank <= 0 {
			status := c.Status
			if strings.TrimSpace(status) == "" {
				status = "Unranked"
			}
			v.Unranked = append(v.Unranked, unrankedRow{
				Name: orDash(c.Name), InstanceType: orDash(c.InstanceType), Parallel: parallelism(c),
				Status: badge(status), Reason: orDash(c.Reason), Explanation: strings.TrimSpace(c.Explanation),
				ChildJobARN: orDash(c.ChildJobARN),
			})
			continue
		}
		if c.EnergyJoulesPerToken != 0 {
			v.ShowEnergy = true
		}
		if c.InstancesForTarget != 0 {
			v.ShowTarget = true
		}
		rank := strconv.Itoa(c.Rank)
		v.Ranked = append(v.Ranked, rankedRow{
			Rank: rank, Name: orDash(c.Name), Color: color[i], Winner: i == winner,
			InstanceType: orDash(c.InstanceType), Parallel: parallelism(c), OperatingPoint: orDash(c.OperatingPoint),
			TTFT50: formatMs(c.TTFT.P50), TTFT99: formatMs(c.TTFT.P99), ITL50: formatMs(c.ITL.P50),
			TokS: formatTokens(c.OutputTokenThroughput), ReqS: formatRate(c.RequestThroughput),
			USDHour: optional(c.USDPerHour, formatUSD), USDPerM: optional(c.USDPerMillionTokens, formatUSD),
			PriceSource: orDash(c.PriceSource), ChildJobARN: orDash(c.ChildJobARN),
			Explanation: strings.TrimSpace(c.Explanation),
		})
		fleet := dash
		if c.InstancesForTarget > 0 && c.USDPerHour > 0 {
			fleet = formatUSD(float64(c.InstancesForTarget) * c.USDPerHour)
		}
		v.Cost = append(v.Cost, costRow{
			Rank: rank, Name: orDash(c.Name), Color: color[i], Winner: i == winner,
			InstanceType: orDash(c.InstanceType), Instances: optionalInt(c.InstanceCount),
			USDHour: optional(c.USDPerHour, formatUSD), TokS: formatTokens(c.OutputTokenThroughput),
			USDPerM:   optional(c.USDPerMillionTokens, formatUSD),
			Energy:    optional(c.EnergyJoulesPerToken, func(f float64) string { return formatFloat(f, 3) }),
			ForTarget: optionalInt(c.InstancesForTarget), FleetH: fleet,
			PriceSource: orDash(c.PriceSource),
		})
		v.Configs = append(v.Configs, configView{
			Rank: rank, Name: orDash(c.Name), Color: color[i], Open: i == winner,
			InstanceType: orDash(c.InstanceType), Parallel: parallelism(c), Instances: optionalInt(c.InstanceCount),
			Framework: orDash(c.Framework), Explanation: strings.TrimSpace(c.Explanation),
			OperatingPoint: orDash(c.OperatingPoint), ChildJobARN: orDash(c.ChildJobARN),
			Goodput: goodputText(c.Goodput),
			Env:     c.Env, Optimizations: c.Optimizations, NotApplied: c.NotApplied,
			Stats: []statRow{
				statRowOf("TTFT", c.TTFT), statRowOf("ITL", c.ITL), statRowOf("Request latency", c.RequestLatency),
			},
		})
	}
	if len(v.Ranked) > 0 && v.Ranked[0].Winner {
		w := v.Ranked[0]
		v.Winner = &w
	}
	if v.HasCandidates {
		v.Chart = paretoChart(r, order, color, winner)
	}
	return v
}

func goodputText(v float64) string {
	if v == 0 || !finite(v) {
		return ""
	}
	return formatRate(v)
}

func statRowOf(name string, s Stat) statRow {
	return statRow{Metric: name, Avg: formatMs(s.Avg), P50: formatMs(s.P50), P90: formatMs(s.P90), P99: formatMs(s.P99)}
}

// operatingPoint returns the index in c.Points of c's operating point, or -1.
func operatingPoint(c Candidate) int {
	for i, p := range c.Points {
		if p.Operating {
			return i
		}
	}
	if op := strings.TrimSpace(c.OperatingPoint); op != "" {
		for i, p := range c.Points {
			if strings.TrimSpace(p.Label) == op {
				return i
			}
		}
	}
	best := -1
	for i, p := range c.Points {
		if p.Feasible && finite(p.LatencyMs) && finite(p.TokensPerSecond) &&
			(best < 0 || p.TokensPerSecond > c.Points[best].TokensPerSecond) {
			best = i
		}
	}
	return best
}

func paretoChart(r Recommendation, order []int, color map[int]string, winner int) chartView {
	latency := strings.TrimSpace(r.PointLatency)
	if latency == "" {
		latency = "Latency p50"
	}
	var all []Point
	var owner []int // candidate index of each point in all
	for _, i := range order {
		for _, p := range r.Candidates[i].Points {
			all = append(all, p)
			owner = append(owner, i)
		}
	}
	front := ParetoFront(all)
	onFront := make(map[int]bool, len(front))
	for _, k := range front {
		onFront[k] = true
	}
	tip := func(name string, p Point, k int) string {
		s := truncate(orDash(name), 80) + " — " + orDash(p.Label) + ": " + formatMs(p.LatencyMs) + " ms, " +
			formatTokens(p.TokensPerSecond) + " tokens/s per instance"
		if !p.Feasible {
			s += " (misses SLOs)"
		}
		if onFront[k] {
			s += " (Pareto-optimal)"
		}
		return s
	}

	spec := chartSpec{
		Title:  "Throughput per instance vs " + latency,
		XLabel: latency + " (ms)",
		YLabel: "Output throughput per instance (tokens/s)",
		Empty:  "No candidate has measured points to plot.",
		W:      900,
		H:      480,
	}
	k := 0
	infeasible := false
	for _, i := range order {
		c := r.Candidates[i]
		s := series{Name: truncate(orDash(c.Name), 80), Color: color[i], Line: true, LineWidth: 1.5,
			LineOpacity: 0.45, Marker: markDot, MarkerR: 4.5, Legend: "dot"}
		for _, p := range c.Points {
			s.Points = append(s.Points, xy{X: p.LatencyMs, Y: p.TokensPerSecond, Hollow: !p.Feasible, Tip: tip(c.Name, p, k)})
			if !p.Feasible && finite(p.LatencyMs) && finite(p.TokensPerSecond) {
				infeasible = true
			}
			k++
		}
		if len(c.Points) > 0 {
			spec.Series = append(spec.Series, s)
		}
	}
	if len(front) > 0 {
		fs := series{Name: "Pareto front (highest throughput at a given latency)", Color: "#111827",
			Line: true, LineWidth: 2.5, Marker: markRing, MarkerR: 7.5, Legend: "line"}
		for _, k := range front {
			fs.Points = append(fs.Points, xy{X: all[k].LatencyMs, Y: all[k].TokensPerSecond})
		}
		spec.Series = append(spec.Series, fs)
	}
	if winner >= 0 {
		c := r.Candidates[winner]
		if op := operatingPoint(c); op >= 0 {
			p := c.Points[op]
			spec.Series = append(spec.Series, series{
				Name: "Winner (rank 1) at its operating point", Color: "#d97706", Marker: markRing, MarkerR: 12,
				LabelPoints: true, LabelClass: "win", Legend: "ring",
				Points: []xy{{X: p.LatencyMs, Y: p.TokensPerSecond, Label: "★ " + truncate(orDash(c.Name), 24)}},
			})
		}
	}
	if infeasible {
		spec.Extra = append(spec.Extra, legendView{Kind: "hollow", Color: "#6b7280", Name: "Hollow marker: misses the SLOs"})
	}
	return buildChart(spec)
}

const recommendationTemplate = `
{{define "recommendation"}}{{template "head" .Title}}
<header>
<p class="kind">Recommendation job report</p>
<h1>{{.JobName}} {{template "badge" .Status}}</h1>
{{if .FailureReason}}<div class="alert"><strong>Failure reason:</strong> {{.FailureReason}}</div>{{end}}
<dl class="meta">
<dt>Job ARN</dt><dd class="mono">{{.JobARN}}</dd>
<dt>Goal</dt><dd><strong>{{.Goal}}</strong>{{if .GoalText}} <span class="muted">— {{.GoalText}}</span>{{end}}</dd>
<dt>Model</dt><dd>{{.Model}}</dd>
<dt>Workload</dt><dd>{{.Workload}}</dd>
{{if .SLOs}}<dt>SLOs</dt><dd>{{.SLOs}}</dd>{{end}}
<dt>Created</dt><dd>{{.Created}}</dd>
<dt>Ended</dt><dd>{{.Ended}}</dd>
<dt>Duration</dt><dd>{{.Duration}}</dd>
</dl>
{{with .Winner}}<div class="winner-box">
<div><strong>Recommended:</strong> <span class="swatch" style="background:{{.Color}}"></span><strong>{{.Name}}</strong> on {{.InstanceType}}, {{.Parallel}}, at {{.OperatingPoint}}</div>
<div class="cards">
<div class="card"><div class="k">Output throughput per instance</div><div class="v">{{.TokS}} tok/s</div></div>
<div class="card"><div class="k">TTFT p50 / p99</div><div class="v">{{.TTFT50}} / {{.TTFT99}} ms</div></div>
<div class="card"><div class="k">ITL p50</div><div class="v">{{.ITL50}} ms</div></div>
<div class="card"><div class="k">Cost per 1M output tokens</div><div class="v">{{.USDPerM}}</div><div class="k">{{.USDHour}} per instance-hour</div></div>
</div>
{{if .Explanation}}<p class="wrap">{{.Explanation}}</p>{{end}}
</div>{{end}}
</header>

{{if not .HasCandidates}}<section><h2>Candidates</h2><p class="empty">This job has no candidates yet, so there is nothing to rank or chart.</p></section>
{{else}}
<section>
<h2>Ranked candidates</h2>
{{if .Ranked}}<div class="tablewrap"><table>
<thead><tr>
<th class="num">Rank</th><th>Candidate</th><th>Instance type</th><th>TP × copies</th><th>Operating point</th>
<th class="num">TTFT p50 (ms)</th><th class="num">TTFT p99 (ms)</th><th class="num">ITL p50 (ms)</th>
<th class="num">Output tok/s per instance</th><th class="num">Req/s</th>
<th class="num">$/hour</th><th class="num">$/1M tokens</th><th>Price source</th><th>Child job ARN</th>
</tr></thead>
<tbody>{{range .Ranked}}
<tr{{if .Winner}} class="win"{{end}}>
<td class="num">{{.Rank}}{{if .Winner}} ★{{end}}</td>
<td class="name"><span class="swatch" style="background:{{.Color}}"></span>{{.Name}}</td>
<td>{{.InstanceType}}</td><td class="nowrap">{{.Parallel}}</td><td>{{.OperatingPoint}}</td>
<td class="num">{{.TTFT50}}</td><td class="num">{{.TTFT99}}</td><td class="num">{{.ITL50}}</td>
<td class="num">{{.TokS}}</td><td class="num">{{.ReqS}}</td>
<td class="num">{{.USDHour}}</td><td class="num">{{.USDPerM}}</td><td class="src">{{.PriceSource}}</td><td class="arn mono">{{.ChildJobARN}}</td>
</tr>{{end}}
</tbody>
</table></div>
{{else}}<p class="empty">No candidate was ranked: none completed while meeting the SLOs. See the failed and skipped candidates below.</p>{{end}}
</section>

<section>
<h2>Pareto chart</h2>
<p class="muted">Every measured load level of every candidate. Points on the black line are Pareto-optimal: no other point has both lower latency and higher throughput per instance.</p>
<div class="wide">{{template "chart" .Chart}}</div>
</section>

{{if .Cost}}<section>
<h2>Cost</h2>
<div class="tablewrap"><table>
<thead><tr>
<th class="num">Rank</th><th>Candidate</th><th>Instance type</th><th class="num">Instances measured</th>
<th class="num">$/hour per instance</th><th class="num">Output tok/s per instance</th><th class="num">$/1M output tokens</th>
{{if .ShowEnergy}}<th class="num">Energy (J/token)</th>{{end}}
{{if .ShowTarget}}<th class="num">Instances for target</th><th class="num">$/hour for target</th>{{end}}
<th>Price source</th>
</tr></thead>
<tbody>{{range .Cost}}
<tr{{if .Winner}} class="win"{{end}}>
<td class="num">{{.Rank}}</td><td class="name"><span class="swatch" style="background:{{.Color}}"></span>{{.Name}}</td><td>{{.InstanceType}}</td>
<td class="num">{{.Instances}}</td><td class="num">{{.USDHour}}</td><td class="num">{{.TokS}}</td><td class="num">{{.USDPerM}}</td>
{{if $.ShowEnergy}}<td class="num">{{.Energy}}</td>{{end}}
{{if $.ShowTarget}}<td class="num">{{.ForTarget}}</td><td class="num">{{.FleetH}}</td>{{end}}
<td class="src">{{.PriceSource}}</td>
</tr>{{end}}
</tbody>
</table></div>
</section>{{end}}

{{if .Configs}}<section>
<h2>Configurations</h2>
{{range .Configs}}<details{{if .Open}} open{{end}}>
<summary><span class="swatch" style="background:{{.Color}}"></span>#{{.Rank}} {{.Name}} <span class="muted">— {{.InstanceType}}, {{.Parallel}}, {{.Framework}}</span></summary>
<div class="body">
{{if .Explanation}}<p class="wrap">{{.Explanation}}</p>{{end}}
<dl class="meta">
<dt>Operating point</dt><dd>{{.OperatingPoint}}</dd>
<dt>Instances measured</dt><dd>{{.Instances}}</dd>
{{if .Goodput}}<dt>Goodput</dt><dd>{{.Goodput}} req/s meeting the SLOs</dd>{{end}}
<dt>Child job ARN</dt><dd class="mono">{{.ChildJobARN}}</dd>
</dl>
<table class="env" style="margin-top:10px">
<thead><tr><th>At operating point</th><th class="num">Avg (ms)</th><th class="num">p50 (ms)</th><th class="num">p90 (ms)</th><th class="num">p99 (ms)</th></tr></thead>
<tbody>{{range .Stats}}<tr><th>{{.Metric}}</th><td class="num">{{.Avg}}</td><td class="num">{{.P50}}</td><td class="num">{{.P90}}</td><td class="num">{{.P99}}</td></tr>{{end}}</tbody>
</table>
{{if .Optimizations}}<h3 style="margin-top:12px">Optimizations applied</h3><ul class="chips">{{range .Optimizations}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .NotApplied}}<h3 style="margin-top:12px">Not applied</h3><ul class="notes">{{range .NotApplied}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Env}}<h3 style="margin-top:12px">Environment</h3><table class="env"><tbody>{{range $k, $v := .Env}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</tbody></table>{{end}}
</div>
</details>
{{end}}</section>{{end}}

{{if .Unranked}}<section>
<h2>Failed and skipped candidates</h2>
<div class="tablewrap"><table>
<thead><tr><th>Candidate</th><th>Instance type</th><th>TP × copies</th><th>Status</th><th>Reason</th><th>Child job ARN</th></tr></thead>
<tbody>{{range .Unranked}}
<tr><td class="name">{{.Name}}</td><td>{{.InstanceType}}</td><td class="nowrap">{{.Parallel}}</td><td>{{template "badge" .Status}}</td>
<td class="wrap">{{.Reason}}{{if .Explanation}}<div class="muted small">{{.Explanation}}</div>{{end}}</td><td class="arn mono">{{.ChildJobARN}}</td></tr>{{end}}
</tbody>
</table></div>
</section>{{end}}
{{end}}

{{if .Notes}}<section>
<h2>Notes</h2>
<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>
</section>{{end}}
{{template "foot"}}{{end}}
`
