package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// retryDue re-runs the held events of failing instances whose backoff has
// passed.
func (r *router) retryDue(ctx context.Context) error {
	now := r.en.cfg.Clock.Now()
	if r.nextRetry.IsZero() || now.Before(r.nextRetry) {
		return nil
	}
	insts, err := r.en.store.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: r.name, Status: evokestore.StatusFailing, Limit: 1000})
	if err != nil {
		return fmt.Errorf("list failing instances: %w", err)
	}
	r.nextRetry = time.Time{}
	ls := r.en.leases.Load()
	for i := range insts {
		inst := &insts[i]
		if !ls.owns(inst.Partition) {
			continue
		}
		if inst.NextAttemptAt.After(now) {
			if r.nextRetry.IsZero() || inst.NextAttemptAt.Before(r.nextRetry) {
				r.nextRetry = inst.NextAttemptAt
			}
			continue
		}
		if err := r.replay(ctx, inst, now, nil); err != nil {
			return err
		}
	}
	return nil
}

// replay steps an instance's held events in order.
func (r *router) replay(ctx context.Context, inst *evokestore.Instance, now time.Time, extra func(tx evokestore.Tx) error) error {
	st := r.en.store
	held, err := st.Held(ctx, r.name, inst.ID)
	if err != nil {
		return fmt.Errorf("load held events of %s %s: %w", r.name, inst.ID, err)
	}
	ls := r.en.leases.Load()
	if !ls.owns(inst.Partition) {
		return fmt.Errorf("%w: %s %s is in partition %d, not this node's", evokestore.ErrNotOwner, r.name, inst.ID, inst.Partition)
	}
	g := &group{id: inst.ID, partition: inst.Partition, token: ls.tokens[inst.Partition], inst: inst}
	for _, h := range held {
		ev, ok, err := evokestore.EventAt(ctx, st, h.Position)
		if err != nil {
			return fmt.Errorf("read held event %d: %w", h.Position, err)
		}
		if !ok {
			return fmt.Errorf("held event %d of %s %s is missing from the log", h.Position, r.name, inst.ID)
		}
		route, ok := r.routeFor(&ev, inst.ID)
		if !ok {
			route.Kind = RouteContinue
		}
		g.items = append(g.items, item{ev: &ev, kind: route.Kind})
	}
	if len(g.items) == 0 {
		// Nothing held: the instance simply runs again.
		w := *inst
		w.Status, w.Attempts, w.LastError, w.NextAttemptAt = evokestore.StatusRunning, 0, "", time.Time{}
		g.write = &evokestore.InstanceWrite{Instance: w, PrevVersion: inst.Version}
	} else {
		r.stepAll(map[string]*group{inst.ID: g}, []string{inst.ID}, now, true)
	}
	return r.commit(ctx, &batch{ls: ls, fenceParts: []int{inst.Partition}, groups: map[string]*group{inst.ID: g}, order: []string{inst.ID}, extra: extra})
}
