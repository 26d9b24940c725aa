package evokeui

import (
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io"
	"slices"
	"strings"
)

// writeIndented writes v as indented JSON.
func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"time":  fmtTime,
	"dash":  orDash,
	"short": func(s string) string { return firstLine(s, 120) },
	// errmsg and errstack split a stored error text into its message and
	// the stack of a recovered panic after it.
	"errmsg":   func(s any) string { m, _ := splitStack(fmt.Sprint(s)); return m },
	"errstack": func(s any) string { _, st := splitStack(fmt.Sprint(s)); return st },
	"phase": func(before, after string) string {
		if before == after {
			return orDash(after)
		}
		return orDash(before) + " → " + orDash(after)
	},
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 2em 2em; color: #222 }
header { display: flex; gap: 1.5em; align-items: baseline; border-bottom: 1px solid #ddd; margin-bottom: 1em }
header h1 { font-size: 18px } header a { color: #246 }
table { border-collapse: collapse; margin: .5em 0 1.5em } th, td { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; vertical-align: top }
th { background: #f5f5f5 } td.n { text-align: right; font-variant-numeric: tabular-nums }
.s-running, .s-compensating { color: #246 } .s-failing { color: #b60 } .s-parked { color: #c00; font-weight: bold }
.s-completed { color: #282 } .s-cancelled { color: #777 }
pre { background: #f7f7f7; padding: .6em; overflow: auto; max-height: 24em }
.msg { background: #ffd; border: 1px solid #ec6; padding: .4em .8em } .cmd { color: #555; padding-left: 2em }
form.inline { display: inline } button { margin-right: .5em }
</style></head><body>
<header><h1>evoke</h1><a href="/">process managers</a>{{if .Authorized}}<span>operator</span>{{else if .ReadOnly}}<span>read-only</span>{{end}}</header>
{{end}}

{{define "overview"}}{{template "head" .}}
<h2>Process managers</h2>
<p>{{.Backend}} store · {{.Stats.Events}} events · log head {{.Stats.Head}} · {{.Stats.Outbox}} commands queued · {{.Stats.Commands}} executed ({{.Stats.Rejected}} rejected)</p>
<table id="pms"><tr><th>process manager</th>{{range .Statuses}}<th>{{.}}</th>{{end}}<th>total</th><th>parked events</th><th></th></tr>
{{range .Rows}}{{$pm := .PM}}<tr><td><a href="/instances?pm={{.PM}}">{{.PM}}</a></td>
{{range $i, $c := .Counts}}<td class="n">{{if $c}}<a class="s-{{index $.Statuses $i}}" href="/instances?pm={{$pm}}&amp;status={{index $.Statuses $i}}">{{$c}}</a>{{else}}0{{end}}</td>{{end}}
<td class="n">{{.Total}}</td><td class="n">{{if .ParkedEvents}}<a class="s-parked" href="/instances?pm={{.PM}}#parked">{{.ParkedEvents}}</a>{{else}}0{{end}}</td>
<td><a href="/graph?pm={{.PM}}">state machine</a> · <a href="/replay?pm={{.PM}}">replay</a></td></tr>
{{else}}<tr><td colspan="10">no instances yet</td></tr>{{end}}
</table>
</body></html>{{end}}

{{define "instances"}}{{template "head" .}}
<h2>{{.Title}}</h2>
{{with .Msg}}<p class="msg" id="msg">{{.}}</p>{{end}}
<p>{{if .PM}}status: <a href="/instances?pm={{.PM}}">all</a>{{range .Statuses}} · <a href="/instances?pm={{$.PM}}&amp;status={{.}}">{{.}}</a>{{end}} · <a href="/graph?pm={{.PM}}">state machine</a>{{end}}</p>
<table id="instances"><tr><th>instance</th><th>status</th><th>phase</th><th>version</th><th>age</th><th>updated</th><th>next deadline</th><th>next attempt</th><th>last error</th></tr>
{{range .Rows}}<tr><td><a href="/instance?pm={{.ProcessManager}}&amp;id={{.ID}}">{{.ID}}</a></td><td class="s-{{.Status}}">{{.Status}}</td><td>{{dash .Phase}}</td>
<td class="n">{{.Version}}</td><td>{{.Age}}</td><td>{{.Updated}} ago</td><td>{{dash .Deadline}}</td><td>{{dash .Next}}</td><td>{{short .LastError}}</td></tr>
{{else}}<tr><td colspan="9">no instances</td></tr>{{end}}
</table>
{{if .Next}}<p><a href="{{.Next}}">next page</a></p>{{end}}
{{with .Parked}}<h3 id="parked">Events parked for {{$.PM}} ({{len .}}): its Correlate failed on them</h3>
<table id="parked-events"><tr><th>position</th><th>error</th><th></th></tr>
{{range .}}<tr><td class="n">{{.Position}}</td><td>{{short .Error}}</td><td>{{if $.Authorized}}
{{if $.CanRetryEvents}}<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{$.PM}}"><input type="hidden" name="position" value="{{.Position}}"><button name="action" value="retry-event">Retry</button></form>{{end}}
<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{$.PM}}"><input type="hidden" name="position" value="{{.Position}}"><button name="action" value="skip-event" id="skip-event-{{.Position}}">Skip</button></form>
{{end}}</td></tr>{{end}}</table>{{end}}
</body></html>{{end}}

{{define "instance"}}{{template "head" .}}
<h2>{{.PM}} <span id="instance-id">{{.ID}}</span>: <span id="status" class="s-{{.In.status}}">{{.In.status}}</span>{{with .In.phase}} ({{.}}){{end}}</h2>
{{with .Msg}}<p class="msg" id="msg">{{.}}</p>{{end}}
<p>version {{.In.version}} · partition {{.In.partition}} · created {{time .In.created_at}} · updated {{time .In.updated_at}}{{with .In.completed_at}} · ended {{time .}}{{end}}
{{with .In.next_attempt_at}} · next attempt {{time .}}{{end}}</p>
{{with .In.last_error}}<p>last error (attempt {{$.In.attempts}}):</p><pre id="last-error">{{errmsg .}}</pre>{{with errstack .}}<details id="stack"><summary>panic stack</summary><pre>{{.}}</pre></details>{{end}}{{end}}
{{if or .CanRetry .CanSkip .CanCancel}}<p id="actions">
{{if .Authorized}}
{{if .CanRetry}}<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{.PM}}"><input type="hidden" name="id" value="{{.ID}}"><button name="action" value="retry" id="retry">Retry</button></form>{{end}}
{{if .CanSkip}}<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{.PM}}"><input type="hidden" name="id" value="{{.ID}}"><button name="action" value="skip" id="skip">Skip the held event</button></form>{{end}}
{{if .CanCancel}}<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{.PM}}"><input type="hidden" name="id" value="{{.ID}}"><button name="action" value="cancel" id="cancel">Cancel</button></form>{{end}}
{{else if .ReadOnly}}(read-only: start <code>evoke serve</code> with a token to act){{else}}(open the address <code>evoke serve</code> printed, with its token, to retry, skip or cancel){{end}}
</p>{{end}}
{{with .State}}<h3>State</h3><pre id="state">{{.}}</pre>{{end}}
{{with .V.Deadlines}}<h3>Deadlines</h3><table id="deadlines"><tr><th>name</th><th>due</th></tr>{{range .}}<tr><td>{{.Name}}</td><td>{{.DueAt.Format "2006-01-02 15:04:05.000"}}</td></tr>{{end}}</table>{{end}}
{{with .V.Held}}<h3>Held events ({{len .}})</h3><table><tr><th>position</th><th>error</th></tr>{{range .}}<tr><td class="n">{{.Position}}</td><td>{{short .Error}}</td></tr>{{end}}</table>{{end}}
<h3>Timeline</h3>
<table id="timeline"><tr><th>at</th><th>what</th><th>event</th><th>phase</th><th>version</th><th>error</th></tr>
{{range .V.Timeline}}<tr><td>{{.At.Format "2006-01-02 15:04:05.000"}}</td><td>{{.Kind}}</td><td>{{.EventType}}{{if .Position}} @{{.Position}}{{end}}</td>
<td>{{phase .PhaseBefore .PhaseAfter}}</td><td class="n">{{.Version}}</td><td>{{short .Error}}</td></tr>
{{range .Commands}}<tr><td></td><td class="cmd" colspan="3">⇒ {{.Type}} to {{.AggregateType}}-{{.AggregateID}}</td><td colspan="2" class="o-{{.Outcome}}">{{.Outcome}}{{with .Reason}}: {{short .}}{{end}}</td></tr>{{end}}
{{end}}</table>
</body></html>{{end}}

{{define "graph"}}{{template "head" .}}
<h2>{{.PM}}: state machine</h2>
<p>From the transitions recorded by {{.G.Instances}} instances; each edge is labelled with its event and how many times it was taken. <a href="/instances?pm={{.PM}}">instances</a></p>
<div id="graph">{{.SVG}}</div>
<h3>Mermaid</h3><pre id="mermaid">{{.Mermaid}}</pre>
</body></html>{{end}}
`))

// SVG draws the state machine: phases in columns by their distance from
// the start, edges labelled with their event and count.
func (g *Graph) SVG() string {
	const colW, rowH, boxW, boxH, margin = 340, 80, 170, 34, 30
	layer := map[string]int{"": 0}
	edges := g.SortedEdges()
	for changed := true; changed; {
		changed = false
		for _, e := range edges {
			if l, ok := layer[e.From]; ok {
				if _, seen := layer[e.To]; !seen {
					layer[e.To], changed = l+1, true
				}
			}
		}
	}
	maxLayer := 0
	for _, l := range layer {
		maxLayer = max(maxLayer, l)
	}
	for _, e := range edges { // phases not reachable from the start
		for _, p := range []string{e.From, e.To} {
			if _, ok := layer[p]; !ok {
				layer[p] = maxLayer + 1
			}
		}
	}
	cols := map[int][]string{}
	for p, l := range layer {
		cols[l] = append(cols[l], p)
		maxLayer = max(maxLayer, l)
	}
	type pt struct{ x, y int }
	pos := map[string]pt{}
	rows := 0
	for l := 0; l <= maxLayer; l++ {
		slices.Sort(cols[l])
		for i, p := range cols[l] {
			pos[p] = pt{margin + l*colW, margin + i*rowH}
		}
		rows = max(rows, len(cols[l]))
	}
	w, h := 2*margin+maxLayer*colW+boxW, 2*margin+rows*rowH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>`)
	for _, e := range edges {
		a, c := pos[e.From], pos[e.To]
		x1, y1 := a.x+boxW, a.y+boxH/2
		if e.From == "" {
			x1 = a.x + 12
		}
		x2, y2 := c.x, c.y+boxH/2
		label := html.EscapeString(fmt.Sprintf("%s (%d)", e.On, g.Edges[e]))
		if x2 > x1 {
			fmt.Fprintf(&b, `<path d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="#555" marker-end="url(#arrow)"/>`, x1, y1, (x1+x2)/2, y1, (x1+x2)/2, y2, x2, y2)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#333">%s</text>`, (x1+x2)/2, (y1+y2)/2-5, label)
		} else { // back or within a column: loop below
			x1, x2 = a.x+boxW/2, c.x+boxW/2
			y1, y2 = a.y+boxH, c.y+boxH
			low := max(y1, y2) + 30
			fmt.Fprintf(&b, `<path d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="#a55" marker-end="url(#arrow)"/>`, x1, y1, x1, low, x2, low, x2, y2)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#a33">%s</text>`, (x1+x2)/2, low, label)
		}
	}
	for p, q := range pos {
		if p == "" {
			fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="9" fill="#333"><title>start</title></circle>`, q.x+3, q.y+boxH/2)
			continue
		}
		stroke := "1"
		if g.Ends[p] > 0 {
			stroke = "3"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="8" fill="#eef3fa" stroke="#246" stroke-width="%s"/>`, q.x, q.y, boxW, boxH, stroke)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" class="phase">%s</text>`, q.x+boxW/2, q.y+boxH/2+4, html.EscapeString(p))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
