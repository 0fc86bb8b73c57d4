package report

import (
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteBenchmark writes the HTML report of a benchmark job to w: a header
// with the job's details, summary figures, a table of the load levels, and
// charts of output throughput and latency against load and of throughput
// against latency. Nothing is written when rendering fails.
func WriteBenchmark(w io.Writer, b Benchmark) error {
	return render(w, "benchmark", newBenchmarkView(b))
}

type badgeView struct{ Text, Class string }

func badge(status string) badgeView {
	return badgeView{Text: orDash(status), Class: statusClass(status)}
}

type cardView struct{ Key, Value, Sub string }

type benchmarkView struct {
	Title                          string
	JobName, JobARN, FailureReason string
	Status                         badgeView
	Target, WorkloadConfig, SLOs   string
	Created, Ended, Duration       string
	Cards                          []cardView
	LoadHeader                     string
	ShowGoodput, HasLocations      bool
	Levels                         []levelRow
	Charts                         []chartView
	Events                         []string
}

type levelRow struct {
	Name, Location, Load              string
	Requests, Errors                  string
	HasErrors                         bool
	ReqS, TokS, TTFT50, TTFT99, ITL50 string
	Lat50, Lat99, Goodput             string
}

// loadMode says how the levels' load is expressed.
type loadMode int

const (
	loadConcurrency loadMode = iota
	loadRate
	loadIndex // mixed or missing: plot against plan order
)

func levelLoadMode(levels []Level) loadMode {
	conc, rate := true, true
	for _, l := range levels {
		if l.Concurrency <= 0 {
			conc = false
		}
		if !(l.RequestRate > 0) || !finite(l.RequestRate) {
			rate = false
		}
	}
	switch {
	case conc:
		return loadConcurrency
	case rate:
		return loadRate
	default:
		return loadIndex
	}
}

// formatCompact formats v with at most maxDec decimals, dropping trailing
// zeros: 20 → "20", 2.5 → "2.5".
func formatCompact(v float64, maxDec int) string {
	s := formatFloat(v, maxDec)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func levelLoad(l Level) string {
	switch {
	case l.Concurrency > 0:
		return formatInt(int64(l.Concurrency))
	case l.RequestRate > 0 && finite(l.RequestRate):
		return formatCompact(l.RequestRate, 3) + " req/s"
	default:
		return dash
	}
}

func newBenchmarkView(b Benchmark) benchmarkView {
	v := benchmarkView{
		Title:          "Benchmark report: " + orDash(b.JobName),
		JobName:        orDash(b.JobName),
		JobARN:         orDash(b.JobARN),
		Status:         badge(b.Status),
		FailureReason:  strings.TrimSpace(b.FailureReason),
		Target:         orDash(b.Target),
		WorkloadConfig: orDash(b.WorkloadConfig),
		SLOs:           strings.TrimSpace(b.SLOs),
		Created:        formatTime(b.Created),
		Ended:          formatTime(b.Ended),
		Duration:       formatDuration(b.Created, b.Ended),
		Events:         b.Events,
	}
	mode := levelLoadMode(b.Levels)
	switch mode {
	case loadConcurrency:
		v.LoadHeader = "Concurrency"
	case loadRate:
		v.LoadHeader = "Rate"
	default:
		v.LoadHeader = "Load"
	}
	v.ShowGoodput = v.SLOs != ""
	for _, l := range b.Levels {
		if l.Goodput != 0 {
			v.ShowGoodput = true
		}
	}

	var requests, errs int64
	peak, peakAt := math.Inf(-1), ""
	for _, l := range b.Levels {
		requests += l.Requests
		errs += l.Errors
		if finite(l.OutputTokenThroughput) && l.OutputTokenThroughput > peak {
			peak, peakAt = l.OutputTokenThroughput, l.Name
		}
		if strings.TrimSpace(l.Location) != "" {
			v.HasLocations = true
		}
		good := formatRate(l.Goodput)
		if v.SLOs == "" {
			good = optional(l.Goodput, formatRate)
		}
		v.Levels = append(v.Levels, levelRow{
			Name:      orDash(l.Name),
			Location:  strings.TrimSpace(l.Location),
			Load:      levelLoad(l),
			Requests:  formatInt(l.Requests),
			Errors:    formatInt(l.Errors),
			HasErrors: l.Errors > 0,
			ReqS:      formatRate(l.RequestThroughput),
			TokS:      formatTokens(l.OutputTokenThroughput),
			TTFT50:    formatMs(l.TTFT.P50),
			TTFT99:    formatMs(l.TTFT.P99),
			ITL50:     formatMs(l.ITL.P50),
			Lat50:     formatMs(l.RequestLatency.P50),
			Lat99:     formatMs(l.RequestLatency.P99),
			Goodput:   good,
		})
	}
	if len(b.Levels) == 0 {
		return v
	}

	errRate := dash
	if requests > 0 {
		errRate = formatFloat(100*float64(errs)/float64(requests), 2) + " %"
	}
	peakS, peakSub := dash, ""
	if finite(peak) {
		peakS = formatTokens(peak) + " tok/s"
		peakSub = "at " + orDash(peakAt)
	}
	v.Cards = []cardView{
		{Key: "Load levels", Value: strconv.Itoa(len(b.Levels))},
		{Key: "Requests", Value: formatInt(requests)},
		{Key: "Errors", Value: formatInt(errs), Sub: errRate + " of requests"},
		{Key: "Peak output throughput", Value: peakS, Sub: peakSub},
	}
	v.Charts = benchmarkCharts(b.Levels, mode)
	return v
}

func benchmarkCharts(levels []Level, mode loadMode) []chartView {
	xLabel := "Concurrency (concurrent requests)"
	loadX := func(i int, l Level) float64 { return float64(l.Concurrency) }
	switch mode {
	case loadRate:
		xLabel = "Request rate (req/s)"
		loadX = func(i int, l Level) float64 { return l.RequestRate }
	case loadIndex:
		xLabel = "Level (plan order)"
		loadX = func(i int, l Level) float64 { return float64(i + 1) }
	}
	const empty = "No finite values to plot."

	var tput, ttft, lat99, curve []xy
	for i, l := range levels {
		x := loadX(i, l)
		name := truncate(orDash(l.Name), 80)
		tput = append(tput, xy{X: x, Y: l.OutputTokenThroughput,
			Tip: name + ": " + formatTokens(l.OutputTokenThroughput) + " tokens/s"})
		ttft = append(ttft, xy{X: x, Y: l.TTFT.P50,
			Tip: name + ": TTFT p50 " + formatMs(l.TTFT.P50) + " ms"})
		lat99 = append(lat99, xy{X: x, Y: l.RequestLatency.P99,
			Tip: name + ": request latency p99 " + formatMs(l.RequestLatency.P99) + " ms"})
		curve = append(curve, xy{X: l.RequestLatency.P50, Y: l.OutputTokenThroughput, Label: l.Name,
			Tip: name + ": " + formatMs(l.RequestLatency.P50) + " ms, " + formatTokens(l.OutputTokenThroughput) + " tokens/s"})
	}
	return []chartView{
		buildChart(chartSpec{
			XInteger: mode != loadRate,
			Title:    "Output throughput vs load", XLabel: xLabel, YLabel: "Output throughput (tokens/s)", Empty: empty,
			Series: []series{{Name: "Output tokens/s", Color: palette[0], Points: tput, Line: true, Marker: markDot, SortX: true}},
		}),
		buildChart(chartSpec{
			XInteger: mode != loadRate,
			Title:    "Latency vs load", XLabel: xLabel, YLabel: "Latency (ms)", Empty: empty,
			Series: []series{
				{Name: "TTFT p50", Color: palette[0], Points: ttft, Line: true, Marker: markDot, SortX: true, Legend: "dotline"},
				{Name: "Request latency p99", Color: palette[2], Points: lat99, Line: true, Marker: markSquare, MarkerR: 3.5, Dash: "6 4", SortX: true, Legend: "dash"},
			},
		}),
		buildChart(chartSpec{
			Title: "Throughput vs latency", XLabel: "Request latency p50 (ms)", YLabel: "Output throughput (tokens/s)", Empty: empty,
			Series: []series{{Name: "Levels", Color: palette[4], Points: curve, Line: true, Marker: markDot, LabelPoints: true}},
		}),
	}
}

const benchmarkTemplate = `
{{define "benchmark"}}{{template "head" .Title}}
<header>
<p class="kind">Benchmark job report</p>
<h1>{{.JobName}} {{template "badge" .Status}}</h1>
{{if .FailureReason}}<div class="alert"><strong>Failure reason:</strong> {{.FailureReason}}</div>{{end}}
<dl class="meta">
<dt>Job ARN</dt><dd class="mono">{{.JobARN}}</dd>
<dt>Target</dt><dd>{{.Target}}</dd>
<dt>Workload</dt><dd>{{.WorkloadConfig}}</dd>
{{if .SLOs}}<dt>SLOs</dt><dd>{{.SLOs}}</dd>{{end}}
<dt>Created</dt><dd>{{.Created}}</dd>
<dt>Ended</dt><dd>{{.Ended}}</dd>
<dt>Duration</dt><dd>{{.Duration}}</dd>
</dl>
{{if .Cards}}<div class="cards">{{range .Cards}}
<div class="card"><div class="k">{{.Key}}</div><div class="v">{{.Value}}</div>{{if .Sub}}<div class="k wrap">{{.Sub}}</div>{{end}}</div>{{end}}
</div>{{end}}
</header>

<section>
<h2>Load levels</h2>
{{if .Levels}}<div class="tablewrap"><table>
<thead><tr>
<th>Level</th><th class="num">{{.LoadHeader}}</th><th class="num">Requests</th><th class="num">Errors</th>
<th class="num">Req/s</th><th class="num">Output tok/s</th>
<th class="num">TTFT p50 (ms)</th><th class="num">TTFT p99 (ms)</th><th class="num">ITL p50 (ms)</th>
<th class="num">Latency p50 (ms)</th><th class="num">Latency p99 (ms)</th>{{if .ShowGoodput}}<th class="num">Goodput (req/s)</th>{{end}}
</tr></thead>
<tbody>{{range .Levels}}
<tr>
<td class="name">{{.Name}}</td>
<td class="num">{{.Load}}</td><td class="num">{{.Requests}}</td><td class="num{{if .HasErrors}} err{{end}}">{{.Errors}}</td>
<td class="num">{{.ReqS}}</td><td class="num">{{.TokS}}</td>
<td class="num">{{.TTFT50}}</td><td class="num">{{.TTFT99}}</td><td class="num">{{.ITL50}}</td>
<td class="num">{{.Lat50}}</td><td class="num">{{.Lat99}}</td>{{if $.ShowGoodput}}<td class="num">{{.Goodput}}</td>{{end}}
</tr>{{end}}
</tbody>
</table></div>
{{else}}<p class="empty">This job has no measured load levels yet, so there is nothing to tabulate or chart.</p>{{end}}
</section>

{{if .HasLocations}}<section>
<h2>Result files</h2>
<p class="muted">Where each level's AIPerf files (profile export, per-request records) were written.</p>
<div class="tablewrap"><table>
<thead><tr><th>Level</th><th>Location</th></tr></thead>
<tbody>{{range .Levels}}{{if .Location}}
<tr><td class="name">{{.Name}}</td><td class="mono loc">{{.Location}}</td></tr>{{end}}{{end}}
</tbody>
</table></div>
</section>{{end}}

{{if .Charts}}<section>
<h2>Charts</h2>
<div class="charts">
{{range .Charts}}{{template "chart" .}}{{end}}
</div>
</section>{{end}}

{{if .Events}}<section>
<h2>Events</h2>
{{template "events" .Events}}
</section>{{end}}
{{template "foot"}}{{end}}
`
