package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"time"
)

// Window summarises the steps whose triggering event was appended in one
// slice of a run: from At seconds after the timed run started, for the
// run's window length.
type Window struct {
	At float64 `json:"at"`
	// Steps counts the commands measured in the window; PerSec is that
	// count as a rate.
	Steps  int     `json:"steps"`
	PerSec float64 `json:"per_sec"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	// CommitP99 is the 99th percentile of the latency to the steps'
	// commits (Step.Committed), 0 when none was measured.
	CommitP99 float64 `json:"commit_p99"`
	// AppendMax is the longest of the producer's appends that began in
	// the window, in milliseconds (0: none began): an OrderPlaced step's
	// latency includes its event's append.
	AppendMax float64 `json:"append_max,omitempty"`
}

// Append is one of the producer's appends: when it began and how long it
// took.
type Append struct {
	At   time.Time
	Took time.Duration
}

// SummariseAppends summarises how long the appends took.
func SummariseAppends(appends []Append) Latency {
	d := make([]time.Duration, len(appends))
	for i, a := range appends {
		d[i] = a.Took
	}
	return summariseOwned(d)
}

// AppendsInto sets each window's AppendMax from the appends that began in
// it (a window of width w from start, as TimelineOf made them); appends
// past the timeline's last window are left out.
func AppendsInto(tl []Window, appends []Append, start time.Time, w time.Duration) {
	if w <= 0 {
		return
	}
	for _, a := range appends {
		if i := max(int(a.At.Sub(start)/w), 0); i < len(tl) {
			tl[i].AppendMax = max(tl[i].AppendMax, ms(a.Took))
		}
	}
}

// TargetP99 is the target for the step latency's 99th percentile,
// in milliseconds, drawn across a timeline.
const TargetP99 = 20

// TimelineOf groups steps by their trigger time into windows of width w
// from start, and summarises each; windows with no step are kept (with
// zero counts) so that a stall shows as a gap in throughput.
func TimelineOf(steps []Step, start time.Time, w time.Duration) []Window {
	if w <= 0 || len(steps) == 0 {
		return nil
	}
	var groups, commits [][]time.Duration
	for _, s := range steps {
		i := max(int(s.Trigger.Sub(start)/w), 0)
		for len(groups) <= i {
			groups, commits = append(groups, nil), append(commits, nil)
		}
		groups[i] = append(groups[i], s.Latency)
		if s.Committed > 0 {
			commits[i] = append(commits[i], s.Committed)
		}
	}
	out := make([]Window, len(groups))
	for i, g := range groups {
		l := summariseOwned(g)
		out[i] = Window{At: (time.Duration(i) * w).Seconds(), Steps: l.Count, PerSec: float64(l.Count) / w.Seconds(), P50: l.P50, P99: l.P99, Max: l.Max,
			CommitP99: summariseOwned(commits[i]).P99}
	}
	return out
}

// TimelineSVG draws a run's timeline: above, the p50, p99 and maximum step
// latency of each window, the p99 to the commit and the longest of the
// producer's appends where measured; below, the steps triggered per second. title
// heads the drawing; target, if positive, is drawn as a dashed line across
// the latency panel.
func TimelineSVG(title string, tl []Window, target float64) []byte {
	const (
		w, h               = 900, 560
		left, right, top   = 80, 150, 50
		latH, gap, rateH   = 280, 60, 120
		pw                 = w - left - right
		latTop, rateTop    = top, top + latH + gap
		latBottom, rateBot = latTop + latH, rateTop + rateH
	)
	end := 0.0
	maxLat, maxRate := target, 0.0
	commits, appends := false, false
	for _, x := range tl {
		maxLat = math.Max(maxLat, math.Max(x.Max, math.Max(x.CommitP99, x.AppendMax)))
		commits = commits || x.CommitP99 > 0
		appends = appends || x.AppendMax > 0
		maxRate = math.Max(maxRate, x.PerSec)
	}
	if len(tl) > 0 {
		end = tl[len(tl)-1].At + (tl[len(tl)-1].At-tl[0].At)/math.Max(float64(len(tl)-1), 1)
	}
	end = math.Max(end, 0.001)
	latStep, rateStep, tStep := niceStep(maxLat/5), niceStep(maxRate/3), niceStep(end/10)
	latTopV, rateTopV := math.Max(latStep*math.Ceil(maxLat/latStep), 1), math.Max(rateStep*math.Ceil(maxRate/rateStep), 1)
	x := func(t float64) float64 { return left + t/end*pw }
	yl := func(v float64) float64 { return latBottom - v/latTopV*latH }
	yr := func(v float64) float64 { return rateBot - v/rateTopV*rateH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="28" text-anchor="middle" font-size="16" font-weight="bold">%s</text>`+"\n", left+pw/2, html.EscapeString(title))
	axis := func(topY, botY int, step, topV float64, y func(float64) float64, label string) {
		for v := 0.0; v <= topV+step/2; v += step {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(v), left+pw, y(v))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, y(v)+4, fmtNum(v))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, topY, left, botY)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, botY, left+pw, botY)
		mid := (topY + botY) / 2
		fmt.Fprintf(&b, `<text x="22" y="%d" text-anchor="middle" transform="rotate(-90 22 %d)">%s</text>`+"\n", mid, mid, label)
		for t := 0.0; t <= end+tStep/100; t += tStep {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", x(t), botY, x(t), botY+5)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), botY+18, fmtNum(t))
		}
	}
	axis(latTop, latBottom, latStep, latTopV, yl, "step latency (ms)")
	axis(rateTop, rateBot, rateStep, rateTopV, yr, "steps/s")
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">seconds into the run (trigger appended)</text>`+"\n", left+pw/2, rateBot+38)
	if target > 0 {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c03030" stroke-dasharray="6 4"/>`+"\n", left, yl(target), left+pw, yl(target))
	}
	line := func(color string, y func(float64) float64, v func(Window) float64, width float64) {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" points="`, color, width)
		for _, p := range tl {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.At), y(v(p)))
		}
		b.WriteString("\"/>\n")
	}
	line("#bbbbbb", yl, func(p Window) float64 { return p.Max }, 1)
	if commits {
		line("#8050a0", yl, func(p Window) float64 { return p.CommitP99 }, 1.5)
	}
	if appends {
		line("#40a040", yl, func(p Window) float64 { return p.AppendMax }, 1)
	}
	line("#e08020", yl, func(p Window) float64 { return p.P99 }, 1.5)
	line("#4878b0", yl, func(p Window) float64 { return p.P50 }, 1.5)
	line("#4878b0", yr, func(p Window) float64 { return p.PerSec }, 1.5)
	legend := []struct{ color, name string }{{"#bbbbbb", "max"}, {"#e08020", "p99"}, {"#4878b0", "p50"}}
	if commits {
		legend = append(legend, struct{ color, name string }{"#8050a0", "p99 to commit"})
	}
	if appends {
		legend = append(legend, struct{ color, name string }{"#40a040", "longest append"})
	}
	if target > 0 {
		legend = append(legend, struct{ color, name string }{"#c03030", fmt.Sprintf("target %s ms", fmtNum(target))})
	}
	for i, l := range legend {
		yy := latTop + 10 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", left+pw+15, yy, left+pw+40, yy, l.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+pw+46, yy+4, html.EscapeString(l.name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
