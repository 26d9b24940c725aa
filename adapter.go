package evoke

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// fromRecord converts a stored event to the public type.
func fromRecord(r *evokestore.Event) Event {
	e := Event{
		ID: r.ID, Type: r.Type, StreamID: r.StreamID, StreamVersion: r.StreamVersion, Position: r.Position,
		Data: r.Data, RecordedAt: r.RecordedAt,
		Metadata: Metadata{CorrelationID: r.CorrelationID, CausationID: r.CausationID, Values: decodeValues(r.Values)},
	}
	return e
}

// fromOutbox converts a stored command to the public type.
func fromOutbox(c *evokestore.OutboxCommand) Command {
	return Command{ID: c.ID, Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID, Payload: c.Payload,
		Metadata: Metadata{CorrelationID: c.CorrelationID, CausationID: c.CausationID, Values: decodeValues(c.Values)}}
}

// decodeValues decodes metadata values that encodeValues wrote (nil for
// none).
func decodeValues(b []byte) map[string]string {
	if len(b) == 0 {
		return nil
	}
	var v map[string]string
	_ = json.Unmarshal(b, &v)
	return v
}

// encodeValues encodes metadata values as a JSON object, or nil for none.
// Keys are identifiers and values valid UTF-8 (encoding/json would replace
// invalid UTF-8, so that different values would read back alike).
func encodeValues(v map[string]string) ([]byte, error) {
	if len(v) == 0 {
		return nil, nil
	}
	for k, s := range v {
		if err := evokestore.CheckID("metadata key", k); err != nil {
			return nil, err
		}
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%w: metadata value of %q is not valid UTF-8", ErrInvalid, k)
		}
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = evokestore.CheckJSONObject("metadata values", b)
	}
	return b, err
}

// inheritValues returns the encoded metadata values of a command or event
// produced for the message whose values are base (encoded) and baseMap
// (decoded): base's keys, with own's set over them and a key own sets to
// "" removed (see Metadata). Without own values, base is carried as it is.
func inheritValues(base []byte, baseMap, own map[string]string) ([]byte, error) {
	if len(own) == 0 {
		return base, nil
	}
	var m map[string]string
	if len(baseMap) > 0 {
		m = maps.Clone(baseMap)
	} else {
		m = make(map[string]string, len(own))
	}
	for k, v := range own {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return encodeValues(m)
}

// recovered turns a panic into a *PanicError in *err.
func recovered(where string, err *error) {
	if p := recover(); p != nil {
		*err = &PanicError{Where: where, Value: p, Stack: debug.Stack()}
	}
}

// pmAdapter runs a typed ProcessManager for the untyped engine.
type pmAdapter[S any] struct {
	pm        ProcessManager[S]
	name      string
	types     []string
	comp      Compensator[S]
	done      Completer[S]
	phase     PhaseReporter[S]
	deadlines Deadliner[S]
	failures  FailureHandler
	discarder Discarder
	strict    bool
	timeout   time.Duration
	// timed makes Step measure Apply and Handle (StepResult.Took), for
	// telemetry.
	timed bool
	codec stateCodec[S]
}

func newPMAdapter[S any](pm ProcessManager[S], timed bool) *pmAdapter[S] {
	a := &pmAdapter[S]{pm: pm, name: pm.Name(), types: pm.InterestedIn(), timed: timed, codec: newStateCodec(pm)}
	a.comp, _ = pm.(Compensator[S])
	a.done, _ = pm.(Completer[S])
	a.phase, _ = pm.(PhaseReporter[S])
	a.deadlines, _ = pm.(Deadliner[S])
	a.failures, _ = pm.(FailureHandler)
	a.discarder, _ = pm.(Discarder)
	if s, ok := pm.(Strict); ok {
		a.strict = s.Strict()
	}
	if t, ok := pm.(Timeouter); ok {
		a.timeout = t.Timeout()
	}
	return a
}

func (a *pmAdapter[S]) Name() string           { return a.name }
func (a *pmAdapter[S]) Types() []string        { return a.types }
func (a *pmAdapter[S]) Strict() bool           { return a.strict }
func (a *pmAdapter[S]) Timeout() time.Duration { return a.timeout }
func (a *pmAdapter[S]) HasDeadlines() bool     { return a.deadlines != nil }

func (a *pmAdapter[S]) Correlate(r *evokestore.Event) (route engine.Route) {
	defer func() {
		if p := recover(); p != nil {
			route = engine.Route{Kind: engine.RouteError, Err: &PanicError{Where: a.name + ".Correlate", Value: p, Stack: debug.Stack()}}
		}
	}()
	c := a.pm.Correlate(fromRecord(r))
	route = engine.Route{Kind: engine.RouteKind(c.kind), ID: c.id, Err: c.err}
	if c.kind == KindEach {
		route.Each = make([]engine.Route, len(c.each))
		for i, t := range c.each {
			route.Each[i] = engine.Route{Kind: engine.RouteKind(t.kind), ID: t.id}
		}
	}
	return route
}

// OnFailure asks the process manager's FailureHandler, if any.
func (a *pmAdapter[S]) OnFailure(f engine.Failure) (d engine.Decision) {
	if a.failures == nil {
		return d
	}
	defer func() {
		if p := recover(); p != nil {
			d = engine.Decision{}
		}
	}()
	e := fromRecord(f.Event)
	e.InstanceID = f.InstanceID
	return a.failures.OnFailure(Failure{InstanceID: f.InstanceID, Event: e, Err: f.Err, Attempts: f.Attempts}).d
}

// DiscardPending asks the process manager's Discarder, if any.
func (a *pmAdapter[S]) DiscardPending(failed engine.FailedCommand) (discard bool) {
	if a.discarder == nil {
		return false
	}
	defer func() {
		if p := recover(); p != nil {
			discard = false
		}
	}()
	return a.discarder.DiscardPending(failedCommand(failed))
}

// Load decodes a stored state, upgraded to the process manager's state
// version; a state that does not load fails with a *StateError, which parks
// the instance at once.
func (a *pmAdapter[S]) Load(b []byte) (any, error) {
	s, err := a.codec.decode(b)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Save encodes a state at the process manager's state version.
func (a *pmAdapter[S]) Save(state any) ([]byte, error) { return a.codec.encode(state.(S)) }

func (a *pmAdapter[S]) Phase(state any) (phase string) {
	if a.phase == nil {
		return ""
	}
	defer func() {
		if p := recover(); p != nil {
			phase = fmt.Sprintf("<panic: %v>", p)
		}
	}()
	return evokestore.Text(a.phase.Phase(state.(S)))
}

func (a *pmAdapter[S]) Step(state any, id string, r *evokestore.Event) (res engine.StepResult, err error) {
	e := fromRecord(r)
	e.InstanceID = id
	s := state.(S)
	var began time.Time
	if a.timed {
		began = time.Now()
	}
	func() {
		defer recovered(a.name+".Apply", &err)
		s = a.pm.Apply(s, e)
	}()
	if err != nil {
		return res, err
	}
	var cmds []Command
	func() {
		defer recovered(a.name+".Handle", &err)
		s, cmds, err = a.pm.Handle(s, e)
	}()
	if err != nil {
		return res, fmt.Errorf("%s.Handle(%s): %w", a.name, e.Type, err)
	}
	if a.timed {
		res.Took = time.Since(began)
	}
	res.State = s
	if res.Commands, err = engineCommands(cmds, r.Values, e.Metadata.Values); err != nil {
		return res, fmt.Errorf("%s.Handle(%s): %w", a.name, e.Type, err)
	}
	res.Phase = a.Phase(s)
	if a.done != nil {
		func() {
			defer recovered(a.name+".Completed", &err)
			res.Completed = a.done.Completed(s)
		}()
	}
	if a.deadlines != nil && err == nil {
		func() {
			defer recovered(a.name+".Deadlines", &err)
			for _, d := range a.deadlines.Deadlines(s) {
				if err = evokestore.CheckID("deadline name", d.Name); err != nil {
					err = fmt.Errorf("%s.Deadlines: %w", a.name, err)
					return
				}
				res.Deadlines = append(res.Deadlines, engine.NamedDeadline{Name: d.Name, At: d.At})
			}
		}()
	}
	return res, err
}

func (a *pmAdapter[S]) Compensate(state any, failed engine.FailedCommand) (cmds []engine.Command, ok bool, err error) {
	if a.comp == nil {
		return nil, false, nil
	}
	fc := failedCommand(failed)
	var out []Command
	func() {
		defer recovered(a.name+".Compensate", &err)
		out, ok = a.comp.Compensate(state.(S), fc)
	}()
	if err != nil || !ok {
		return nil, false, err
	}
	cmds, err = engineCommands(out, failed.Command.Values, fc.Command.Metadata.Values)
	return cmds, ok, err
}

// failedCommand converts a rejected command to the public type.
func failedCommand(failed engine.FailedCommand) FailedCommand {
	return FailedCommand{Command: fromOutbox(&failed.Command), Reason: failed.Reason}
}

// engineCommands checks and converts the commands a step produced for the
// event (or rejected command) whose metadata values are base and baseMap:
// each command carries them, its own set over them (inheritValues).
func engineCommands(cmds []Command, base []byte, baseMap map[string]string) ([]engine.Command, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	out := make([]engine.Command, len(cmds))
	for i, c := range cmds {
		values, err := inheritValues(base, baseMap, c.Metadata.Values)
		if err == nil {
			err = c.validate()
		}
		if err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
		out[i] = engine.Command{Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID, Payload: c.Payload, Values: values}
	}
	return out, nil
}

// aggAdapter runs a typed Aggregate for the untyped engine.
type aggAdapter[S any] struct {
	typ string
	agg Aggregate[S]
}

func (a *aggAdapter[S]) Type() string { return a.typ }
func (a *aggAdapter[S]) New() any     { var s S; return s }

func (a *aggAdapter[S]) Apply(state any, r *evokestore.Event) (out any, err error) {
	defer recovered(a.typ+".Apply", &err)
	return a.agg.Apply(state.(S), fromRecord(r)), nil
}

func (a *aggAdapter[S]) Execute(state any, c *evokestore.OutboxCommand) ([]engine.NewEvent, error) {
	cmd := fromOutbox(c)
	evs, err := a.agg.Execute(state.(S), cmd)
	if err != nil {
		return nil, err
	}
	// An event outside the input contract fails the command as an error
	// from Execute does: the command is rejected with the reason.
	out := make([]engine.NewEvent, len(evs))
	for i, e := range evs {
		values, err := inheritValues(c.Values, cmd.Metadata.Values, e.Metadata.Values)
		if err == nil {
			err = errors.Join(e.err, evokestore.CheckID("event type", e.Type))
			if err == nil && !e.dataChecked() {
				err = evokestore.CheckJSON("event data", e.Data)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		out[i] = engine.NewEvent{Type: e.Type, Data: e.Data, Values: values}
	}
	return out, nil
}
