package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// The inspection commands read the store only: they work on any store,
// whichever process managers wrote it, while the runtime runs.

// runList lists instances, by process manager and ID.
func runList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", "[--store URL] [--pm NAME] [--status STATUS] [--limit N] [--after ID] [--json]", stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "only this process manager's instances")
	status := fs.String("status", "", "only instances with this status: running, compensating, failing, parked, completed, cancelled")
	limit := fs.Int("limit", 50, "at most this many instances")
	after := fs.String("after", "", "start after this instance ID (with --pm: paging)")
	asJSON := fs.Bool("json", false, "print one JSON object per instance")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch evokestore.InstanceStatus(*status) {
	case "", evokestore.StatusRunning, evokestore.StatusCompensating, evokestore.StatusFailing, evokestore.StatusParked,
		evokestore.StatusCompleted, evokestore.StatusCancelled:
	default:
		fmt.Fprintf(stderr, "--status: unknown status %q\n", *status)
		return errUsage
	}
	if *limit <= 0 {
		fmt.Fprintln(stderr, "--limit must be positive")
		return errUsage
	}
	st, err := OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	q := evokestore.InstanceQuery{ProcessManager: *pm, Status: evokestore.InstanceStatus(*status), Limit: *limit}
	if *after != "" {
		q.AfterProcessManager, q.AfterID = *pm, *after
	}
	insts, err := st.ListInstances(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for i := range insts {
			if err := enc.Encode(instanceJSON(&insts[i])); err != nil {
				return err
			}
		}
		return nil
	}
	if len(insts) == 0 {
		fmt.Fprintln(stdout, "no instances")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS MANAGER\tID\tSTATUS\tPHASE\tVERSION\tAGE\tUPDATED\tLAST ERROR")
	for i := range insts {
		in := &insts[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s ago\t%s\n", in.ProcessManager, in.ID, in.Status, orDash(in.Phase), in.Version,
			age(now, in.CreatedAt), age(now, in.UpdatedAt), orDash(firstLine(in.LastError, 60)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(insts) == *limit {
		fmt.Fprintf(stdout, "(first %d; more with --after %s)\n", *limit, insts[len(insts)-1].ID)
	}
	return nil
}

// runShow prints one instance: its state, what it holds, and its timeline.
func runShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("show", "[--store URL] --pm NAME [--json] ID", stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "the instance's process manager (required)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	// The ID comes after the flags.
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *pm == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "evoke show needs --pm NAME and one instance ID")
		fs.Usage()
		return errUsage
	}
	id := fs.Arg(0)
	st, err := OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := loadInstanceView(ctx, st, *pm, id)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return v.print(stdout)
}

// instanceView is one instance as `evoke show` prints it.
type instanceView struct {
	Instance map[string]any `json:"instance"`
	Held     []heldView     `json:"held,omitempty"`
	Timeline []stepView     `json:"timeline"`
}

type heldView struct {
	Position int64  `json:"position"`
	Error    string `json:"error,omitempty"`
}

type stepView struct {
	At          time.Time     `json:"at"`
	Kind        string        `json:"kind"`
	Position    int64         `json:"position,omitempty"`
	EventType   string        `json:"event_type,omitempty"`
	EventID     string        `json:"event_id,omitempty"`
	PhaseBefore string        `json:"phase_before"`
	PhaseAfter  string        `json:"phase_after"`
	Version     int64         `json:"version"`
	Error       string        `json:"error,omitempty"`
	Commands    []commandView `json:"commands,omitempty"`
	Node        string        `json:"node,omitempty"`
}

type commandView struct {
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

func loadInstanceView(ctx context.Context, st evokestore.Store, pm, id string) (*instanceView, error) {
	insts, err := st.Instances(ctx, pm, []string{id})
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("no instance %q of process manager %q", id, pm)
	}
	v := &instanceView{Instance: instanceJSON(&insts[0])}
	held, err := st.Held(ctx, pm, id)
	if err != nil {
		return nil, err
	}
	for _, h := range held {
		v.Held = append(v.Held, heldView{Position: h.Position, Error: h.Error})
	}
	hist, err := st.History(ctx, pm, id)
	if err != nil {
		return nil, err
	}
	var cmdIDs []string
	for _, h := range hist {
		s := stepView{At: h.RecordedAt, Kind: h.Kind, Position: h.Position, EventType: h.EventType, EventID: h.EventID,
			PhaseBefore: h.PhaseBefore, PhaseAfter: h.PhaseAfter, Version: h.Version, Error: h.Error, Node: h.Node}
		if len(h.Commands) > 0 {
			if err := json.Unmarshal(h.Commands, &s.Commands); err != nil {
				return nil, fmt.Errorf("history of %s %s: commands of the step at %d: %w", pm, id, h.Position, err)
			}
			for _, c := range s.Commands {
				cmdIDs = append(cmdIDs, c.ID)
			}
		}
		v.Timeline = append(v.Timeline, s)
	}
	outcomes, err := st.CommandOutcomes(ctx, cmdIDs)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]evokestore.CommandOutcome, len(outcomes))
	for _, o := range outcomes {
		byID[o.CommandID] = o
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

func (v *instanceView) print(w io.Writer) error {
	in := v.Instance
	fmt.Fprintf(w, "%s %s: %s", in["process_manager"], in["id"], in["status"])
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
		fmt.Fprintf(w, "last error (attempt %d): %s\n", in["attempts"], e)
	}
	if n, ok := in["next_attempt_at"]; ok {
		fmt.Fprintf(w, "next attempt: %s\n", fmtTime(n))
	}
	if s, ok := in["state"]; ok {
		var buf bytes.Buffer
		if b, err := json.Marshal(s); err == nil && json.Indent(&buf, b, "  ", "  ") == nil {
			fmt.Fprintf(w, "state:\n  %s\n", buf.String())
		}
	}
	if len(v.Held) > 0 {
		fmt.Fprintf(w, "held events (%d, stepped in order once the instance runs again):\n", len(v.Held))
		for _, h := range v.Held {
			fmt.Fprintf(w, "  position %d", h.Position)
			if h.Error != "" {
				fmt.Fprintf(w, ": %s", firstLine(h.Error, 100))
			}
			fmt.Fprintln(w)
		}
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

// instanceJSON is an instance as the inspection commands print it: times
// in RFC 3339, zero values left out, the state as JSON.
func instanceJSON(in *evokestore.Instance) map[string]any {
	m := map[string]any{
		"process_manager": in.ProcessManager, "id": in.ID, "partition": in.Partition, "status": string(in.Status),
		"phase": in.Phase, "version": in.Version, "last_position": in.LastPosition,
		"created_at": in.CreatedAt, "updated_at": in.UpdatedAt,
	}
	if !in.CompletedAt.IsZero() {
		m["completed_at"] = in.CompletedAt
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

// runGraph draws a process manager's state machine from the transitions
// its instances recorded (history: phase before -> phase after, on event).
func runGraph(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("graph", "[--store URL] --pm NAME [--format mermaid|dot] [--instances N]", stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "the process manager (required)")
	format := fs.String("format", "mermaid", "mermaid (a stateDiagram) or dot (Graphviz)")
	maxInst := fs.Int("instances", 10000, "read the history of at most this many instances")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *pm == "" || (*format != "mermaid" && *format != "dot") || *maxInst <= 0 {
		fmt.Fprintln(stderr, "evoke graph needs --pm NAME, --format mermaid or dot, and a positive --instances")
		return errUsage
	}
	st, err := OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	g, err := transitions(ctx, st, *pm, *maxInst)
	if err != nil {
		return err
	}
	if g.instances == 0 {
		return fmt.Errorf("process manager %q has no instances in this store", *pm)
	}
	if *format == "dot" {
		g.dot(stdout, *pm)
	} else {
		g.mermaid(stdout)
	}
	return nil
}

// edge is one transition: from a phase to another on an event type.
type edge struct{ from, to, on string }

type graph struct {
	instances int
	edges     map[edge]int // how many times it was taken
	starts    map[string]int
	ends      map[string]int // phases instances ended (completed or cancelled) in
}

// transitions reads up to maxInst instances' history and counts their phase
// transitions.
func transitions(ctx context.Context, st evokestore.Store, pm string, maxInst int) (*graph, error) {
	g := &graph{edges: map[edge]int{}, starts: map[string]int{}, ends: map[string]int{}}
	after := ""
	for g.instances < maxInst {
		page, err := st.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: pm, AfterProcessManager: pm, AfterID: after, Limit: min(500, maxInst-g.instances)})
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			in := &page[i]
			hist, err := st.History(ctx, pm, in.ID)
			if err != nil {
				return nil, err
			}
			first := true
			for _, h := range hist {
				if h.Kind != evokestore.KindStep {
					continue
				}
				if first {
					g.starts[h.PhaseBefore]++
					first = false
				}
				if h.PhaseBefore != h.PhaseAfter {
					g.edges[edge{h.PhaseBefore, h.PhaseAfter, h.EventType}]++
				}
			}
			if in.Status.Done() {
				g.ends[in.Phase]++
			}
			g.instances++
		}
		after = page[len(page)-1].ID
	}
	return g, nil
}

func (g *graph) sortedEdges() []edge {
	es := make([]edge, 0, len(g.edges))
	for e := range g.edges {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b edge) int {
		return strings.Compare(a.from+"\x00"+a.to+"\x00"+a.on, b.from+"\x00"+b.to+"\x00"+b.on)
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

// mermaid writes a stateDiagram-v2; the empty phase (before the first
// step) is the start state [*].
func (g *graph) mermaid(w io.Writer) {
	name := func(p string) string {
		if p == "" {
			return "[*]"
		}
		return mermaidID(p)
	}
	fmt.Fprintln(w, "stateDiagram-v2")
	fmt.Fprintf(w, "    %%%% from the history of %d instances; edge labels: event (times taken)\n", g.instances)
	for _, e := range g.sortedEdges() {
		fmt.Fprintf(w, "    %s --> %s: %s (%d)\n", name(e.from), name(e.to), e.on, g.edges[e])
	}
	for _, p := range sortedKeys(g.ends) {
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

// dot writes a Graphviz digraph.
func (g *graph) dot(w io.Writer, pm string) {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	name := func(p string) string {
		if p == "" {
			return q("(start)")
		}
		return q(p)
	}
	fmt.Fprintf(w, "digraph %s {\n", q(pm))
	fmt.Fprintf(w, "  // from the history of %d instances; edge labels: event (times taken)\n", g.instances)
	fmt.Fprintln(w, "  rankdir=LR;")
	fmt.Fprintf(w, "  %s [shape=point];\n", name(""))
	for _, p := range sortedKeys(g.ends) {
		if p != "" {
			fmt.Fprintf(w, "  %s [peripheries=2];\n", name(p))
		}
	}
	for _, e := range g.sortedEdges() {
		fmt.Fprintf(w, "  %s -> %s [label=%s];\n", name(e.from), name(e.to), q(fmt.Sprintf("%s (%d)", e.on, g.edges[e])))
	}
	fmt.Fprintln(w, "}")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
