// Package evokeui is evoke's inspection UI: an http.Handler that shows a
// store's process managers (their instances by status and by outcome, the
// commands executed, charts of the last minutes), their instances filtered
// by status, outcome, age and ID, one instance's held events and timeline
// (events in, state changes, commands out and their outcomes) and which
// node steps it, the state machine drawn from recorded transitions, and
// lets an operator retry, skip or cancel a stuck instance. It serves the
// store's metrics at /metrics in the Prometheus text format. The `evoke
// serve` command serves it; a program embedding evoke can mount it too.
// The data behind it (LoadInstance, Transitions) also serves `evoke show`
// and `evoke graph`.
package evokeui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokestore"
)

// InstanceView is one instance as `evoke show` and the web UI show it:
// the instance, the events it holds, and its timeline of steps with the
// commands they issued and what became of them.
type InstanceView struct {
	Instance map[string]any `json:"instance"`
	Held     []HeldEvent    `json:"held,omitempty"`
	// Deadlines are the instance's pending deadlines, earliest first
	// (when the store implements evokestore.DeadlinesReader).
	Deadlines []Deadline `json:"deadlines,omitempty"`
	Timeline  []Step     `json:"timeline"`
}

// HeldEvent is an event the instance holds until it runs again: the
// first is the one it is stuck on, Error why.
type HeldEvent struct {
	Position  int64  `json:"position"`
	Error     string `json:"error,omitempty"`
	EventType string `json:"event_type,omitempty"`
	EventID   string `json:"event_id,omitempty"`
	StreamID  string `json:"stream_id,omitempty"`
	// Payload is the event's data (JSON), as the process manager got it.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Deadline is a pending deadline; Name "$timeout" is the inactivity timeout.
type Deadline struct {
	Name  string    `json:"name"`
	DueAt time.Time `json:"due_at"`
}

// Step is one history record: a step, a failure, an operator's action.
type Step struct {
	At          time.Time    `json:"at"`
	Kind        string       `json:"kind"`
	Position    int64        `json:"position,omitempty"`
	EventType   string       `json:"event_type,omitempty"`
	EventID     string       `json:"event_id,omitempty"`
	PhaseBefore string       `json:"phase_before"`
	PhaseAfter  string       `json:"phase_after"`
	Version     int64        `json:"version"`
	Error       string       `json:"error,omitempty"`
	Commands    []CommandRef `json:"commands,omitempty"`
	Node        string       `json:"node,omitempty"`
}

// CommandRef is a command a step issued, with what became of it.
type CommandRef struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	AggregateType string `json:"aggregate_type"`
	AggregateID   string `json:"aggregate_id"`
	Suppressed    bool   `json:"suppressed,omitempty"`
	// Outcome: accepted, rejected, or pending (not executed yet).
	Outcome string `json:"outcome"`
	Events  int    `json:"events,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// LoadInstance reads one instance's view from st.
func LoadInstance(ctx context.Context, st evokestore.Store, pm, id string) (*InstanceView, error) {
	insts, err := st.Instances(ctx, pm, []string{id})
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("%w: no instance %q of process manager %q", evokestore.ErrNotFound, id, pm)
	}
	v := &InstanceView{Instance: InstanceMap(&insts[0])}
	held, err := st.Held(ctx, pm, id)
	if err != nil {
		return nil, err
	}
	for _, h := range held {
		he := HeldEvent{Position: h.Position, Error: h.Error}
		ev, ok, err := evokestore.EventAt(ctx, st, h.Position)
		if err != nil {
			return nil, fmt.Errorf("held event %d of %s %s: %w", h.Position, pm, id, err)
		}
		if ok {
			he.EventType, he.EventID, he.StreamID = ev.Type, ev.ID, ev.StreamID
			if json.Valid(ev.Data) {
				he.Payload = ev.Data
			}
		}
		v.Held = append(v.Held, he)
	}
	if dr, ok := st.(evokestore.DeadlinesReader); ok {
		dls, err := dr.InstanceDeadlines(ctx, pm, []string{id})
		if err != nil {
			return nil, err
		}
		for _, d := range dls {
			v.Deadlines = append(v.Deadlines, Deadline{Name: d.Name, DueAt: d.DueAt})
		}
	}
	hist, err := st.History(ctx, pm, id)
	if err != nil {
		return nil, err
	}
	var cmds []evokestore.OutboxCommand
	for _, h := range hist {
		s := Step{At: h.RecordedAt, Kind: h.Kind, Position: h.Position, EventType: h.EventType, EventID: h.EventID,
			PhaseBefore: h.PhaseBefore, PhaseAfter: h.PhaseAfter, Version: h.Version, Error: h.Error, Node: h.Node}
		if len(h.Commands) > 0 {
			if err := json.Unmarshal(h.Commands, &s.Commands); err != nil {
				return nil, fmt.Errorf("history of %s %s: commands of the step at %d: %w", pm, id, h.Position, err)
			}
			for _, c := range s.Commands {
				cmds = append(cmds, evokestore.OutboxCommand{ID: c.ID, Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
					ProcessManager: pm, InstanceID: id})
			}
		}
		v.Timeline = append(v.Timeline, s)
	}
	byID, err := evokeops.CommandOutcomes(ctx, st, cmds)
	if err != nil {
		return nil, err
	}
	for i := range v.Timeline {
		for j := range v.Timeline[i].Commands {
			c := &v.Timeline[i].Commands[j]
			switch o, ok := byID[c.ID]; {
			case c.Suppressed:
				c.Outcome = "suppressed"
			case !ok:
				c.Outcome = "pending"
			default:
				c.Outcome, c.Events, c.Reason = o.Status, o.Events, o.Error
			}
		}
	}
	return v, nil
}

// WriteText writes the view as `evoke show` prints it.
func (v *InstanceView) WriteText(w io.Writer) error {
	in := v.Instance
	fmt.Fprintf(w, "%s %s: %s", in["process_manager"], in["id"], in["status"])
	if o, ok := in["outcome"]; ok && fmt.Sprint(o) != fmt.Sprint(in["status"]) {
		fmt.Fprintf(w, ", %s", o)
	}
	if p := in["phase"]; p != "" {
		fmt.Fprintf(w, " (%s)", p)
	}
	fmt.Fprintf(w, ", version %d, partition %d\n", in["version"], in["partition"])
	fmt.Fprintf(w, "created %s, updated %s", fmtTime(in["created_at"]), fmtTime(in["updated_at"]))
	if c, ok := in["completed_at"]; ok {
		fmt.Fprintf(w, ", ended %s", fmtTime(c))
	}
	fmt.Fprintln(w)
	if e, ok := in["last_error"]; ok {
		msg, stack := splitStack(fmt.Sprint(e))
		fmt.Fprintf(w, "last error (attempt %d): %s\n", in["attempts"], msg)
		if stack != "" {
			fmt.Fprintf(w, "panic stack:\n  %s\n", strings.ReplaceAll(stack, "\n", "\n  "))
		}
	}
	if n, ok := in["next_attempt_at"]; ok {
		fmt.Fprintf(w, "next attempt: %s\n", fmtTime(n))
	}
	if s, ok := in["state"].(json.RawMessage); ok {
		fmt.Fprintf(w, "state:\n  %s\n", strings.ReplaceAll(strings.TrimSpace(ReadableJSON(s)), "\n", "\n  "))
	}
	if len(v.Held) > 0 {
		fmt.Fprintf(w, "held events (%d, stepped in order once the instance runs again):\n", len(v.Held))
		for _, h := range v.Held {
			fmt.Fprintf(w, "  position %d", h.Position)
			if h.EventType != "" {
				fmt.Fprintf(w, " %s", h.EventType)
			}
			if h.Error != "" {
				fmt.Fprintf(w, ": %s", h.Error)
			}
			fmt.Fprintln(w)
			if len(h.Payload) > 0 {
				fmt.Fprintf(w, "    payload: %s\n", strings.ReplaceAll(strings.TrimSpace(ReadableJSON(h.Payload)), "\n", "\n    "))
			}
		}
	}
	for _, d := range v.Deadlines {
		fmt.Fprintf(w, "deadline %s at %s\n", d.Name, d.DueAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "timeline (%d records):\n", len(v.Timeline))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range v.Timeline {
		what := s.Kind
		if s.EventType != "" {
			what += " " + s.EventType
		}
		if s.Position > 0 {
			what += fmt.Sprintf(" @%d", s.Position)
		}
		phase := orDash(s.PhaseAfter)
		if s.PhaseBefore != s.PhaseAfter {
			phase = orDash(s.PhaseBefore) + " -> " + orDash(s.PhaseAfter)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\tv%d\t%s\n", s.At.Format("2006-01-02 15:04:05.000"), what, phase, s.Version, firstLine(s.Error, 80))
		for _, c := range s.Commands {
			out := c.Outcome
			if c.Reason != "" {
				out += ": " + firstLine(c.Reason, 60)
			}
			fmt.Fprintf(tw, "  \t  => %s to %s-%s\t%s\t\t\n", c.Type, c.AggregateType, c.AggregateID, out)
		}
	}
	return tw.Flush()
}

// InstanceMap is an instance as the inspection tools show it: times
// in RFC 3339, zero values left out, the state as JSON.
func InstanceMap(in *evokestore.Instance) map[string]any {
	m := map[string]any{
		"process_manager": in.ProcessManager, "id": in.ID, "partition": in.Partition, "status": string(in.Status),
		"phase": in.Phase, "version": in.Version, "last_position": in.LastPosition,
		"created_at": in.CreatedAt, "updated_at": in.UpdatedAt,
	}
	if !in.CompletedAt.IsZero() {
		m["completed_at"] = in.CompletedAt
	}
	if o := in.FinalOutcome(); o != "" {
		m["outcome"] = string(o)
	}
	if in.LastError != "" {
		m["last_error"], m["attempts"] = in.LastError, in.Attempts
	}
	if !in.NextAttemptAt.IsZero() {
		m["next_attempt_at"] = in.NextAttemptAt
	}
	if len(in.State) > 0 {
		if json.Valid(in.State) {
			m["state"] = json.RawMessage(in.State)
		} else {
			m["state_bytes"] = in.State
		}
	}
	return m
}

// ReadableJSON returns b indented, with the escapes of <, > and & that
// Go's encoder writes (\u003c, \u003e, \u0026) turned back into the
// characters: for a person to read (an HTML page escapes it as text).
// Invalid JSON is returned as it is.
func ReadableJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return string(b)
	}
	in := buf.Bytes()
	out := make([]byte, 0, len(in))
	inString := false
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(in):
			if in[i+1] == 'u' && i+5 < len(in) {
				switch strings.ToLower(string(in[i+2 : i+6])) {
				case "003c":
					out, i = append(out, '<'), i+5
					continue
				case "003e":
					out, i = append(out, '>'), i+5
					continue
				case "0026":
					out, i = append(out, '&'), i+5
					continue
				}
			}
			out = append(out, c, in[i+1]) // an escape pair, kept whole
			i++
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

// Edge is one transition: from a phase to another on an event type.
type Edge struct{ From, To, On string }

// Graph is a process manager's state machine as its instances recorded it.
type Graph struct {
	// Instances is how many instances' histories were read.
	Instances int
	// Edges counts the times each transition was taken.
	Edges map[Edge]int
	// Ends counts the phases instances ended (completed or cancelled) in.
	Ends map[string]int
}

// historyReaders is how many instances' histories Transitions reads at
// once.
const historyReaders = 8

// Transitions reads up to maxInst instances' history and counts their phase
// transitions.
func Transitions(ctx context.Context, st evokestore.Store, pm string, maxInst int) (*Graph, error) {
	g := &Graph{Edges: map[Edge]int{}, Ends: map[string]int{}}
	after := ""
	for g.Instances < maxInst {
		page, err := st.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: pm, AfterProcessManager: pm, AfterID: after, Limit: min(500, maxInst-g.Instances)})
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		hists, err := histories(ctx, st, pm, page)
		if err != nil {
			return nil, err
		}
		for i := range page {
			for _, h := range hists[i] {
				if h.Kind == evokestore.KindStep && h.PhaseBefore != h.PhaseAfter {
					g.Edges[Edge{h.PhaseBefore, h.PhaseAfter, h.EventType}]++
				}
			}
			if in := &page[i]; in.Status.Done() {
				g.Ends[in.Phase]++
			}
			g.Instances++
		}
		after = page[len(page)-1].ID
	}
	return g, nil
}

// histories reads the history of each instance, historyReaders at a time.
func histories(ctx context.Context, st evokestore.Store, pm string, insts []evokestore.Instance) ([][]evokestore.HistoryRecord, error) {
	out := make([][]evokestore.HistoryRecord, len(insts))
	errs := make([]error, len(insts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(historyReaders, len(insts)) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = st.History(ctx, pm, insts[i].ID)
			}
		})
	}
	for i := range insts {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

// SortedEdges returns the edges in a stable order.
func (g *Graph) SortedEdges() []Edge {
	es := make([]Edge, 0, len(g.Edges))
	for e := range g.Edges {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b Edge) int {
		return strings.Compare(a.From+"\x00"+a.To+"\x00"+a.On, b.From+"\x00"+b.To+"\x00"+b.On)
	})
	return es
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Mermaid writes a stateDiagram-v2; the empty phase (before the first
// step) is the start state [*].
func (g *Graph) Mermaid(w io.Writer) {
	name := func(p string) string {
		if p == "" {
			return "[*]"
		}
		return mermaidID(p)
	}
	fmt.Fprintln(w, "stateDiagram-v2")
	fmt.Fprintf(w, "    %%%% from the history of %d instances; edge labels: event (times taken)\n", g.Instances)
	for _, e := range g.SortedEdges() {
		fmt.Fprintf(w, "    %s --> %s: %s (%d)\n", name(e.From), name(e.To), e.On, g.Edges[e])
	}
	for _, p := range sortedKeys(g.Ends) {
		if p != "" {
			fmt.Fprintf(w, "    %s --> [*]\n", name(p))
		}
	}
}

// mermaidID makes a phase usable as a Mermaid state ID.
func mermaidID(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	return b.String()
}

// DOT writes a Graphviz digraph.
func (g *Graph) DOT(w io.Writer, pm string) {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	name := func(p string) string {
		if p == "" {
			return q("(start)")
		}
		return q(p)
	}
	fmt.Fprintf(w, "digraph %s {\n", q(pm))
	fmt.Fprintf(w, "  // from the history of %d instances; edge labels: event (times taken)\n", g.Instances)
	fmt.Fprintln(w, "  rankdir=LR;")
	fmt.Fprintf(w, "  %s [shape=point];\n", name(""))
	for _, p := range sortedKeys(g.Ends) {
		if p != "" {
			fmt.Fprintf(w, "  %s [peripheries=2];\n", name(p))
		}
	}
	for _, e := range g.SortedEdges() {
		fmt.Fprintf(w, "  %s -> %s [label=%s];\n", name(e.From), name(e.To), q(fmt.Sprintf("%s (%d)", e.On, g.Edges[e])))
	}
	fmt.Fprintln(w, "}")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// splitStack splits an error text as the runtime stores it into its
// message and the stack of a recovered panic that follows it after a blank
// line (a goroutine's stack, as runtime/debug.Stack writes it).
func splitStack(s string) (msg, stack string) {
	if i := strings.Index(s, "\n\ngoroutine "); i >= 0 {
		return s[:i], s[i+2:]
	}
	return s, ""
}

func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

func fmtTime(v any) string {
	if t, ok := v.(time.Time); ok && !t.IsZero() {
		return t.Format(time.RFC3339)
	}
	return "-"
}

// WriteInstanceList writes instances as the table `evoke list` prints: one
// line each, with ages relative to now.
func WriteInstanceList(w io.Writer, insts []evokestore.Instance, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS MANAGER\tID\tSTATUS\tOUTCOME\tPHASE\tVERSION\tAGE\tUPDATED\tLAST ERROR")
	for i := range insts {
		in := &insts[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s ago\t%s\n", in.ProcessManager, in.ID, in.Status, orDash(string(in.FinalOutcome())),
			orDash(in.Phase), in.Version, age(now, in.CreatedAt), age(now, in.UpdatedAt), orDash(firstLine(in.LastError, 60)))
	}
	return tw.Flush()
}

// WriteParkedEvents writes the events parked for process manager pm because
// its Correlate failed (evokeops.ParkedEvents), with how to drop one;
// nothing if there are none.
func WriteParkedEvents(w io.Writer, pm string, held []evokestore.HeldEvent) {
	if len(held) == 0 {
		return
	}
	fmt.Fprintf(w, "\nevents parked for %s (its Correlate failed; `evoke skip --pm %s --event POSITION` drops one):\n", pm, pm)
	for _, h := range held {
		fmt.Fprintf(w, "  position %d: %s\n", h.Position, firstLine(h.Error, 100))
	}
}
