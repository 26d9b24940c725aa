package evoke

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// ReplayOpts configures Replay; nil means the defaults.
type ReplayOpts struct {
	// Instances limits the replay to these instance IDs. Defaults to every
	// instance of the process manager the store holds.
	Instances []string
	// Progress, if set, is called after each instance with how many were
	// replayed and how many there are.
	Progress func(done, total int)
}

// ReplayReport is what Replay found.
type ReplayReport struct {
	ProcessManager string `json:"process_manager"`
	// Instances and Steps count what was replayed: an instance's steps up
	// to its first difference.
	Instances int `json:"instances"`
	Steps     int `json:"steps"`
	// Differences lists, in instance ID order, each instance whose replay
	// differs from its record, at its first differing step.
	Differences []ReplayDifference `json:"differences"`
}

// ReplayDifference is the first step at which the replay of an instance
// differs from what the instance recorded.
type ReplayDifference struct {
	InstanceID string `json:"instance_id"`
	// Step is the instance version the step made (1 for its first step),
	// or 0 when only the final state differs.
	Step int64 `json:"step"`
	// Position and EventType name the event of the step, as Handle saw it
	// ($rejected, $timeout and $deadline for the runtime's own events).
	Position  int64  `json:"position,omitempty"`
	EventType string `json:"event_type,omitempty"`
	// What differs: "commands" (type, aggregate, payload), "phase" (the
	// phase after the step), "completion" (the instance
	// completes at another step), "state" (the final state), "error" (the
	// step fails now) or "event" (the recorded event is no longer in the
	// log).
	What     string `json:"what"`
	Recorded string `json:"recorded"`
	Replayed string `json:"replayed"`
}

// Differ reports whether any instance's replay differs.
func (r ReplayReport) Differ() bool { return len(r.Differences) > 0 }

// String reports the differences, one instance a paragraph, after a summary
// line.
func (r ReplayReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d instances, %d steps replayed, %d differ\n", r.ProcessManager, r.Instances, r.Steps, len(r.Differences))
	for _, d := range r.Differences {
		if d.Step > 0 {
			fmt.Fprintf(&b, "%s: step %d (%s at %d): %s differ\n", d.InstanceID, d.Step, d.EventType, d.Position, d.What)
		} else {
			fmt.Fprintf(&b, "%s: final %s differs\n", d.InstanceID, d.What)
		}
		fmt.Fprintf(&b, "  recorded: %s\n  replayed: %s\n", d.Recorded, d.Replayed)
	}
	return b.String()
}

// Replay runs the recorded steps of pm's stored instances through pm's
// current code, with the stepping code of the runtime (the runtime's own
// events included), and reports each instance whose commands, phases,
// completion or final state would differ, with its first differing step.
// It reads the instances' history and the events of the log; it writes
// nothing, so it runs on a live store, as on a copy of one. Replay it
// before deploying a change to a process manager with instances running.
//
// A step recorded before the runtime recorded command payloads is compared
// on its commands' types and aggregates only.
func Replay[S any](ctx context.Context, store evokestore.Querier, pm ProcessManager[S], opts *ReplayOpts) (ReplayReport, error) {
	var o ReplayOpts
	if opts != nil {
		o = *opts
	}
	rep := ReplayReport{ProcessManager: pm.Name(), Differences: []ReplayDifference{}}
	ids := o.Instances
	if len(ids) == 0 {
		var err error
		if ids, err = instanceIDs(ctx, store, pm.Name()); err != nil {
			return rep, fmt.Errorf("replay %s: %w", pm.Name(), err)
		}
	}
	a := newPMAdapter(pm, false)
	for i, id := range ids {
		d, steps, err := replayInstance(ctx, store, a, id)
		if err != nil {
			return rep, fmt.Errorf("replay %s %s: %w", pm.Name(), id, err)
		}
		rep.Instances++
		rep.Steps += steps
		if d != nil {
			rep.Differences = append(rep.Differences, *d)
		}
		if o.Progress != nil {
			o.Progress(i+1, len(ids))
		}
	}
	return rep, nil
}

// instanceIDs lists every instance ID of a process manager, in order.
func instanceIDs(ctx context.Context, q evokestore.Querier, pm string) ([]string, error) {
	var ids []string
	after := ""
	for {
		page, err := q.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: pm, Limit: 1000, AfterProcessManager: pm, AfterID: after})
		if err != nil {
			return nil, err
		}
		for _, in := range page {
			ids = append(ids, in.ID)
		}
		if len(page) < 1000 {
			return ids, nil
		}
		after = page[len(page)-1].ID
	}
}

// recordedCommand is a command as a step's history record lists it.
type recordedCommand struct {
	Type          string          `json:"type"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Payload       json.RawMessage `json:"payload"`
}

// replayInstance replays one instance, returning its first difference (nil
// if none) and the number of steps replayed.
func replayInstance[S any](ctx context.Context, q evokestore.Querier, a *pmAdapter[S], id string) (*ReplayDifference, int, error) {
	ins, err := q.Instances(ctx, a.name, []string{id})
	if err != nil || len(ins) == 0 {
		return nil, 0, err
	}
	hist, err := q.History(ctx, a.name, id)
	if err != nil {
		return nil, 0, err
	}
	hist = slices.DeleteFunc(hist, func(h evokestore.HistoryRecord) bool { return h.Kind != evokestore.KindStep })
	evs, err := recordedEvents(ctx, q, hist)
	if err != nil {
		return nil, 0, err
	}
	var state any = *new(S)
	completed := false // the replay completed the instance
	for i, h := range hist {
		diff := func(what, recorded, replayed string) (*ReplayDifference, int, error) {
			return &ReplayDifference{InstanceID: id, Step: h.Version, Position: h.Position, EventType: h.EventType,
				What: what, Recorded: recorded, Replayed: replayed}, i + 1, nil
		}
		ev := evs[h.Position]
		if ev == nil {
			return diff("event", "event "+h.EventID, "not in the log")
		}
		res, err := engine.ReplayStep(a, state, id, ev)
		if err != nil {
			return diff("error", "step succeeded", err.Error())
		}
		var recorded []recordedCommand
		if len(h.Commands) > 0 {
			if err := json.Unmarshal(h.Commands, &recorded); err != nil {
				return nil, 0, fmt.Errorf("history of step %d: %w", h.Version, err)
			}
		}
		payloads := !slices.ContainsFunc(recorded, func(c recordedCommand) bool { return c.Payload == nil })
		rl := make([]string, len(recorded))
		for j, c := range recorded {
			rl[j] = commandText(c.Type, c.AggregateType, c.AggregateID, c.Payload, payloads)
		}
		pl := make([]string, len(res.Commands))
		for j, c := range res.Commands {
			pl[j] = commandText(c.Type, c.AggregateType, c.AggregateID, c.Payload, payloads)
		}
		if !slices.Equal(rl, pl) {
			return diff("commands", listText(rl), listText(pl))
		}
		if res.Phase != h.PhaseAfter {
			return diff("phase", fmt.Sprintf("%q", h.PhaseAfter), fmt.Sprintf("%q", res.Phase))
		}
		if completed && h.EventType != CommandRejectedEvent {
			// A rejection reaches a completed instance; nothing else does.
			return diff("completion", "the instance took this event", "it completed at an earlier step")
		}
		completed = completed || res.Completed || a.stops(ev)
		if i == len(hist)-1 && ins[0].Status.Done() != completed && ins[0].Status != evokestore.StatusCancelled {
			return diff("completion", fmt.Sprintf("%s after this step", ins[0].Status), fmt.Sprintf("completed %v", completed))
		}
		state = res.State
	}
	if len(hist) == 0 || len(ins[0].State) == 0 {
		return nil, len(hist), nil
	}
	replayed, err := a.codec.encode(state.(S))
	if err != nil {
		return nil, 0, err
	}
	replayedJSON := canonicalJSON(replayed)
	stored, err := a.codec.decode(ins[0].State)
	final := func(recorded string) (*ReplayDifference, int, error) {
		return &ReplayDifference{InstanceID: id, What: "state", Recorded: recorded, Replayed: replayedJSON}, len(hist), nil
	}
	if err != nil {
		return final(err.Error())
	}
	recorded, err := a.codec.encode(stored)
	if err != nil {
		return nil, 0, err
	}
	if r := canonicalJSON(recorded); r != replayedJSON {
		return final(r)
	}
	return nil, len(hist), nil
}

// recordedEvents reads the events the steps consumed, by position: by
// their IDs in one query on a store that reads events by ID
// (evokestore.EventsReader), else one position at a time.
func recordedEvents(ctx context.Context, q evokestore.Querier, steps []evokestore.HistoryRecord) (map[int64]*evokestore.Event, error) {
	if er, ok := q.(evokestore.EventsReader); ok {
		ids := make([]string, len(steps))
		for i, h := range steps {
			ids[i] = h.EventID
		}
		evs, err := er.ReadEvents(ctx, ids)
		if err != nil {
			return nil, err
		}
		out := make(map[int64]*evokestore.Event, len(evs))
		for i := range evs {
			out[evs[i].Position] = &evs[i]
		}
		return out, nil
	}
	positions := make([]int64, len(steps))
	for i, h := range steps {
		positions[i] = h.Position
	}
	return eventsAt(ctx, q, positions)
}

// commandText shows a command for a replay report.
func commandText(typ, aggType, aggID string, payload []byte, withPayload bool) string {
	s := typ + " to " + aggType + " " + aggID
	if withPayload {
		s += " " + canonicalJSON(payload)
	}
	return s
}

func listText(l []string) string {
	if len(l) == 0 {
		return "no commands"
	}
	return strings.Join(l, "; ")
}

// canonicalJSON returns JSON with its objects' keys sorted and no spaces,
// so that equal values compare equal however they were stored.
func canonicalJSON(b []byte) string {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return string(b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return string(b)
	}
	return string(out)
}

// stops reports whether the process manager correlates a recorded event of
// its own (not one of the runtime's) with Stop, which completes the
// instance after the step.
func (a *pmAdapter[S]) stops(ev *evokestore.Event) bool {
	if strings.HasPrefix(ev.Type, "$evoke.") {
		return false
	}
	return a.Correlate(ev).Kind == engine.RouteStop
}
