package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/payload"
)

// timeoutDeadline is the reserved name of the inactivity deadline.
const timeoutDeadline = "$timeout"

// router feeds one process manager: it reads the log after its checkpoint,
// correlates a batch of events, steps every instance of the batch (in
// parallel across instances, in log order within one), and commits the
// batch's states, outbox, history, held events, deadlines and checkpoint in
// one transaction.
type router struct {
	en    *Engine
	pm    ProcessManager
	name  string
	opts  Options
	types []string
	// interest holds the event types the process manager declared, the
	// only ones route lets through to Correlate.
	interest map[string]bool
	// cps are the checkpoints of the partitions this node owns.
	cps map[int]*partCP
	// usesDeadlines: the process manager has a timeout or named
	// deadlines, so every step rewrites the instance's deadlines.
	usesDeadlines bool
	// stepTimeout bounds a step in wall-clock time (watchdog.go); 0: none.
	stepTimeout time.Duration

	// mu serialises the router's passes with operator actions, so that an
	// instance still runs one step at a time.
	mu        sync.Mutex
	nextRetry time.Time     // zero: none known
	kick      chan struct{} // wakes the router after an operator action
	// cache holds instances as this router committed them (nil: none).
	cache *instCache
	// skips are the positions of the events this router chained in
	// landed batches, until its checkpoints pass them (chain.go).
	skips [][2]int64
	// ahead is the log read past the prepared checkpoints (ahead.go).
	ahead *lookahead
	// unpersisted: the last landed batch passed over chained events
	// without writing its checkpoints; they are written before the router
	// idles.
	unpersisted bool
	// perEvent is how many steps the last batch stepped (or would have,
	// chained, but for the budget) per event it read: a batch that chains
	// reads fewer events, so that its steps stay within BatchSize.
	perEvent float64
}

// partCP is the checkpoint of one owned partition.
type partCP struct {
	// cp is where the next batch reads from: the end of the last batch
	// prepared, which may still be committing.
	cp    evokestore.Checkpoint
	token int64 // the lease token it was loaded under
	// committed is the position up to which every event is stepped and
	// committed; persisted is the position last written to the store.
	committed, persisted int64
}

// item is one event routed to an instance.
type item struct {
	ev   *evokestore.Event
	kind RouteKind
	// chained: ev is appended by the batch that steps it (chain.go); it
	// has no position yet.
	chained bool
}

// group is one instance's share of a batch, and what stepping it produced.
type group struct {
	id        string
	partition int
	token     int64 // the partition's lease token
	items     []item
	inst      *evokestore.Instance // nil when absent from the store
	// start is inst's state already decoded, or nil (chain.go hands a
	// round the state the round before left); the group owns it.
	start any

	// output
	write     *evokestore.InstanceWrite
	outbox    []evokestore.OutboxCommand
	history   []evokestore.HistoryRecord
	held      []evokestore.HeldEvent
	released  []int64
	deadlines []evokestore.Deadline
	setDL     bool
	telemetry []Telemetry
	state     any // the state the last step left, when one stepped
	// failed: a step of the group failed (whatever the process manager
	// decided), so that a chained round of it is not kept.
	failed bool
	// watch is the watchdog's slot of the worker stepping the group, nil
	// when steps are unbounded.
	watch *slot
}

func (r *router) initCheckpoints(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextRetry = r.en.cfg.Clock.Now() // look for instances left failing
	return r.syncPartitions(ctx, r.en.leases.Load())
}

// syncPartitions makes r.cps hold exactly the checkpoints of the partitions
// in ls: a partition lost is dropped, one (re)gained is loaded afresh from
// the store (another node may have moved it on), or created.
func (r *router) syncPartitions(ctx context.Context, ls *leaseSet) error {
	if r.cps == nil {
		r.cps = map[int]*partCP{}
	}
	for p, pc := range r.cps {
		if tok, ok := ls.tokens[p]; !ok || tok != pc.token {
			delete(r.cps, p)
		}
	}
	var created []evokestore.Checkpoint
	var createdParts []int
	st := r.en.store
	for _, p := range ls.parts {
		if r.cps[p] != nil {
			continue
		}
		cp, ok, err := st.Checkpoint(ctx, r.name, p)
		if err != nil {
			return fmt.Errorf("load checkpoint of %s/%d: %w", r.name, p, err)
		}
		if !ok {
			head, err := st.Head(ctx)
			if err != nil {
				return fmt.Errorf("read log head: %w", err)
			}
			cp = evokestore.Checkpoint{ProcessManager: r.name, Partition: p, CatchupUntil: head}
			if r.opts.FromNow {
				cp.Position = head
			}
			created = append(created, cp)
			createdParts = append(createdParts, p)
		}
		r.cps[p] = &partCP{cp: cp, token: ls.tokens[p], committed: cp.Position, persisted: cp.Position}
	}
	if len(created) > 0 {
		err := evokestore.WithTx(ctx, st, func(tx evokestore.Tx) error {
			if err := r.en.fence(ctx, tx, ls, createdParts); err != nil {
				return err
			}
			return tx.PutCheckpoints(ctx, created)
		})
		if err != nil {
			for _, p := range createdParts {
				delete(r.cps, p)
			}
			return fmt.Errorf("create checkpoints of %s: %w", r.name, err)
		}
	}
	return nil
}

func (r *router) run(ctx context.Context) {
	wake, cancel := r.en.store.Subscribe(evokestore.TopicEvents)
	defer cancel()
	failures := 0
	lastLook := time.Now()
	for ctx.Err() == nil {
		r.mu.Lock()
		more, err := r.drain(ctx, wake)
		unpersisted := r.unpersisted
		if time.Since(lastLook) >= r.en.cfg.PollInterval {
			// Even when busy, look now and then for instances another
			// process (an operator, evokeops) set to retry.
			lastLook = time.Now()
			if now := r.en.cfg.Clock.Now(); r.nextRetry.IsZero() || r.nextRetry.After(now) {
				r.nextRetry = now
			}
		}
		if err == nil {
			err = r.retryDue(ctx)
		}
		r.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if failures == 0 && errors.Is(err, evokestore.ErrFenced) {
				// An instance changed under the router (another process
				// cancelled it, the dispatcher parked it): the cache is
				// dropped, the batch is read again at once.
				failures = 1
				r.en.log.Info("an instance changed under the process manager; reading its batch again", "process_manager", r.name, "err", err)
				continue
			}
			failures++
			d := r.en.backoff(failures)
			r.en.log.Log(ctx, r.en.retryLevel(err, failures), "process manager batch failed; retrying", "process_manager", r.name, "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		if more {
			continue
		}
		if unpersisted {
			// Checkpoints passed over chained events: the next batch
			// writes them, or the router does if none comes soon.
			if awoken(ctx, min(r.en.cfg.PollInterval, idleFlush), wake, r.kick) {
				continue
			}
			r.mu.Lock()
			if !r.unpersisted {
				// written meanwhile (an operator action's batch)
			} else if err := r.persistCheckpoints(ctx); err != nil && ctx.Err() == nil {
				r.en.log.Warn("writing checkpoints failed; retrying later", "process_manager", r.name, "err", err)
			}
			r.mu.Unlock()
		}
		if !r.waitNext(ctx, wake) {
			return
		}
	}
}

// idleFlush is how long the router waits for new events before it writes
// checkpoints left unwritten (router.unpersisted).
const idleFlush = 50 * time.Millisecond

// waitNext waits for new events, the next retry, or the poll interval.
func (r *router) waitNext(ctx context.Context, wake <-chan struct{}) bool {
	var retry <-chan time.Time
	if !r.nextRetry.IsZero() {
		ch, stop := r.en.cfg.Clock.NewTimer(r.nextRetry.Sub(r.en.cfg.Clock.Now()))
		defer stop()
		retry = ch
	}
	t := time.NewTimer(r.en.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-r.kick:
	case <-retry:
	case <-t.C:
		// Polling also looks for instances another process (an operator)
		// set to retry.
		r.mu.Lock()
		if r.nextRetry.IsZero() {
			r.nextRetry = r.en.cfg.Clock.Now()
		}
		r.mu.Unlock()
	}
	return true
}

// scanWindow bounds how many log positions one read scans for the event
// types of interest, so that a read costs the same however long the backlog
// or however rare the types.
const scanWindow = 8192

// maxDrain bounds how many batches one drain runs before the router looks
// at failing instances and lets operator actions in.
const maxDrain = 64

// pipelineDepth is how many batches may be in flight (written, or prepared
// and waiting for the writer) while the next one is prepared.
const pipelineDepth = 2

// flight is a batch handed to the writer.
type flight struct {
	b    *batch
	done chan error    // its write's result, for drain
	ok   chan bool     // whether it committed as prepared, for the next flight
	fin  chan struct{} // closed once done holds the result
}

// errDropped: the batch was not written, because the one before it did not
// commit as the batch was prepared to expect.
var errDropped = errors.New("batch dropped: the batch before it did not commit as assumed")

// drain steps batches of new events until none is waiting (or maxDrain
// batches), and reports whether more may be waiting. It prepares each batch
// (reads, steps, executes its commands ahead) while the batches before it
// are written, so that the two cores share the work: one runs the store's
// writer, the other the process managers and aggregates. Batches are
// written one at a time, in order. A batch being prepared sees the batches
// in flight's instances, aggregates and queued commands as their commits
// will leave them; if one of those commits fails, or has to queue its
// commands after all, the batches prepared after it are dropped unwritten
// and prepared again from the last committed checkpoint.
//
// wake signals events committed since; caught up with batches in flight,
// drain prepares again as soon as it fires, rather than once the oldest
// flight landed.
func (r *router) drain(ctx context.Context, wake <-chan struct{}) (more bool, err error) {
	var q []*flight // in flight, oldest first
	// land waits for the oldest flight's write and counts it. redo: it did
	// not commit as the batches after it were prepared to expect (it fell
	// back to the outbox, or was dropped itself).
	land := func() (redo bool, err error) {
		f := q[0]
		q = q[1:]
		err = <-f.done
		r.en.busy.Add(-1)
		if err == nil {
			r.finish(f.b)
		} else {
			r.cache.reset() // what the store holds is not known
		}
		if errors.Is(err, errDropped) {
			return true, nil
		}
		return !f.b.landedAsPrepared(), err
	}
	// landAll lands every flight and returns the first error. Batches after
	// one that failed or fell back are dropped unwritten.
	landAll := func() error {
		var first error
		for len(q) > 0 {
			if _, err := land(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	defer func() {
		if lerr := landAll(); lerr != nil && err == nil {
			err = lerr
		}
		// Every flight landed: the next batch reads from what committed
		// (nothing changes unless a batch was dropped or failed).
		r.rewind()
	}()
	// restart lands every flight and reads from what is committed: the
	// batches were prepared against a commit that did not happen as
	// assumed, or a lease set that changed.
	restart := func() error {
		if err := landAll(); err != nil {
			return err
		}
		r.rewind()
		return nil
	}
	// wait blocks, caught up with batches in flight, until events are
	// committed (or the router is kicked), which is a reason to look at the
	// log again, or until the oldest flight landed, which it lands; that is
	// no reason to look by itself (a commit since the last look, the landed
	// flight's own included, wakes the router), unless the flight did not
	// commit as the batches after it were prepared to expect.
	wait := func() (look bool, err error) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-wake:
			return true, nil
		case <-r.kick: // the leases changed, or an operator acted
			return true, nil
		case <-q[0].fin:
		}
		redo, err := land()
		if err != nil || !redo {
			return false, err
		}
		return true, restart()
	}
	// waitToLook reports whether to look at the log again: at once if
	// more is known to be there, else once events are committed, waiting
	// for them while batches are in flight; false once every flight
	// landed and nothing was committed since the last look.
	waitToLook := func(more bool) (bool, error) {
		for !more && len(q) > 0 {
			if woke(wake) {
				return true, nil
			}
			var err error
			if more, err = wait(); err != nil {
				return false, err
			}
		}
		return more || woke(wake), nil
	}
	for n := 0; ; n++ {
		began := time.Now()
		// A wake-up from before this look is answered by it: the stores
		// signal after a commit is visible, so one that signals after this
		// point is seen by this look or wakes the next.
		woke(wake)
		b, perr := r.prepare(ctx, q)
		if b != nil && b.needsTx() {
			r.en.counters.PrepareNanos.Add(int64(time.Since(began)))
		}
		if (b != nil && len(q) == pipelineDepth) || (perr == errResync && len(q) > 0) {
			redo, lerr := land()
			if lerr != nil {
				return false, lerr
			}
			if redo || perr == errResync {
				if lerr := restart(); lerr != nil {
					return false, lerr
				}
				continue
			}
		}
		if perr != nil { // errResync comes only with batches in flight, handled above
			return false, perr
		}
		if b == nil {
			// Caught up, with batches being written: look again as soon as
			// events are committed (they are prepared while the flights
			// are written) rather than once the flights landed (the events
			// committed meanwhile would wait a whole write for the next
			// batch to be prepared); a flight landing alone is no reason to
			// look (a batch would cost ~6 looks at the log's head, a
			// round trip each on PostgreSQL, four of them finding nothing).
			if look, werr := waitToLook(false); werr != nil || !look {
				return false, werr
			}
			continue
		}
		if !b.needsTx() && len(q) == 0 {
			r.finish(b)
		} else {
			f := &flight{b: b, done: make(chan error, 1), ok: make(chan bool, 1), fin: make(chan struct{})}
			var after *flight
			if len(q) > 0 {
				after = q[len(q)-1]
			}
			q = append(q, f)
			r.en.busy.Add(1) // until finished: Idle waits for the counters
			go func() {
				if after != nil {
					waited := time.Now()
					ok := <-after.ok
					r.en.counters.WaitNanos.Add(int64(time.Since(waited)))
					if !ok {
						f.ok <- false
						f.done <- errDropped
						close(f.fin)
						return
					}
				}
				var err error
				if b.needsTx() { // else it only moves checkpoints, in order
					began := time.Now()
					err = r.write(ctx, b)
					r.en.counters.WriteNanos.Add(int64(time.Since(began)))
					r.en.counters.Writes.Add(1)
				}
				f.ok <- err == nil && b.landedAsPrepared()
				f.done <- err
				close(f.fin)
			}()
		}
		if n+1 >= maxDrain || (!b.more && len(q) == 0) {
			return b.more, landAll()
		}
		// The next batch (or, caught up, the events committed since) is
		// prepared while this one is written: at once if the log holds
		// more, else once something is committed.
		if look, werr := waitToLook(b.more); werr != nil || !look {
			return false, werr
		}
	}
}

// woke reports whether a wake-up is waiting on wake, taking it.
func woke(wake <-chan struct{}) bool {
	select {
	case <-wake:
		return true
	default:
		return false
	}
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

// errResync: the leases changed while a batch was committing; the next
// batch is prepared once it landed.
var errResync = errors.New("leases changed")

// rewind drops prepared batches: the next one reads from the last
// committed positions.
func (r *router) rewind() {
	r.ahead = nil
	for _, pc := range r.cps {
		pc.cp.Position = pc.committed
	}
}

// batch is what one transaction of the router commits.
type batch struct {
	ls         *leaseSet
	fenceParts []int
	groups     map[string]*group
	order      []string
	orphans    []evokestore.HeldEvent
	// cps are checkpoints to move to; persist: write them too.
	cps     []evokestore.Checkpoint
	persist bool
	extra   func(tx evokestore.Tx) error // more writes, for operator actions
	more    bool                         // more events may be waiting

	outbox []evokestore.OutboxCommand // the commands the steps issued
	queued []evokestore.OutboxCommand // those to queue in the outbox
	exec   *execution                 // those executed ahead; nil if none
	// queuedIDs are the instances with commands queued by this batch.
	queuedIDs map[string]bool
	// fellBack: executing exec with the steps failed, so every command was
	// queued instead.
	fellBack bool

	// readTo is the log position the batch read up to; checkedTo the end
	// of the log read ahead with it (ahead.go).
	readTo, checkedTo int64
	// chain are the follow-on steps prepared with the batch (chain.go);
	// chainDropped: the batch was written without them.
	chain        *chainResult
	chainDropped bool
	// prevChained are the IDs of the events chained by the batches in
	// flight when this one was prepared, and prevLanded where their
	// writers appended.
	prevChained []map[string]bool
	prevLanded  []*landing
	// landed is where the batch's writer appended (chain.go).
	landed *landing
	// skippedOnly: the batch passed over chained events and does not
	// write its checkpoints (router.unpersisted).
	skippedOnly bool
}

// landedAsPrepared reports whether the batch committed as the batches
// prepared after it assumed.
func (b *batch) landedAsPrepared() bool { return !b.fellBack && !b.chainDropped }

// chained returns the batch's committed follow-on steps, or nil.
func (b *batch) chained() *chainResult {
	if b.chainDropped || b.fellBack {
		return nil
	}
	return b.chain
}

// needsTx reports whether the batch has anything to write.
func (b *batch) needsTx() bool {
	return len(b.order) > 0 || len(b.orphans) > 0 || b.persist || b.extra != nil
}

// prepare reads the next batch of events after the prepared checkpoints,
// steps it and executes its commands ahead; inflight are the batches handed
// to the writer and not yet landed, oldest first. It returns nil when no
// event is waiting.
func (r *router) prepare(ctx context.Context, inflight []*flight) (*batch, error) {
	st := r.en.store
	ls := r.en.leases.Load()
	var prevs []*batch // newest first
	for i := len(inflight) - 1; i >= 0; i-- {
		prevs = append(prevs, inflight[i].b)
	}
	if len(prevs) > 0 && ls != prevs[0].ls {
		return nil, errResync
	}
	if len(prevs) == 0 {
		if err := r.syncPartitions(ctx, ls); err != nil {
			return nil, err
		}
	}
	if len(r.cps) == 0 {
		return nil, nil // no partition is ours now
	}
	after := int64(-1)
	for _, pc := range r.cps {
		if after < 0 || pc.cp.Position < after {
			after = pc.cp.Position
		}
	}
	head, err := st.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("read log head: %w", err)
	}
	if head <= after {
		return nil, nil
	}
	// Every position up to head is committed (the stores assign positions
	// in commit order), so what is read is final. The positions of events
	// this router chained are not read again (chain.go); the log is read
	// ahead of the batch (ahead.go).
	win, err := r.next(ctx, after, head, r.chainedRanges(prevs))
	if err != nil {
		return nil, fmt.Errorf("read log after %d: %w", after, err)
	}
	events, skipped, newPos := win.events, win.skipped, win.readTo
	b := &batch{ls: ls, fenceParts: ls.parts, more: win.more, readTo: newPos, checkedTo: win.checkedTo, landed: &landing{}}
	for _, prev := range prevs {
		if prev.chain != nil {
			b.prevChained = append(b.prevChained, prev.chain.ids)
		}
		b.prevLanded = append(b.prevLanded, prev.landed)
	}
	farthest := int64(0)
	for _, p := range ls.parts {
		pc := r.cps[p]
		cp := pc.cp
		cp.Position = max(cp.Position, newPos)
		b.cps = append(b.cps, cp)
		farthest = max(farthest, cp.Position-pc.persisted)
	}
	// Nothing of interest in the window: move past it. The new positions
	// are written with the next batch, or now if they ran far ahead (a
	// restart would only rescan uninteresting events). Passing over the
	// events this router chained is the same (a batch that chains is
	// followed by one that reads nothing else, and its own transaction
	// would cost as much as the batch's), but Idle would see them after
	// the stored checkpoint: if no batch follows soon, the router writes
	// them (run).
	b.persist = len(events) > 0 || farthest >= scanWindow
	b.skippedOnly = skipped && !b.persist
	if len(events) > 0 {
		now := r.en.cfg.Clock.Now()
		b.groups, b.order, b.orphans = r.correlate(events, win.routes, true, b.chainedBy)
		if err := r.load(ctx, ls, b.groups, b.order, prevs); err != nil {
			return nil, err
		}
		r.stepAll(b.groups, b.order, now, false)
		if err := r.settle(ctx, b, prevs); err != nil {
			return nil, err
		}
		if r.chainable(b, head) {
			if b.chain, err = r.chain(ctx, b, prevs); err != nil {
				return nil, err
			}
		} else {
			r.perEvent = 1
		}
	}
	for _, cp := range b.cps {
		r.cps[cp.Partition].cp = cp
	}
	return b, nil
}

// finish records a landed batch: checkpoints, counters, telemetry.
func (r *router) finish(b *batch) {
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
	if len(b.order) == 0 && len(b.orphans) == 0 && b.extra == nil {
		return
	}
	r.en.counters.Batches.Add(1)
	r.en.counters.Commands.Add(int64(len(b.outbox)))
	if b.exec != nil && !b.fellBack {
		r.en.counters.Dispatched.Add(int64(len(b.exec.results)))
		r.en.counters.Rejected.Add(int64(b.exec.rejected))
	}
	ch := b.chained()
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
		// Steps and failures are counted and logged as they committed: a
		// step prepared in a batch (or chain) that was not written is
		// stepped again by a later one.
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

// stepAll steps every group, spreading groups over the configured workers
// (bounded in time by the watchdog when the process manager's steps are).
func (r *router) stepAll(groups map[string]*group, order []string, now time.Time, replay bool) {
	if r.stepTimeout > 0 {
		r.stepWatched(groups, order, now, replay)
		return
	}
	workers := min(r.en.cfg.Workers, len(order))
	if workers <= 1 || len(order) < 8 {
		for _, id := range order {
			r.stepGroup(groups[id], now, replay, nil)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan *group)
	for range workers {
		wg.Go(func() {
			for g := range next {
				r.stepGroup(g, now, replay, nil)
			}
		})
	}
	for _, id := range order {
		next <- groups[id]
	}
	close(next)
	wg.Wait()
}

// stepGroup runs one instance's events in order. A failed step leaves the
// state as the earlier steps of the group made it: user code may have
// mutated the in-memory state before failing, so the group is run again from
// the stored state, with the failing events failed without running them.
// (A failure the process manager skips lets the group go on, so that
// several of its events may fail.)
func (r *router) stepGroup(g *group, now time.Time, replay bool, fails map[int]error) {
	plain := false
	for {
		at, err := r.tryGroup(g, now, replay, fails, plain)
		if at < 0 {
			return
		}
		if _, again := fails[at]; again {
			// Only a state that cannot be saved fails an event twice: the
			// process manager's decisions are left out, so that the first
			// failure stops the group.
			plain = true
		}
		fails = maps.Clone(fails) // the caller's stays as it was
		if fails == nil {
			fails = map[int]error{}
		}
		fails[at] = err
	}
}

// tryGroup steps g, failing the events of fails without running them
// (plain: with the runtime's default decision); if a step fails after
// earlier steps of the group succeeded (so that the in-memory state may be
// tainted), it returns that index and error for a clean re-run. Otherwise
// it returns -1.
func (r *router) tryGroup(g *group, now time.Time, replay bool, fails map[int]error, plain bool) (int, error) {
	*g = group{id: g.id, partition: g.partition, token: g.token, items: g.items, inst: g.inst, start: g.start, watch: g.watch} // reset output for a re-run
	var inst evokestore.Instance
	prevVersion := int64(-1)
	exists := g.inst != nil
	if exists {
		inst = *g.inst
		prevVersion = inst.Version
		if replay {
			inst.Status = evokestore.StatusRunning
		}
	}
	var state any
	loaded, stepped, touched, tainted := false, false, false, false
	for idx, it := range g.items {
		ev := it.ev
		if exists && !it.chained && ev.Position <= inst.LastPosition {
			continue // stepped in an earlier, committed batch
		}
		if exists && inst.Status.Done() && ev.Type != TypeCommandRejected {
			r.en.counters.DroppedDone.Add(1)
			r.en.log.Debug("event for a completed instance dropped", "process_manager", r.name, "instance", g.id, "event_type", ev.Type, "position", ev.Position)
			if replay {
				g.released = append(g.released, ev.Position)
			}
			continue
		}
		if exists && inst.Status.Stuck() {
			if !replay {
				g.held = append(g.held, evokestore.HeldEvent{ProcessManager: r.name, InstanceID: g.id, Position: ev.Position})
			}
			continue
		}
		if !exists {
			switch {
			case it.kind == routeSystem:
				continue // the instance is gone (purged)
			case it.kind == RouteStop:
				r.en.counters.DroppedStop.Add(1)
				r.en.log.Info("stop for a missing instance dropped", "process_manager", r.name, "instance", g.id, "event_type", ev.Type)
				continue
			case it.kind == RouteContinue && r.pm.Strict():
				r.en.counters.DroppedStrict.Add(1)
				r.en.log.Info("continue for a missing instance of a strict process manager dropped", "process_manager", r.name, "instance", g.id, "event_type", ev.Type)
				continue
			}
			exists, touched = true, true
			inst = evokestore.Instance{ProcessManager: r.name, ID: g.id, Partition: g.partition, Status: evokestore.StatusRunning, CreatedAt: now, UpdatedAt: now}
		}
		if ev.Type == TypeDeadline {
			var d DeadlineData
			if err := json.Unmarshal(ev.Data, &d); err != nil || d.Version != inst.Version {
				r.en.counters.DroppedStale.Add(1)
				if replay {
					g.released = append(g.released, ev.Position)
				}
				continue
			}
		}
		// failed handles a failure of this event: whether the group goes
		// on (the process manager skipped the event or stopped the
		// instance) or, in a replay, ends.
		failed := func(err error) (stop bool) {
			touched = true
			act := r.fail(g, &inst, it, err, now, replay, plain)
			return replay && act != ActionSkip && act != ActionStop
		}
		if err, ok := fails[idx]; ok {
			if failed(err) {
				break
			}
			continue
		}
		if it.kind == RouteStartNew && inst.Version > 0 {
			if failed(fmt.Errorf("%w: %s %s (event %s, %s)", ErrAlreadyStarted, r.name, g.id, ev.ID, ev.Type)) {
				break
			}
			continue
		}
		if !loaded && g.start != nil && fails == nil && !tainted {
			// A re-run decodes again: the failed run may have changed
			// start in place.
			state, loaded = g.start, true
		}
		if !loaded {
			s, err := r.pm.Load(inst.State)
			if err != nil {
				if failed(fmt.Errorf("load state of %s %s: %w", r.name, g.id, err)) {
					break
				}
				continue
			}
			state, loaded = s, true
		}
		g.watch.begin(idx)
		res, compensating, err := r.stepOne(state, g.id, ev)
		g.watch.end()
		if err != nil {
			if stepped {
				return idx, err
			}
			// The failed step may have changed the state in place: the
			// next step decodes it again.
			loaded, tainted = false, true
			if failed(err) {
				break
			}
			continue
		}
		stepped, touched = true, true
		r.succeed(g, &inst, it, res, compensating, now, replay)
		state = res.State
	}
	if !touched {
		return -1, nil
	}
	if stepped {
		b, err := r.pm.Save(state)
		if err != nil {
			// The state cannot be stored: nothing of this group commits;
			// the first event fails instead.
			*g = group{id: g.id, partition: g.partition, token: g.token, items: g.items, inst: g.inst, watch: g.watch}
			return firstPending(g), fmt.Errorf("save state of %s %s: %w", r.name, g.id, err)
		}
		inst.State = b
		g.state = state
		for i := range g.telemetry {
			if g.telemetry[i].Kind == TelemetryStop {
				g.telemetry[i].FinalState = b
			}
		}
	}
	g.write = &evokestore.InstanceWrite{Instance: inst, PrevVersion: prevVersion}
	return -1, nil
}

// firstPending returns the index of the group's first event not yet stepped.
func firstPending(g *group) int {
	for i, it := range g.items {
		if g.inst == nil || it.chained || it.ev.Position > g.inst.LastPosition {
			return i
		}
	}
	return 0
}

// stepOne runs one event through the process manager: for a rejection,
// Compensate, then Apply and Handle.
func (r *router) stepOne(state any, id string, ev *evokestore.Event) (StepResult, bool, error) {
	user, err := userEvent(ev)
	if err != nil {
		return StepResult{}, false, err
	}
	if ev.Type != TypeCommandRejected {
		res, err := r.pm.Step(state, id, user)
		return res, false, err
	}
	var d RejectionData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return StepResult{}, false, fmt.Errorf("decode rejection %s: %w", ev.ID, err)
	}
	cmds, ok, err := r.pm.Compensate(state, FailedCommand{Command: d.Command, Reason: d.Reason})
	if err != nil {
		return StepResult{}, false, err
	}
	res, err := r.pm.Step(state, id, user)
	if err != nil {
		return StepResult{}, false, err
	}
	res.Commands = append(cmds, res.Commands...)
	return res, ok && len(cmds) > 0, nil
}

// userEvent returns ev as Apply, Handle and OnFailure see it: the engine's
// rejection and deadline events with their user-level types and data
// ($rejected, $timeout, $deadline), other events as they are.
func userEvent(ev *evokestore.Event) (*evokestore.Event, error) {
	switch ev.Type {
	case TypeCommandRejected:
		var d RejectionData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, fmt.Errorf("decode rejection %s: %w", ev.ID, err)
		}
		user := *ev
		user.Type = "$rejected"
		var err error
		user.Data, err = json.Marshal(rejectedData{
			CommandID: d.Command.ID, CommandType: d.Command.Type, AggregateType: d.Command.AggregateType,
			AggregateID: d.Command.AggregateID, Payload: d.Command.Payload, Reason: d.Reason,
		})
		return &user, err
	case TypeDeadline:
		var d DeadlineData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, fmt.Errorf("decode deadline %s: %w", ev.ID, err)
		}
		user := *ev
		if d.Name == timeoutDeadline {
			user.Type = "$timeout"
		} else {
			user.Type = "$deadline"
			user.Data, _ = json.Marshal(struct {
				Name string    `json:"name"`
				At   time.Time `json:"at"`
			}{d.Name, d.At})
		}
		return &user, nil
	}
	return ev, nil
}

// catchupUntil returns the log head at the process manager's first
// deployment, as its partition's checkpoint recorded it.
func (r *router) catchupUntil(p int) int64 {
	if pc := r.cps[p]; pc != nil {
		return pc.cp.CatchupUntil
	}
	return 0
}

// rejectedData mirrors evoke.RejectedData.
type rejectedData struct {
	CommandID     string          `json:"command_id"`
	CommandType   string          `json:"command_type"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Reason        string          `json:"reason"`
}

// succeed records a committed-to-be step on inst.
func (r *router) succeed(g *group, inst *evokestore.Instance, it item, res StepResult, compensating bool, now time.Time, replay bool) {
	ev := it.ev
	before := inst.Phase
	// A rejection may reach an instance that completed on the step that
	// issued the command: Compensate still runs, the tombstone stays.
	wasDone := inst.Status.Done()
	// Usually a transition and a command per step, and a start or a stop:
	// room for them at once rather than growing the slices.
	if g.telemetry == nil {
		g.telemetry = make([]Telemetry, 0, 2*len(g.items)+1)
	}
	if g.history == nil {
		g.history = make([]evokestore.HistoryRecord, 0, len(g.items))
	}
	if inst.Version == 0 {
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryStart, SystemTime: now, ProcessManager: r.name, InstanceID: g.id})
	}
	inst.Version++
	if !it.chained { // else it has no position yet: the writer sets it (chain.go)
		inst.LastPosition = ev.Position
	}
	inst.Phase = res.Phase
	inst.UpdatedAt = now
	inst.Attempts = 0
	inst.LastError = ""
	inst.NextAttemptAt = time.Time{}
	if compensating && !wasDone {
		inst.Status = evokestore.StatusCompensating
	}
	if replay {
		g.released = append(g.released, ev.Position)
	}
	suppress := r.opts.SuppressCatchup && !it.chained && ev.Position <= r.catchupUntil(g.partition)
	correlation := ev.CorrelationID
	if correlation == "" {
		correlation = ev.ID
	}
	var cmdsJSON []byte // the history's record of the commands
	for i, c := range res.Commands {
		id := CommandID(r.name, g.id, ev.ID, ev.Position, i)
		cmdsJSON = appendCommandRef(cmdsJSON, id, &c, suppress)
		if suppress {
			r.en.counters.Suppressed.Add(1)
			continue
		}
		g.outbox = append(g.outbox, evokestore.OutboxCommand{
			ID: id, ProcessManager: r.name, InstanceID: g.id, Partition: inst.Partition,
			Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
			Payload: c.Payload, CorrelationID: correlation, CausationID: ev.ID, Values: c.Values, CreatedAt: now,
		})
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryCommand, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, CommandType: c.Type, CommandID: id, Values: c.Values})
	}
	if cmdsJSON != nil {
		cmdsJSON = append(cmdsJSON, ']')
	}
	eventType := ev.Type // as Handle saw it
	switch ev.Type {
	case TypeCommandRejected:
		var d RejectionData
		_ = json.Unmarshal(ev.Data, &d)
		eventType = "$rejected"
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryCompensate, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, FailedCommand: d.Command.Type, CommandID: d.Command.ID, Err: d.Reason})
	case TypeDeadline:
		var d DeadlineData
		_ = json.Unmarshal(ev.Data, &d)
		eventType = "$deadline"
		if d.Name == timeoutDeadline {
			eventType = "$timeout"
		}
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryTimeout, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, EventType: d.Name})
	}
	if _, off := r.en.cfg.Hooks.(NopHooks); !off {
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryStep, SystemTime: now, Duration: res.Took, ProcessManager: r.name, InstanceID: g.id, EventType: eventType, Values: ev.Values})
	}
	g.history = append(g.history, evokestore.HistoryRecord{
		ProcessManager: r.name, InstanceID: g.id, Kind: evokestore.KindStep, Version: inst.Version,
		Position: ev.Position, EventID: ev.ID, EventType: eventType, PhaseBefore: before, PhaseAfter: res.Phase,
		Commands: cmdsJSON, RecordedAt: now, Node: r.en.cfg.NodeID, LeaseToken: g.token,
	})
	if before != res.Phase {
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryTransition, SystemTime: now, ProcessManager: r.name, InstanceID: g.id, FromPhase: before, ToPhase: res.Phase, EventType: eventType, Values: ev.Values})
	}
	done := wasDone || it.kind == RouteStop || res.Completed
	if ev.Type == TypeCommandRejected && inst.Status != evokestore.StatusCancelled {
		inst.Outcome = evokestore.EndCompensated
	}
	if done && !wasDone {
		inst.Status = evokestore.StatusCompleted
		inst.CompletedAt = now
		inst.Outcome = endOutcome(ev, inst.Outcome)
		g.telemetry = append(g.telemetry, Telemetry{Kind: TelemetryStop, SystemTime: now, Duration: now.Sub(inst.CreatedAt), ProcessManager: r.name, InstanceID: g.id, Values: ev.Values})
	}
	// Deadlines: rewritten after every step with the new version, so that a
	// deadline the instance has moved past can never fire.
	if !r.usesDeadlines {
		return
	}
	g.deadlines, g.setDL = g.deadlines[:0], true
	if done {
		return
	}
	if timeout := r.pm.Timeout(); timeout > 0 {
		g.deadlines = append(g.deadlines, evokestore.Deadline{ProcessManager: r.name, InstanceID: g.id, Name: timeoutDeadline, DueAt: ev.RecordedAt.Add(timeout), Version: inst.Version})
	}
	for _, d := range res.Deadlines {
		g.deadlines = append(g.deadlines, evokestore.Deadline{ProcessManager: r.name, InstanceID: g.id, Name: d.Name, DueAt: d.At, Version: inst.Version})
	}
}

// appendCommandRef appends command c (ID id) to a history record's JSON
// array of commands, opening it when b is empty: its ID, type, aggregate,
// payload (so that a replay can compare the commands the code issues now)
// and whether it was suppressed. The caller closes the array. It is written
// by hand: encoding/json would scan the payload, which NewCommand checked
// already, once more per step.
func appendCommandRef(b []byte, id string, c *Command, suppressed bool) []byte {
	if len(b) == 0 {
		b = append(b, '[')
	} else {
		b = append(b, ',')
	}
	b = append(b, `{"id":`...)
	b = payload.AppendJSONString(b, id)
	b = append(b, `,"type":`...)
	b = payload.AppendJSONString(b, c.Type)
	b = append(b, `,"aggregate_type":`...)
	b = payload.AppendJSONString(b, c.AggregateType)
	b = append(b, `,"aggregate_id":`...)
	b = payload.AppendJSONString(b, c.AggregateID)
	if len(c.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, c.Payload...)
	}
	if suppressed {
		b = append(b, `,"suppressed":true`...)
	}
	return append(b, '}')
}

// fail records a failed step as the process manager's OnFailure decides
// (plain: as the runtime does by default) and returns what it did:
//   - ActionRetry: the event is held and the instance retried after the
//     decision's delay (by default, with backoff until MaxAttempts);
//   - ActionPark: the event is held and the instance parked (by default
//     past MaxAttempts, or at once for a step that overran its time bound);
//   - ActionSkip: the event is passed over, the instance goes on;
//   - ActionStop: the instance ends, cancelled, with the error kept.
func (r *router) fail(g *group, inst *evokestore.Instance, it item, err error, now time.Time, replay, plain bool) Action {
	ev := it.ev
	inst.Attempts++
	inst.UpdatedAt = now
	g.failed = true
	var d Decision
	if !plain {
		user, uerr := userEvent(ev)
		if uerr != nil {
			user = ev
		}
		d = r.pm.OnFailure(Failure{InstanceID: g.id, Event: user, Err: err, Attempts: inst.Attempts})
	}
	if d.Action == ActionDefault {
		d = Decision{Action: ActionRetry, Delay: r.en.backoff(inst.Attempts)}
		if inst.Attempts >= r.en.cfg.MaxAttempts || errors.Is(err, ErrStepTimeout) || permanent(err) {
			d.Action = ActionPark
		}
	}
	// The stored error keeps a panic's stack; telemetry has them apart.
	full, msg, stack := ErrorText(err), evokestore.Text(err.Error()), PanicStack(err)
	rec := evokestore.HistoryRecord{
		ProcessManager: r.name, InstanceID: g.id, Version: inst.Version, Position: ev.Position,
		EventID: ev.ID, EventType: ev.Type, PhaseBefore: inst.Phase, PhaseAfter: inst.Phase, Error: full, RecordedAt: now,
		Node: r.en.cfg.NodeID, LeaseToken: g.token,
	}
	tel := Telemetry{SystemTime: now, ProcessManager: r.name, InstanceID: g.id, EventType: ev.Type, Attempt: inst.Attempts, Err: msg,
		Stack: stack, Values: ev.Values}
	switch d.Action {
	case ActionSkip, ActionStop:
		if !it.chained {
			inst.LastPosition = max(inst.LastPosition, ev.Position)
		}
		if replay {
			g.released = append(g.released, ev.Position)
		}
		inst.NextAttemptAt = time.Time{}
		if d.Action == ActionSkip {
			inst.Attempts, inst.LastError = 0, ""
			if inst.Status.Stuck() {
				inst.Status = evokestore.StatusRunning
			}
			rec.Kind, tel.Kind = evokestore.KindSkipped, TelemetrySkip
			r.en.log.Info("failed step skipped by the process manager", "process_manager", r.name, "instance", g.id,
				"event_id", ev.ID, "event_type", ev.Type, "err", err)
			break
		}
		inst.Status, inst.CompletedAt, inst.LastError = evokestore.StatusCancelled, now, full
		if r.usesDeadlines {
			g.deadlines, g.setDL = g.deadlines[:0], true
		}
		rec.Kind = evokestore.KindCancel
		tel.Kind, tel.Duration = TelemetryStop, now.Sub(inst.CreatedAt)
		r.en.log.Warn("instance stopped by the process manager after a failed step", "process_manager", r.name, "instance", g.id,
			"event_id", ev.ID, "event_type", ev.Type, "err", err)
	case ActionPark:
		inst.LastError = full
		inst.Status = evokestore.StatusParked
		inst.NextAttemptAt = time.Time{}
		rec.Kind, tel.Kind = evokestore.KindParked, TelemetryPark
	default:
		inst.LastError = full
		inst.Status = evokestore.StatusFailing
		inst.NextAttemptAt = now.Add(max(d.Delay, 0))
		rec.Kind, tel.Kind = evokestore.KindFailed, TelemetryRetry
		d.Action = ActionRetry
	}
	if (d.Action == ActionRetry || d.Action == ActionPark) && !replay {
		g.held = append(g.held, evokestore.HeldEvent{ProcessManager: r.name, InstanceID: g.id, Position: ev.Position, Error: full})
	}
	g.telemetry = append(g.telemetry, tel)
	g.history = append(g.history, rec)
	return d.Action
}

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

// maxPendingScan bounds the outbox rows read to learn which instances of a
// batch have commands queued; past it, every command of the batch is queued.
const maxPendingScan = 1 << 16

// settle decides what becomes of the commands the batch's steps issued.
// With InlineDispatch, the commands of instances with none queued (in the
// store, or by prev, the batch still committing), to aggregates registered
// here, are executed now, against the aggregates as the store and prev
// leave them; their outcomes and events commit with the steps. The others
// are queued in the outbox. Commands stay in order per instance: an
// instance with commands queued has its new ones queued behind them, and
// once one of an instance's commands is queued (its aggregate is not
// registered here), so are its later ones.
func (r *router) settle(ctx context.Context, b *batch, prevs []*batch) error {
	b.outbox, b.queued, b.exec, b.queuedIDs = nil, nil, nil, nil
	n := 0
	for _, id := range b.order {
		n += len(b.groups[id].outbox)
	}
	if n > 0 {
		b.outbox = make([]evokestore.OutboxCommand, 0, n)
	}
	for _, id := range b.order {
		b.outbox = append(b.outbox, b.groups[id].outbox...)
	}
	if len(b.outbox) == 0 {
		return nil
	}
	if !r.en.cfg.InlineDispatch {
		b.queue(b.outbox)
		return nil
	}
	// Only instances that were in the store can have commands queued: the
	// router writes an instance's queued commands with the instance, so a
	// new one has none (nor one whose earlier incarnation was purged: the
	// commands it left are not its own). A batch of new instances asks the
	// store nothing.
	ids := make([]string, 0, len(b.order))
	for _, id := range b.order {
		if g := b.groups[id]; len(g.outbox) > 0 && g.inst != nil {
			ids = append(ids, id)
		}
	}
	var pending []evokestore.OutboxCommand
	if len(ids) > 0 {
		var err error
		pending, err = r.en.store.Outbox(ctx, evokestore.OutboxQuery{ProcessManager: r.name, Instances: ids, Limit: maxPendingScan})
		if err != nil {
			return fmt.Errorf("look for queued commands: %w", err)
		}
		if len(pending) == maxPendingScan {
			b.queue(b.outbox)
			return nil
		}
	}
	waiting := make(map[string]bool, len(pending))
	for i := range pending {
		waiting[pending[i].InstanceID] = true
	}
	for _, prev := range prevs {
		for id := range prev.queuedIDs {
			waiting[id] = true
		}
		if prev.chain != nil {
			for id := range prev.chain.queuedIDs {
				waiting[id] = true
			}
		}
	}
	for i := range b.outbox {
		c := &b.outbox[i]
		if !waiting[c.InstanceID] && r.en.aggregates[c.AggregateType] == nil {
			waiting[c.InstanceID] = true
		}
	}
	now := b.outbox // usually every command runs now: no copy
	if len(waiting) > 0 {
		now = nil
		var queued []evokestore.OutboxCommand
		for i := range b.outbox {
			if c := &b.outbox[i]; waiting[c.InstanceID] {
				queued = append(queued, *c)
			} else {
				now = append(now, *c)
			}
		}
		b.queue(queued)
	}
	if len(now) == 0 {
		return nil
	}
	var err error
	b.exec, err = r.en.decideAll(ctx, r.en.store, now, inflightAggs(prevs), lookupNone, nil)
	if errors.Is(err, ErrStepTimeout) {
		// An aggregate overran: the dispatcher runs the commands, and
		// parks the instance if it keeps overrunning.
		b.exec = nil
		b.queue(now)
		return nil
	}
	return err
}

// inflightAggs returns the aggregates as the batches in flight (prevs,
// newest first) leave them: the newest wins.
func inflightAggs(prevs []*batch) map[string]*aggState {
	var overlay map[string]*aggState
	for i := len(prevs) - 1; i >= 0; i-- {
		for _, aggs := range []map[string]*aggState{execAggs(prevs[i].exec), chainAggs(prevs[i].chain)} {
			if len(aggs) == 0 {
				continue
			}
			if overlay == nil {
				overlay = make(map[string]*aggState, len(aggs))
			}
			maps.Copy(overlay, aggs)
		}
	}
	return overlay
}

func execAggs(x *execution) map[string]*aggState {
	if x == nil {
		return nil
	}
	return x.aggs
}

func chainAggs(ch *chainResult) map[string]*aggState {
	if ch == nil {
		return nil
	}
	return ch.aggs
}

// queue queues cmds in the outbox.
func (b *batch) queue(cmds []evokestore.OutboxCommand) {
	b.queued = cmds
	if len(cmds) > 0 {
		b.queuedIDs = make(map[string]bool)
		for i := range cmds {
			b.queuedIDs[cmds[i].InstanceID] = true
		}
	}
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
		nh, nheld := 0, len(b.orphans)
		for _, id := range b.order {
			g := groupOf(id)
			nh += len(g.history)
			nheld += len(g.held)
		}
		var (
			writes  = make([]evokestore.InstanceWrite, 0, len(b.order))
			history = make([]evokestore.HistoryRecord, 0, nh)
			held    = append(make([]evokestore.HeldEvent, 0, nheld), b.orphans...)
		)
		for _, id := range b.order {
			if w := ch.landedWrite(id); w != nil {
				writes = append(writes, *w)
				history = append(history, chainHist[id]...)
				continue
			}
			g := b.groups[id]
			if g.write != nil {
				writes = append(writes, *g.write)
			}
			history = append(history, g.history...)
			held = append(held, g.held...)
		}
		if len(writes) > 0 {
			if err := tx.PutInstances(ctx, writes); err != nil {
				return fmt.Errorf("write %d instances: %w", len(writes), err)
			}
		}
		if len(queued) > 0 {
			if err := tx.InsertOutbox(ctx, queued); err != nil {
				return fmt.Errorf("write outbox: %w", err)
			}
		}
		if len(history) > 0 {
			if err := tx.InsertHistory(ctx, history); err != nil {
				return fmt.Errorf("write history: %w", err)
			}
		}
		if len(held) > 0 {
			if err := tx.Hold(ctx, held); err != nil {
				return fmt.Errorf("hold events: %w", err)
			}
		}
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

// endOutcome is the outcome of an instance that completes on ev, having
// carried outcome so far: compensated if it stepped a rejection, else
// timed out if ev is a deadline.
func endOutcome(ev *evokestore.Event, outcome evokestore.InstanceOutcome) evokestore.InstanceOutcome {
	switch {
	case outcome == evokestore.EndCompensated:
		return outcome
	case ev.Type == TypeDeadline:
		return evokestore.EndTimedOut
	}
	return evokestore.EndCompleted
}

// phaseName shows an empty user-level status as "(none)" in logs.
func phaseName(p string) string {
	if p == "" {
		return "(none)"
	}
	return p
}
