package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Default chart size and plot margins, in SVG user units.
const (
	defaultW     = 640
	defaultH     = 380
	marginLeft   = 76
	marginRight  = 20
	marginTop    = 16
	marginBottom = 58
)

// Marker kinds.
const (
	markNone   = ""
	markDot    = "dot"
	markRing   = "ring"
	markSquare = "square"
)

// palette holds distinct, colour-blind-friendly series colours (Tableau 10,
// with the pale yellow darkened). Further series get generated hues.
var palette = []string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#c9a227", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f",
}

// seriesColor returns the colour of the i-th series.
func seriesColor(i int) string {
	if i < len(palette) {
		return palette[i]
	}
	// Golden-angle hues, medium saturation and lightness.
	h := math.Mod(float64(i-len(palette))*137.508+15, 360)
	return hslHex(h, 0.62, 0.42)
}

// hslHex converts an HSL colour (h in degrees, s and l in [0,1]) to #rrggbb.
func hslHex(h, s, l float64) string {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	to := func(v float64) int { return int(math.Round((v + m) * 255)) }
	return fmt.Sprintf("#%02x%02x%02x", to(r), to(g), to(b))
}

// xy is one data point of a chart series.
type xy struct {
	X, Y   float64
	Label  string // drawn next to the marker when the series labels points
	Tip    string // tooltip
	Hollow bool   // drawn as an outline (e.g. misses SLOs)
}

// series is one set of points drawn in one colour.
type series struct {
	Name        string
	Color       string
	Points      []xy
	Line        bool    // join the points in order
	LineWidth   float64 // default 2
	LineOpacity float64 // default 1
	Dash        string  // stroke-dasharray, "" for solid
	Marker      string  // markNone, markDot, markRing, markSquare
	MarkerR     float64 // default 4
	LabelPoints bool    // draw each point's Label
	LabelClass  string  // CSS class of the labels, default "pt"
	SortX       bool    // sort points by X before joining
	Legend      string  // legend swatch kind; "" leaves the series out
}

// chartSpec describes a chart to build.
type chartSpec struct {
	Title  string
	XLabel string // axis label, with unit
	YLabel string
	Empty  string // shown instead of the chart when nothing can be plotted
	W, H   int    // size; zero means defaultW × defaultH
	// XInteger keeps x ticks on whole numbers (concurrency, plan order).
	XInteger bool
	Series   []series
	Extra    []legendView // extra legend entries
}

// chartView is the template data of one chart; every coordinate is
// pre-formatted.
type chartView struct {
	Title, Empty   string
	W, H           int
	L, R, T, B     string
	PW, PH         string // plot width and height
	XTicks, YTicks []tickView
	XLabel, YLabel string
	XLabelX        string
	XLabelY        string
	YLabelX        string
	YLabelY        string
	TickX          string // x of y-tick labels
	TickY          string // y of x-tick labels
	Lines          []lineView
	Marks          []markView
	Texts          []textView
	Legend         []legendView
}

type tickView struct{ Pos, Label string }

type lineView struct{ Points, Color, Width, Dash, Opacity string }

type markView struct {
	Kind, X, Y, R, Fill, Stroke, StrokeWidth, Tip string
	// Square geometry.
	SX, SY, Side string
}

type textView struct{ X, Y, Anchor, Text, Class string }

// legendView is one legend entry. Kind is "dot", "line", "dash", "ring",
// "hollow" or "dotline" (a dot on a line).
type legendView struct{ Kind, Color, Name string }

// coord formats an SVG coordinate.
func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// niceScale extends [lo, hi] to an axis domain [min, max] whose ticks are
// multiples of step, a 1-2-5 number, with about n ticks. A degenerate or
// invalid range is widened.
func niceScale(lo, hi float64, n int) (mn, mx, step float64) {
	if !finite(lo) || !finite(hi) {
		lo, hi = 0, 1
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo == hi {
		if lo == 0 {
			hi = 1
		} else {
			d := math.Abs(lo) / 2
			lo, hi = lo-d, hi+d
		}
	}
	if n < 2 {
		n = 2
	}
	// Among the 1-2-5 steps near (hi-lo)/(n-1), take the one giving the tick
	// count closest to n, preferring the denser on ties.
	raw := (hi - lo) / float64(n-1)
	e := math.Floor(math.Log10(raw))
	best := math.Inf(1)
	for de := -1.0; de <= 1; de++ {
		for _, f := range []float64{1, 2, 5} {
			cand := f * math.Pow(10, e+de)
			count := math.Ceil(hi/cand-1e-9) - math.Floor(lo/cand+1e-9) + 1
			if d := math.Abs(count - float64(n)); d < best || (d == best && cand < step) {
				best, step = d, cand
			}
		}
	}
	// The tolerance keeps float noise (0.014/0.002 = 7.000000000000001)
	// from adding an empty interval; it moves a point by a negligible
	// fraction of a step at most.
	mn = math.Floor(lo/step+1e-9) * step
	mx = math.Ceil(hi/step-1e-9) * step
	return mn, mx, step
}

// tickDecimals is the number of decimals needed to print multiples of step.
func tickDecimals(step float64) int {
	return max(0, -int(math.Floor(math.Log10(step)+1e-9)))
}

// ticks returns the tick values of a nice domain.
func ticks(mn, mx, step float64) []float64 {
	dec := tickDecimals(step)
	var out []float64
	for i := 0; ; i++ {
		v := mn + float64(i)*step
		if v > mx+step/2 || i > 100 {
			break
		}
		// Round away float noise such as 0.30000000000000004.
		p := math.Pow(10, float64(dec))
		v = math.Round(v*p) / p
		if v == 0 {
			v = 0 // no -0
		}
		out = append(out, v)
	}
	return out
}

// buildChart lays out a chart: domains including zero with nice ticks, and
// every finite point projected into the plot area.
func buildChart(spec chartSpec) chartView {
	w, h := spec.W, spec.H
	if w <= 0 || h <= 0 {
		w, h = defaultW, defaultH
	}
	plotLeft, plotRight := float64(marginLeft), float64(w-marginRight)
	plotTop, plotBottom := float64(marginTop), float64(h-marginBottom)
	v := chartView{Title: spec.Title, W: w, H: h,
		L: coord(plotLeft), R: coord(plotRight), T: coord(plotTop), B: coord(plotBottom),
		PW: coord(plotRight - plotLeft), PH: coord(plotBottom - plotTop),
		XLabel: spec.XLabel, YLabel: spec.YLabel,
		XLabelX: coord((plotLeft + plotRight) / 2), XLabelY: coord(float64(h - 12)),
		YLabelX: coord(16), YLabelY: coord((plotTop + plotBottom) / 2),
		TickX: coord(plotLeft - 8), TickY: coord(plotBottom + 18),
	}

	// Keep only finite points; remember where lines must break.
	type seg struct{ pts []xy }
	clean := make([][]seg, len(spec.Series))
	xmin, xmax, ymin, ymax := 0.0, 0.0, 0.0, 0.0 // domains include zero
	any := false
	for si, s := range spec.Series {
		pts := s.Points
		if s.SortX {
			// Invalid points are dropped first: they cannot be ordered.
			pts = nil
			for _, p := range s.Points {
				if finite(p.X) && finite(p.Y) {
					pts = append(pts, p)
				}
			}
			sort.SliceStable(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		}
		cur := seg{}
		for _, p := range pts {
			if !finite(p.X) || !finite(p.Y) {
				if len(cur.pts) > 0 {
					clean[si] = append(clean[si], cur)
					cur = seg{}
				}
				continue
			}
			cur.pts = append(cur.pts, p)
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
			any = true
		}
		if len(cur.pts) > 0 {
			clean[si] = append(clean[si], cur)
		}
	}
	if !any {
		v.Empty = spec.Empty
		if v.Empty == "" {
			v.Empty = "No data to plot."
		}
		return v
	}
	// Headroom above the highest point for markers and labels.
	if ymax > 0 {
		ymax += (ymax - ymin) * 0.04
	}
	x0, x1, xs := niceScale(xmin, xmax, 7)
	if spec.XInteger && xs < 1 {
		xs = 1
		x0, x1 = math.Floor(xmin), math.Ceil(xmax)
		if x0 == x1 {
			x1++
		}
	}
	y0, y1, ys := niceScale(ymin, ymax, 6)
	px := func(x float64) float64 { return plotLeft + (x-x0)/(x1-x0)*(plotRight-plotLeft) }
	py := func(y float64) float64 { return plotBottom - (y-y0)/(y1-y0)*(plotBottom-plotTop) }

	xdec, ydec := tickDecimals(xs), tickDecimals(ys)
	for _, t := range ticks(x0, x1, xs) {
		v.XTicks = append(v.XTicks, tickView{Pos: coord(px(t)), Label: formatFloat(t, xdec)})
	}
	for _, t := range ticks(y0, y1, ys) {
		v.YTicks = append(v.YTicks, tickView{Pos: coord(py(t)), Label: formatFloat(t, ydec)})
	}

	for si, s := range spec.Series {
		width := s.LineWidth
		if width == 0 {
			width = 2
		}
		opacity := s.LineOpacity
		if opacity == 0 {
			opacity = 1
		}
		if s.Line {
			for _, sg := range clean[si] {
				if len(sg.pts) < 2 {
					continue
				}
				var b strings.Builder
				for i, p := range sg.pts {
					if i > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(coord(px(p.X)) + "," + coord(py(p.Y)))
				}
				v.Lines = append(v.Lines, lineView{Points: b.String(), Color: s.Color,
					Width: coord(width), Dash: s.Dash, Opacity: strconv.FormatFloat(opacity, 'f', 2, 64)})
			}
		}
		r := s.MarkerR
		if r == 0 {
			r = 4
		}
		for _, sg := range clean[si] {
			for _, p := range sg.pts {
				x, y := px(p.X), py(p.Y)
				if s.Marker != markNone {
					m := markView{Kind: s.Marker, X: coord(x), Y: coord(y), R: coord(r),
						Fill: s.Color, Stroke: "#ffffff", StrokeWidth: "1", Tip: p.Tip}
					switch {
					case s.Marker == markRing:
						m.Fill, m.Stroke, m.StrokeWidth = "none", s.Color, "2"
					case p.Hollow:
						m.Fill, m.Stroke, m.StrokeWidth = "#ffffff", s.Color, "2"
					}
					if s.Marker == markSquare {
						m.SX, m.SY, m.Side = coord(x-r), coord(y-r), coord(2*r)
					}
					v.Marks = append(v.Marks, m)
				}
				if s.LabelPoints && p.Label != "" {
					t := textView{X: coord(x + r + 3), Y: coord(y - r - 2), Anchor: "start",
						Text: truncate(p.Label, 28), Class: "pt"}
					if s.LabelClass != "" {
						t.Class = s.LabelClass
					}
					if x > plotLeft+0.7*(plotRight-plotLeft) {
						t.X, t.Anchor = coord(x-r-3), "end"
					}
					if y < plotTop+14 {
						t.Y = coord(y + r + 12)
					}
					v.Texts = append(v.Texts, t)
				}
			}
		}
		if s.Legend != "" {
			v.Legend = append(v.Legend, legendView{Kind: s.Legend, Color: s.Color, Name: s.Name})
		}
	}
	v.Legend = append(v.Legend, spec.Extra...)
	return v
}
