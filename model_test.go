package evoke_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// The reference model: the semantics the docs promise, executed as plainly
// as possible. One event at a time from an in-memory log, in log order; each
// step's commands are executed at once and their events appended to the end
// of the log; no batching, no chaining, no pipeline, no cache, no store.
// The differential test (differential_test.go) runs the same scenario through
// the real runtime and requires the same outcome.
//
// The model keeps what a user can observe through the store: every
// instance's status, state, phase, version, history, held events
// and deadlines, and every event in the log. Positions are not part of it:
// the runtime's log interleaves different instances' events in an order that
// batching may change, while each instance's own order is fixed.

// model runs process managers over state S and aggregates over state A.
type model[S, A any] struct {
	pms        []evoke.ProcessManager[S]
	aggregates map[string]evoke.Aggregate[A]
	now        time.Time
	log        []evoke.Event // every event appended, in order
	next       int           // the next event of log to route
	insts      map[instKey]*modelInst
	orphans    map[string][]string // event IDs held for a process manager
}

type instKey struct{ pm, id string }

// modelInst is one instance as the store would hold it.
type modelInst struct {
	status    string    // running, compensating, failing, completed, cancelled or parked
	attempts  int       // failures in a row
	nextAt    time.Time // when a failing instance is retried
	state     []byte    // JSON, as stored; nil for a new instance
	phase     string
	version   int64
	history   []string
	held      []string // event IDs
	deadlines []modelDeadline
}

type modelDeadline struct {
	name    string
	at      time.Time
	version int64
}

// timeoutName is the deadline an inactivity timeout is stored under; the
// model never shows it to user code, only its kind.
const timeoutName = "$timeout"

func newModel[S, A any](now time.Time, aggregates map[string]evoke.Aggregate[A], pms ...evoke.ProcessManager[S]) *model[S, A] {
	return &model[S, A]{pms: pms, aggregates: aggregates, now: now, insts: map[instKey]*modelInst{}, orphans: map[string][]string{}}
}

// appendEvent records e at the end of the log.
func (m *model[S, A]) appendEvent(e evoke.Event) {
	if e.RecordedAt.IsZero() {
		e.RecordedAt = m.now
	}
	m.log = append(m.log, e)
}

// run routes every event not yet routed, including those the steps cause,
// and fires the deadlines that are due (a replayed event's timeout may be),
// until nothing is left to do.
func (m *model[S, A]) run() {
	for {
		for m.next < len(m.log) {
			e := m.log[m.next]
			m.next++
			for _, pm := range m.pms {
				m.route(pm, e)
			}
		}
		if !m.retry() && !m.fire() {
			return
		}
	}
}

// retry runs again the failing instances whose retry is due, reporting
// whether there were any. (Whether a due deadline of such an instance fires
// before or after its retry changes nothing: fired first, it is held and
// then dropped as stale once the retried step moves the version on.)
func (m *model[S, A]) retry() bool {
	var due []instKey
	for k, in := range m.insts {
		if in.status == "failing" && !in.nextAt.After(m.now) {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b instKey) int {
		if a.pm != b.pm {
			return cmpStr(a.pm, b.pm)
		}
		return cmpStr(a.id, b.id)
	})
	for _, k := range due {
		i := slices.IndexFunc(m.pms, func(pm evoke.ProcessManager[S]) bool { return pm.Name() == k.pm })
		m.replay(m.pms[i], k.id, m.insts[k])
	}
	return len(due) > 0
}

// advance moves the clock to now+d and fires every deadline then due, in
// order of time (then process manager, instance and name), each as an
// event at the end of the log; a deadline whose instance has moved past its
// version, or completed, is dropped. It runs the log after each round of
// deadlines, until none is due (see run).
func (m *model[S, A]) advance(d time.Duration) {
	m.now = m.now.Add(d)
	m.run()
}

// fire appends the events of the deadlines due, reporting whether there
// were any.
func (m *model[S, A]) fire() bool {
	type due struct {
		key instKey
		dl  modelDeadline
	}
	var fire []due
	for k, in := range m.insts {
		var keep []modelDeadline
		for _, dl := range in.deadlines {
			if dl.at.After(m.now) {
				keep = append(keep, dl)
			} else {
				fire = append(fire, due{k, dl})
			}
		}
		in.deadlines = keep
	}
	slices.SortFunc(fire, func(a, b due) int {
		if c := a.dl.at.Compare(b.dl.at); c != 0 {
			return c
		}
		if a.key.pm != b.key.pm {
			return cmpStr(a.key.pm, b.key.pm)
		}
		if a.key.id != b.key.id {
			return cmpStr(a.key.id, b.key.id)
		}
		return cmpStr(a.dl.name, b.dl.name)
	})
	for _, f := range fire {
		in := m.insts[f.key]
		if in.version != f.dl.version || done(in.status) {
			continue
		}
		id := engine.SortableID(uint64(f.dl.at.UnixMilli()), "deadline", f.key.pm, f.key.id, f.dl.name, fmt.Sprint(f.dl.version))
		data, _ := json.Marshal(engine.DeadlineData{ProcessManager: f.key.pm, InstanceID: f.key.id, Version: f.dl.version, Name: f.dl.name, At: f.dl.at})
		m.appendEvent(evoke.Event{ID: id, Type: engine.TypeDeadline, StreamID: "$evoke.deadline-" + id, StreamVersion: 1, Data: data,
			Metadata: evoke.Metadata{CorrelationID: id}})
	}
	return len(fire) > 0
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// route delivers e to the instances of pm it correlates to, if any.
func (m *model[S, A]) route(pm evoke.ProcessManager[S], e evoke.Event) {
	name := pm.Name()
	targets, ok := m.correlate(pm, e)
	if !ok {
		return
	}
	if targets == nil {
		m.orphans[name] = append(m.orphans[name], e.ID)
		return
	}
	for _, t := range targets {
		m.deliver(pm, e, t.Kind(), t.ID())
	}
}

// deliver steps e on instance id of pm, as correlated with kind.
func (m *model[S, A]) deliver(pm evoke.ProcessManager[S], e evoke.Event, kind evoke.CorrelationKind, id string) {
	key := instKey{pm.Name(), id}
	in := m.insts[key]
	if in != nil {
		if done(in.status) && e.Type != engine.TypeCommandRejected {
			return // a tombstone takes no events
		}
		if in.status == "parked" || in.status == "failing" {
			in.held = append(in.held, e.ID)
			return
		}
	} else {
		switch {
		case e.Type == engine.TypeCommandRejected || e.Type == engine.TypeDeadline:
			return
		case kind == evoke.KindStop:
			return
		case kind == evoke.KindContinue && isStrict(pm):
			return
		}
		in = &modelInst{status: "running"}
		m.insts[key] = in
	}
	if stale(in, e) {
		return
	}
	m.step(pm, id, in, e, kind, false)
}

// correlate says where e goes for pm: nowhere (ok false), to a failed
// correlation (nil targets), or to instances. The engine's own events name
// their instance; the others go through Correlate if pm is interested.
func (m *model[S, A]) correlate(pm evoke.ProcessManager[S], e evoke.Event) (targets []evoke.Correlation, ok bool) {
	if e.Type == engine.TypeCommandRejected || e.Type == engine.TypeDeadline {
		var t struct {
			ProcessManager string `json:"process_manager"`
			InstanceID     string `json:"instance_id"`
		}
		if json.Unmarshal(e.Data, &t) != nil || t.ProcessManager != pm.Name() {
			return nil, false
		}
		return []evoke.Correlation{evoke.Continue(t.InstanceID)}, true
	}
	if !slices.Contains(pm.InterestedIn(), e.Type) {
		return nil, false
	}
	c, err := call(func() evoke.Correlation { return pm.Correlate(e) })
	switch {
	case err == nil && c.Kind() == evoke.KindIgnore:
		return nil, false
	case err != nil || c.Kind() == evoke.KindError:
		return nil, true
	}
	targets = c.Targets()
	for _, t := range targets {
		if t.ID() == "" {
			return nil, true
		}
	}
	return targets, true
}

// kindFor is the kind with which e reaches instance id of pm when it is
// retried: as Correlate routes it there, or Continue.
func (m *model[S, A]) kindFor(pm evoke.ProcessManager[S], e evoke.Event, id string) evoke.CorrelationKind {
	targets, _ := m.correlate(pm, e)
	for _, t := range targets {
		if t.ID() == id {
			return t.Kind()
		}
	}
	return evoke.KindContinue
}

// stale reports a deadline event of a version the instance moved past.
func stale(in *modelInst, e evoke.Event) bool {
	if e.Type != engine.TypeDeadline {
		return false
	}
	var d engine.DeadlineData
	return json.Unmarshal(e.Data, &d) != nil || d.Version != in.version
}

func done(status string) bool { return status == "completed" || status == "cancelled" }

// operate runs an operator's action on an instance, as Runtime.Retry, Skip
// and Cancel do, and reports whether it was accepted: retry and skip act on
// a parked instance only (skip needs an event held), cancel on any that is
// not done.
func (m *model[S, A]) operate(pm evoke.ProcessManager[S], id, action string) bool {
	in := m.insts[instKey{pm.Name(), id}]
	if in == nil {
		return false
	}
	switch action {
	case "cancel":
		if done(in.status) {
			return false
		}
		in.status, in.held, in.deadlines = "cancelled", nil, nil
		in.history = append(in.history, fmt.Sprintf("cancelled v%d", in.version))
		return true
	case "retry":
		if in.status != "parked" && in.status != "failing" {
			return false
		}
		in.history = append(in.history, fmt.Sprintf("retried v%d", in.version))
	case "skip":
		if in.status != "parked" && in.status != "failing" || len(in.held) == 0 {
			return false
		}
		in.history = append(in.history, fmt.Sprintf("skipped v%d %s", in.version, in.held[0]))
		in.held = in.held[1:]
	}
	in.attempts = 0
	m.replay(pm, id, in)
	m.run()
	return true
}

// replay runs a failing or parked instance again: it steps its held events
// in order, dropping those it no longer takes, until one fails and is not
// skipped or stopped by the process manager (which leaves that event and
// the later ones held).
func (m *model[S, A]) replay(pm evoke.ProcessManager[S], id string, in *modelInst) {
	in.status = "running"
	held := in.held
	in.held = nil
	for i, eid := range held {
		e := m.event(eid)
		kind := m.kindFor(pm, e, id)
		if (done(in.status) && e.Type != engine.TypeCommandRejected) || stale(in, e) {
			continue
		}
		if !m.step(pm, id, in, e, kind, true) {
			in.held = held[i:]
			return
		}
	}
}

// event returns the event of the log with ID id.
func (m *model[S, A]) event(id string) evoke.Event {
	for _, e := range m.log {
		if e.ID == id {
			return e
		}
	}
	panic("no event " + id)
}

func isStrict(pm any) bool {
	s, ok := pm.(evoke.Strict)
	return ok && s.Strict()
}

// call runs f, turning a panic into an error.
func call[T any](f func() T) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f(), nil
}

// step runs one event through instance id: Compensate first for a
// rejection, then Apply and Handle. It reports false for a failure that
// leaves the event held (the instance failing or parked).
func (m *model[S, A]) step(pm evoke.ProcessManager[S], id string, in *modelInst, e evoke.Event, kind evoke.CorrelationKind, replay bool) bool {
	ok, err := m.try(pm, id, in, e, kind)
	if err != nil {
		return m.fail(pm, id, in, e, err, replay)
	}
	return ok
}

// try is step but for failures, which it returns.
func (m *model[S, A]) try(pm evoke.ProcessManager[S], id string, in *modelInst, e evoke.Event, kind evoke.CorrelationKind) (bool, error) {
	if kind == evoke.KindStartNew && in.version > 0 {
		return false, evoke.ErrAlreadyStarted
	}
	e.InstanceID = id
	var s S
	if in.state != nil {
		if err := json.Unmarshal(in.state, &s); err != nil {
			return false, err
		}
	}
	var cmds []evoke.Command
	compensating := false
	user := e
	switch e.Type {
	case engine.TypeCommandRejected:
		var d engine.RejectionData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return false, err
		}
		c := d.Command
		fc := evoke.FailedCommand{Reason: d.Reason, Command: evoke.Command{ID: c.ID, Type: c.Type, AggregateType: c.AggregateType,
			AggregateID: c.AggregateID, Payload: c.Payload, Metadata: evoke.Metadata{CorrelationID: c.CorrelationID, CausationID: c.CausationID}}}
		if comp, ok := pm.(evoke.Compensator[S]); ok {
			type out struct {
				cmds []evoke.Command
				ok   bool
			}
			o, err := call(func() out { c, ok := comp.Compensate(s, fc); return out{c, ok} })
			if err != nil {
				return false, err
			}
			if o.ok {
				cmds = o.cmds
				compensating = len(o.cmds) > 0
			}
		}
	}
	user = userEvent(e)
	type result struct {
		s    S
		cmds []evoke.Command
		err  error
	}
	r, err := call(func() result {
		s = pm.Apply(s, user)
		s2, c, err := pm.Handle(s, user)
		return result{s2, c, err}
	})
	if err == nil {
		err = r.err
	}
	if err != nil {
		return false, err
	}
	s = r.s
	cmds = append(cmds, r.cmds...)
	for _, c := range cmds {
		if c.Type == "" || c.AggregateType == "" || c.AggregateID == "" {
			return false, evoke.ErrInvalid
		}
	}
	phase := ""
	if sr, ok := pm.(evoke.PhaseReporter[S]); ok {
		phase = sr.Phase(s)
	}
	completed := false
	if cp, ok := pm.(evoke.Completer[S]); ok {
		completed = cp.Completed(s)
	}
	var named []evoke.Deadline
	dl, hasDeadlines := pm.(evoke.Deadliner[S])
	if hasDeadlines {
		named = dl.Deadlines(s)
	}
	state, err := json.Marshal(s)
	if err != nil {
		return false, err
	}

	wasDone := done(in.status)
	before := in.phase
	in.version++
	in.attempts = 0
	in.state, in.phase = state, phase
	if compensating && !wasDone {
		in.status = "compensating"
	}
	ends := wasDone || kind == evoke.KindStop || completed
	if ends && !wasDone {
		in.status = "completed"
	}
	var ids []string
	for i := range cmds {
		ids = append(ids, evoke.CommandID(pm.Name(), id, e, i))
	}
	in.history = append(in.history, fmt.Sprintf("step v%d %s %s %q->%q %v", in.version, e.ID, user.Type, before, phase, ids))
	timeout := time.Duration(0)
	if t, ok := pm.(evoke.Timeouter); ok {
		timeout = t.Timeout()
	}
	if timeout > 0 || hasDeadlines {
		in.deadlines = nil
		if !ends {
			if timeout > 0 {
				in.deadlines = append(in.deadlines, modelDeadline{timeoutName, e.RecordedAt.Add(timeout), in.version})
			}
			for _, d := range named {
				in.deadlines = append(in.deadlines, modelDeadline{d.Name, d.At, in.version})
			}
		}
	}
	correlation := e.Metadata.CorrelationID
	if correlation == "" {
		correlation = e.ID
	}
	for i, c := range cmds {
		c.ID = ids[i]
		c.Metadata.CorrelationID, c.Metadata.CausationID = correlation, e.ID
		reason, rejected := m.execute(pm.Name(), id, c)
		if d, ok := pm.(evoke.Discarder); ok && rejected && d.DiscardPending(evoke.FailedCommand{Command: c, Reason: reason}) {
			break // the step's later commands are discarded
		}
	}
	return true, nil
}

// rejection is the data of the $rejected event Handle receives (evoke.Rejected
// reads it).
type rejection struct {
	CommandID     string          `json:"command_id"`
	CommandType   string          `json:"command_type"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Reason        string          `json:"reason"`
}

// userEvent is e as Apply, Handle and OnFailure see it: the runtime's own
// events with their user-level types and data.
func userEvent(e evoke.Event) evoke.Event {
	switch e.Type {
	case engine.TypeCommandRejected:
		var d engine.RejectionData
		if json.Unmarshal(e.Data, &d) != nil {
			return e
		}
		c := d.Command
		e.Type = evoke.CommandRejectedEvent
		e.Data, _ = json.Marshal(rejection{CommandID: c.ID, CommandType: c.Type, AggregateType: c.AggregateType,
			AggregateID: c.AggregateID, Payload: c.Payload, Reason: d.Reason})
	case engine.TypeDeadline:
		var d engine.DeadlineData
		if json.Unmarshal(e.Data, &d) != nil {
			return e
		}
		if d.Name == timeoutName {
			e.Type = evoke.TimeoutEvent
		} else {
			e.Type = evoke.DeadlineEvent
			e.Data, _ = json.Marshal(evoke.Deadline{Name: d.Name, At: d.At})
		}
	}
	return e
}

// fail records a failed step as the process manager's OnFailure decides
// (the differential test runs with one attempt, so the default parks): it
// reports false when the event stays held (the instance failing or parked)
// and true when the instance goes on (skipped) or ends (stopped).
func (m *model[S, A]) fail(pm evoke.ProcessManager[S], id string, in *modelInst, e evoke.Event, err error, replay bool) bool {
	in.attempts++
	action := "default"
	if fh, ok := pm.(evoke.FailureHandler); ok {
		user := userEvent(e)
		user.InstanceID = id
		f := evoke.Failure{InstanceID: id, Event: user, Err: err, Attempts: in.attempts}
		if a, perr := call(func() evoke.FailureAction { return fh.OnFailure(f) }); perr == nil {
			action = a.String()
		}
	}
	switch action {
	case "skip":
		in.attempts = 0
		if in.status == "failing" || in.status == "parked" {
			in.status = "running"
		}
		in.history = append(in.history, fmt.Sprintf("skipped v%d %s", in.version, e.ID))
		return true
	case "stop":
		in.status, in.deadlines = "cancelled", nil
		in.history = append(in.history, fmt.Sprintf("cancelled v%d", in.version))
		return true
	case "default", "retry with backoff", "park":
		in.status = "parked"
		in.history = append(in.history, fmt.Sprintf("parked v%d %s", in.version, e.ID))
	default: // retry after
		d, _ := time.ParseDuration(strings.TrimPrefix(action, "retry after "))
		in.status, in.nextAt = "failing", m.now.Add(d)
		in.history = append(in.history, fmt.Sprintf("failed v%d", in.version))
	}
	if !replay {
		in.held = append(in.held, e.ID)
	}
	return false
}

// execute runs a command against its aggregate's state (its stream's
// events applied in order) and appends the events it decides, or the
// rejection the runtime records for the process manager, whose reason it
// returns.
func (m *model[S, A]) execute(pmName, instanceID string, c evoke.Command) (reason string, rejected bool) {
	agg := m.aggregates[c.AggregateType]
	stream := evoke.StreamID(c.AggregateType, c.AggregateID)
	var s A
	var version int64
	for _, e := range m.log {
		if e.StreamID == stream {
			s = agg.Apply(s, e)
			version = e.StreamVersion
		}
	}
	evs, err := agg.Execute(s, c)
	if err != nil {
		data, _ := json.Marshal(engine.RejectionData{ProcessManager: pmName, InstanceID: instanceID, Reason: err.Error(),
			Command: rejectedCommand(pmName, instanceID, c)})
		m.appendEvent(evoke.Event{ID: engine.RejectionEventID(c.ID), Type: engine.TypeCommandRejected, StreamID: engine.RejectionStreamID(c.ID),
			StreamVersion: 1, Data: data, Metadata: evoke.Metadata{CorrelationID: c.Metadata.CorrelationID, CausationID: c.ID}})
		return err.Error(), true
	}
	for j, e := range evs {
		version++
		m.appendEvent(evoke.Event{ID: engine.EventID(c.ID, j), Type: e.Type, StreamID: stream, StreamVersion: version, Data: e.Data,
			Metadata: evoke.Metadata{CorrelationID: c.Metadata.CorrelationID, CausationID: c.ID}})
	}
	return "", false
}

// rejectedCommand is the command as a rejection event carries it.
func rejectedCommand(pmName, instanceID string, c evoke.Command) evokestore.OutboxCommand {
	return evokestore.OutboxCommand{ID: c.ID, ProcessManager: pmName, InstanceID: instanceID, Type: c.Type, AggregateType: c.AggregateType,
		AggregateID: c.AggregateID, Payload: c.Payload, CorrelationID: c.Metadata.CorrelationID, CausationID: c.Metadata.CausationID}
}

// view is what a differential test compares.
func (m *model[S, A]) view() world {
	w := world{insts: map[string]instView{}, streams: map[string][]string{}, orphans: map[string][]string{}}
	for k, in := range m.insts {
		v := instView{Status: in.status, Phase: in.phase, Version: in.version, State: canonical(in.state), History: in.history, Held: in.held}
		for _, d := range in.deadlines {
			v.Deadlines = append(v.Deadlines, d.name+"@"+d.at.UTC().Format(time.RFC3339Nano)+" v"+strconv.FormatInt(d.version, 10))
		}
		slices.Sort(v.Deadlines)
		w.insts[k.pm+"/"+k.id] = v
	}
	for _, e := range m.log {
		w.streams[e.StreamID] = append(w.streams[e.StreamID], eventLine(e))
	}
	for pm, ids := range m.orphans {
		w.orphans[pm] = ids
	}
	return w
}
