package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

func (en *Engine) router(pm string) (*router, error) {
	for _, r := range en.routers {
		if r.name == pm {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: no process manager %q", evokestore.ErrNotFound, pm)
}

// op runs fn on pm's router, serialised with its passes, then wakes it.
func (en *Engine) op(pm string, fn func(r *router) error) error {
	r, err := en.router(pm)
	if err != nil {
		return err
	}
	r.mu.Lock()
	err = fn(r)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return err
}

// stuck loads an instance that must be failing or parked.
func (r *router) stuck(ctx context.Context, id string) (*evokestore.Instance, error) {
	insts, err := r.en.store.Instances(ctx, r.name, []string{id})
	if err != nil {
		return nil, fmt.Errorf("load instance: %w", err)
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("%w: no such instance %s of %s", evokestore.ErrNotFound, id, r.name)
	}
	in := &insts[0]
	if !r.en.leases.Load().owns(in.Partition) {
		return nil, fmt.Errorf("%w: %s %s is in a partition of another node", evokestore.ErrNotOwner, r.name, id)
	}
	return in, Stuck(in)
}

// Stuck refuses an instance that is neither failing nor parked: the one
// state Retry and Skip act on.
func Stuck(in *evokestore.Instance) error {
	if !in.Status.Stuck() {
		return fmt.Errorf("%w: %s %s is %s", evokestore.ErrNotParked, in.ProcessManager, in.ID, in.Status)
	}
	return nil
}

// OpRecord is the history record of an operator's action of kind on in:
// its version and phase as they are.
func OpRecord(in *evokestore.Instance, kind string, now time.Time) evokestore.HistoryRecord {
	return evokestore.HistoryRecord{ProcessManager: in.ProcessManager, InstanceID: in.ID, Kind: kind, Version: in.Version,
		PhaseBefore: in.Phase, PhaseAfter: in.Phase, RecordedAt: now}
}

// SkipHeld releases in tx the first event in holds, the one it is stuck
// on, and returns the history record of the skip, which keeps that event's
// error. It clears in's last error, which was that event's; the caller
// writes in (or steps it again) and the record.
func SkipHeld(ctx context.Context, tx evokestore.Tx, in *evokestore.Instance, now time.Time) (evokestore.HistoryRecord, error) {
	held, err := tx.Held(ctx, in.ProcessManager, in.ID)
	if err != nil {
		return evokestore.HistoryRecord{}, fmt.Errorf("load held events: %w", err)
	}
	if len(held) == 0 {
		return evokestore.HistoryRecord{}, fmt.Errorf("%w: %s %s holds no event", evokestore.ErrNotParked, in.ProcessManager, in.ID)
	}
	first := held[0]
	rec := OpRecord(in, evokestore.KindSkipped, now)
	rec.Position, rec.Error = first.Position, first.Error
	if ev, ok, err := evokestore.EventAt(ctx, tx, first.Position); err == nil && ok {
		rec.EventID, rec.EventType = ev.ID, ev.Type
	}
	if err := tx.Release(ctx, in.ProcessManager, in.ID, []int64{first.Position}); err != nil {
		return evokestore.HistoryRecord{}, fmt.Errorf("release event %d: %w", first.Position, err)
	}
	in.LastError = ""
	return rec, nil
}

// Retry runs a failing or parked instance's held events again now, with a
// fresh attempt count.
func (en *Engine) Retry(ctx context.Context, pm, id string) error {
	return en.op(pm, func(r *router) error {
		in, err := r.stuck(ctx, id)
		if err != nil {
			return err
		}
		now := en.cfg.Clock.Now()
		in.Attempts = 0
		rec := OpRecord(in, evokestore.KindRetried, now)
		rec.Error = in.LastError
		return r.replay(ctx, in, now, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, []evokestore.HistoryRecord{rec}) })
	})
}

// Skip drops the event a failing or parked instance is stuck on (recording
// it in the history) and runs the instance's other held events.
func (en *Engine) Skip(ctx context.Context, pm, id string) error {
	return en.op(pm, func(r *router) error {
		in, err := r.stuck(ctx, id)
		if err != nil {
			return err
		}
		now := en.cfg.Clock.Now()
		ls := en.leases.Load()
		if err := evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
			if err := en.fence(ctx, tx, ls, []int{in.Partition}); err != nil {
				return err
			}
			rec, err := SkipHeld(ctx, tx, in, now)
			if err != nil {
				return err
			}
			return tx.InsertHistory(ctx, []evokestore.HistoryRecord{rec})
		}); err != nil {
			return fmt.Errorf("skip %s %s: %w", pm, id, err)
		}
		in.Attempts = 0
		return r.replay(ctx, in, now, nil)
	})
}

// Cancel ends an instance for good: it becomes a cancelled tombstone, its
// held events and deadlines are dropped.
func (en *Engine) Cancel(ctx context.Context, pm, id string) error {
	return en.op(pm, func(r *router) error {
		insts, err := en.store.Instances(ctx, pm, []string{id})
		if err != nil {
			return fmt.Errorf("load instance: %w", err)
		}
		if len(insts) == 0 {
			return fmt.Errorf("%w: no such instance %s of %s", evokestore.ErrNotFound, id, pm)
		}
		in := insts[0]
		ls := en.leases.Load()
		if !ls.owns(in.Partition) {
			return fmt.Errorf("%w: %s %s is in a partition of another node", evokestore.ErrNotOwner, pm, id)
		}
		if in.Status.Done() {
			return fmt.Errorf("%w: %s %s is already %s", evokestore.ErrNotParked, pm, id, in.Status)
		}
		now := en.cfg.Clock.Now()
		prev := in.Version
		err = evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
			if err := en.fence(ctx, tx, ls, []int{in.Partition}); err != nil {
				return err
			}
			if err := Tombstone(ctx, tx, &in, now); err != nil {
				return err
			}
			if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: in, PrevVersion: prev}}); err != nil {
				return err
			}
			rec := OpRecord(&in, evokestore.KindCancel, now)
			rec.Node, rec.LeaseToken = en.cfg.NodeID, ls.tokens[in.Partition]
			return tx.InsertHistory(ctx, []evokestore.HistoryRecord{rec})
		})
		r.cache.drop(id)
		if err != nil {
			return fmt.Errorf("cancel %s %s: %w", pm, id, err)
		}
		en.cfg.Hooks.Telemetry(Telemetry{Kind: TelemetryStop, SystemTime: now, Duration: now.Sub(in.CreatedAt), ProcessManager: pm, InstanceID: id, FinalState: in.State})
		return nil
	})
}

// parkedEvent loads an event parked for a process manager because its
// correlation failed.
func (r *router) parkedEvent(ctx context.Context, position int64) (evokestore.HeldEvent, evokestore.Event, error) {
	held, err := r.en.store.Held(ctx, r.name, "")
	if err != nil {
		return evokestore.HeldEvent{}, evokestore.Event{}, fmt.Errorf("load parked events: %w", err)
	}
	i := slices.IndexFunc(held, func(h evokestore.HeldEvent) bool { return h.Position == position })
	if i < 0 {
		return evokestore.HeldEvent{}, evokestore.Event{}, fmt.Errorf("%w: no event parked at position %d for %s", evokestore.ErrNotParked, position, r.name)
	}
	ev, ok, err := evokestore.EventAt(ctx, r.en.store, position)
	if err != nil {
		return evokestore.HeldEvent{}, evokestore.Event{}, fmt.Errorf("read event %d: %w", position, err)
	}
	if !ok {
		return evokestore.HeldEvent{}, evokestore.Event{}, fmt.Errorf("event %d is missing from the log", position)
	}
	return held[i], ev, nil
}

// RetryEvent correlates an event parked for pm again and, if that now
// succeeds, steps it (after the instance's later events: it was parked
// before it reached the instance).
func (en *Engine) RetryEvent(ctx context.Context, pm string, position int64) error {
	return en.op(pm, func(r *router) error {
		_, ev, err := r.parkedEvent(ctx, position)
		if err != nil {
			return err
		}
		now := en.cfg.Clock.Now()
		ls := en.leases.Load()
		if err := r.syncPartitions(ctx, ls); err != nil {
			return err
		}
		orphanPart := PartitionOf("", en.cfg.Partitions)
		if !ls.owns(orphanPart) {
			return fmt.Errorf("%w: events parked for %s", evokestore.ErrNotOwner, pm)
		}
		groups, order, orphans := r.correlate([]evokestore.Event{ev}, nil, false, nil)
		if len(orphans) > 0 {
			err := fmt.Errorf("correlate event %d again: %s", position, orphans[0].Error)
			_ = evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
				if err := en.fence(ctx, tx, ls, []int{orphanPart}); err != nil {
					return err
				}
				return tx.Hold(ctx, orphans)
			})
			return err
		}
		if err := r.load(ctx, ls, groups, order, nil); err != nil {
			return err
		}
		if len(order) == 0 {
			return fmt.Errorf("%w: event %d now routes to a partition of another node", evokestore.ErrNotOwner, position)
		}
		r.stepAll(groups, order, now, false)
		parts := []int{orphanPart}
		for _, id := range order {
			parts = append(parts, groups[id].partition)
		}
		slices.Sort(parts)
		return r.commit(ctx, &batch{ls: ls, fenceParts: slices.Compact(parts), groups: groups, order: order, extra: func(tx evokestore.Tx) error {
			return tx.Release(ctx, pm, "", []int64{position})
		}})
	})
}

// SkipEvent drops an event parked for pm, recording it in pm's history
// under an empty instance ID.
func (en *Engine) SkipEvent(ctx context.Context, pm string, position int64) error {
	return en.op(pm, func(r *router) error {
		h, ev, err := r.parkedEvent(ctx, position)
		if err != nil {
			return err
		}
		ls := en.leases.Load()
		orphanPart := PartitionOf("", en.cfg.Partitions)
		return evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
			if err := en.fence(ctx, tx, ls, []int{orphanPart}); err != nil {
				return err
			}
			if err := tx.Release(ctx, pm, "", []int64{position}); err != nil {
				return err
			}
			return tx.InsertHistory(ctx, []evokestore.HistoryRecord{{ProcessManager: pm, Kind: evokestore.KindSkipped,
				Position: position, EventID: ev.ID, EventType: ev.Type, Error: h.Error, RecordedAt: en.cfg.Clock.Now()}})
		})
	})
}

// Idle reports whether the engine has nothing to do now: every process
// manager has stepped every event of interest in the log, the outbox holds
// no command the dispatcher will dispatch and no deadline is due. Failing
// instances waiting for their backoff, and the commands of instances the
// dispatcher parked, do not count as work: they wait for time or for an
// operator.
func (en *Engine) Idle(ctx context.Context) (bool, error) {
	if en.busy.Load() > 0 {
		return false, nil
	}
	st := en.store
	head, err := st.Head(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range en.routers {
		for p := range en.cfg.Partitions {
			cp, ok, err := st.Checkpoint(ctx, r.name, p)
			if err != nil || !ok {
				return false, err
			}
			evs, err := st.ReadLog(ctx, evokestore.LogQuery{After: cp.Position, Types: r.types, Limit: 1})
			if err != nil || len(evs) > 0 {
				return false, err
			}
		}
	}
	if work, err := en.outboxWork(ctx); err != nil || work {
		return false, err
	}
	now := en.cfg.Clock.Now()
	if due, err := st.DueDeadlines(ctx, now, 1); err != nil || len(due) > 0 {
		return false, err
	}
	ls := en.leases.Load()
	for _, r := range en.routers {
		failing, err := st.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: r.name, Status: evokestore.StatusFailing, Limit: 1000})
		if err != nil {
			return false, err
		}
		for i := range failing {
			if ls.owns(failing[i].Partition) && !failing[i].NextAttemptAt.After(now) {
				return false, nil // a retry is due
			}
		}
	}
	// Nothing was appended, and no batch was written, while we looked.
	again, err := st.Head(ctx)
	return err == nil && again == head && en.busy.Load() == 0, err
}

// outboxWork reports whether the outbox holds a command the dispatcher
// will dispatch: one of an instance it has not parked.
func (en *Engine) outboxWork(ctx context.Context) (bool, error) {
	q := evokestore.OutboxQuery{Limit: 256}
	for {
		ob, err := en.store.Outbox(ctx, q)
		if err != nil || len(en.parked.others(ob)) > 0 {
			return err == nil, err
		}
		if len(ob) < q.Limit {
			return false, nil
		}
		q.After = ob[len(ob)-1].Seq
	}
}

// Tombstone makes in, read in tx, a cancelled tombstone as of now: it
// releases the events the instance holds and drops its deadlines in tx,
// and sets in's status; the caller writes in, fenced by the version it
// read, with its history record. It refuses an instance that already
// ended. evokeops.Cancel and the runtime's Cancel share it.
func Tombstone(ctx context.Context, tx evokestore.Tx, in *evokestore.Instance, now time.Time) error {
	if in.Status.Done() {
		return fmt.Errorf("%w: %s %s already %s", evokestore.ErrNotParked, in.ProcessManager, in.ID, in.Status)
	}
	held, err := tx.Held(ctx, in.ProcessManager, in.ID)
	if err != nil {
		return fmt.Errorf("load held events: %w", err)
	}
	if len(held) > 0 {
		pos := make([]int64, len(held))
		for i, h := range held {
			pos[i] = h.Position
		}
		if err := tx.Release(ctx, in.ProcessManager, in.ID, pos); err != nil {
			return fmt.Errorf("release held events: %w", err)
		}
	}
	if err := tx.ReplaceDeadlines(ctx, in.ProcessManager, []string{in.ID}, nil); err != nil {
		return fmt.Errorf("drop deadlines: %w", err)
	}
	in.Status, in.CompletedAt, in.UpdatedAt, in.NextAttemptAt = evokestore.StatusCancelled, now, now, time.Time{}
	in.Outcome = evokestore.EndCancelled
	return nil
}
