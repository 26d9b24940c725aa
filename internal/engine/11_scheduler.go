package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// scheduler fires due deadlines: for each, in one transaction, it checks the
// instance is still at the deadline's version, deletes the deadline and
// appends a deadline event that the router delivers to the instance. The
// router checks the version again before stepping, so a deadline the
// instance has moved past never reaches Handle.
type scheduler struct{ en *Engine }

func (s *scheduler) run(ctx context.Context) {
	wake, cancel := s.en.store.Subscribe(evokestore.TopicDeadlines)
	defer cancel()
	clock := s.en.cfg.Clock
	failures := 0
	for ctx.Err() == nil {
		next, err := s.pass(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			d := s.en.backoff(failures)
			s.en.log.Log(ctx, s.en.retryLevel(err, failures), "firing deadlines failed; retrying", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		var due <-chan time.Time
		stop := func() bool { return false }
		if !next.IsZero() {
			due, stop = clock.NewTimer(next.Sub(clock.Now()))
		}
		poll := time.NewTimer(s.en.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-due:
		case <-poll.C:
		}
		poll.Stop()
		stop()
	}
}

// pass fires every due deadline; it returns when the next one is due.
func (s *scheduler) pass(ctx context.Context) (time.Time, error) {
	st := s.en.store
	for {
		now := s.en.cfg.Clock.Now()
		all, err := st.DueDeadlines(ctx, now, 256)
		if err != nil {
			return time.Time{}, fmt.Errorf("load due deadlines: %w", err)
		}
		ls := s.en.leases.Load()
		var due []evokestore.Deadline
		for _, d := range all {
			if ls.owns(PartitionOf(d.InstanceID, s.en.cfg.Partitions)) {
				due = append(due, d)
			}
		}
		if len(due) == 0 {
			break
		}
		if err := s.fire(ctx, due, now, ls); err != nil {
			return time.Time{}, err
		}
		if len(all) < 256 || len(due) < len(all) {
			break
		}
	}
	d, ok, err := st.NextDeadline(ctx)
	if err != nil || !ok {
		return time.Time{}, err
	}
	return d.DueAt, nil
}

func (s *scheduler) fire(ctx context.Context, due []evokestore.Deadline, now time.Time, ls *leaseSet) error {
	return evokestore.WithTx(ctx, s.en.store, func(tx evokestore.Tx) error {
		var parts []int
		for _, d := range due {
			parts = append(parts, PartitionOf(d.InstanceID, s.en.cfg.Partitions))
		}
		slices.Sort(parts)
		if err := s.en.fence(ctx, tx, ls, slices.Compact(parts)); err != nil {
			return err
		}
		deleted, err := deleteDeadlines(ctx, tx, due)
		if err != nil {
			return fmt.Errorf("delete deadline: %w", err)
		}
		insts, err := deadlineInstances(ctx, tx, due, deleted)
		if err != nil {
			return fmt.Errorf("load instance: %w", err)
		}
		var appends []evokestore.NewEvent
		for i, d := range due {
			if !deleted[i] {
				continue // fired or replaced meanwhile
			}
			in, ok := insts[[2]string{d.ProcessManager, d.InstanceID}]
			if !ok || in.Version != d.Version || in.Status.Done() {
				s.en.counters.DroppedStale.Add(1)
				continue
			}
			data, err := json.Marshal(DeadlineData{ProcessManager: d.ProcessManager, InstanceID: d.InstanceID, Version: d.Version, Name: d.Name, At: d.DueAt})
			if err != nil {
				return err
			}
			id := SortableID(uint64(d.DueAt.UnixMilli()), "deadline", d.ProcessManager, d.InstanceID, d.Name, fmt.Sprint(d.Version))
			appends = append(appends, evokestore.NewEvent{
				ID: id, StreamID: "$evoke.deadline-" + id, StreamVersion: 1, Type: TypeDeadline, Data: data,
				CorrelationID: id, RecordedAt: now,
			})
		}
		if len(appends) == 0 {
			return nil
		}
		_, err = tx.AppendEvents(ctx, appends)
		return err
	})
}

// deleteDeadlines deletes ds in tx, in one call where the store can
// (evokestore.DeadlinesDeleter), and reports for each whether it was still
// there.
func deleteDeadlines(ctx context.Context, tx evokestore.Tx, ds []evokestore.Deadline) ([]bool, error) {
	if dd, ok := tx.(evokestore.DeadlinesDeleter); ok {
		return dd.DeleteDeadlines(ctx, ds)
	}
	deleted := make([]bool, len(ds))
	for i, d := range ds {
		ok, err := tx.DeleteDeadline(ctx, d)
		if err != nil {
			return nil, err
		}
		deleted[i] = ok
	}
	return deleted, nil
}

// deadlineInstances loads the instances of the deadlines of ds that were
// deleted, with one read per process manager, keyed by process manager and
// ID.
func deadlineInstances(ctx context.Context, tx evokestore.Tx, ds []evokestore.Deadline, deleted []bool) (map[[2]string]evokestore.Instance, error) {
	ids := map[string][]string{}
	for i, d := range ds {
		if deleted[i] {
			ids[d.ProcessManager] = append(ids[d.ProcessManager], d.InstanceID)
		}
	}
	out := make(map[[2]string]evokestore.Instance, len(ds))
	for pm, of := range ids {
		slices.Sort(of)
		insts, err := tx.Instances(ctx, pm, slices.Compact(of))
		if err != nil {
			return nil, err
		}
		for _, in := range insts {
			out[[2]string{pm, in.ID}] = in
		}
	}
	return out, nil
}
