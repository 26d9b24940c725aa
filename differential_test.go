package evoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/internal/engine"
)

// The differential test generates process managers, aggregates and event
// streams, runs them through the real runtime under varied Config on a real
// store, and requires the same outcome as the reference model (model_test.go):
// per instance the same status, state, phase, version, history
// (events stepped, commands issued by ID), held events and deadlines; the
// same events in every stream (aggregates' events with their IDs, lineage and
// data, rejections, deadlines); the same events held for correlation
// failures.
//
// EVOKE_DIFF_CASES sets the number of cases a store (default 300, or 40
// with the race detector, which slows the runtime several times; CI runs
// both),
// EVOKE_DIFF_SEED the first seed (default 1), so a longer run is
// EVOKE_DIFF_CASES=5000 EVOKE_DIFF_SEED=$RANDOM go test -run TestDifferential.
// A failure prints its seed, the Config and a shrunk scenario as JSON. The
// fuzz target FuzzDifferential drives the same generator from a seed.
//
// What keeps the outcome deterministic, as the semantics allow: each
// instance has its own aggregates, whose events correlate back to it, and
// each process manager its own event types for them, so that an instance's
// events come in one order whatever the batching; the scenario appends its
// events in one transaction, waits until the runtime is idle, and only then
// moves the virtual clock; user code is deterministic (its panics too), and
// a failing step parks at once (MaxAttempts 1) unless the event's plan has
// OnFailure decide otherwise (skip, stop, park, or retry after a delay on
// the virtual clock).
//
// The generated process managers use every routing and failure feature: an
// event may go to several instances (Each: test events to any instance,
// aggregate events to their instance's listener), start a new instance
// only (StartNew), fail and be skipped, stopped or retried by OnFailure, and
// a rejected command may discard the later commands of its step
// (Discarder). Handle addresses commands to the instance it steps
// (Event.InstanceID).

// gPlan is what a generated process manager does with one event. Events
// carry their plan as data: a test event's plan is generated, an aggregate
// event's is the one its command asked the aggregate to emit.
type gPlan struct {
	ID          string `json:"id"`
	Kind        string `json:"k,omitempty"` // start, continue (""), stop, ignore, fail, panic
	Tag         string `json:"tag,omitempty"`
	Phase       string `json:"phase,omitempty"`
	Done        bool   `json:"done,omitempty"`
	PanicApply  bool   `json:"pa,omitempty"`
	PanicHandle bool   `json:"ph,omitempty"`
	Cmds        []gCmd `json:"cmds,omitempty"`
	Set         []gSet `json:"set,omitempty"`
	OnTimer     *gPlan `json:"on_timer,omitempty"`
	Invalid     bool   `json:"invalid,omitempty"` // Handle returns a command without a type
	Err         bool   `json:"err,omitempty"`     // Handle returns an error
	// Each: the event also continues these instances (Each).
	Each []string `json:"each,omitempty"`
	// Listen: the event also continues the listener of its instance (ID
	// + "~l"), which issues no commands, so that it hears only its
	// instance's events, in their order: an aggregate's event routed to
	// several instances.
	Listen bool `json:"l,omitempty"`
	// OnFail is what OnFailure decides for a failure of this event: skip,
	// stop, park, retry (after retryDelay, then park) or "" (the default).
	OnFail string `json:"of,omitempty"`
}

// listener ends the ID of an instance's listener (gPlan.Listen).
const listener = "~l"

// retryDelay is the delay of an OnFail "retry".
const retryDelay = 3 * time.Second

// gSet sets (or, with AfterMS 0, clears) a named deadline.
type gSet struct {
	Name    string `json:"name"`
	AfterMS int64  `json:"after_ms"`
}

// gCmd is a command and what its aggregate does with it.
type gCmd struct {
	Inst      string  `json:"inst"`
	Agg       int     `json:"agg"`
	Limit     int     `json:"limit,omitempty"` // rejected once the aggregate took Limit events
	Reject    bool    `json:"reject,omitempty"`
	Emit      []gEmit `json:"emit,omitempty"`
	Comp      []gCmd  `json:"comp,omitempty"` // Compensate's commands when it is rejected
	PanicComp bool    `json:"pc,omitempty"`
	OnReject  *gPlan  `json:"on_reject,omitempty"`
	// Discard: when it is rejected, the later commands of its step are
	// discarded (Discarder).
	Discard bool `json:"discard,omitempty"`
}

type gEmit struct {
	Type string `json:"type"`
	Plan gPlan  `json:"plan"`
}

type gState struct {
	Seen      []string         `json:"seen,omitempty"`
	Phase     string           `json:"phase,omitempty"`
	Done      bool             `json:"done,omitempty"`
	Deadlines map[string]int64 `json:"deadlines,omitempty"` // Unix ms
	OnTimer   *gPlan           `json:"on_timer,omitempty"`
	Rejected  int              `json:"rejected,omitempty"`
}

// gPM is a generated process manager: which types it hears, whether it is
// strict and its timeout are generated; what it does is in each event's plan.
type gPM struct {
	name     string
	interest []string
	strict   bool
	timeout  time.Duration
}

func (p gPM) Name() string                    { return p.name }
func (p gPM) InterestedIn() []string          { return p.interest }
func (p gPM) Strict() bool                    { return p.strict }
func (p gPM) Timeout() time.Duration          { return p.timeout }
func (p gPM) Completed(s gState) bool         { return s.Done }
func (p gPM) Phase(s gState) string           { return s.Phase }
func (p gPM) aggType(k int) string            { return p.name + "g" + strconv.Itoa(k) }
func (p gPM) aggID(inst string, k int) string { return inst + "-" + strconv.Itoa(k) }

func (p gPM) Deadlines(s gState) []evoke.Deadline {
	var out []evoke.Deadline
	for _, name := range slices.Sorted(maps.Keys(s.Deadlines)) {
		out = append(out, evoke.Deadline{Name: name, At: time.UnixMilli(s.Deadlines[name]).UTC()})
	}
	return out
}

func (p gPM) Correlate(e evoke.Event) evoke.Correlation {
	var pl gPlan
	if err := e.Decode(&pl); err != nil {
		return evoke.CorrelationFailed(err)
	}
	if len(pl.Each) > 0 || pl.Listen {
		cs := []evoke.Correlation{p.correlation(pl)}
		for _, id := range pl.Each {
			cs = append(cs, evoke.Continue(id))
		}
		if pl.Listen {
			cs = append(cs, evoke.Continue(pl.ID+listener))
		}
		return evoke.Each(cs...)
	}
	return p.correlation(pl)
}

func (p gPM) correlation(pl gPlan) evoke.Correlation {
	switch pl.Kind {
	case "start":
		return evoke.Start(pl.ID)
	case "startnew":
		return evoke.StartNew(pl.ID)
	case "stop":
		return evoke.Stop(pl.ID)
	case "ignore":
		return evoke.Ignore()
	case "fail":
		return evoke.CorrelationFailed(errors.New("correlation fails on purpose"))
	case "panic":
		panic("correlate panics on purpose")
	}
	return evoke.Continue(pl.ID)
}

// plan returns what to do with e in state s.
func (p gPM) plan(s gState, e evoke.Event) gPlan {
	var pl *gPlan
	switch e.Type {
	case evoke.TimeoutEvent, evoke.DeadlineEvent:
		pl = s.OnTimer
	case evoke.CommandRejectedEvent:
		var c gCmd
		if d, ok := evoke.Rejected(e); ok && d.Command.Decode(&c) == nil {
			pl = c.OnReject
		}
	default:
		var v gPlan
		_ = e.Decode(&v)
		pl = &v
	}
	if pl == nil {
		return gPlan{}
	}
	return *pl
}

func (p gPM) Apply(s gState, e evoke.Event) gState {
	pl := p.plan(s, e)
	if pl.PanicApply {
		panic("apply panics on purpose")
	}
	s.Seen = append(slices.Clip(s.Seen), e.Type+":"+pl.Tag)
	return s
}

func (p gPM) Handle(s gState, e evoke.Event) (gState, []evoke.Command, error) {
	pl := p.plan(s, e)
	if pl.PanicHandle {
		panic("handle panics on purpose")
	}
	if pl.Err {
		return s, nil, errors.New("handle fails on purpose")
	}
	if pl.Phase != "" {
		s.Phase = pl.Phase
	}
	s.Done = s.Done || pl.Done
	s.Deadlines = maps.Clone(s.Deadlines)
	switch e.Type {
	case evoke.DeadlineEvent, evoke.TimeoutEvent:
		// Every deadline already due is handled with this one. (One left
		// in the state would be stored again at the new version and fire
		// at once, racing the commands of this step when they go through
		// the outbox: a race the semantics allow, which would make the
		// outcome depend on timing.)
		maps.DeleteFunc(s.Deadlines, func(_ string, at int64) bool { return at <= e.RecordedAt.UnixMilli() })
	case evoke.CommandRejectedEvent:
		s.Rejected++
	}
	for _, d := range pl.Set {
		if d.AfterMS == 0 {
			delete(s.Deadlines, d.Name)
			continue
		}
		if s.Deadlines == nil {
			s.Deadlines = map[string]int64{}
		}
		s.Deadlines[d.Name] = e.RecordedAt.UnixMilli() + d.AfterMS
	}
	if pl.OnTimer != nil {
		s.OnTimer = pl.OnTimer
	}
	if strings.HasSuffix(e.InstanceID, listener) {
		return s, nil, nil
	}
	cmds := p.commands(e.InstanceID, pl.Cmds)
	if pl.Invalid {
		cmds = append(cmds, evoke.NewCommand("", p.aggType(0), "x", nil))
	}
	return s, cmds, nil
}

// commands makes the commands cs for instance inst: the instance's own
// aggregates, whose events correlate back to it (an event routed to
// several instances makes each issue its commands to its own).
func (p gPM) commands(inst string, cs []gCmd) []evoke.Command {
	var out []evoke.Command
	for _, c := range cs {
		c.Inst = inst
		out = append(out, evoke.NewCommand("do", p.aggType(c.Agg), p.aggID(inst, c.Agg), c))
	}
	return out
}

// OnFailure decides as the failing event's plan says; a failure of an
// event whose plan is not at hand (a timeout's) gets the default.
func (p gPM) OnFailure(f evoke.Failure) evoke.FailureAction {
	var pl gPlan
	switch f.Event.Type {
	case evoke.CommandRejectedEvent:
		var c gCmd
		if d, ok := evoke.Rejected(f.Event); !ok || d.Command.Decode(&c) != nil || c.OnReject == nil {
			return f.RetryWithBackoff()
		}
		pl = *c.OnReject
	case evoke.TimeoutEvent, evoke.DeadlineEvent:
		return f.RetryWithBackoff()
	default:
		if f.Event.Decode(&pl) != nil {
			return f.RetryWithBackoff()
		}
	}
	switch pl.OnFail {
	case "skip":
		return f.Skip()
	case "stop":
		return f.Stop()
	case "park":
		return f.Park()
	case "retry":
		if f.Attempts < 2 {
			return f.RetryAfter(retryDelay)
		}
		return f.Park()
	}
	return f.RetryWithBackoff()
}

func (p gPM) DiscardPending(rejected evoke.FailedCommand) bool {
	var c gCmd
	return rejected.Command.Decode(&c) == nil && c.Discard
}

func (p gPM) Compensate(s gState, failed evoke.FailedCommand) ([]evoke.Command, bool) {
	var c gCmd
	if err := failed.Command.Decode(&c); err != nil {
		return nil, false
	}
	if c.PanicComp {
		panic("compensate panics on purpose")
	}
	return p.commands(c.Inst, c.Comp), len(c.Comp) > 0
}

// gAgg is a generated aggregate of process manager pm: it emits what its
// command says (each type in pm's namespace, so that no other process
// manager's instances hear it), unless told to reject it, or it took Limit
// events already.
type gAgg struct{ pm string }

type gAggState struct{ N int }

func (a gAgg) Execute(s gAggState, c evoke.Command) ([]evoke.Event, error) {
	var g gCmd
	if err := c.Decode(&g); err != nil {
		return nil, err
	}
	if g.Reject || (g.Limit > 0 && s.N >= g.Limit) {
		return nil, fmt.Errorf("rejected after %d events", s.N)
	}
	evs := make([]evoke.Event, len(g.Emit))
	for i, em := range g.Emit {
		em.Plan.ID = g.Inst // it correlates back to the instance that asked
		evs[i] = evoke.NewEvent(a.pm+"."+em.Type, em.Plan)
	}
	return evs, nil
}

func (gAgg) Apply(s gAggState, _ evoke.Event) gAggState { s.N++; return s }

// scenario is one generated case.
type scenario struct {
	Seed   uint64   `json:"seed"`
	Config diffCfg  `json:"config"`
	PMs    []pmSpec `json:"pms"`
	Ops    []scenOp `json:"ops"`
}

type diffCfg struct {
	ChainDepth    int  `json:"chain_depth"`
	BatchSize     int  `json:"batch_size"`
	QueueCommands bool `json:"queue_commands,omitempty"`
	InstanceCache int  `json:"instance_cache"`
}

type pmSpec struct {
	Name      string   `json:"name"`
	Interest  []string `json:"interest"`
	Strict    bool     `json:"strict,omitempty"`
	TimeoutMS int64    `json:"timeout_ms,omitempty"`
}

func (s pmSpec) pm() gPM {
	return gPM{name: s.Name, interest: s.Interest, strict: s.Strict, timeout: time.Duration(s.TimeoutMS) * time.Millisecond}
}

// scenOp is one thing the scenario does: append events (in one
// transaction), move the clock, or restart the runtime (at once after the
// previous op with NoWait, while it is still busy).
type scenOp struct {
	Append    []testEvent `json:"append,omitempty"`
	Operate   []action    `json:"operate,omitempty"`
	AdvanceMS int64       `json:"advance_ms,omitempty"`
	Restart   bool        `json:"restart,omitempty"`
	NoWait    bool        `json:"no_wait,omitempty"`
}

// action is an operator's Retry, Skip or Cancel of an instance.
type action struct {
	PM     string `json:"pm"`
	ID     string `json:"id"`
	Action string `json:"action"` // retry, skip or cancel
}

type testEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Plan gPlan  `json:"plan"`
}

var diffStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// generate makes the scenario of seed.
func generate(seed uint64) scenario {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &gen{r: r}
	sc := scenario{Seed: seed}
	sc.Config = diffCfg{
		ChainDepth:    []int{-1, 1, 8}[r.IntN(3)],
		BatchSize:     []int{1, 7, 0}[r.IntN(3)],
		QueueCommands: r.IntN(4) == 0,
		InstanceCache: []int{-1, 0}[r.IntN(2)],
	}
	testTypes := []string{"T0", "T1", "T2"}
	for i := range 1 + r.IntN(2) {
		name := "p" + strconv.Itoa(i)
		own := []string{name + ".E0", name + ".E1", name + ".E2"}
		g.types = []string{"E0", "E1", "E2"}
		var interest []string
		for _, t := range append(slices.Clone(testTypes), own...) {
			if r.IntN(4) != 0 {
				interest = append(interest, t)
			}
		}
		if len(interest) == 0 {
			interest = []string{"T0"}
		}
		spec := pmSpec{Name: name, Interest: interest, Strict: r.IntN(4) == 0}
		if r.IntN(2) == 0 {
			spec.TimeoutMS = []int64{2000, 20000}[r.IntN(2)]
		}
		sc.PMs = append(sc.PMs, spec)
	}
	g.retries = !(sc.Config.QueueCommands && anyTimeout(sc.PMs))
	n := 0
	var failing []string // instances an event was generated to park
	for range 2 + r.IntN(7) {
		var op scenOp
		switch k := r.IntN(10); {
		case k < 5:
			for range 1 + r.IntN(6) {
				n++
				id := "i" + strconv.Itoa(r.IntN(5))
				pl := g.plan(id, 3+r.IntN(2))
				if r.IntN(8) == 0 { // an instance for the operator to act on
					pl.PanicHandle = true
					failing = append(failing, id)
				}
				if r.IntN(6) == 0 { // one event, several instances
					for range 1 + r.IntN(3) {
						pl.Each = append(pl.Each, "i"+strconv.Itoa(r.IntN(5)))
					}
				}
				op.Append = append(op.Append, testEvent{ID: testEventID(seed, n), Type: testTypes[r.IntN(3)], Plan: pl})
			}
			op.NoWait = r.IntN(6) == 0
		case k < 7:
			op.AdvanceMS = []int64{1000, 2500, 6000, 25000}[r.IntN(4)]
		case k < 9 && !(sc.Config.QueueCommands && anyTimeout(sc.PMs)):
			// (A retried or skipped event's timeout counts from its
			// RecordedAt, so it can be due at once; with QueueCommands its
			// firing races the step's commands in the outbox, an order the
			// semantics leave open.)
			for range 1 + r.IntN(3) {
				id := "i" + strconv.Itoa(r.IntN(5))
				if len(failing) > 0 && r.IntN(4) != 0 {
					id = failing[r.IntN(len(failing))]
				}
				op.Operate = append(op.Operate, action{PM: sc.PMs[r.IntN(len(sc.PMs))].Name, ID: id,
					Action: []string{"retry", "skip", "skip", "cancel"}[r.IntN(4)]})
			}
		default:
			op.Restart = true
		}
		sc.Ops = append(sc.Ops, op)
	}
	return sc
}

func anyTimeout(pms []pmSpec) bool {
	return slices.ContainsFunc(pms, func(p pmSpec) bool { return p.TimeoutMS > 0 })
}

// testEventID is a deterministic UUID of version 7 for a test event.
func testEventID(seed uint64, n int) string {
	id := engine.SortableID(uint64(diffStart.UnixMilli())+uint64(n), "test", strconv.FormatUint(seed, 10), strconv.Itoa(n))
	return id[:14] + "7" + id[15:]
}

type gen struct {
	r     *rand.Rand
	types []string // the event types aggregates emit, in their process manager's namespace
	// retries: failures may be retried after a delay (a retried event's
	// timeout can be due at once, which with QueueCommands races the
	// step's commands in the outbox, an order the semantics leave open).
	retries bool
}

func (g *gen) plan(id string, depth int) gPlan {
	r := g.r
	pl := gPlan{ID: id, Tag: strconv.Itoa(r.IntN(100))}
	switch k := r.IntN(100); {
	case k < 15:
		pl.Kind = "start"
	case k < 25:
		pl.Kind = "stop"
	case k < 30:
		pl.Kind = "ignore"
	case k < 31:
		pl.Kind = "fail"
	case k < 32:
		pl.Kind = "panic"
	case k < 37:
		pl.Kind = "startnew"
	}
	if r.IntN(2) == 0 {
		pl.Phase = string(rune('a' + r.IntN(4)))
	}
	pl.Done = r.IntN(12) == 0
	pl.PanicApply = r.IntN(120) == 0
	pl.PanicHandle = r.IntN(100) == 0
	pl.Err = r.IntN(150) == 0
	pl.Invalid = r.IntN(200) == 0
	pl.Listen = r.IntN(8) == 0
	if r.IntN(3) == 0 {
		pl.OnFail = []string{"skip", "stop", "park", "retry"}[r.IntN(4)]
		if pl.OnFail == "retry" && !g.retries {
			pl.OnFail = "skip"
		}
	}
	if r.IntN(5) == 0 {
		pl.Set = append(pl.Set, gSet{Name: []string{"d1", "d2"}[r.IntN(2)], AfterMS: []int64{0, 1500, 5000, 20000}[r.IntN(4)]})
	}
	if depth > 0 {
		if r.IntN(5) == 0 {
			t := g.plan(id, depth-1)
			pl.OnTimer = &t
		}
		for range []int{0, 1, 1, 2, 2}[r.IntN(5)] {
			pl.Cmds = append(pl.Cmds, g.cmd(id, depth-1))
		}
	}
	return pl
}

func (g *gen) cmd(id string, depth int) gCmd {
	r := g.r
	c := gCmd{Inst: id, Agg: r.IntN(2), Reject: r.IntN(8) == 0, Discard: r.IntN(3) == 0}
	if r.IntN(5) == 0 {
		c.Limit = 1 + r.IntN(3)
	}
	for range []int{0, 1, 1, 2}[r.IntN(4)] {
		c.Emit = append(c.Emit, gEmit{Type: g.types[r.IntN(len(g.types))], Plan: g.plan(id, depth)})
	}
	if depth > 0 && r.IntN(3) == 0 {
		c.Comp = append(c.Comp, g.cmd(id, depth-1))
	}
	c.PanicComp = r.IntN(80) == 0
	if depth > 0 && r.IntN(3) == 0 {
		p := g.plan(id, depth-1)
		c.OnReject = &p
	}
	return c
}

// world is what the differential test compares.
type world struct {
	ops     []string // each operator action and whether it was accepted
	insts   map[string]instView
	streams map[string][]string
	orphans map[string][]string
}

type instView struct {
	Status    string
	Phase     string
	Version   int64
	State     string
	History   []string
	Held      []string
	Deadlines []string
}

// eventLine shows an event as the comparison sees it: the system events'
// data by their fields (the stores may differ in how they write times).
func eventLine(e evoke.Event) string {
	data := canonical(e.Data)
	switch e.Type {
	case engine.TypeCommandRejected:
		var d engine.RejectionData
		_ = json.Unmarshal(e.Data, &d)
		c := d.Command
		data = fmt.Sprintf("%s/%s %s %s %s/%s %s %q", d.ProcessManager, d.InstanceID, c.ID, c.Type, c.AggregateType, c.AggregateID, canonical(c.Payload), d.Reason)
	case engine.TypeDeadline:
		var d engine.DeadlineData
		_ = json.Unmarshal(e.Data, &d)
		data = fmt.Sprintf("%s/%s %s v%d %s", d.ProcessManager, d.InstanceID, d.Name, d.Version, d.At.UTC().Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("%s %s v%d corr=%s caus=%s %s", e.ID, e.Type, e.StreamVersion, e.Metadata.CorrelationID, e.Metadata.CausationID, data)
}

// canonical returns JSON re-encoded with sorted keys.
func canonical(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "!" + string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// diff lists the differences of got from want, at most max of them.
func (want world) diff(got world, max int) []string {
	var out []string
	add := func(f string, args ...any) {
		if len(out) < max {
			out = append(out, fmt.Sprintf(f, args...))
		}
	}
	if !slices.Equal(want.ops, got.ops) {
		add("operator actions %v, model %v", got.ops, want.ops)
	}
	for _, k := range slices.Sorted(maps.Keys(unionKeys(want.insts, got.insts))) {
		w, okW := want.insts[k]
		g, okG := got.insts[k]
		switch {
		case !okG:
			add("instance %s missing (model: %+v)", k, w)
			continue
		case !okW:
			add("instance %s should not exist (runtime: %+v)", k, g)
			continue
		}
		if w.Status != g.Status || w.Phase != g.Phase || w.Version != g.Version {
			add("instance %s: status %s phase %q version %d, model: %s %q %d", k, g.Status, g.Phase, g.Version, w.Status, w.Phase, w.Version)
		}
		if w.State != g.State {
			add("instance %s: state %s\n      model: %s", k, g.State, w.State)
		}
		if !slices.Equal(w.History, g.History) {
			add("instance %s: history\n      %s\n    model:\n      %s", k, strings.Join(g.History, "\n      "), strings.Join(w.History, "\n      "))
		}
		if !slices.Equal(w.Held, g.Held) {
			add("instance %s: held %v, model %v", k, g.Held, w.Held)
		}
		if !slices.Equal(w.Deadlines, g.Deadlines) {
			add("instance %s: deadlines %v, model %v", k, g.Deadlines, w.Deadlines)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(unionKeys(want.streams, got.streams))) {
		if strings.HasPrefix(k, "$evoke.deadline-") {
			// Whether a deadline that is due as soon as it is stored (a
			// replayed event's timeout) fires before the instance's next
			// step replaces it is a race the semantics leave open; the
			// deadline events an instance stepped or holds are compared
			// in its history and held events.
			continue
		}
		if w, g := want.streams[k], got.streams[k]; !slices.Equal(w, g) {
			add("stream %s:\n      %s\n    model:\n      %s", k, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(unionKeys(want.orphans, got.orphans))) {
		// As a set: the events held for a process manager come from
		// different instances, whose aggregates' events the log may
		// interleave in any order (a batch executes its instances'
		// commands instance by instance, the model event by event).
		w, g := slices.Sorted(slices.Values(want.orphans[k])), slices.Sorted(slices.Values(got.orphans[k]))
		if !slices.Equal(w, g) {
			add("events held for %s: %v, model %v", k, g, w)
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

// expect runs sc through the reference model.
func expect(sc scenario) world {
	aggs := map[string]evoke.Aggregate[gAggState]{}
	var pms []evoke.ProcessManager[gState]
	for _, s := range sc.PMs {
		pm := s.pm()
		pms = append(pms, pm)
		aggs[pm.aggType(0)], aggs[pm.aggType(1)] = gAgg{pm.name}, gAgg{pm.name}
	}
	m := newModel(diffStart, aggs, pms...)
	var ops []string
	for _, op := range sc.Ops {
		switch {
		case op.Operate != nil:
			for _, a := range op.Operate {
				i := slices.IndexFunc(pms, func(pm evoke.ProcessManager[gState]) bool { return pm.Name() == a.PM })
				ops = append(ops, fmt.Sprintf("%s %s/%s: %v", a.Action, a.PM, a.ID, m.operate(pms[i], a.ID, a.Action)))
			}
		case op.Append != nil:
			for _, te := range op.Append {
				m.appendEvent(evoke.Event{ID: te.ID, Type: te.Type, StreamID: "t-" + te.ID, StreamVersion: 1, Data: mustJSON(te.Plan)})
			}
			m.run()
		case op.AdvanceMS > 0:
			m.advance(time.Duration(op.AdvanceMS) * time.Millisecond)
		}
	}
	w := m.view()
	w.ops = ops
	return w
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// observe runs sc through a runtime on st and reads what it left there.
func observe(ctx context.Context, st evokestore.Store, sc scenario, counts *diffCounts) (world, error) {
	clock := evoketest.NewClock(diffStart)
	cfg := &evoke.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock, MaxAttempts: 1,
		PollInterval: 20 * time.Millisecond, Partitions: 4,
		ChainDepth: sc.Config.ChainDepth, BatchSize: sc.Config.BatchSize, QueueCommands: sc.Config.QueueCommands, InstanceCache: sc.Config.InstanceCache,
	}
	newRT := func() (*evoke.Runtime, error) {
		rt, err := evoke.New(st, cfg)
		if err != nil {
			return nil, err
		}
		for _, s := range sc.PMs {
			pm := s.pm()
			if err := evoke.RegisterProcessManager(rt, pm, nil); err != nil {
				return nil, err
			}
			for k := range 2 {
				if err := evoke.RegisterAggregate(rt, pm.aggType(k), gAgg{pm.name}); err != nil {
					return nil, err
				}
			}
		}
		return rt, rt.Start(ctx)
	}
	rt, err := newRT()
	if err != nil {
		return world{}, err
	}
	defer func() { _ = rt.Stop(context.WithoutCancel(ctx)) }()
	defer func() { counts.add(rt.Stats()) }()
	var ops []string
	for i, op := range sc.Ops {
		switch {
		case op.Operate != nil:
			for _, a := range op.Operate {
				var err error
				switch a.Action {
				case "retry":
					err = rt.Retry(ctx, a.PM, a.ID)
				case "skip":
					err = rt.Skip(ctx, a.PM, a.ID)
				case "cancel":
					err = rt.Cancel(ctx, a.PM, a.ID)
				}
				ops = append(ops, fmt.Sprintf("%s %s/%s: %v", a.Action, a.PM, a.ID, err == nil))
				if err := waitIdle(ctx, rt); err != nil {
					return world{}, fmt.Errorf("op %d: %w", i, err)
				}
			}
		case op.Append != nil:
			batch := make([]evoke.StreamAppend, len(op.Append))
			for j, te := range op.Append {
				batch[j] = evoke.StreamAppend{StreamID: "t-" + te.ID, ExpectedVersion: evoke.NoStream,
					Events: []evoke.Event{{ID: te.ID, Type: te.Type, Data: mustJSON(te.Plan)}}}
			}
			if feed, ok := feeds.Load(st); ok {
				if err := feed.(feedFunc)(ctx, rt, batch); err != nil {
					return world{}, err
				}
			} else if _, err := rt.AppendBatch(ctx, batch); err != nil {
				return world{}, err
			}
		case op.AdvanceMS > 0:
			clock.Advance(time.Duration(op.AdvanceMS) * time.Millisecond)
		case op.Restart:
			if err := rt.Stop(ctx); err != nil {
				return world{}, err
			}
			counts.add(rt.Stats())
			counts.restart()
			if rt, err = newRT(); err != nil {
				return world{}, err
			}
		}
		if op.NoWait && i+1 < len(sc.Ops) && sc.Ops[i+1].Restart {
			continue
		}
		if err := waitIdle(ctx, rt); err != nil {
			return world{}, fmt.Errorf("op %d: %w", i, err)
		}
	}
	if err := rt.Stop(ctx); err != nil {
		return world{}, err
	}
	w, err := readWorld(ctx, st, sc)
	w.ops = ops
	return w, err
}

// diffCounts counts what the runtimes of a differential run did, to show
// what its cases exercise; a nil *diffCounts counts nothing.
type diffCounts struct {
	steps, chained, parked, completed, rejected, restarts atomic.Int64
	// From what the runtimes left in the stores: failures skipped,
	// stopped and retried by OnFailure, and listeners (instances that a
	// process manager reaches with the events of another, by Each).
	skipped, stopped, retried, listeners atomic.Int64
}

// seen counts what the runtime left in w.
func (t *diffCounts) seen(w world) {
	if t == nil {
		return
	}
	for k, in := range w.insts {
		if strings.HasSuffix(k, listener) {
			t.listeners.Add(1)
		}
		for _, h := range in.History {
			switch {
			case strings.HasPrefix(h, "skipped "):
				t.skipped.Add(1)
			case strings.HasPrefix(h, "cancelled "):
				t.stopped.Add(1)
			case strings.HasPrefix(h, "failed "):
				t.retried.Add(1)
			}
		}
	}
}

func (t *diffCounts) restart() {
	if t != nil {
		t.restarts.Add(1)
	}
}

func (t *diffCounts) add(s evoke.Stats) {
	if t == nil {
		return
	}
	t.steps.Add(s.Steps)
	t.chained.Add(s.Chained)
	t.parked.Add(s.Parked)
	t.completed.Add(s.Completed)
	t.rejected.Add(s.Rejected)
}

func (t *diffCounts) String() string {
	return fmt.Sprintf("%d steps (%d chained), %d instances completed, %d parked, %d commands rejected, %d restarts; "+
		"failures: %d skipped, %d retried after a delay, %d stopped or cancelled; %d listeners",
		t.steps.Load(), t.chained.Load(), t.completed.Load(), t.parked.Load(), t.rejected.Load(), t.restarts.Load(),
		t.skipped.Load(), t.retried.Load(), t.stopped.Load(), t.listeners.Load())
}

// waitIdle waits until rt is idle, or 20 s.
func waitIdle(ctx context.Context, rt *evoke.Runtime) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		idle, err := rt.Idle(ctx)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the runtime was still busy after 20s")
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// readWorld reads the comparison's view from a store.
func readWorld(ctx context.Context, st evokestore.Store, sc scenario) (world, error) {
	w := world{insts: map[string]instView{}, streams: map[string][]string{}, orphans: map[string][]string{}}
	idAt := map[int64]string{}
	for after := int64(0); ; {
		evs, err := st.ReadLog(ctx, evokestore.LogQuery{After: after, Limit: 1000})
		if err != nil {
			return w, err
		}
		if len(evs) == 0 {
			break
		}
		for _, r := range evs {
			e := evoke.Event{ID: r.ID, Type: r.Type, StreamID: r.StreamID, StreamVersion: r.StreamVersion, Data: r.Data,
				Metadata: evoke.Metadata{CorrelationID: r.CorrelationID, CausationID: r.CausationID}}
			w.streams[e.StreamID] = append(w.streams[e.StreamID], eventLine(e))
			idAt[r.Position] = r.ID
			after = r.Position
		}
	}
	heldIDs := func(pm, id string) ([]string, error) {
		held, err := st.Held(ctx, pm, id)
		var ids []string
		for _, h := range held {
			ids = append(ids, idAt[h.Position])
		}
		return ids, err
	}
	dr, _ := st.(evokestore.DeadlinesReader)
	for _, s := range sc.PMs {
		insts, err := st.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: s.Name, Limit: 100000})
		if err != nil {
			return w, err
		}
		for _, in := range insts {
			v := instView{Status: string(in.Status), Phase: in.Phase, Version: in.Version, State: canonical(in.State)}
			hist, err := st.History(ctx, s.Name, in.ID)
			if err != nil {
				return w, err
			}
			for _, h := range hist {
				switch h.Kind {
				case evokestore.KindStep:
					var refs []struct{ ID string }
					_ = json.Unmarshal(h.Commands, &refs)
					var ids []string
					for _, r := range refs {
						ids = append(ids, r.ID)
					}
					v.History = append(v.History, fmt.Sprintf("step v%d %s %s %q->%q %v", h.Version, h.EventID, h.EventType, h.PhaseBefore, h.PhaseAfter, ids))
				case evokestore.KindParked, evokestore.KindSkipped:
					v.History = append(v.History, fmt.Sprintf("%s v%d %s", h.Kind, h.Version, h.EventID))
				default:
					v.History = append(v.History, fmt.Sprintf("%s v%d", h.Kind, h.Version))
				}
			}
			if v.Held, err = heldIDs(s.Name, in.ID); err != nil {
				return w, err
			}
			if dr != nil {
				dls, err := dr.InstanceDeadlines(ctx, s.Name, []string{in.ID})
				if err != nil {
					return w, err
				}
				for _, d := range dls {
					v.Deadlines = append(v.Deadlines, d.Name+"@"+d.DueAt.UTC().Format(time.RFC3339Nano)+" v"+strconv.FormatInt(d.Version, 10))
				}
				slices.Sort(v.Deadlines)
			}
			w.insts[s.Name+"/"+in.ID] = v
		}
		orphans, err := heldIDs(s.Name, "")
		if err != nil {
			return w, err
		}
		if len(orphans) > 0 {
			w.orphans[s.Name] = orphans
		}
	}
	return w, nil
}

// diffStore opens a fresh store for one case; the function closes it.
type diffStore func(ctx context.Context) (evokestore.Store, func(), error)

func sqliteDiffStore(dir string) diffStore {
	var n atomic.Int64
	return func(ctx context.Context) (evokestore.Store, func(), error) {
		path := filepath.Join(dir, fmt.Sprintf("case-%d.db", n.Add(1)))
		st, err := evokesqlite.Open(ctx, path, nil)
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close(); _ = os.Remove(path); _ = os.Remove(path + "-wal"); _ = os.Remove(path + "-shm") }, nil
	}
}

func pgDiffStore(url string) diffStore {
	var n atomic.Int64
	prefix := fmt.Sprintf("evoke_diff_%d_", time.Now().UnixNano())
	return func(ctx context.Context) (evokestore.Store, func(), error) {
		schema := prefix + strconv.FormatInt(n.Add(1), 10)
		st, err := evokepg.Open(ctx, url, &evokepg.Options{Schema: schema})
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close(); dropSchema(url, schema) }, nil
	}
}

// check runs sc on a fresh store and through the model; it returns the
// differences, or an error of the run itself.
func check(ctx context.Context, open diffStore, sc scenario, counts *diffCounts) ([]string, error) {
	st, closeStore, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	got, err := observe(ctx, st, sc, counts)
	if err != nil {
		return nil, err
	}
	counts.seen(got)
	return expect(sc).diff(got, 6), nil
}

// shrink looks for a smaller scenario that still fails, within budget.
func shrink(ctx context.Context, open diffStore, sc scenario, budget time.Duration) scenario {
	deadline := time.Now().Add(budget)
	fails := func(c scenario) bool {
		if time.Now().After(deadline) {
			return false
		}
		d, err := check(ctx, open, c, nil)
		return err != nil || len(d) > 0
	}
	for changed := true; changed && time.Now().Before(deadline); {
		changed = false
		for _, c := range smaller(sc) {
			if fails(c) {
				sc, changed = c, true
				break
			}
		}
	}
	return sc
}

// smaller returns the scenarios one simplification away from sc: an op,
// an event, a command, an emitted event or a flag less.
func smaller(sc scenario) []scenario {
	var out []scenario
	with := func(f func(c *scenario)) {
		c := cloneScenario(sc)
		f(&c)
		out = append(out, c)
	}
	for i := range sc.Ops {
		with(func(c *scenario) { c.Ops = slices.Delete(c.Ops, i, i+1) })
	}
	for i, op := range sc.Ops {
		for j := range op.Operate {
			if len(op.Operate) > 1 {
				with(func(c *scenario) { c.Ops[i].Operate = slices.Delete(c.Ops[i].Operate, j, j+1) })
			}
		}
		for j := range op.Append {
			if len(op.Append) > 1 {
				with(func(c *scenario) { c.Ops[i].Append = slices.Delete(c.Ops[i].Append, j, j+1) })
			}
			for _, p := range smallerPlans(op.Append[j].Plan) {
				with(func(c *scenario) { c.Ops[i].Append[j].Plan = p })
			}
		}
	}
	if len(sc.PMs) > 1 {
		for i := range sc.PMs {
			with(func(c *scenario) { c.PMs = slices.Delete(c.PMs, i, i+1) })
		}
	}
	return out
}

func smallerPlans(p gPlan) []gPlan {
	var out []gPlan
	with := func(f func(q *gPlan)) {
		var q gPlan
		_ = json.Unmarshal(mustJSON(p), &q)
		f(&q)
		out = append(out, q)
	}
	for i := range p.Cmds {
		with(func(q *gPlan) { q.Cmds = slices.Delete(q.Cmds, i, i+1) })
		for j := range p.Cmds[i].Emit {
			with(func(q *gPlan) { q.Cmds[i].Emit = slices.Delete(q.Cmds[i].Emit, j, j+1) })
			for _, sub := range smallerPlans(p.Cmds[i].Emit[j].Plan) {
				with(func(q *gPlan) { q.Cmds[i].Emit[j].Plan = sub })
			}
		}
		if p.Cmds[i].Comp != nil {
			with(func(q *gPlan) { q.Cmds[i].Comp = nil })
		}
		if p.Cmds[i].OnReject != nil {
			with(func(q *gPlan) { q.Cmds[i].OnReject = nil })
		}
	}
	if p.OnTimer != nil {
		with(func(q *gPlan) { q.OnTimer = nil })
	}
	if p.Set != nil {
		with(func(q *gPlan) { q.Set = nil })
	}
	return out
}

func cloneScenario(sc scenario) scenario {
	var c scenario
	_ = json.Unmarshal(mustJSON(sc), &c)
	return c
}

func diffCases() (first uint64, n int) {
	first, n = 1, 300
	if raceDetector {
		n = 40
	}
	if v, err := strconv.ParseUint(os.Getenv("EVOKE_DIFF_SEED"), 10, 64); err == nil {
		first = v
	}
	if v, err := strconv.Atoi(os.Getenv("EVOKE_DIFF_CASES")); err == nil && v > 0 {
		n = v
	}
	return first, n
}

// TestDifferential runs generated scenarios through the runtime on both
// stores and through the reference model, and requires the same outcome.
func TestDifferential(t *testing.T) {
	first, n := diffCases()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		runDifferential(t, sqliteDiffStore(t.TempDir()), first, n)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := os.Getenv("EVOKE_TEST_POSTGRES_URL")
		if url == "" {
			t.Skip("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
		}
		runDifferential(t, pgDiffStore(url), first, n)
	})
}

func runDifferential(t *testing.T, open diffStore, first uint64, n int) {
	ctx := context.Background()
	start := time.Now()
	var (
		counts diffCounts
		mu     sync.Mutex
		failed []uint64
		wg     sync.WaitGroup
		next   atomic.Uint64
	)
	next.Store(first)
	for range 4 {
		wg.Go(func() {
			for {
				seed := next.Add(1) - 1
				if seed >= first+uint64(n) {
					return
				}
				mu.Lock()
				stop := len(failed) > 0
				mu.Unlock()
				if stop {
					return
				}
				sc := generate(seed)
				d, err := check(ctx, open, sc, &counts)
				if err == nil && len(d) == 0 {
					continue
				}
				mu.Lock()
				failed = append(failed, seed)
				mu.Unlock()
				report(t, ctx, open, sc, d, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d cases from seed %d in %v: %v", n, first, time.Since(start).Round(time.Millisecond), &counts)
}

// report prints a failing case: its seed, its differences and a shrunk
// scenario that still fails.
func report(t *testing.T, ctx context.Context, open diffStore, sc scenario, d []string, err error) {
	small := shrink(ctx, open, sc, 60*time.Second)
	sd, serr := check(ctx, open, small, nil)
	t.Errorf("seed %d (config %+v) differs from the model:\n  %s%v\nshrunk scenario:\n%s\ndifferences of the shrunk scenario:\n  %s%v\nrerun: EVOKE_DIFF_SEED=%d EVOKE_DIFF_CASES=1 go test -run 'TestDifferential' .",
		sc.Seed, sc.Config, strings.Join(d, "\n  "), errOrNil(err), mustJSON(small), strings.Join(sd, "\n  "), errOrNil(serr), sc.Seed)
}

func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	return "run error: " + err.Error()
}

// FuzzDifferential drives the same generator from the fuzzer's seeds, on
// SQLite: go test -run XXX -fuzz FuzzDifferential .
func FuzzDifferential(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s)
	}
	dir := f.TempDir()
	open := sqliteDiffStore(dir)
	f.Fuzz(func(t *testing.T, seed uint64) {
		sc := generate(seed)
		d, err := check(context.Background(), open, sc, nil)
		if err != nil || len(d) > 0 {
			report(t, context.Background(), open, sc, d, err)
		}
	})
}
