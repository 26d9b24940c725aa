package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// Point is one value of a chart, at a categorical x.
type Point struct {
	X string
	Y float64
}

// Chart is a simple line or bar chart with categorical (evenly spaced) x
// values, drawn as a standalone SVG by SVG.
type Chart struct {
	Title, XLabel, YLabel string
	Points                []Point
	// Bars draws bars instead of a line.
	Bars bool
}

// SVG draws the chart: axes with ticks and labels, a grid, and every
// point's value written above it.
func (c Chart) SVG() []byte {
	const (
		w, h                     = 720, 420
		left, right, top, bottom = 80, 30, 50, 70
		pw, ph                   = w - left - right, h - top - bottom
	)
	maxY := 0.0
	for _, p := range c.Points {
		maxY = math.Max(maxY, p.Y)
	}
	step := niceStep(maxY / 5)
	top5 := step * math.Ceil(maxY/step)
	if top5 == 0 {
		top5 = 1
	}
	y := func(v float64) float64 { return top + ph - v/top5*ph }
	n := len(c.Points)
	slot := float64(pw) / float64(max(n, 1))
	x := func(i int) float64 { return left + slot*(float64(i)+0.5) }

	var b bytes.Buffer
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="28" text-anchor="middle" font-size="16" font-weight="bold">%s</text>`+"\n", w/2, esc(c.Title))
	for v := 0.0; v <= top5+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(v), left+pw, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, y(v)+4, fmtNum(v))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, top+ph)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	for i, p := range c.Points {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", x(i), top+ph, x(i), top+ph+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(i), top+ph+20, esc(p.X))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-20, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="20" y="%d" text-anchor="middle" transform="rotate(-90 20 %d)">%s</text>`+"\n", top+ph/2, top+ph/2, esc(c.YLabel))
	if c.Bars {
		bw := slot * 0.6
		for i, p := range c.Points {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4878b0"/>`+"\n", x(i)-bw/2, y(p.Y), bw, y(0)-y(p.Y))
		}
	} else if n > 0 {
		b.WriteString(`<polyline fill="none" stroke="#4878b0" stroke-width="2" points="`)
		for i, p := range c.Points {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(p.Y))
		}
		b.WriteString("\"/>\n")
		for i, p := range c.Points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="#4878b0"/>`+"\n", x(i), y(p.Y))
		}
	}
	for i, p := range c.Points {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x(i), y(p.Y)-9, fmtNum(p.Y))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	if s <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) || math.Abs(v) >= 100 {
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
