package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

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
	// stepTimeout bounds a step in wall-clock time (05_watchdog.go); 0: none.
	stepTimeout time.Duration

	// mu serialises the router's passes with operator actions, so that an
	// instance still runs one step at a time.
	mu        sync.Mutex
	nextRetry time.Time     // zero: none known
	kick      chan struct{} // wakes the router after an operator action
	// cache holds instances as this router committed them (nil: none).
	cache *instCache
	// skips are the positions of the events this router chained in
	// landed batches, until its checkpoints pass them (07_chain.go).
	skips [][2]int64
	// ahead is the log read past the prepared checkpoints (02_read.go).
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
	// chained: ev is appended by the batch that steps it (07_chain.go); it
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
	// start is inst's state already decoded, or nil (07_chain.go hands a
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
	p := &pipeline{r: r, ctx: ctx, wake: wake}
	defer func() {
		if lerr := p.landAll(); lerr != nil && err == nil {
			err = lerr
		}
		// Every flight landed: the next batch reads from what committed
		// (nothing changes unless a batch was dropped or failed).
		r.rewind()
	}()
	for n := 0; ; n++ {
		began := time.Now()
		// A wake-up from before this look is answered by it: the stores
		// signal after a commit is visible, so one that signals after this
		// point is seen by this look or wakes the next.
		woke(wake)
		b, perr := r.prepare(ctx, p.q)
		if b != nil && b.needsTx() {
			r.en.counters.PrepareNanos.Add(int64(time.Since(began)))
		}
		if (b != nil && len(p.q) == pipelineDepth) || (perr == errResync && len(p.q) > 0) {
			redo, lerr := p.land()
			if lerr != nil {
				return false, lerr
			}
			if redo || perr == errResync {
				if lerr := p.restart(); lerr != nil {
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
			if look, werr := p.waitToLook(false); werr != nil || !look {
				return false, werr
			}
			continue
		}
		if !b.needsTx() && len(p.q) == 0 {
			r.finish(b)
		} else {
			p.launch(b)
		}
		if n+1 >= maxDrain || (!b.more && len(p.q) == 0) {
			return b.more, p.landAll()
		}
		// The next batch (or, caught up, the events committed since) is
		// prepared while this one is written: at once if the log holds
		// more, else once something is committed.
		if look, werr := p.waitToLook(b.more); werr != nil || !look {
			return false, werr
		}
	}
}

// pipeline is one drain's batches in flight, and the wake-ups it answers.
type pipeline struct {
	r    *router
	ctx  context.Context
	wake <-chan struct{}
	q    []*flight // in flight, oldest first
}

// land waits for the oldest flight's write and counts it. redo: it did
// not commit as the batches after it were prepared to expect (it fell
// back to the outbox, or was dropped itself).
func (p *pipeline) land() (redo bool, err error) {
	f := p.q[0]
	p.q = p.q[1:]
	err = <-f.done
	p.r.en.busy.Add(-1)
	if err == nil {
		p.r.finish(f.b)
	} else {
		p.r.cache.reset() // what the store holds is not known
	}
	if errors.Is(err, errDropped) {
		return true, nil
	}
	return !f.b.landedAsPrepared(), err
}

// landAll lands every flight and returns the first error. Batches after
// one that failed or fell back are dropped unwritten.
func (p *pipeline) landAll() error {
	var first error
	for len(p.q) > 0 {
		if _, err := p.land(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// restart lands every flight and reads from what is committed: the
// batches were prepared against a commit that did not happen as
// assumed, or a lease set that changed.
func (p *pipeline) restart() error {
	if err := p.landAll(); err != nil {
		return err
	}
	p.r.rewind()
	return nil
}

// wait blocks, caught up with batches in flight, until events are
// committed (or the router is kicked), which is a reason to look at the
// log again, or until the oldest flight landed, which it lands; that is
// no reason to look by itself (a commit since the last look, the landed
// flight's own included, wakes the router), unless the flight did not
// commit as the batches after it were prepared to expect.
func (p *pipeline) wait() (look bool, err error) {
	select {
	case <-p.ctx.Done():
		return false, p.ctx.Err()
	case <-p.wake:
		return true, nil
	case <-p.r.kick: // the leases changed, or an operator acted
		return true, nil
	case <-p.q[0].fin:
	}
	redo, err := p.land()
	if err != nil || !redo {
		return false, err
	}
	return true, p.restart()
}

// waitToLook reports whether to look at the log again: at once if
// more is known to be there, else once events are committed, waiting
// for them while batches are in flight; false once every flight
// landed and nothing was committed since the last look.
func (p *pipeline) waitToLook(more bool) (bool, error) {
	for !more && len(p.q) > 0 {
		if woke(p.wake) {
			return true, nil
		}
		var err error
		if more, err = p.wait(); err != nil {
			return false, err
		}
	}
	return more || woke(p.wake), nil
}

// launch hands b to the writer: it is written once the flight before it
// committed as b was prepared to expect, and dropped if that one did not.
func (p *pipeline) launch(b *batch) {
	r := p.r
	f := &flight{b: b, done: make(chan error, 1), ok: make(chan bool, 1), fin: make(chan struct{})}
	var after *flight
	if len(p.q) > 0 {
		after = p.q[len(p.q)-1]
	}
	p.q = append(p.q, f)
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
			err = r.write(p.ctx, b)
			r.en.counters.WriteNanos.Add(int64(time.Since(began)))
			r.en.counters.Writes.Add(1)
		}
		f.ok <- err == nil && b.landedAsPrepared()
		f.done <- err
		close(f.fin)
	}()
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
	// of the log read ahead with it (02_read.go).
	readTo, checkedTo int64
	// chain are the follow-on steps prepared with the batch (07_chain.go);
	// chainDropped: the batch was written without them.
	chain        *chainResult
	chainDropped bool
	// prevChained are the IDs of the events chained by the batches in
	// flight when this one was prepared, and prevLanded where their
	// writers appended.
	prevChained []map[string]bool
	prevLanded  []*landing
	// landed is where the batch's writer appended (07_chain.go).
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
	// this router chained are not read again (07_chain.go); the log is read
	// ahead of the batch (02_read.go).
	win, err := r.next(ctx, after, head, r.chainedRanges(prevs))
	if err != nil {
		return nil, fmt.Errorf("read log after %d: %w", after, err)
	}
	b := r.newBatch(ls, win, prevs)
	if len(win.events) > 0 {
		if err := r.stepBatch(ctx, b, win, prevs, head); err != nil {
			return nil, err
		}
	}
	for _, cp := range b.cps {
		r.cps[cp.Partition].cp = cp
	}
	return b, nil
}

// newBatch starts the batch of the window win, with the checkpoints it
// moves to; prevs are the batches in flight, newest first.
func (r *router) newBatch(ls *leaseSet, win window, prevs []*batch) *batch {
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
	return b
}

// stepBatch correlates the window's events, loads their instances, steps
// them, executes their commands ahead and chains the follow-on steps.
func (r *router) stepBatch(ctx context.Context, b *batch, win window, prevs []*batch, head int64) error {
	now := r.en.cfg.Clock.Now()
	b.groups, b.order, b.orphans = r.correlate(win.events, win.routes, true, b.chainedBy)
	if err := r.load(ctx, b.ls, b.groups, b.order, prevs); err != nil {
		return err
	}
	r.stepAll(b.groups, b.order, now, false)
	if err := r.settle(ctx, b, prevs); err != nil {
		return err
	}
	if !r.chainable(b, head) {
		r.perEvent = 1
		return nil
	}
	var err error
	b.chain, err = r.chain(ctx, b, prevs)
	return err
}
