package evokeui

import (
	"fmt"
	"html"
	"html/template"
	"slices"
	"strings"
)

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"time":  fmtTime,
	"dash":  orDash,
	"short": func(s string) string { return firstLine(s, 120) },
	// errmsg and errstack split a stored error text into its message and
	// the stack of a recovered panic after it.
	"errmsg":   func(s any) string { m, _ := splitStack(fmt.Sprint(s)); return m },
	"errstack": func(s any) string { _, st := splitStack(fmt.Sprint(s)); return st },
	// long: a text that a short line cannot show whole.
	"long": func(s string) bool { return len(s) > 120 || strings.Contains(s, "\n") },
	"phase": func(before, after string) string {
		if before == after {
			return orDash(after)
		}
		return orDash(before) + " → " + orDash(after)
	},
	"label": func(s any) string { return strings.ReplaceAll(fmt.Sprint(s), "_", " ") },
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
{{with .Refresh}}<meta http-equiv="refresh" content="{{.}}">{{end}}
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 2em 2em; color: #222 }
header { display: flex; gap: 1.5em; align-items: baseline; border-bottom: 1px solid #ddd; margin-bottom: 1em }
header h1 { font-size: 18px } header a { color: #246 } header form { margin-left: auto }
table { border-collapse: collapse; margin: .5em 0 1.5em } th, td { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; vertical-align: top }
th { background: #f5f5f5 } td.n { text-align: right; font-variant-numeric: tabular-nums } th.group { text-align: center; border-bottom: 1px solid #ccc }
.s-running, .s-compensating { color: #246 } .s-failing { color: #b60 } .s-parked { color: #c00; font-weight: bold }
.s-completed { color: #1a7f37 } .s-cancelled { color: #6e7781 }
.o-completed { color: #1a7f37 } .o-compensated { color: #b35900 } .o-timed_out { color: #8250df } .o-cancelled { color: #6e7781 }
.badge { display: inline-block; padding: 0 .5em; border-radius: .8em; border: 1px solid currentColor; font-size: 13px }
.o-accepted { color: #1a7f37 } .o-rejected { color: #c00 } .o-pending { color: #777 }
pre { background: #f7f7f7; padding: .6em; overflow: auto; max-height: 24em; white-space: pre-wrap; overflow-wrap: anywhere }
details > summary { cursor: pointer } details pre { margin: .3em 0 }
.msg { background: #ffd; border: 1px solid #ec6; padding: .4em .8em } .cmd { color: #555; padding-left: 2em }
.warn { background: #fee; border: 1px solid #e99; padding: .4em .8em }
.confirm { background: #fff4e5; border: 1px solid #e9a23b; padding: .6em 1em }
form.inline { display: inline } button, a.button { margin-right: .5em }
a.button { display: inline-block; padding: 1px 8px; border: 1px solid #888; border-radius: 3px; background: #eee; color: #222; text-decoration: none; font-size: 13px }
form.filter { margin: .5em 0 } form.filter label { margin-right: .8em }
.charts { display: flex; flex-wrap: wrap; gap: 1em; margin-bottom: 1em } .charts svg { border: 1px solid #eee; background: #fff }
#graph svg { max-width: 100%; height: auto }
.held-event { border-left: 3px solid #c00; padding: 0 0 0 .8em; margin-bottom: 1em } .held-event p { margin: .3em 0 }
</style></head><body>
<header><h1>evoke</h1><a href="/">process managers</a><a href="/instances">instances</a>{{if .Authorized}}<span>operator</span>{{else if .ReadOnly}}<span>read-only</span>{{end}}
<form method="get" action="/instances" role="search"><input type="search" name="q" placeholder="instance ID" aria-label="instance ID" size="24"> <button>find</button></form></header>
{{end}}

{{define "err"}}{{if long .}}<details class="error"><summary>{{short .}}</summary><pre>{{.}}</pre></details>{{else}}{{.}}{{end}}{{end}}

{{define "overview"}}{{template "head" .}}
<h2>Process managers</h2>
<p id="counts">{{.Backend}} store · {{.S.Stats.Events}} events · log head {{.S.Stats.Head}} · {{.S.Stats.Outbox}} commands queued · <span id="executed">{{.S.Executed}} commands executed ({{.S.Rejected}} rejected)</span>{{if not .S.Tallied}} (those executed with their step are not counted by this store){{end}}</p>
<table id="pms"><tr><th rowspan="2">process manager</th><th class="group" colspan="{{len .Live}}">live</th><th class="group" colspan="{{len .Outcomes}}">ended</th><th rowspan="2">total</th><th rowspan="2">parked events</th><th rowspan="2" title="log positions between the lowest stored checkpoint of the process manager's partitions and the log head; the runtime passes over events of no interest to it without writing a checkpoint each time, so an idle process manager may show a few">checkpoint lag</th><th rowspan="2"></th></tr>
<tr>{{range .Live}}<th>{{.}}</th>{{end}}{{range .Outcomes}}<th class="o-{{.}}">{{label .}}</th>{{end}}</tr>
{{range .S.PMs}}{{$pm := .PM}}<tr><td><a href="/instances?pm={{.PM}}">{{.PM}}</a></td>
{{range $i, $c := .Live}}<td class="n">{{if $c}}<a class="s-{{index $.Live $i}}" href="/instances?pm={{$pm}}&amp;status={{index $.Live $i}}">{{$c}}</a>{{else}}0{{end}}</td>{{end}}
{{range $i, $c := .Ended}}<td class="n">{{if $c}}<a class="o-{{index $.Outcomes $i}}" href="/instances?pm={{$pm}}&amp;outcome={{index $.Outcomes $i}}">{{$c}}</a>{{else}}0{{end}}</td>{{end}}
<td class="n">{{.Total}}</td><td class="n">{{if .ParkedEvents}}<a class="s-parked" href="/instances?pm={{.PM}}#parked">{{.ParkedEvents}}</a>{{else}}0{{end}}</td>
<td class="n lag">{{if .Partitions}}{{.Lag}}{{else}}-{{end}}</td>
<td><a href="/graph?pm={{.PM}}">state machine</a> · <a href="/replay?pm={{.PM}}">replay</a></td></tr>
{{else}}<tr><td colspan="12">no instances yet</td></tr>{{end}}
</table>
{{with .Charts}}<h3>The last 15 minutes</h3>
<p>Instances ended per minute, read from the store; checkpoint lag and parked instances, sampled by this UI when this page or <a href="/metrics">/metrics</a> is read (readings so far: {{$.Samples}}{{if not $.Refresh}}; <a href="/?refresh=10">refresh every 10 s</a>{{end}}).</p>
{{range .}}<h4>{{.PM}}</h4><div class="charts" id="charts-{{.PM}}">{{.Ended}}{{.Lag}}{{.Parked}}</div>{{end}}{{end}}
</body></html>{{end}}

{{define "filter"}}<form class="filter" id="filter" method="get" action="/instances">
<label>process manager <select name="pm"><option value="">all</option>{{range .PMs}}<option{{if eq . $.F.PM}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>status <select name="status"><option value="">any</option>{{range .Statuses}}<option{{if eq (print .) $.F.Status}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>outcome <select name="outcome"><option value="">any</option>{{range .Outcomes}}<option value="{{.}}"{{if eq (print .) $.F.Outcome}} selected{{end}}>{{label .}}</option>{{end}}</select></label>
<label>age <select name="age"><option value="">any</option>{{range .Ages}}<option value="{{.Value}}"{{if eq .Value $.F.Age}} selected{{end}}>{{.Label}}</option>{{end}}</select></label>
<label>ID starts with <input type="search" name="q" value="{{.F.Q}}" size="18"></label>
<button id="apply">filter</button> <a href="/instances{{with .F.PM}}?pm={{.}}{{end}}">clear</a>
</form>{{end}}

{{define "instances"}}{{template "head" .}}
<h2>{{.Title}}</h2>
{{with .Msg}}<p class="msg" id="msg">{{.}}</p>{{end}}
{{template "filter" .}}
{{if .PM}}<p><a href="/graph?pm={{.PM}}">state machine</a></p>{{end}}
<table id="instances"><tr>{{if not .PM}}<th>process manager</th>{{end}}<th>instance</th><th>status</th><th>outcome</th><th>phase</th><th>version</th><th>age</th><th>updated</th><th>next deadline</th><th>next attempt</th><th>last error</th></tr>
{{range .Rows}}<tr>{{if not $.PM}}<td>{{.ProcessManager}}</td>{{end}}<td><a href="/instance?pm={{.ProcessManager}}&amp;id={{.ID}}">{{.ID}}</a></td>
<td class="{{if .Outcome}}o-{{.Outcome}}{{else}}s-{{.Status}}{{end}}">{{.Status}}</td><td class="outcome">{{with .Outcome}}<span class="badge o-{{.}}">{{label .}}</span>{{else}}-{{end}}</td><td>{{dash .Phase}}</td>
<td class="n">{{.Version}}</td><td>{{.Age}}</td><td>{{.Updated}} ago</td><td>{{dash .Deadline}}</td><td>{{dash .Next}}</td><td>{{template "err" .LastError}}</td></tr>
{{else}}<tr><td colspan="11">no instances</td></tr>{{end}}
</table>
{{if .Next}}<p><a href="{{.Next}}">next page</a></p>{{end}}
{{with .Parked}}<h3 id="parked">Events parked for {{$.PM}} ({{len .}}): its Correlate failed on them</h3>
<table id="parked-events"><tr><th>position</th><th>error</th><th></th></tr>
{{range .}}<tr><td class="n">{{.Position}}</td><td>{{template "err" .Error}}</td><td>{{if $.Authorized}}
{{if $.CanRetryEvents}}<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{$.PM}}"><input type="hidden" name="position" value="{{.Position}}"><button name="action" value="retry-event">Retry</button></form>{{end}}
<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{$.PM}}"><input type="hidden" name="position" value="{{.Position}}"><button name="action" value="skip-event" id="skip-event-{{.Position}}">Skip</button></form>
{{end}}</td></tr>{{end}}</table>{{end}}
</body></html>{{end}}

{{define "instance"}}{{template "head" .}}
<h2>{{.PM}} <span id="instance-id">{{.ID}}</span>: <span id="status" class="{{if .Outcome}}o-{{.Outcome}}{{else}}s-{{.In.status}}{{end}}">{{.In.status}}</span>{{if and .Outcome (ne (print .Outcome) (print .In.status))}} <span id="outcome" class="badge o-{{.Outcome}}">{{label .Outcome}}</span>{{end}}{{with .In.phase}} ({{.}}){{end}}</h2>
{{with .Msg}}<p class="msg" id="msg">{{.}}</p>{{end}}
<p>version {{.In.version}} · partition {{.In.partition}} · created {{time .In.created_at}} · updated {{time .In.updated_at}}{{with .In.completed_at}} · ended {{time .}}{{end}}
{{with .In.next_attempt_at}} · next attempt {{time .}}{{end}}</p>
{{if not .Inst.Status.Done}}<p id="runner" class="{{if or .Runner.Overdue (and .Runner.Leased (not .Runner.Alive))}}warn{{end}}">
{{if .Runner.Leased}}{{if .Runner.Node}}Partition {{.In.partition}} is leased to node <b>{{.Runner.Node}}</b>, {{if .Runner.Alive}}alive: its heartbeat holds until {{.Runner.Until}}{{else}}whose heartbeat lapsed at {{.Runner.Until}}: <b>no runtime is stepping this instance</b>{{end}}.
{{else}}No node leases partition {{.In.partition}}: <b>no runtime is stepping this instance</b>.{{end}}
{{else}}This store does not record which runtime steps an instance.{{end}}
{{with .Runner.Overdue}}Its next attempt is overdue by {{.}}: <b>no runtime seems to be stepping this instance</b> (is one running {{$.PM}} on this store?).{{end}}
{{with .Runner.LastNode}}Last written by node {{.}} at {{$.Runner.LastAt}}.{{end}}</p>{{end}}
{{with .In.last_error}}<p>last error (attempt {{$.In.attempts}}):</p><pre id="last-error">{{errmsg .}}</pre>{{with errstack .}}<details id="stack"><summary>panic stack</summary><pre>{{.}}</pre></details>{{end}}{{end}}
{{if .Confirm}}{{if .Authorized}}<div class="confirm" id="confirm"><p><b>Cancel {{.PM}} {{.ID}} for good?</b> It becomes a cancelled tombstone: its held events and deadlines are dropped and later events for it are ignored. Commands it already issued stay issued.</p>
<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{.PM}}"><input type="hidden" name="id" value="{{.ID}}"><input type="hidden" name="confirmed" value="yes"><button name="action" value="cancel" id="confirm-cancel">Yes, cancel it</button></form>
<a class="button" id="keep" href="/instance?pm={{.PM}}&amp;id={{.ID}}">No, keep it</a></div>{{end}}
{{else if or .CanRetry .CanSkip .CanCancel}}<p id="actions">
{{if .Authorized}}
{{if .CanRetry}}<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{.PM}}"><input type="hidden" name="id" value="{{.ID}}"><button name="action" value="retry" id="retry">Retry</button></form>{{end}}
{{if .CanSkip}}<form class="inline" method="post" action="/action"><input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="pm" value="{{.PM}}"><input type="hidden" name="id" value="{{.ID}}"><button name="action" value="skip" id="skip">Skip the held event</button></form>{{end}}
{{if .CanCancel}}<a class="button" id="cancel" href="/instance?pm={{.PM}}&amp;id={{.ID}}&amp;confirm=cancel">Cancel…</a>{{end}}
{{else if .ReadOnly}}(read-only: start <code>evoke serve</code> with a token to act){{else}}(open the address <code>evoke serve</code> printed, with its token, to retry, skip or cancel){{end}}
</p>{{end}}
{{with .Held}}<h3>Held events ({{len .}})</h3><p>Stepped in order once the instance runs again; the first is the one it is stuck on.</p>
<div id="held">{{range .}}<div class="held-event"><p><b>position {{.Position}}</b> · {{dash .EventType}}{{with .StreamID}} · stream {{.}}{{end}}{{with .EventID}} · event {{.}}{{end}}</p>
{{with .Error}}<div class="held-error">error: {{template "err" .}}</div>{{end}}
{{if .Payload}}<p>payload:</p><pre class="payload">{{.Payload}}</pre>{{end}}</div>{{end}}</div>{{end}}
{{with .State}}<h3>State</h3><pre id="state">{{.}}</pre>{{end}}
{{with .V.Deadlines}}<h3>Deadlines</h3><table id="deadlines"><tr><th>name</th><th>due</th></tr>{{range .}}<tr><td>{{.Name}}</td><td>{{.DueAt.Format "2006-01-02 15:04:05.000"}}</td></tr>{{end}}</table>{{end}}
<h3>Timeline</h3>
<table id="timeline"><tr><th>at</th><th>what</th><th>event</th><th>phase</th><th>version</th><th>error</th></tr>
{{range .V.Timeline}}<tr><td>{{.At.Format "2006-01-02 15:04:05.000"}}</td><td>{{.Kind}}</td><td>{{.EventType}}{{if .Position}} @{{.Position}}{{end}}</td>
<td>{{phase .PhaseBefore .PhaseAfter}}</td><td class="n">{{.Version}}</td><td>{{template "err" .Error}}</td></tr>
{{range .Commands}}<tr><td></td><td class="cmd" colspan="3">⇒ {{.Type}} to {{.AggregateType}}-{{.AggregateID}}</td><td colspan="2" class="o-{{.Outcome}}">{{.Outcome}}{{with .Reason}}: {{template "err" .}}{{end}}</td></tr>{{end}}
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
	// Scaled to the page's width (the page's CSS: max-width 100%), the
	// viewBox keeping its proportions.
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, h, w, h)
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
