package report

import (
	"bytes"
	"html/template"
	"io"
)

// templates holds every report template. All dynamic text goes through
// html/template's contextual escaping, including text inside the SVG charts.
var templates = template.Must(template.New("report").Parse(pageTemplates + benchmarkTemplate + recommendationTemplate))

// render executes the named template into a buffer first, so that nothing is
// written to w when rendering fails.
func render(w io.Writer, name string, data any) error {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	_, err := buf.WriteTo(w)
	return err
}

const pageTemplates = `
{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="perfleet">
<title>{{.}}</title>
<style>
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#ffffff;--panel:#f9fafb;--accent:#2563eb}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;padding:24px 32px 48px;color:var(--fg);background:var(--bg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1400px;margin:0 auto}
h1{font-size:22px;margin:0 0 4px;font-weight:650;overflow-wrap:anywhere}
h2{font-size:17px;margin:32px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line);font-weight:650}
h3{font-size:15px;margin:0 0 6px}
.kind{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.06em;margin:0 0 2px}
p{margin:6px 0}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12px}
.wrap{overflow-wrap:anywhere;word-break:break-word}
.muted{color:var(--muted)}
.small{font-size:12px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:14px 0 0;max-width:1100px}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;line-height:18px;border:1px solid transparent;white-space:nowrap}
.badge.ok{background:#dcfce7;color:#166534;border-color:#bbf7d0}
.badge.bad{background:#fee2e2;color:#991b1b;border-color:#fecaca}
.badge.run{background:#dbeafe;color:#1e40af;border-color:#bfdbfe}
.badge.warn{background:#fef3c7;color:#92400e;border-color:#fde68a}
.badge.muted{background:#f3f4f6;color:#374151;border-color:#e5e7eb}
.alert{margin:14px 0;padding:10px 14px;border-radius:6px;background:#fef2f2;border:1px solid #fecaca;color:#7f1d1d;overflow-wrap:anywhere;white-space:pre-wrap}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0 0}
.card{flex:1 1 170px;max-width:280px;padding:10px 14px;border:1px solid var(--line);border-radius:8px;background:var(--panel)}
.card .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.card .k{color:var(--muted);font-size:12px}
.winner-box{margin:18px 0 0;padding:12px 16px;border:1px solid #bfdbfe;border-left:4px solid var(--accent);border-radius:6px;background:#eff6ff;overflow-wrap:anywhere}
.tablewrap{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600;color:#374151;font-size:12px;line-height:1.3}
tbody tr:last-child td{border-bottom:0}
tbody tr:nth-child(even) td{background:#fcfcfd}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
td.name{min-width:140px;max-width:320px;overflow-wrap:anywhere}
td.arn{min-width:220px;max-width:320px;word-break:break-all;font-size:11px}
td.loc{word-break:break-all}
td.src{min-width:110px}
.nowrap{white-space:nowrap}
tr.win td{background:#eff6ff!important}
td.err{color:#b91c1c;font-weight:600}
.swatch{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;vertical-align:baseline}
.wide{max-width:1000px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:20px}
figure.chart{margin:0;padding:12px 14px;border:1px solid var(--line);border-radius:8px;background:#fff;min-width:0}
figure.chart figcaption{font-weight:600;margin-bottom:6px}
figure.chart svg.plot{display:block;width:100%;height:auto;max-width:900px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg .tick{font-size:11px;fill:#4b5563}
svg .axis{font-size:12px;fill:#374151;font-weight:600}
svg .pt{font-size:10.5px;fill:#374151}
svg .win{font-size:12px;font-weight:700;fill:#111827}
ul.legend{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}
ul.legend li{display:flex;align-items:center;gap:6px;max-width:100%;overflow-wrap:anywhere}
ul.legend svg{flex:none}
p.empty{margin:0;padding:24px;color:var(--muted);background:var(--panel);border-radius:6px;text-align:center}
details{margin:8px 0;border:1px solid var(--line);border-radius:8px;background:#fff}
details>summary{cursor:pointer;padding:8px 12px;font-weight:600;overflow-wrap:anywhere}
details[open]>summary{border-bottom:1px solid var(--line)}
details .body{padding:10px 14px}
pre.log{margin:0;padding:10px 14px;max-height:480px;overflow:auto;white-space:pre-wrap;word-break:break-all;background:var(--panel)}
ul.chips{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:6px}
ul.chips li{padding:1px 8px;border-radius:4px;background:#eef2ff;color:#3730a3;font-size:12px;overflow-wrap:anywhere}
ul.notes{margin:6px 0;padding-left:20px}
ul.notes li{margin:3px 0;overflow-wrap:anywhere}
table.env{width:auto;max-width:100%}
table.env td{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{body{padding:0}.charts{grid-template-columns:1fr}figure.chart,.tablewrap,details{break-inside:avoid}}
</style>
</head>
<body>
<main>
{{end}}

{{define "foot"}}<footer>Generated by perfleet. This file is self-contained: no scripts, no external resources.</footer>
</main>
</body>
</html>
{{end}}

{{define "badge"}}<span class="badge {{.Class}}">{{.Text}}</span>{{end}}

{{define "chart"}}<figure class="chart">
<figcaption>{{.Title}}</figcaption>
{{if .Empty}}<p class="empty">{{.Empty}}</p>
{{else}}<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.W}} {{.H}}" width="{{.W}}" height="{{.H}}" role="img" aria-label="{{.Title}}">
<rect x="{{.L}}" y="{{.T}}" width="{{.PW}}" height="{{.PH}}" fill="#ffffff"/>
<g stroke="#e5e7eb" stroke-width="1">{{range .YTicks}}
<line x1="{{$.L}}" x2="{{$.R}}" y1="{{.Pos}}" y2="{{.Pos}}"/>{{end}}{{range .XTicks}}
<line x1="{{.Pos}}" x2="{{.Pos}}" y1="{{$.T}}" y2="{{$.B}}"/>{{end}}
</g>
<g stroke="#6b7280" stroke-width="1">
<line x1="{{.L}}" x2="{{.R}}" y1="{{.B}}" y2="{{.B}}"/>
<line x1="{{.L}}" x2="{{.L}}" y1="{{.T}}" y2="{{.B}}"/>
</g>
<g class="tick" text-anchor="end">{{range .YTicks}}
<text class="tick" x="{{$.TickX}}" y="{{.Pos}}" dy="4" text-anchor="end" font-size="11" fill="#4b5563">{{.Label}}</text>{{end}}
</g>
<g class="tick" text-anchor="middle">{{range .XTicks}}
<text class="tick" x="{{.Pos}}" y="{{$.TickY}}" text-anchor="middle" font-size="11" fill="#4b5563">{{.Label}}</text>{{end}}
</g>
<text class="axis" x="{{.XLabelX}}" y="{{.XLabelY}}" text-anchor="middle" font-size="12" fill="#374151">{{.XLabel}}</text>
<text class="axis" transform="translate({{.YLabelX}},{{.YLabelY}}) rotate(-90)" text-anchor="middle" font-size="12" fill="#374151">{{.YLabel}}</text>
<g fill="none" stroke-linejoin="round" stroke-linecap="round">{{range .Lines}}
<polyline points="{{.Points}}" stroke="{{.Color}}" stroke-width="{{.Width}}" opacity="{{.Opacity}}"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/>{{end}}
</g>
<g>{{range .Marks}}
{{if eq .Kind "square"}}<rect x="{{.SX}}" y="{{.SY}}" width="{{.Side}}" height="{{.Side}}" fill="{{.Fill}}" stroke="{{.Stroke}}" stroke-width="{{.StrokeWidth}}">{{else}}<circle cx="{{.X}}" cy="{{.Y}}" r="{{.R}}" fill="{{.Fill}}" stroke="{{.Stroke}}" stroke-width="{{.StrokeWidth}}">{{end}}{{if .Tip}}<title>{{.Tip}}</title>{{end}}{{if eq .Kind "square"}}</rect>{{else}}</circle>{{end}}{{end}}
</g>
<g>{{range .Texts}}
<text class="{{.Class}}" x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}">{{.Text}}</text>{{end}}
</g>
</svg>
{{template "legend" .Legend}}{{end}}</figure>
{{end}}

{{define "legend"}}{{if .}}<ul class="legend">{{range .}}
<li><svg xmlns="http://www.w3.org/2000/svg" width="24" height="12" viewBox="0 0 24 12" aria-hidden="true">{{if eq .Kind "line"}}<line x1="1" y1="6" x2="23" y2="6" stroke="{{.Color}}" stroke-width="2.5"/>{{else if eq .Kind "dash"}}<line x1="1" y1="6" x2="23" y2="6" stroke="{{.Color}}" stroke-width="2.5" stroke-dasharray="5 3"/>{{else if eq .Kind "ring"}}<circle cx="12" cy="6" r="5" fill="none" stroke="{{.Color}}" stroke-width="2"/>{{else if eq .Kind "hollow"}}<circle cx="12" cy="6" r="4" fill="#ffffff" stroke="{{.Color}}" stroke-width="2"/>{{else if eq .Kind "dotline"}}<line x1="1" y1="6" x2="23" y2="6" stroke="{{.Color}}" stroke-width="2"/><circle cx="12" cy="6" r="3.5" fill="{{.Color}}"/>{{else}}<circle cx="12" cy="6" r="4.5" fill="{{.Color}}"/>{{end}}</svg><span>{{.Name}}</span></li>{{end}}
</ul>{{end}}{{end}}

{{define "events"}}{{if .}}<details>
<summary>Events ({{len .}})</summary>
<pre class="log">{{range .}}{{.}}
{{end}}</pre>
</details>{{end}}{{end}}
`
