package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/evoke-go/evoke/evokestore"
)

// route decides where one event goes, for every path that steps events
// (a batch read from the log, a chained round, a retry of held events): an
// event of a type the process manager did not declare goes nowhere, system
// events carry their target, and the others go where Correlate says. An
// instance ID outside the input contract (evokestore.CheckID) is a failed
// correlation: no store could hold the instance, so the event is parked
// for the process manager rather than failing every batch that loads it.
func (r *router) route(ev *evokestore.Event) Route {
	switch ev.Type {
	case TypeCommandRejected, TypeDeadline:
		t, err := decodeTarget(ev)
		if err != nil || t.ProcessManager != r.name || t.InstanceID == "" {
			return Route{}
		}
		return Route{Kind: routeSystem, ID: t.InstanceID}
	}
	if !r.interest[ev.Type] {
		return Route{}
	}
	route := r.pm.Correlate(ev)
	if route.Kind == RouteError && route.Err == nil {
		route.Err = errors.New("correlation failed")
	}
	for t := range route.targets {
		if err := evokestore.CheckID("instance id", t.ID); err != nil {
			return Route{Kind: RouteError, Err: fmt.Errorf("correlate %s: event %s (%s): %w",
				r.name, evokestore.Quote(ev.ID), evokestore.Quote(ev.Type), err)}
		}
	}
	if route.Kind == RouteEach && len(route.Each) == 0 {
		return Route{}
	}
	return route
}

// routeFor returns the route of ev to instance id (the first, when the
// process manager routes it there more than once), and false when it does
// not route ev there.
func (r *router) routeFor(ev *evokestore.Event, id string) (Route, bool) {
	for t := range r.route(ev).targets {
		if t.ID == id {
			return t, true
		}
	}
	return Route{}, false
}

// correlate routes events to instance groups of the partitions this node
// owns; with fresh, it skips events at or below their partition's
// checkpoint. Events whose correlation fails are returned as orphans, held
// for the process manager by the owner of the empty ID's partition.
func (r *router) correlate(events []evokestore.Event, routes []Route, fresh bool, chained func(id string) bool) (map[string]*group, []string, []evokestore.HeldEvent) {
	groups := make(map[string]*group)
	var order []string
	var orphans []evokestore.HeldEvent
	mine := func(id string, pos int64) (*partCP, int) {
		p := PartitionOf(id, r.en.cfg.Partitions)
		pc := r.cps[p]
		if pc == nil || (fresh && pos <= pc.cp.Position) {
			return nil, p
		}
		return pc, p
	}
	for i := range events {
		ev := &events[i]
		if chained != nil && chained(ev.ID) {
			continue // stepped by the batch in flight that appends it
		}
		var route Route
		if routes != nil {
			route = routes[i]
		} else {
			route = r.route(ev)
		}
		switch route.Kind {
		case RouteIgnore:
			continue
		case RouteError:
			if pc, _ := mine("", ev.Position); pc == nil {
				continue
			}
			r.en.counters.CorrelateErrs.Add(1)
			r.en.log.Error("correlate failed; event parked for the process manager",
				"process_manager", r.name, "event_id", ev.ID, "event_type", ev.Type, "position", ev.Position, "err", route.Err)
			orphans = append(orphans, evokestore.HeldEvent{ProcessManager: r.name, Position: ev.Position, Error: ErrorText(route.Err)})
			continue
		}
		for t := range route.targets {
			pc, p := mine(t.ID, ev.Position)
			if pc == nil {
				continue
			}
			g := groups[t.ID]
			if g == nil {
				g = &group{id: t.ID, partition: p, token: pc.token}
				groups[t.ID] = g
				order = append(order, t.ID)
			}
			g.items = append(g.items, item{ev: ev, kind: t.Kind})
		}
	}
	return groups, order, orphans
}

// load fetches the batch's instances in one query. Instances that prevs
// (batches still to commit, newest first) write are taken as the newest of
// them writes them, and those in the cache (as committed) from there; only
// the others are read.
func (r *router) load(ctx context.Context, ls *leaseSet, groups map[string]*group, order []string, prevs []*batch) error {
	read := order[:0:0]
next:
	for _, id := range order {
		for _, prev := range prevs {
			if prev.chain != nil {
				if cg := prev.chain.groups[id]; cg != nil {
					in := cg.write.Instance
					groups[id].inst = &in
					continue next
				}
			}
			if pg := prev.groups[id]; pg != nil && pg.write != nil {
				in := pg.write.Instance
				groups[id].inst = &in
				continue next
			}
		}
		if in, ok := r.cache.get(id, ls); ok {
			groups[id].inst = &in
			continue
		}
		read = append(read, id)
	}
	if len(read) == 0 {
		return nil
	}
	insts, err := r.en.store.Instances(ctx, r.name, read)
	if err != nil {
		return fmt.Errorf("load %d instances of %s: %w", len(read), r.name, err)
	}
	for i := range insts {
		if g := groups[insts[i].ID]; g != nil {
			g.inst = &insts[i]
		}
	}
	return nil
}
