package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/evoke-go/evoke/evokestore"
)

// Outcomes returns the outcomes of the commands cmds that were executed,
// by command ID. A command executed from the outbox, by Runtime.Dispatch,
// or inline without appending anything has an outcome record; one executed
// inline (with the step that issued it) that appended events has none: its
// events are its record. Their IDs derive from the command's (EventID, and
// RejectionEventID for the CommandRejected event of a rejection), so they
// are found by ID, and the outcome is rebuilt from them and the command:
// accepted with as many events, or rejected with the rejection's reason,
// recorded when the events were.
func Outcomes(ctx context.Context, q evokestore.Querier, cmds []evokestore.OutboxCommand) (map[string]evokestore.CommandOutcome, error) {
	out, err := recordedOutcomes(ctx, q, cmds)
	if err != nil {
		return nil, err
	}
	var rest []*evokestore.OutboxCommand
	asked := make(map[string]bool)
	for i := range cmds {
		if _, ok := out[cmds[i].ID]; !ok && !asked[cmds[i].ID] {
			asked[cmds[i].ID] = true
			rest = append(rest, &cmds[i])
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	read := eventsByID(q)
	// The first event of each command, or its rejection.
	cand := make([]string, 0, 2*len(rest))
	for _, c := range rest {
		cand = append(cand, EventID(c.ID, 0), RejectionEventID(c.ID))
	}
	found, err := read(ctx, cand, rest)
	if err != nil {
		return nil, err
	}
	var more []*evokestore.OutboxCommand // accepted: look for a next event
	for _, c := range rest {
		o := evokestore.CommandOutcome{CommandID: c.ID, Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
			ProcessManager: c.ProcessManager, InstanceID: c.InstanceID}
		if e, ok := found[EventID(c.ID, 0)]; ok && e.CausationID == c.ID {
			o.Status, o.Events, o.RecordedAt = evokestore.OutcomeAccepted, 1, e.RecordedAt
			out[c.ID] = o
			more = append(more, c)
		} else if e, ok := found[RejectionEventID(c.ID)]; ok && e.CausationID == c.ID {
			var d RejectionData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return nil, fmt.Errorf("decode rejection %s of command %s: %w", e.ID, c.ID, err)
			}
			o.Status, o.Error, o.RecordedAt = evokestore.OutcomeRejected, d.Reason, e.RecordedAt
			out[c.ID] = o
		}
	}
	for j := 1; len(more) > 0; j++ {
		cand = cand[:0]
		for _, c := range more {
			cand = append(cand, EventID(c.ID, j))
		}
		if found, err = read(ctx, cand, more); err != nil {
			return nil, err
		}
		next := more[:0]
		for _, c := range more {
			if e, ok := found[EventID(c.ID, j)]; ok && e.CausationID == c.ID {
				o := out[c.ID]
				o.Events = j + 1
				out[c.ID] = o
				next = append(next, c)
			}
		}
		more = next
	}
	return out, nil
}

// recordedOutcomes returns the outcome records of cmds, by command ID.
func recordedOutcomes(ctx context.Context, q evokestore.Querier, cmds []evokestore.OutboxCommand) (map[string]evokestore.CommandOutcome, error) {
	out := make(map[string]evokestore.CommandOutcome, len(cmds))
	if len(cmds) == 0 {
		return out, nil
	}
	ids := make([]string, len(cmds))
	for i := range cmds {
		ids[i] = cmds[i].ID
	}
	recorded, err := q.CommandOutcomes(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, o := range recorded {
		out[o.CommandID] = o
	}
	return out, nil
}

// eventsByID returns a reader of events by ID: the store's own
// (evokestore.EventsReader), or one that reads the streams of cmds'
// aggregates (where known) and rejections.
func eventsByID(q evokestore.Querier) func(ctx context.Context, ids []string, cmds []*evokestore.OutboxCommand) (map[string]evokestore.Event, error) {
	if er, ok := q.(evokestore.EventsReader); ok {
		return func(ctx context.Context, ids []string, _ []*evokestore.OutboxCommand) (map[string]evokestore.Event, error) {
			evs, err := er.ReadEvents(ctx, ids)
			if err != nil {
				return nil, fmt.Errorf("read the events of %d commands: %w", len(ids), err)
			}
			m := make(map[string]evokestore.Event, len(evs))
			for _, e := range evs {
				m[e.ID] = e
			}
			return m, nil
		}
	}
	return func(ctx context.Context, ids []string, cmds []*evokestore.OutboxCommand) (map[string]evokestore.Event, error) {
		want := make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
		m := make(map[string]evokestore.Event)
		streams := make(map[string]bool)
		for _, c := range cmds {
			ss := []string{RejectionStreamID(c.ID)}
			if c.AggregateType != "" {
				ss = append(ss, StreamID(c.AggregateType, c.AggregateID))
			}
			for _, s := range ss {
				if streams[s] {
					continue
				}
				streams[s] = true
				evs, err := q.ReadStream(ctx, s, 0)
				if err != nil {
					return nil, fmt.Errorf("read stream %s: %w", s, err)
				}
				for _, e := range evs {
					if want[e.ID] {
						m[e.ID] = e
					}
				}
			}
		}
		return m, nil
	}
}
