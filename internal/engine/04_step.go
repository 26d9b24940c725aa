package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/payload"
)

// timeoutDeadline is the reserved name of the inactivity deadline.
const timeoutDeadline = "$timeout"

// stepAll steps every group, spreading groups over the configured workers
// (bounded in time by the watchdog when the process manager's steps are).
func (r *router) stepAll(groups map[string]*group, order []string, now time.Time, replay bool) {
	if r.stepTimeout > 0 {
		r.stepWatched(groups, order, now, replay)
		return
	}
	workers := min(r.en.cfg.Workers, len(order))
	if workers <= 1 || len(order) < 8 {
		for _, id := range order {
			r.stepGroup(groups[id], now, replay, nil)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan *group)
	for range workers {
		wg.Go(func() {
			for g := range next {
				r.stepGroup(g, now, replay, nil)
			}
		})
	}
	for _, id := range order {
		next <- groups[id]
	}
	close(next)
	wg.Wait()
}

// stepGroup runs one instance's events in order. A failed step leaves the
// state as the earlier steps of the group made it: user code may have
// mutated the in-memory state before failing, so the group is run again from
// the stored state, with the failing events failed without running them.
// (A failure the process manager skips lets the group go on, so that
// several of its events may fail.)
func (r *router) stepGroup(g *group, now time.Time, replay bool, fails map[int]error) {
	plain := false
	for {
		at, err := r.tryGroup(g, now, replay, fails, plain)
		if at < 0 {
			return
		}
		if _, again := fails[at]; again {
			// Only a state that cannot be saved fails an event twice: the
			// process manager's decisions are left out, so that the first
			// failure stops the group.
			plain = true
		}
		fails = maps.Clone(fails) // the caller's stays as it was
		if fails == nil {
			fails = map[int]error{}
		}
		fails[at] = err
	}
}

// reset drops what stepping g produced, keeping what it is given: its
// instance, events, partition and lease token, its watchdog slot, and with
// keepStart its decoded state (a re-run of a failed step decodes again).
func (g *group) reset(keepStart bool) {
	start := g.start
	if !keepStart {
		start = nil
	}
	*g = group{id: g.id, partition: g.partition, token: g.token, items: g.items, inst: g.inst, start: start, watch: g.watch}
}

// tryGroup steps g, failing the events of fails without running them
// (plain: with the runtime's default decision); if a step fails after
// earlier steps of the group succeeded (so that the in-memory state may be
// tainted), it returns that index and error for a clean re-run. Otherwise
// it returns -1.
func (r *router) tryGroup(g *group, now time.Time, replay bool, fails map[int]error, plain bool) (int, error) {
	g.reset(true) // the output of an earlier run goes
	s := &groupRun{r: r, g: g, now: now, replay: replay, fails: fails, plain: plain, prevVersion: -1, exists: g.inst != nil}
	if s.exists {
		s.inst = *g.inst
		s.prevVersion = s.inst.Version
		if replay {
			s.inst.Status = evokestore.StatusRunning
		}
	}
	for idx, it := range g.items {
		if !s.admit(it) {
			continue
		}
		stop, err := s.step(idx, it)
		if err != nil {
			return idx, err
		}
		if stop {
			break
		}
	}
	if !s.touched {
		return -1, nil
	}
	return s.save()
}

// groupRun is one run of tryGroup over a group's events: the instance as
// its steps leave it, and the state they share.
type groupRun struct {
	r      *router
	g      *group
	now    time.Time
	replay bool
	fails  map[int]error
	plain  bool

	inst        evokestore.Instance
	prevVersion int64 // -1: the instance is new
	exists      bool
	state       any
	// loaded: state holds the instance's state; stepped: a step
	// succeeded; touched: the instance is written; tainted: a failed step
	// may have changed state in place.
	loaded, stepped, touched, tainted bool
}

// admit applies the lifecycle to one event before it is stepped, and
// reports whether it is: an event already stepped, for a completed or
// stuck instance, for a missing one that it does not start, or a stale
// deadline is passed over (held, released or dropped as the case is).
func (s *groupRun) admit(it item) bool {
	r, g, ev := s.r, s.g, it.ev
	if s.exists && !it.chained && ev.Position <= s.inst.LastPosition {
		return false // stepped in an earlier, committed batch
	}
	if s.exists && s.inst.Status.Done() && ev.Type != TypeCommandRejected {
		r.en.counters.DroppedDone.Add(1)
		r.en.log.Debug("event for a completed instance dropped", "process_manager", r.name, "instance", g.id, "event_type", ev.Type, "position", ev.Position)
		if s.replay {
			g.released = append(g.released, ev.Position)
		}
		return false
	}
	if s.exists && s.inst.Status.Stuck() {
		if !s.replay {
			g.held = append(g.held, evokestore.HeldEvent{ProcessManager: r.name, InstanceID: g.id, Position: ev.Position})
		}
		return false
	}
	if !s.exists && !s.create(it) {
		return false
	}
	if ev.Type == TypeDeadline {
		var d DeadlineData
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.Version != s.inst.Version {
			r.en.counters.DroppedStale.Add(1)
			if s.replay {
				g.released = append(g.released, ev.Position)
			}
			return false
		}
	}
	return true
}

// create starts the missing instance for it, unless the event cannot
// start one (a system event, a Stop, a Continue of a strict process
// manager), and reports whether it did.
func (s *groupRun) create(it item) bool {
	r, g, ev := s.r, s.g, it.ev
	switch {
	case it.kind == routeSystem:
		return false // the instance is gone (purged)
	case it.kind == RouteStop:
		r.en.counters.DroppedStop.Add(1)
		r.en.log.Info("stop for a missing instance dropped", "process_manager", r.name, "instance", g.id, "event_type", ev.Type)
		return false
	case it.kind == RouteContinue && r.pm.Strict():
		r.en.counters.DroppedStrict.Add(1)
		r.en.log.Info("continue for a missing instance of a strict process manager dropped", "process_manager", r.name, "instance", g.id, "event_type", ev.Type)
		return false
	}
	s.exists, s.touched = true, true
	s.inst = evokestore.Instance{ProcessManager: r.name, ID: g.id, Partition: g.partition, Status: evokestore.StatusRunning, CreatedAt: s.now, UpdatedAt: s.now}
	return true
}

// step runs the event idx, or fails it, and reports whether the group
// stops there. An error is a step that failed after earlier steps of the
// group succeeded: the group is run again from a clean state.
func (s *groupRun) step(idx int, it item) (stop bool, err error) {
	r, g, ev := s.r, s.g, it.ev
	if err, ok := s.fails[idx]; ok {
		return s.failed(it, err), nil
	}
	if it.kind == RouteStartNew && s.inst.Version > 0 {
		return s.failed(it, fmt.Errorf("%w: %s %s (event %s, %s)", ErrAlreadyStarted, r.name, g.id, ev.ID, ev.Type)), nil
	}
	if !s.loaded && g.start != nil && s.fails == nil && !s.tainted {
		// A re-run decodes again: the failed run may have changed
		// start in place.
		s.state, s.loaded = g.start, true
	}
	if !s.loaded {
		st, err := r.pm.Load(s.inst.State)
		if err != nil {
			return s.failed(it, fmt.Errorf("load state of %s %s: %w", r.name, g.id, err)), nil
		}
		s.state, s.loaded = st, true
	}
	g.watch.begin(idx)
	res, compensating, err := r.stepOne(s.state, g.id, ev)
	g.watch.end()
	if err != nil {
		if s.stepped {
			return false, err
		}
		// The failed step may have changed the state in place: the
		// next step decodes it again.
		s.loaded, s.tainted = false, true
		return s.failed(it, err), nil
	}
	s.stepped, s.touched = true, true
	r.succeed(g, &s.inst, it, res, compensating, s.now, s.replay)
	s.state = res.State
	return false, nil
}

// failed handles a failure of the event it: whether the group goes on
// (the process manager skipped the event or stopped the instance) or, in
// a replay, ends.
func (s *groupRun) failed(it item, err error) (stop bool) {
	s.touched = true
	act := s.r.fail(s.g, &s.inst, it, err, s.now, s.replay, s.plain)
	return s.replay && act != ActionSkip && act != ActionStop
}

// save encodes the state the steps left and sets the group's instance
// write. A state that cannot be stored fails the group's first event.
func (s *groupRun) save() (int, error) {
	r, g := s.r, s.g
	if s.stepped {
		b, err := r.pm.Save(s.state)
		if err != nil {
			// The state cannot be stored: nothing of this group commits;
			// the first event fails instead.
			g.reset(false)
			return firstPending(g), fmt.Errorf("save state of %s %s: %w", r.name, g.id, err)
		}
		s.inst.State = b
		g.state = s.state
		for i := range g.telemetry {
			if g.telemetry[i].Kind == TelemetryStop {
				g.telemetry[i].FinalState = b
			}
		}
	}
	g.write = &evokestore.InstanceWrite{Instance: s.inst, PrevVersion: s.prevVersion}
	return -1, nil
}

// firstPending returns the index of the group's first event not yet stepped.
func firstPending(g *group) int {
	for i, it := range g.items {
		if g.inst == nil || it.chained || it.ev.Position > g.inst.LastPosition {
			return i
		}
	}
	return 0
}

// stepOne runs one event through the process manager: for a rejection,
// Compensate, then Apply and Handle.
func (r *router) stepOne(state any, id string, ev *evokestore.Event) (StepResult, bool, error) {
	user, err := userEvent(ev)
	if err != nil {
		return StepResult{}, false, err
	}
	if ev.Type != TypeCommandRejected {
		res, err := r.pm.Step(state, id, user)
		return res, false, err
	}
	var d RejectionData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return StepResult{}, false, fmt.Errorf("decode rejection %s: %w", ev.ID, err)
	}
	cmds, ok, err := r.pm.Compensate(state, FailedCommand{Command: d.Command, Reason: d.Reason})
	if err != nil {
		return StepResult{}, false, err
	}
	res, err := r.pm.Step(state, id, user)
	if err != nil {
		return StepResult{}, false, err
	}
	res.Commands = append(cmds, res.Commands...)
	return res, ok && len(cmds) > 0, nil
}

// userEvent returns ev as Apply, Handle and OnFailure see it: the engine's
// rejection and deadline events with their user-level types and data
// ($rejected, $timeout, $deadline), other events as they are.
func userEvent(ev *evokestore.Event) (*evokestore.Event, error) {
	switch ev.Type {
	case TypeCommandRejected:
		var d RejectionData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, fmt.Errorf("decode rejection %s: %w", ev.ID, err)
		}
		user := *ev
		user.Type = "$rejected"
		var err error
		user.Data, err = json.Marshal(rejectedData{
			CommandID: d.Command.ID, CommandType: d.Command.Type, AggregateType: d.Command.AggregateType,
			AggregateID: d.Command.AggregateID, Payload: d.Command.Payload, Reason: d.Reason,
		})
		return &user, err
	case TypeDeadline:
		var d DeadlineData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, fmt.Errorf("decode deadline %s: %w", ev.ID, err)
		}
		user := *ev
		if d.Name == timeoutDeadline {
			user.Type = "$timeout"
		} else {
			user.Type = "$deadline"
			user.Data, _ = json.Marshal(struct {
				Name string    `json:"name"`
				At   time.Time `json:"at"`
			}{d.Name, d.At})
		}
		return &user, nil
	}
	return ev, nil
}

// catchupUntil returns the log head at the process manager's first
// deployment, as its partition's checkpoint recorded it.
func (r *router) catchupUntil(p int) int64 {
	if pc := r.cps[p]; pc != nil {
		return pc.cp.CatchupUntil
	}
	return 0
}

// rejectedData is the data of the $rejected event Apply and Handle receive;
// the root package reads it back with the same fields (evoke.Rejected).
type rejectedData struct {
	CommandID     string          `json:"command_id"`
	CommandType   string          `json:"command_type"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Reason        string          `json:"reason"`
}

// succeed records a committed-to-be step on inst.
func (r *router) succeed(g *group, inst *evokestore.Instance, it item, res StepResult, compensating bool, now time.Time, replay bool) {
	ev := it.ev
	before := inst.Phase
	// A rejection may reach an instance that completed on the step that
	// issued the command: Compensate still runs, the tombstone stays.
	wasDone := inst.Status.Done()
	// Usually a transition and a command per step, and a start or a stop:
	// room for them at once rather than growing the slices.
	if g.telemetry == nil {
		g.telemetry = make([]Telemetry, 0, 2*len(g.items)+1)
	}
	if g.history == nil {
		g.history = make([]evokestore.HistoryRecord, 0, len(g.items))
	}
	if inst.Version == 0 {
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryStart, SystemTime: now, ProcessManager: r.name, InstanceID: g.id})
	}
	inst.Version++
	if !it.chained { // else it has no position yet: the writer sets it (07_chain.go)
		inst.LastPosition = ev.Position
	}
	inst.Phase = res.Phase
	inst.UpdatedAt = now
	inst.Attempts = 0
	inst.LastError = ""
	inst.NextAttemptAt = time.Time{}
	if compensating && !wasDone {
		inst.Status = evokestore.StatusCompensating
	}
	if replay {
		g.released = append(g.released, ev.Position)
	}
	cmdsJSON := r.issue(g, inst, it, res, now)
	eventType := r.stepTelemetry(g, ev, res, now)
	g.history = append(g.history, evokestore.HistoryRecord{
		ProcessManager: r.name, InstanceID: g.id, Kind: evokestore.KindStep, Version: inst.Version,
		Position: ev.Position, EventID: ev.ID, EventType: eventType, PhaseBefore: before, PhaseAfter: res.Phase,
		Commands: cmdsJSON, RecordedAt: now, Node: r.en.cfg.NodeID, LeaseToken: g.token,
	})
	if before != res.Phase {
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryTransition, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, FromPhase: before, ToPhase: res.Phase, EventType: eventType, Values: ev.Values})
	}
	done := wasDone || it.kind == RouteStop || res.Completed
	if ev.Type == TypeCommandRejected && inst.Status != evokestore.StatusCancelled {
		inst.Outcome = evokestore.EndCompensated
	}
	if done && !wasDone {
		inst.Status = evokestore.StatusCompleted
		inst.CompletedAt = now
		inst.Outcome = endOutcome(ev, inst.Outcome)
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryStop, SystemTime: now, Duration: now.Sub(inst.CreatedAt), ProcessManager: r.name, InstanceID: g.id, Values: ev.Values})
	}
	r.setDeadlines(g, inst, ev, res, done)
}

// endOutcome is the outcome of an instance that completes on ev, having
// carried outcome so far: compensated if it stepped a rejection, else
// timed out if ev is a deadline.
func endOutcome(ev *evokestore.Event, outcome evokestore.InstanceOutcome) evokestore.InstanceOutcome {
	switch {
	case outcome == evokestore.EndCompensated:
		return outcome
	case ev.Type == TypeDeadline:
		return evokestore.EndTimedOut
	}
	return evokestore.EndCompleted
}

// issue gives the step's commands their IDs and lineage and puts them in
// the group's outbox (unless the process manager suppresses its catch-up
// commands), and returns them as the history record lists them.
func (r *router) issue(g *group, inst *evokestore.Instance, it item, res StepResult, now time.Time) []byte {
	ev := it.ev
	suppress := r.opts.SuppressCatchup && !it.chained && ev.Position <= r.catchupUntil(g.partition)
	correlation := ev.CorrelationID
	if correlation == "" {
		correlation = ev.ID
	}
	var cmdsJSON []byte // the history's record of the commands
	for i, c := range res.Commands {
		id := CommandID(r.name, g.id, ev.ID, ev.Position, i)
		cmdsJSON = appendCommandRef(cmdsJSON, id, &c, suppress)
		if suppress {
			r.en.counters.Suppressed.Add(1)
			continue
		}
		g.outbox = append(g.outbox, evokestore.OutboxCommand{
			ID: id, ProcessManager: r.name, InstanceID: g.id, Partition: inst.Partition,
			Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
			Payload: c.Payload, CorrelationID: correlation, CausationID: ev.ID, Values: c.Values, CreatedAt: now,
		})
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryCommand, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, CommandType: c.Type, CommandID: id, Values: c.Values})
	}
	if cmdsJSON != nil {
		cmdsJSON = append(cmdsJSON, ']')
	}
	return cmdsJSON
}

// appendCommandRef appends command c (ID id) to a history record's JSON
// array of commands, opening it when b is empty: its ID, type, aggregate,
// payload (so that a replay can compare the commands the code issues now)
// and whether it was suppressed. The caller closes the array. It is written
// by hand: encoding/json would scan the payload, which NewCommand checked
// already, once more per step.
func appendCommandRef(b []byte, id string, c *Command, suppressed bool) []byte {
	if len(b) == 0 {
		b = append(b, '[')
	} else {
		b = append(b, ',')
	}
	b = append(b, `{"id":`...)
	b = payload.AppendJSONString(b, id)
	b = append(b, `,"type":`...)
	b = payload.AppendJSONString(b, c.Type)
	b = append(b, `,"aggregate_type":`...)
	b = payload.AppendJSONString(b, c.AggregateType)
	b = append(b, `,"aggregate_id":`...)
	b = payload.AppendJSONString(b, c.AggregateID)
	if len(c.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, c.Payload...)
	}
	if suppressed {
		b = append(b, `,"suppressed":true`...)
	}
	return append(b, '}')
}

// stepTelemetry records the telemetry of the step's input (a compensation,
// a deadline) and of the step, and returns the event's type as Handle saw
// it.
func (r *router) stepTelemetry(g *group, ev *evokestore.Event, res StepResult, now time.Time) string {
	eventType := ev.Type // as Handle saw it
	switch ev.Type {
	case TypeCommandRejected:
		var d RejectionData
		_ = json.Unmarshal(ev.Data, &d)
		eventType = "$rejected"
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryCompensate, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, FailedCommand: d.Command.Type, CommandID: d.Command.ID, Err: d.Reason})
	case TypeDeadline:
		var d DeadlineData
		_ = json.Unmarshal(ev.Data, &d)
		eventType = "$deadline"
		if d.Name == timeoutDeadline {
			eventType = "$timeout"
		}
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryTimeout, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, EventType: d.Name})
	}
	if r.en.cfg.StepTelemetry {
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryStep, SystemTime: now, Duration: res.Took, ProcessManager: r.name, InstanceID: g.id, EventType: eventType, Values: ev.Values})
	}
	return eventType
}

// setDeadlines rewrites the instance's deadlines after a step, with its new
// version, so that a deadline the instance has moved past can never fire;
// a done instance has none.
func (r *router) setDeadlines(g *group, inst *evokestore.Instance, ev *evokestore.Event, res StepResult, done bool) {
	if !r.usesDeadlines {
		return
	}
	g.deadlines, g.setDL = g.deadlines[:0], true
	if done {
		return
	}
	if timeout := r.pm.Timeout(); timeout > 0 {
		g.deadlines = append(g.deadlines, evokestore.Deadline{ProcessManager: r.name, InstanceID: g.id, Name: timeoutDeadline, DueAt: ev.RecordedAt.Add(timeout), Version: inst.Version})
	}
	for _, d := range res.Deadlines {
		g.deadlines = append(g.deadlines, evokestore.Deadline{ProcessManager: r.name, InstanceID: g.id, Name: d.Name, DueAt: d.At, Version: inst.Version})
	}
}

// fail records a failed step as the process manager's OnFailure decides
// (plain: as the runtime does by default) and returns what it did:
//   - ActionRetry: the event is held and the instance retried after the
//     decision's delay (by default, with backoff until MaxAttempts);
//   - ActionPark: the event is held and the instance parked (by default
//     past MaxAttempts, or at once for a step that overran its time bound);
//   - ActionSkip: the event is passed over, the instance goes on;
//   - ActionStop: the instance ends, cancelled, with the error kept.
func (r *router) fail(g *group, inst *evokestore.Instance, it item, err error, now time.Time, replay, plain bool) Action {
	ev := it.ev
	inst.Attempts++
	inst.UpdatedAt = now
	g.failed = true
	var d Decision
	if !plain {
		user, uerr := userEvent(ev)
		if uerr != nil {
			user = ev
		}
		d = r.pm.OnFailure(Failure{InstanceID: g.id, Event: user, Err: err, Attempts: inst.Attempts})
	}
	if d.Action == ActionDefault {
		d = Decision{Action: ActionRetry, Delay: r.en.backoff(inst.Attempts)}
		if inst.Attempts >= r.en.cfg.MaxAttempts || errors.Is(err, ErrStepTimeout) || permanent(err) {
			d.Action = ActionPark
		}
	}
	// The stored error keeps a panic's stack; telemetry has them apart.
	full, msg, stack := ErrorText(err), evokestore.Text(err.Error()), PanicStack(err)
	rec := evokestore.HistoryRecord{
		ProcessManager: r.name, InstanceID: g.id, Version: inst.Version, Position: ev.Position,
		EventID: ev.ID, EventType: ev.Type, PhaseBefore: inst.Phase, PhaseAfter: inst.Phase, Error: full, RecordedAt: now,
		Node: r.en.cfg.NodeID, LeaseToken: g.token,
	}
	tel := Telemetry{SystemTime: now, ProcessManager: r.name, InstanceID: g.id, EventType: ev.Type, Attempt: inst.Attempts, Err: msg,
		Stack: stack, Values: ev.Values}
	switch d.Action {
	case ActionSkip, ActionStop:
		if !it.chained {
			inst.LastPosition = max(inst.LastPosition, ev.Position)
		}
		if replay {
			g.released = append(g.released, ev.Position)
		}
		inst.NextAttemptAt = time.Time{}
		if d.Action == ActionSkip {
			inst.Attempts, inst.LastError = 0, ""
			if inst.Status.Stuck() {
				inst.Status = evokestore.StatusRunning
			}
			rec.Kind, tel.Kind = evokestore.KindSkipped, TelemetrySkip
			r.en.log.Info("failed step skipped by the process manager", "process_manager", r.name, "instance", g.id,
				"event_id", ev.ID, "event_type", ev.Type, "err", err)
			break
		}
		inst.Status, inst.CompletedAt, inst.LastError = evokestore.StatusCancelled, now, full
		if r.usesDeadlines {
			g.deadlines, g.setDL = g.deadlines[:0], true
		}
		rec.Kind = evokestore.KindCancel
		tel.Kind, tel.Duration = TelemetryStop, now.Sub(inst.CreatedAt)
		r.en.log.Warn("instance stopped by the process manager after a failed step", "process_manager", r.name, "instance", g.id,
			"event_id", ev.ID, "event_type", ev.Type, "err", err)
	case ActionPark:
		inst.LastError = full
		inst.Status = evokestore.StatusParked
		inst.NextAttemptAt = time.Time{}
		rec.Kind, tel.Kind = evokestore.KindParked, TelemetryPark
	default:
		inst.LastError = full
		inst.Status = evokestore.StatusFailing
		inst.NextAttemptAt = now.Add(max(d.Delay, 0))
		rec.Kind, tel.Kind = evokestore.KindFailed, TelemetryRetry
		d.Action = ActionRetry
	}
	if (d.Action == ActionRetry || d.Action == ActionPark) && !replay {
		g.held = append(g.held, evokestore.HeldEvent{ProcessManager: r.name, InstanceID: g.id, Position: ev.Position, Error: full})
	}
	g.telemetry = append(g.telemetry, tel)
	g.history = append(g.history, rec)
	return d.Action
}
