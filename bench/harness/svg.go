package main

import (
	"fmt"
	"math"
	"strings"
)

// A small SVG line chart: enough for the plots in bench/RESULTS.md, with
// no plotting dependency.

type series struct {
	Name   string
	Color  string
	Dashed bool
	X, Y   []float64
}

type chart struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	Series                []series
}

const (
	svgW, svgH                   = 640, 380
	padL, padR, padT, padB       = 70, 170, 40, 50
	plotW, plotH                 = svgW - padL - padR, svgH - padT - padB
	axisColor, gridColor, txtCol = "#444", "#ddd", "#222"
)

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	first, last := math.Floor(lo/step+1e-9), math.Ceil(hi/step-1e-9)
	for i := first; i <= last; i++ {
		out = append(out, i*step)
	}
	return out
}

func fmtTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%gk", v/1000)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
}

// logTicks returns 1-2-5 ticks covering [lo, hi] (both > 0) and the
// decade exponents the axis spans.
func logTicks(lo, hi float64) (ticks []float64, e0, e1 float64) {
	e0, e1 = math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if e1 == e0 {
		e1++
	}
	for e := e0; e <= e1; e++ {
		for _, m := range []float64{1, 2, 5} {
			if v := m * math.Pow(10, e); v <= math.Pow(10, e1)*1.0001 {
				ticks = append(ticks, v)
			}
		}
	}
	return ticks, e0, e1
}

// render returns the chart as an SVG document.
func (c chart) render() string {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), 0.0
	usable := func(x, y float64) bool { return !(c.LogX && x <= 0) && !(c.LogY && y <= 0) }
	for _, s := range c.Series {
		for i := range s.X {
			if !usable(s.X[i], s.Y[i]) {
				continue
			}
			xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			ymin, ymax = math.Min(ymin, s.Y[i]), math.Max(ymax, s.Y[i])
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax, ymin, ymax = 1, 10, 1, 10
	}
	if ymax == 0 {
		ymax = 1
	}
	var xt, yt []float64
	fx := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*plotW }
	if c.LogX {
		var lo, hi float64
		xt, lo, hi = logTicks(xmin, xmax)
		fx = func(x float64) float64 { return padL + (math.Log10(x)-lo)/(hi-lo)*plotW }
	} else {
		xt = niceTicks(math.Min(0, xmin), xmax, 6)
		xmin, xmax = xt[0], xt[len(xt)-1]
	}
	var fy func(float64) float64
	if c.LogY {
		var lo, hi float64
		yt, lo, hi = logTicks(ymin, ymax)
		fy = func(y float64) float64 { return padT + plotH - (math.Log10(y)-lo)/(hi-lo)*plotH }
	} else {
		yt = niceTicks(0, ymax*1.05, 5)
		ytop := yt[len(yt)-1]
		fy = func(y float64) float64 { return padT + plotH - y/ytop*plotH }
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14" font-weight="bold" fill="%s">%s</text>`+"\n", padL, txtCol, esc(c.Title))
	for _, v := range yt {
		y := fy(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", padL, y, padL+plotW, y, gridColor)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", padL-6, y+4, txtCol, fmtTick(v))
	}
	for _, v := range xt {
		x := fx(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x, padT, x, padT+plotH, gridColor)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", x, padT+plotH+16, txtCol, fmtTick(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="%s"/>`+"\n", padL, padT, plotW, plotH, axisColor)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", padL+plotW/2, svgH-12, txtCol, esc(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16,%d) rotate(-90)" text-anchor="middle" fill="%s">%s</text>`+"\n", padT+plotH/2, txtCol, esc(c.YLabel))
	for i, s := range c.Series {
		var pts []string
		for j := range s.X {
			if !usable(s.X[j], s.Y[j]) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", fx(s.X[j]), fy(s.Y[j])))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="5,4"`
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.Color, dash)
		}
		for _, p := range pts {
			xy := strings.Split(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], s.Color)
		}
		ly := padT + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", padL+plotW+12, ly, padL+plotW+36, ly, s.Color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", padL+plotW+42, ly+4, txtCol, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
