package engine

import (
	"context"
	"slices"

	"github.com/evoke-go/evoke/evokestore"
)

// Reading ahead.
//
// A batch that ends behind the log's head (a backlog: the process manager
// is catching up, or its events came faster than one batch holds) could
// not chain: the writer would have to read every event between the
// batch's end and its appends to find those that reach a chained
// instance, on the store's writer, and most of the time there are
// thousands. So the router reads the log ahead of its batches, up to
// aheadBatches batches' worth, and routes each event once, as it reads
// it: pending counts the events read ahead that reach each instance. A
// batch takes its events from the front, and chains only instances that
// no event read ahead reaches; the writer checks only the events committed
// after the read-ahead end (batch.checkedTo). Every event is still read
// and correlated once; the routes are kept for the batch that takes it.
//
// What is read ahead is dropped whenever the router rewinds (a batch
// dropped, a failed write, the end of a drain): it is read again from the
// committed checkpoints.

// aheadBatches and aheadMin bound the events read ahead: 16 batches, and
// at least 16,384 events; aheadBytes bounds their data (large events read
// ahead less far, one batch past it at most).
const (
	aheadBatches = 16
	aheadMin     = 16384
	aheadBytes   = 16 << 20
)

// lookahead is the log read past the prepared checkpoints: the events of
// interest in (after, to], oldest first, with their routes.
type lookahead struct {
	after, to int64
	events    []evokestore.Event
	routes    []Route
	// pending counts the events held here that reach each instance.
	pending map[string]int
	// skipped: positions of chained events were passed over (the
	// checkpoint is to be written even if no event is taken).
	skipped bool
	// bytes is the size of the events' data and metadata held.
	bytes int
}

// reaches reports whether an event read ahead reaches instance id.
func (la *lookahead) reaches(id string) bool { return la != nil && la.pending[id] > 0 }

// window is what one batch takes from the log.
type window struct {
	events []evokestore.Event
	routes []Route
	// readTo is the batch's end; checkedTo the end of what is read ahead
	// (the events in between are in r.ahead).
	readTo, checkedTo int64
	more, skipped     bool
}

// next reads the log after the position after, up to head, but for the
// positions in skip, and returns the next batch's events: at most a batch
// from the front of what is read ahead, reading further first.
func (r *router) next(ctx context.Context, after, head int64, skip [][2]int64) (window, error) {
	limit := r.en.cfg.BatchSize
	capacity := limit
	if r.en.cfg.ChainDepth > 0 {
		capacity = max(aheadBatches*limit, aheadMin)
	}
	la := r.ahead
	if la == nil || la.after != after {
		la = &lookahead{after: after, to: after, pending: map[string]int{}}
		r.ahead = la
	}
	// Read ahead while what is held is short of the read-ahead (or the
	// next batch), a batch at a time, in windows of positions; a log of
	// events of no interest is scanned a few windows per call, as the
	// batches' checkpoints move over it.
	for windows := 0; windows < aheadBatches && (len(la.events) < capacity && la.bytes < aheadBytes || len(la.events) < limit) && la.to < head; windows++ {
		until := min(head, la.to+scanWindow)
		evs, full, skipped, err := r.readGaps(ctx, la.to, until, skip, min(limit, capacity-len(la.events)))
		if err != nil {
			r.ahead = nil
			return window{}, err
		}
		for i := range evs {
			rt := r.route(&evs[i])
			la.routes = append(la.routes, rt)
			for t := range rt.targets {
				la.pending[t.ID]++
			}
			la.bytes += len(evs[i].Data) + len(evs[i].Values)
		}
		la.events = append(la.events, evs...)
		la.skipped = la.skipped || skipped
		if full {
			la.to = evs[len(evs)-1].Position
		} else {
			la.to = until
		}
	}
	n := min(limit, len(la.events))
	if r.perEvent > 1 {
		n = min(n, max(1, int(float64(limit)/r.perEvent)))
	}
	w := window{events: la.events[:n:n], routes: la.routes[:n:n], checkedTo: la.to, skipped: la.skipped}
	for i, rt := range w.routes {
		for t := range rt.targets {
			if la.pending[t.ID]--; la.pending[t.ID] == 0 {
				delete(la.pending, t.ID)
			}
		}
		la.bytes -= len(w.events[i].Data) + len(w.events[i].Values)
	}
	la.events, la.routes = la.events[n:], la.routes[n:]
	if len(la.events) > 0 {
		w.readTo = w.events[n-1].Position
	} else {
		w.readTo = la.to
		la.skipped = false
		la.events, la.routes = nil, nil // let the taken array go with its batch
	}
	la.after = w.readTo
	w.more = len(la.events) > 0 || la.to < head
	return w, nil
}

// readGaps reads the events of interest in (after, until], but for those
// in skip, up to limit events, and reports whether it stopped there
// (full), and whether it passed over positions in skip (skipped: the
// checkpoint is to be written even with no event read).
func (r *router) readGaps(ctx context.Context, after, until int64, skip [][2]int64, limit int) (events []evokestore.Event, full, skipped bool, err error) {
	gs := gaps(after, until+1, skip)
	span := int64(0)
	for _, g := range gs {
		span += g[1] - g[0] + 1
	}
	skipped = span < until-after
	for _, gap := range gs {
		evs, err := r.en.store.ReadLog(ctx, evokestore.LogQuery{After: gap[0] - 1, Until: gap[1], Types: r.types, Limit: limit - len(events)})
		if err != nil {
			return nil, false, false, err
		}
		if events == nil {
			events = evs
		} else {
			events = append(events, evs...)
		}
		if len(events) == limit {
			return events, true, skipped, nil
		}
	}
	return events, false, skipped, nil
}

// gaps returns the ranges of (after, before) that none of covered covers
// (it sorts covered in place).
func gaps(after, before int64, covered [][2]int64) [][2]int64 {
	slices.SortFunc(covered, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	var out [][2]int64
	lo := after + 1
	for _, c := range covered {
		if c[1] < lo {
			continue
		}
		if c[0] >= before {
			break
		}
		if c[0] > lo {
			out = append(out, [2]int64{lo, c[0] - 1})
		}
		lo = c[1] + 1
	}
	if lo < before {
		out = append(out, [2]int64{lo, before - 1})
	}
	return out
}
