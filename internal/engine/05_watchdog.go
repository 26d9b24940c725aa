package engine

import (
	"fmt"
	"maps"
	"sync/atomic"
	"time"
)

// The watchdog bounds a step in wall-clock time. Groups are stepped by
// worker goroutines, each publishing in its slot when its current step
// began; stepWatched checks the slots while it waits. A worker whose step
// overran is abandoned (Go cannot stop a goroutine: it keeps running the
// user's call, and whatever it returns is dropped), its group is stepped
// again from a fresh copy by a new worker with that event failed with
// ErrStepTimeout, and another worker takes its place.

// slot is a worker's published progress.
type slot struct {
	began     atomic.Int64 // UnixNano when the current step began; 0 between steps
	idx       atomic.Int64 // the index of the group's item being stepped
	abandoned atomic.Bool
}

// begin records that the step of item idx starts (a nil slot: unwatched).
func (s *slot) begin(idx int) {
	if s != nil {
		s.idx.Store(int64(idx))
		s.began.Store(time.Now().UnixNano())
	}
}

// end records that the step returned.
func (s *slot) end() {
	if s != nil {
		s.began.Store(0)
	}
}

// work is one group to step, with the events to fail without running them.
type work struct {
	i     int // the group's index in order
	fails map[int]error
}

// stepWatched is stepAll with each step bounded by r.stepTimeout.
func (r *router) stepWatched(groups map[string]*group, order []string, now time.Time, replay bool) {
	wd := &watchdog{r: r, now: now, replay: replay, gs: make([]*group, len(order)), base: make([]group, len(order)), fails: make([]map[int]error, len(order))}
	for i, id := range order {
		wd.gs[i] = groups[id]
		g := wd.gs[i]
		wd.base[i] = group{id: g.id, partition: g.partition, token: g.token, items: g.items, inst: g.inst}
	}
	wd.queue = make(chan work, len(order))
	for i := range order {
		wd.queue <- work{i: i}
	}
	wd.finished = make(chan int, len(order))
	for range max(1, min(r.en.cfg.Workers, len(order))) {
		wd.start()
	}
	tick := max(r.stepTimeout/4, time.Millisecond)
	timer := time.NewTimer(tick)
	defer timer.Stop()
	for left := len(order); left > 0; {
		select {
		case <-wd.finished:
			left--
			continue
		case <-timer.C:
			timer.Reset(tick)
		}
		wd.check()
	}
	close(wd.queue)
	for i, id := range order {
		groups[id] = wd.gs[i]
	}
}

// watchdog is one stepWatched: its groups, workers and queue.
type watchdog struct {
	r      *router
	now    time.Time
	replay bool
	gs     []*group
	// base holds what a fresh copy of each group starts from, and fails
	// the events failed for it so far: the coordinator's own.
	base     []group
	fails    []map[int]error
	queue    chan work
	finished chan int
	workers  []*worker
}

// worker is a goroutine stepping groups from the queue.
type worker struct {
	s   *slot
	cur atomic.Int64 // the index of the group it steps, -1 when none
}

// start starts a worker.
func (wd *watchdog) start() {
	w := &worker{s: &slot{}}
	w.cur.Store(-1)
	wd.workers = append(wd.workers, w)
	go func() {
		for wk := range wd.queue {
			g := wd.gs[wk.i]
			g.watch = w.s
			w.cur.Store(int64(wk.i))
			wd.r.stepGroup(g, wd.now, wd.replay, wk.fails)
			if w.s.abandoned.Load() {
				return // its group was stepped again without it
			}
			w.cur.Store(-1)
			g.watch = nil
			wd.finished <- wk.i
		}
	}()
}

// check abandons the workers whose step overran the bound, and queues
// their groups again, from a fresh copy, with that event failed.
func (wd *watchdog) check() {
	r, bound := wd.r, wd.r.stepTimeout
	at := time.Now().UnixNano()
	for _, w := range wd.workers {
		began := w.s.began.Load()
		if began == 0 || w.s.abandoned.Load() || time.Duration(at-began) <= bound {
			continue
		}
		i := int(w.cur.Load())
		if i < 0 || w.s.began.Load() != began {
			continue // it moved on meanwhile
		}
		w.s.abandoned.Store(true)
		idx := int(w.s.idx.Load())
		ev := wd.base[i].items[idx].ev
		r.en.counters.StepTimeouts.Add(1)
		r.en.log.Error("step overran its time bound; its goroutine is abandoned", "process_manager", r.name, "instance", wd.base[i].id,
			"event_id", ev.ID, "event_type", ev.Type, "bound", bound)
		// A fresh group, which the abandoned goroutine does not touch
		// (the state it decoded, start, it may still change).
		fresh := wd.base[i]
		wd.gs[i] = &fresh
		f := maps.Clone(wd.fails[i])
		if f == nil {
			f = map[int]error{}
		}
		f[idx] = fmt.Errorf("%w: %s on %s (%s) of %s ran longer than %v", ErrStepTimeout, r.name, ev.ID, ev.Type, wd.base[i].id, bound)
		wd.fails[i] = f
		wd.start()
		wd.queue <- work{i: i, fails: f}
	}
}
