// Package evokeops performs operator actions on an evoke store from any
// process, without the process managers' code: the `evoke retry`, `skip`
// and `cancel` commands use it.
//
// The runtime that runs the process manager (evoke.Runtime) does the work
// that needs its code: Retry and Skip mark the instance failing with its
// next attempt due now, and that runtime steps its held events within its
// poll interval (evoke.Config.PollInterval, 1s by default), as it does for
// its own retries. Cancel needs no code and is done here. Each action is
// one transaction, fenced by the instance's version: if the runtime
// stepped the instance meanwhile, the action fails with
// evokestore.ErrFenced and nothing is changed; look again and repeat it.
//
// In the same process as the runtime, use its methods (Runtime.Retry,
// Skip, Cancel) instead: they act at once, between the runtime's steps.
package evokeops

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// ParkedEvents returns the events parked for a process manager because its
// Correlate failed on them (held under no instance), in log order.
func ParkedEvents(ctx context.Context, st evokestore.Store, processManager string) ([]evokestore.HeldEvent, error) {
	return st.Held(ctx, processManager, "")
}

// SkipEvent drops an event parked for a process manager because its
// Correlate failed, recording that in the process manager's history (under
// no instance). Retrying such an event needs the process manager's code:
// Runtime.RetryEvent.
func SkipEvent(ctx context.Context, st evokestore.Store, processManager string, position int64) error {
	return evokestore.WithTx(ctx, st, func(tx evokestore.Tx) error {
		held, err := tx.Held(ctx, processManager, "")
		if err != nil {
			return err
		}
		i := slices.IndexFunc(held, func(h evokestore.HeldEvent) bool { return h.Position == position })
		if i < 0 {
			return fmt.Errorf("%w: no event parked at position %d for %s", evokestore.ErrNotParked, position, processManager)
		}
		rec := evokestore.HistoryRecord{ProcessManager: processManager, Kind: evokestore.KindSkipped, Position: position,
			Error: held[i].Error, RecordedAt: time.Now(), Node: "evokeops"}
		if ev, ok, err := evokestore.EventAt(ctx, tx, position); err == nil && ok {
			rec.EventID, rec.EventType = ev.ID, ev.Type
		}
		if err := tx.Release(ctx, processManager, "", []int64{position}); err != nil {
			return err
		}
		return tx.InsertHistory(ctx, []evokestore.HistoryRecord{rec})
	})
}

// Retry asks for a failing or parked instance to be run again now, with a
// fresh attempt count: its held events, in order. It records the request
// in the instance's history.
func Retry(ctx context.Context, st evokestore.Store, processManager, id string) error {
	return change(ctx, st, processManager, id, func(tx evokestore.Tx, in *evokestore.Instance, now time.Time) (evokestore.HistoryRecord, error) {
		if err := engine.Stuck(in); err != nil {
			return evokestore.HistoryRecord{}, err
		}
		rec := record(in, evokestore.KindRetried, now)
		rec.Error = in.LastError
		due(in, now)
		return rec, nil
	})
}

// Skip drops the first event a failing or parked instance holds (the one
// it is stuck on), records it in the instance's history with its error
// (the instance's last error, which it clears), and asks for the instance
// to be run again now with its other held events.
func Skip(ctx context.Context, st evokestore.Store, processManager, id string) error {
	return change(ctx, st, processManager, id, func(tx evokestore.Tx, in *evokestore.Instance, now time.Time) (evokestore.HistoryRecord, error) {
		if err := engine.Stuck(in); err != nil {
			return evokestore.HistoryRecord{}, err
		}
		rec, err := engine.SkipHeld(ctx, tx, in, now)
		if err != nil {
			return evokestore.HistoryRecord{}, err
		}
		rec.Node = "evokeops"
		due(in, now)
		return rec, nil
	})
}

// Cancel ends an instance that has not completed: it becomes a cancelled
// tombstone (purged after the retention like a completed one), its held
// events and deadlines are dropped, and later events for it are dropped.
// Commands it already issued stay issued. Its version moves on, so that a
// step the runtime was taking meanwhile cannot commit over it.
func Cancel(ctx context.Context, st evokestore.Store, processManager, id string) error {
	return change(ctx, st, processManager, id, func(tx evokestore.Tx, in *evokestore.Instance, now time.Time) (evokestore.HistoryRecord, error) {
		if err := engine.Tombstone(ctx, tx, in, now); err != nil {
			return evokestore.HistoryRecord{}, err
		}
		// From another process: a step the runtime took meanwhile must not
		// commit over the tombstone.
		in.Version++
		return record(in, evokestore.KindCancel, now), nil
	})
}

// change loads an instance in a transaction, lets fn change it and name
// its history record, and writes both, fenced by the version it loaded.
func change(ctx context.Context, st evokestore.Store, pm, id string,
	fn func(tx evokestore.Tx, in *evokestore.Instance, now time.Time) (evokestore.HistoryRecord, error)) error {
	return evokestore.WithTx(ctx, st, func(tx evokestore.Tx) error {
		insts, err := tx.Instances(ctx, pm, []string{id})
		if err != nil {
			return err
		}
		if len(insts) == 0 {
			return fmt.Errorf("%w: no such instance %s of %s", evokestore.ErrNotFound, id, pm)
		}
		in := insts[0]
		prev := in.Version
		now := time.Now()
		rec, err := fn(tx, &in, now)
		if err != nil {
			return err
		}
		in.UpdatedAt = now
		if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: in, PrevVersion: prev}}); err != nil {
			return err
		}
		return tx.InsertHistory(ctx, []evokestore.HistoryRecord{rec})
	})
}

// due makes an instance failing with its next attempt due now and a fresh
// attempt count: the runtime's retry loop picks it up.
func due(in *evokestore.Instance, now time.Time) {
	in.Status, in.Attempts, in.NextAttemptAt = evokestore.StatusFailing, 0, now
}

// record is the history record of an action taken here: the node is
// "evokeops".
func record(in *evokestore.Instance, kind string, now time.Time) evokestore.HistoryRecord {
	rec := engine.OpRecord(in, kind, now)
	rec.Node = "evokeops"
	return rec
}

// CommandOutcomes returns what became of commands cmds that were executed,
// by command ID, from the store alone: the outcome records, and for a
// command executed with the step that issued it, its events (or its
// rejection's), which are its record.
func CommandOutcomes(ctx context.Context, q evokestore.Querier, cmds []evokestore.OutboxCommand) (map[string]evokestore.CommandOutcome, error) {
	return engine.Outcomes(ctx, q, cmds)
}
