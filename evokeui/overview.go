package evokeui

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokestore"
)

// The overview's charts span chartSpan, in chartBuckets intervals for the
// instances that ended (read from the store); the checkpoint lag and the
// parked instances are sampled by the UI itself, at most every
// Options.SampleEvery, when the overview or /metrics is requested.
const (
	chartSpan    = 15 * time.Minute
	chartBuckets = 15
)

// liveStatuses are the statuses of instances that have not ended, in the
// order the overview shows them; the ended ones are shown by outcome.
var liveStatuses = []evokestore.InstanceStatus{evokestore.StatusRunning, evokestore.StatusCompensating, evokestore.StatusFailing, evokestore.StatusParked}

// pmSnapshot is what the overview and /metrics show of one process
// manager.
type pmSnapshot struct {
	PM string
	// Live counts instances by live status (liveStatuses' order), Ended
	// by outcome (evokestore.Outcomes' order).
	Live, Ended []int64
	Total       int64
	// ParkedEvents counts the events parked because Correlate failed.
	ParkedEvents int
	// Lag is the log head less the lowest checkpoint of the process
	// manager's partitions; Partitions how many have a checkpoint.
	Lag        int64
	Partitions int
}

// snapshot is the store as the overview and /metrics show it.
type snapshot struct {
	At    time.Time
	Stats evokestore.Stats
	// Executed and Rejected count commands, inline ones included when the
	// store can tell (Tallied).
	Executed, Rejected int64
	Tallied            bool
	PMs                []pmSnapshot
}

// snapshot reads the store's counts.
func (u *ui) snapshot(ctx context.Context) (*snapshot, error) {
	s, err := u.st.Stats(ctx)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{At: u.now(), Stats: s, Executed: s.Commands, Rejected: s.Rejected}
	var outcomes map[string]map[evokestore.InstanceOutcome]int64
	if tr, ok := u.st.(evokestore.TallyReader); ok {
		t, err := u.tally(ctx, tr)
		if err != nil {
			return nil, err
		}
		snap.Executed, snap.Rejected, snap.Tallied, outcomes = t.Executed, t.Rejected, true, t.Outcomes
	}
	for _, pm := range slices.Sorted(maps.Keys(s.Instances)) {
		by := s.Instances[pm]
		held, err := evokeops.ParkedEvents(ctx, u.st, pm)
		if err != nil {
			return nil, err
		}
		ps := pmSnapshot{PM: pm, ParkedEvents: len(held)}
		for _, st := range liveStatuses {
			ps.Live = append(ps.Live, by[st])
		}
		for _, o := range evokestore.Outcomes {
			n := outcomes[pm][o]
			if outcomes == nil { // by status only
				switch o {
				case evokestore.EndCompleted:
					n = by[evokestore.StatusCompleted]
				case evokestore.EndCancelled:
					n = by[evokestore.StatusCancelled]
				}
			}
			ps.Ended = append(ps.Ended, n)
		}
		for _, n := range by {
			ps.Total += n
		}
		if ps.Lag, ps.Partitions, err = u.lag(ctx, pm, s.Head); err != nil {
			return nil, err
		}
		snap.PMs = append(snap.PMs, ps)
	}
	u.record(snap)
	return snap, nil
}

// tally reads the store's tally, reading only the log after the last one.
func (u *ui) tally(ctx context.Context, tr evokestore.TallyReader) (evokestore.Tally, error) {
	u.tallied.mu.Lock()
	defer u.tallied.mu.Unlock()
	t, err := tr.Tally(ctx, u.tallied.last)
	if err != nil {
		return t, err
	}
	u.tallied.last = &t
	return t, nil
}

// maxPartitions bounds the partitions lag looks at.
const maxPartitions = 4096

// lag returns the log head less the lowest checkpoint of pm's partitions
// (0, 0 if pm has none yet), and how many partitions have a checkpoint:
// those from 0 up to the first without one.
func (u *ui) lag(ctx context.Context, pm string, head int64) (int64, int, error) {
	low, n := head, 0
	for p := range maxPartitions {
		cp, ok, err := u.st.Checkpoint(ctx, pm, p)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			break
		}
		low, n = min(low, cp.Position), n+1
	}
	if n == 0 {
		return 0, 0, nil
	}
	return max(head-low, 0), n, nil
}

// sample is one reading of the sampled series.
type sample struct {
	At time.Time
	// Lag and Parked (instances) by process manager.
	Lag, Parked map[string]int64
}

// samples keeps the readings of the last chartSpan.
type samples struct {
	mu   sync.Mutex
	list []sample
}

// record keeps a reading of snap unless the last one is more recent than
// Options.SampleEvery.
func (u *ui) record(snap *snapshot) {
	s := sample{At: snap.At, Lag: map[string]int64{}, Parked: map[string]int64{}}
	for _, p := range snap.PMs {
		s.Lag[p.PM], s.Parked[p.PM] = p.Lag, p.Live[3]
	}
	u.samples.mu.Lock()
	defer u.samples.mu.Unlock()
	l := u.samples.list
	if n := len(l); n > 0 && s.At.Sub(l[n-1].At) < u.opts.SampleEvery {
		return
	}
	i := 0
	for i < len(l) && s.At.Sub(l[i].At) > chartSpan {
		i++
	}
	u.samples.list = append(l[i:], s)
}

// sampled returns the readings kept.
func (u *ui) sampled() []sample {
	u.samples.mu.Lock()
	defer u.samples.mu.Unlock()
	return slices.Clone(u.samples.list)
}

// chartPM is one process manager's charts.
type chartPM struct {
	PM                 string
	Ended, Lag, Parked template.HTML
}

// charts draws, per process manager, the instances ended per minute (from
// the store), the checkpoint lag and the parked instances (sampled).
func (u *ui) charts(ctx context.Context, snap *snapshot) ([]chartPM, error) {
	end := snap.At.Truncate(chartSpan / chartBuckets).Add(chartSpan / chartBuckets)
	since := end.Add(-chartSpan)
	var ended map[string][]int64
	if tr, ok := u.st.(evokestore.TallyReader); ok {
		var err error
		if ended, err = tr.Ended(ctx, since, chartSpan/chartBuckets, chartBuckets); err != nil {
			return nil, err
		}
	}
	smp := u.sampled()
	var out []chartPM
	for _, p := range snap.PMs {
		c := chartPM{PM: p.PM}
		if ended != nil {
			var pts []point
			counts := ended[p.PM]
			for i := range chartBuckets {
				var n int64
				if counts != nil {
					n = counts[i]
				}
				pts = append(pts, point{since.Add(time.Duration(i) * chartSpan / chartBuckets), float64(n)})
			}
			c.Ended = barChart(p.PM, "ended", "instances ended per minute", since, end, pts)
		}
		var lag, parked []point
		for _, s := range smp {
			if v, ok := s.Lag[p.PM]; ok {
				lag = append(lag, point{s.At, float64(v)})
				parked = append(parked, point{s.At, float64(s.Parked[p.PM])})
			}
		}
		c.Lag = lineChart(p.PM, "lag", "checkpoint lag (log positions behind the head)", since, end, lag)
		c.Parked = lineChart(p.PM, "parked", "parked instances", since, end, parked)
		out = append(out, c)
	}
	return out, nil
}

// point is one value of a chart at a time.
type point struct {
	At time.Time
	V  float64
}

// Chart geometry: the plot area inside margins for the axis labels.
const (
	chartW, chartH                 = 320, 120
	chartLeft, chartRight          = 44, 8
	chartTop, chartBottom          = 18, 22
	plotW, plotH                   = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
	chartBar, chartLine, chartAxis = "#4a7ebb", "#c0392b", "#888"
)

// chartFrame starts an SVG chart of a metric of pm from since to end with
// a y axis up to top: the title, the axes, their labels.
func chartFrame(b *strings.Builder, pm, metric, title string, since, end time.Time, top float64, n int) {
	fmt.Fprintf(b, `<svg class="chart" data-pm="%s" data-metric="%s" data-points="%d" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="10" role="img">`,
		html.EscapeString(pm), metric, n, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<title>%s: %s</title>`, html.EscapeString(pm), html.EscapeString(title))
	fmt.Fprintf(b, `<text x="%d" y="12" font-size="11" fill="#333">%s</text>`, chartLeft, html.EscapeString(title))
	x0, y0, x1 := chartLeft, chartTop+plotH, chartLeft+plotW
	fmt.Fprintf(b, `<path d="M%d,%d V%d H%d" fill="none" stroke="%s"/>`, x0, chartTop, y0, x1, chartAxis)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" fill="#555">%s</text>`, x0-4, chartTop+4, fmtNum(top))
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" fill="#555">0</text>`, x0-4, y0)
	fmt.Fprintf(b, `<text x="%d" y="%d" fill="#555">%s</text>`, x0, y0+14, since.Local().Format("15:04"))
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" fill="#555">%s</text>`, x1, y0+14, end.Local().Format("15:04"))
}

// scale returns a round top for the y axis at or above the highest value.
func scale(pts []point) float64 {
	top := 0.0
	for _, p := range pts {
		top = max(top, p.V)
	}
	if top <= 0 {
		return 1
	}
	return roundTop(top)
}

// roundTop rounds v up to 1, 2 or 5 times a power of ten.
func roundTop(v float64) float64 {
	m := 1.0
	for m*10 <= v {
		m *= 10
	}
	for _, s := range []float64{1, 2, 5, 10} {
		if s*m >= v {
			return s * m
		}
	}
	return 10 * m
}

func fmtNum(v float64) string {
	if v >= 1e6 {
		return fmt.Sprintf("%.3gM", v/1e6)
	}
	if v >= 1e4 {
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

// xOf places t on the time axis.
func xOf(t, since, end time.Time) float64 {
	f := float64(t.Sub(since)) / float64(end.Sub(since))
	return float64(chartLeft) + min(max(f, 0), 1)*plotW
}

// barChart draws one bar per interval starting at each point's time.
func barChart(pm, metric, title string, since, end time.Time, pts []point) template.HTML {
	var b strings.Builder
	top := scale(pts)
	chartFrame(&b, pm, metric, title, since, end, top, len(pts))
	w := plotW / float64(max(len(pts), 1))
	for _, p := range pts {
		h := p.V / top * plotH
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			xOf(p.At, since, end)+1, float64(chartTop+plotH)-h, max(w-2, 1), h, chartBar, p.At.Local().Format("15:04"), fmtNum(p.V))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineChart draws the points joined by a line, each marked; with none, it
// says that sampling has just begun.
func lineChart(pm, metric, title string, since, end time.Time, pts []point) template.HTML {
	var b strings.Builder
	top := scale(pts)
	chartFrame(&b, pm, metric, title, since, end, top, len(pts))
	yOf := func(v float64) float64 { return float64(chartTop+plotH) - v/top*plotH }
	if len(pts) > 1 {
		b.WriteString(`<polyline fill="none" stroke="` + chartLine + `" stroke-width="1.5" points="`)
		for i, p := range pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", xOf(p.At, since, end), yOf(p.V))
		}
		b.WriteString(`"/>`)
	}
	for _, p := range pts {
		fmt.Fprintf(&b, `<circle class="sample" cx="%.1f" cy="%.1f" r="2" fill="%s"><title>%s: %s</title></circle>`,
			xOf(p.At, since, end), yOf(p.V), chartLine, p.At.Local().Format("15:04:05"), fmtNum(p.V))
	}
	if len(pts) < 2 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#888">sampled while the UI is open</text>`, chartLeft+plotW/2, chartTop+plotH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
