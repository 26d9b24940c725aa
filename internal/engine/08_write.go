package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/evoke-go/evoke/evokestore"
)

// commit settles and writes a batch synchronously (operator actions and
// retries, outside the pipeline of drain).
func (r *router) commit(ctx context.Context, b *batch) error {
	b.landed = &landing{}
	if err := r.settle(ctx, b, nil); err != nil {
		return err
	}
	if err := r.write(ctx, b); err != nil {
		r.cache.reset() // what the store holds is not known
		return err
	}
	r.finish(b)
	return nil
}

// write commits a settled batch in one transaction fenced by the leases of
// its partitions. If the commands executed ahead cannot be written with
// the steps (a stream another writer appended to meanwhile, a store
// refusing the events), the steps commit with every command queued
// instead, for the dispatcher, which retries and isolates failing commands.
// It runs while the next batch is prepared, which reads b's plan: it
// changes nothing of b but fellBack, read once it returned.
func (r *router) write(ctx context.Context, b *batch) error {
	err := r.writeOnce(ctx, b, b.queued, b.exec, b.chain)
	if err == nil && b.chain != nil {
		rs := b.landed.pending
		b.landed.chained.Store(&rs)
	}
	if err != nil && b.chain != nil && ctx.Err() == nil && !errors.Is(err, evokestore.ErrLeaseLost) && !errors.Is(err, evokestore.ErrFenced) {
		// Without the follow-on steps: the batches prepared on top of
		// this one are prepared again.
		if !errors.Is(err, errChainBlocked) {
			r.en.conflict(err)
			r.en.log.Warn("writing a batch's follow-on steps failed; writing it without them",
				"process_manager", r.name, "steps", b.chain.steps, "err", err)
		}
		r.en.counters.ChainFallbacks.Add(1)
		b.chainDropped = true
		err = r.writeOnce(ctx, b, b.queued, b.exec, nil)
	}
	if err != nil && b.exec != nil && ctx.Err() == nil && !errors.Is(err, evokestore.ErrLeaseLost) && !errors.Is(err, evokestore.ErrFenced) {
		r.en.conflict(err)
		r.en.log.Warn("executing a batch's commands with its steps failed; queueing them in the outbox instead",
			"process_manager", r.name, "commands", len(b.exec.results), "err", err)
		r.en.counters.InlineFallbacks.Add(1)
		b.fellBack = true
		err = r.writeOnce(ctx, b, b.outbox, nil, nil)
	}
	return err
}

// writeOnce commits b with queued going to the outbox, exec's outcomes
// and events (nil: none), and the follow-on steps ch (nil: none).
func (r *router) writeOnce(ctx context.Context, b *batch, queued []evokestore.OutboxCommand, exec *execution, ch *chainResult) error {
	return evokestore.WithTx(ctx, r.en.store, func(tx evokestore.Tx) error {
		b.landed.ranges = b.landed.ranges[:0] // of an attempt rolled back
		if err := r.begin(ctx, tx, b); err != nil {
			return err
		}
		// groupOf is the output to write for an instance: its chained one,
		// if any.
		groupOf := func(id string) *group { return b.groups[id] }
		var chainHist map[string][]evokestore.HistoryRecord
		if ch != nil {
			// The appends come first: the chained steps' positions are
			// known only after them.
			landed, hist, err := r.landChain(ctx, tx, b, exec, ch)
			if err != nil {
				return err
			}
			ch.landed, chainHist = landed, hist
			queued = append(queued[:len(queued):len(queued)], ch.queued...)
			groupOf = func(id string) *group {
				if cg := ch.groups[id]; cg != nil {
					return cg
				}
				return b.groups[id]
			}
		}
		if err := b.rows(ch, chainHist, groupOf).put(ctx, tx, queued); err != nil {
			return err
		}
		if err := r.putHeldAndDeadlines(ctx, tx, b, groupOf); err != nil {
			return err
		}
		if b.persist && len(b.cps) > 0 {
			if err := tx.PutCheckpoints(ctx, b.cps); err != nil {
				return fmt.Errorf("write checkpoints: %w", err)
			}
		}
		if exec != nil && ch == nil {
			if err := exec.write(ctx, tx, nil); err != nil { // appends last
				return err
			}
			b.landed.record(exec)
		}
		return nil
	})
}

// begin opens a batch's transaction: it defers the writes where the store
// can, checks the leases, and writes an operator's action.
func (r *router) begin(ctx context.Context, tx evokestore.Tx, b *batch) error {
	// Any error rolls the whole batch back, whichever call returns it:
	// a server store may hold writes back for fewer round trips.
	if d, ok := tx.(evokestore.WriteDeferrer); ok {
		d.DeferWrites()
	}
	if err := r.en.fence(ctx, tx, b.ls, b.fenceParts); err != nil {
		return err
	}
	// An operator's action is written first: its history record comes
	// before the records of the steps it causes.
	if b.extra != nil {
		if err := b.extra(tx); err != nil {
			return err
		}
	}
	return nil
}

// batchRows are a batch's instance writes, history records and held
// events, in the batch's order.
type batchRows struct {
	writes  []evokestore.InstanceWrite
	history []evokestore.HistoryRecord
	held    []evokestore.HeldEvent
}

// rows collects b's rows: a chained instance's write as landed and its
// history with positions (chainHist), the others' as stepped.
func (b *batch) rows(ch *chainResult, chainHist map[string][]evokestore.HistoryRecord, groupOf func(id string) *group) batchRows {
	nh, nheld := 0, len(b.orphans)
	for _, id := range b.order {
		g := groupOf(id)
		nh += len(g.history)
		nheld += len(g.held)
	}
	rs := batchRows{
		writes:  make([]evokestore.InstanceWrite, 0, len(b.order)),
		history: make([]evokestore.HistoryRecord, 0, nh),
		held:    append(make([]evokestore.HeldEvent, 0, nheld), b.orphans...),
	}
	for _, id := range b.order {
		if w := ch.landedWrite(id); w != nil {
			rs.writes = append(rs.writes, *w)
			rs.history = append(rs.history, chainHist[id]...)
			continue
		}
		g := b.groups[id]
		if g.write != nil {
			rs.writes = append(rs.writes, *g.write)
		}
		rs.history = append(rs.history, g.history...)
		rs.held = append(rs.held, g.held...)
	}
	return rs
}

// put writes the rows, with queued going to the outbox.
func (rs batchRows) put(ctx context.Context, tx evokestore.Tx, queued []evokestore.OutboxCommand) error {
	if len(rs.writes) > 0 {
		if err := tx.PutInstances(ctx, rs.writes); err != nil {
			return fmt.Errorf("write %d instances: %w", len(rs.writes), err)
		}
	}
	if len(queued) > 0 {
		if err := tx.InsertOutbox(ctx, queued); err != nil {
			return fmt.Errorf("write outbox: %w", err)
		}
	}
	if len(rs.history) > 0 {
		if err := tx.InsertHistory(ctx, rs.history); err != nil {
			return fmt.Errorf("write history: %w", err)
		}
	}
	if len(rs.held) > 0 {
		if err := tx.Hold(ctx, rs.held); err != nil {
			return fmt.Errorf("hold events: %w", err)
		}
	}
	return nil
}

// putHeldAndDeadlines releases the held events the batch's replays
// stepped and replaces the deadlines of the instances whose steps set
// them.
func (r *router) putHeldAndDeadlines(ctx context.Context, tx evokestore.Tx, b *batch, groupOf func(id string) *group) error {
	var dlIDs []string
	var dls []evokestore.Deadline
	for _, id := range b.order {
		g := groupOf(id)
		if len(g.released) > 0 {
			if err := tx.Release(ctx, r.name, id, g.released); err != nil {
				return fmt.Errorf("release held events: %w", err)
			}
		}
		if g.setDL {
			dlIDs = append(dlIDs, id)
			dls = append(dls, g.deadlines...)
		}
	}
	if len(dlIDs) > 0 {
		if err := tx.ReplaceDeadlines(ctx, r.name, dlIDs, dls); err != nil {
			return fmt.Errorf("write deadlines: %w", err)
		}
	}
	return nil
}

// finish records a landed batch: checkpoints, counters, telemetry.
func (r *router) finish(b *batch) {
	r.landCheckpoints(b)
	if len(b.order) == 0 && len(b.orphans) == 0 && b.extra == nil {
		return
	}
	ch := b.chained()
	r.countBatch(b, ch)
	logTransitions := r.en.log.Enabled(context.Background(), slog.LevelInfo)
	for _, id := range b.order {
		g := b.groups[id]
		tels := [][]Telemetry{g.telemetry}
		if w := ch.landedWrite(id); w != nil {
			g = ch.groups[id]
			tels = append(tels, g.telemetry) // the chained steps', after the base's
			r.cache.put(&w.Instance, g.token)
		} else if g.write != nil {
			r.cache.put(&g.write.Instance, g.token)
		}
		if w := g.write; w != nil && w.Status == evokestore.StatusFailing {
			if r.nextRetry.IsZero() || w.NextAttemptAt.Before(r.nextRetry) {
				r.nextRetry = w.NextAttemptAt
			}
		}
		r.countSteps(id, g)
		r.emit(id, tels, logTransitions)
	}
}

// landCheckpoints moves the owned partitions' committed (and persisted)
// checkpoints to where b committed them.
func (r *router) landCheckpoints(b *batch) {
	if b.persist {
		r.unpersisted = false
	} else if b.skippedOnly {
		r.unpersisted = true
	}
	for _, cp := range b.cps {
		if pc := r.cps[cp.Partition]; pc != nil {
			pc.committed = max(pc.committed, cp.Position)
			if b.persist {
				pc.persisted = max(pc.persisted, cp.Position)
			}
		}
	}
}

// countBatch counts a landed batch and its commands, chained ones (ch)
// included, and keeps the positions it chained for later reads to skip.
func (r *router) countBatch(b *batch, ch *chainResult) {
	r.en.counters.Batches.Add(1)
	r.en.counters.Commands.Add(int64(len(b.outbox)))
	if b.exec != nil && !b.fellBack {
		r.en.counters.Dispatched.Add(int64(len(b.exec.results)))
		r.en.counters.Rejected.Add(int64(b.exec.rejected))
	}
	if ch != nil {
		if rs := b.landed.chained.Load(); rs != nil {
			r.skips = append(r.skips, *rs...)
		}
		r.en.counters.Chained.Add(int64(ch.steps))
		r.en.counters.Commands.Add(int64(len(ch.queued)))
		for _, x := range ch.execs {
			r.en.counters.Commands.Add(int64(len(x.results)))
			r.en.counters.Dispatched.Add(int64(len(x.results)))
			r.en.counters.Rejected.Add(int64(x.rejected))
		}
	}
}

// countSteps counts and logs the steps and failures of an instance as
// they committed: a step prepared in a batch (or chain) that was not
// written is stepped again by a later one.
func (r *router) countSteps(id string, g *group) {
	for i := range g.history {
		h := &g.history[i]
		switch h.Kind {
		case evokestore.KindStep:
			r.en.counters.Steps.Add(1)
		case evokestore.KindFailed:
			r.en.counters.Failures.Add(1)
			r.en.log.Warn("step failed; will retry", append([]any{"process_manager", r.name, "instance", id, "event_type", h.EventType, "position", h.Position, "attempt", g.write.Attempts, "retry_at", g.write.NextAttemptAt}, errorAttrs(h.Error)...)...)
		case evokestore.KindSkipped, evokestore.KindCancel:
			if h.Error != "" { // skipped or stopped by OnFailure
				r.en.counters.Failures.Add(1)
			}
		case evokestore.KindParked:
			r.en.counters.Failures.Add(1)
			r.en.counters.Parked.Add(1)
			r.en.log.Error("instance parked", append([]any{"process_manager", r.name, "instance", id, "event_type", h.EventType, "position", h.Position, "attempts", g.write.Attempts}, errorAttrs(h.Error)...)...)
		}
	}
}

// emit hands an instance's committed telemetry to the hooks, counting
// completions and logging transitions of its phase.
func (r *router) emit(id string, tels [][]Telemetry, logTransitions bool) {
	for _, ts := range tels {
		for _, t := range ts {
			if t.Kind == TelemetryStop && t.Err == "" { // not stopped by OnFailure
				r.en.counters.Completed.Add(1)
			}
			if t.Kind == TelemetryTransition && logTransitions {
				r.en.log.Info(fmt.Sprintf("process %s: %s -> %s on %s", id, phaseName(t.FromPhase), phaseName(t.ToPhase), t.EventType),
					slog.String("process_manager", r.name), slog.String("instance", id))
			}
			r.en.cfg.Hooks.Telemetry(t)
		}
	}
}

// phaseName shows an empty phase as "(none)" in logs.
func phaseName(p string) string {
	if p == "" {
		return "(none)"
	}
	return p
}

// persistCheckpoints writes the checkpoints of the owned partitions as
// committed (drain's batches passed over chained events without writing
// them).
func (r *router) persistCheckpoints(ctx context.Context) error {
	ls := r.en.leases.Load()
	b := &batch{ls: ls, fenceParts: ls.parts, persist: true, landed: &landing{}}
	for _, p := range ls.parts {
		if pc := r.cps[p]; pc != nil {
			b.cps = append(b.cps, pc.cp)
		}
	}
	return r.commit(ctx, b)
}
