package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/evoke-go/evoke/evokestore"
)

// Follow-on steps ("chaining").
//
// A batch executes its steps' commands ahead, and their aggregates' events
// are appended in the batch's own transaction. Without chaining, those
// events are stepped by a later batch: one transaction and one instance
// write per link of a saga, and each link waits for a whole cycle (read,
// step, write) of the router. With chaining, prepare steps the events the
// batch will append, for the batch's own instances, runs the commands
// those steps issue, steps their events, and so on for up to ChainDepth
// rounds: a whole saga can commit at once, with one instance write, and
// the stepping stays off the store's writer (chaining on the writer,
// inside the transaction, was slower: the writer is the bottleneck).
//
// Positions. The chained events have no log position until the writer
// appends them, so a chained step is prepared with position 0: its
// history record gets the event's position in the transaction, after the
// append, and its instance's last position with it; its commands' IDs take
// the event ID's sort key (the position of the step that started the
// chain, see SortableID) in place of the position.
//
// Order: an instance must see its events in log order. The
// batch read the log up to position readTo, and ahead of it up to
// checkedTo (02_read.go): an instance that an event read ahead reaches is
// not chained. Its appends take the positions after every event committed
// before them (the stores assign positions in commit order and hold the
// append lock until commit). So the only events a chained instance could
// see out of order are those committed between checkedTo and the batch's
// first append. The writer reads them after appending, and if one reaches
// a chained instance that had not stepped it, the transaction is abandoned
// and the batch written again without its chain (Stats.ChainFallbacks);
// batches prepared on top of it are then prepared again. The positions the
// batches in flight appended are not read (batch.prevLanded): their
// unchained events were checked in prepare, where an instance they reach
// is not chained.
//
// Size: a batch's steps, chained ones included, stay within BatchSize; the
// instances past it are not chained, and the next batch reads as many
// events as the steps per event of this one allow (router.perEvent).
//
// The checkpoint stays at readTo: a later batch reads the chained events
// and skips them, by their ID while the batch that chained them is in
// flight, and by the instance's last position once it landed.
//
// A chained step that fails is not kept: its instance keeps the state of
// its last good step, and the event is stepped by a later batch as usual,
// which retries and parks as for any other event.

// maxIntervening bounds the events the writer reads between the end of a
// batch's read-ahead and its first append (in pages of interveningPage);
// with more, the chain is dropped. They are the events committed while the
// batch was prepared: a few thousand when a producer appends in bursts.
// The pages are small because the transaction holds the append lock: a
// result the server cannot finish sending (its node paused while reading
// it) would keep the lock, where a result that fits the sockets' buffers
// leaves the session idle in its transaction, which the server ends.
const (
	maxIntervening  = 32768
	interveningPage = 256
)

// chainSlack is how far behind the log's head what a batch read ahead may
// end and still prepare a chain: further behind (a backlog longer than
// the read-ahead), the writer would have many events to check.
const chainSlack = 2048

// errChainBlocked: an event committed between the batch's end and its
// appends reaches a chained instance.
var errChainBlocked = errors.New("an event committed meanwhile reaches a chained instance")

// chainResult is what a batch's follow-on steps produced.
type chainResult struct {
	// groups are the chained instances' outputs, their base step
	// included: the final instance write (with the base's previous
	// version) and every step's history; the telemetry of the chained
	// steps only (merge). They are read by later batches' prepare, and
	// never changed once built.
	groups map[string]*group
	// execs are the follow-on commands executed ahead, round by round.
	execs []*execution
	// queued are the follow-on commands that wait in the outbox.
	queued    []evokestore.OutboxCommand
	queuedIDs map[string]bool
	// aggs are the aggregates the chain's commands ran against, as it
	// leaves them (only those: the batches in flight's are theirs, and
	// taking them in would grow each batch's map by every batch before it).
	aggs map[string]*aggState
	// ids are the chained events' IDs.
	ids   map[string]bool
	steps int
	// landed are the chained instances' writes with their positions, as
	// the writer committed them (read by finish, after the write).
	landed map[string]*evokestore.InstanceWrite
}

// chainable reports whether b may prepare follow-on steps: it executed
// commands ahead, and the log it read ahead ends near the head.
func (r *router) chainable(b *batch, head int64) bool {
	return r.en.cfg.ChainDepth > 0 && b.exec != nil && len(b.exec.appends) > 0 && b.extra == nil && head-b.checkedTo <= chainSlack
}

// pending returns the events x will append, without positions.
func pending(x *execution) []evokestore.Event {
	evs := make([]evokestore.Event, len(x.appends))
	for i := range x.appends {
		evs[i] = pending1(&x.appends[i])
	}
	return evs
}

func pending1(e *evokestore.NewEvent) evokestore.Event {
	return evokestore.Event{ID: e.ID, StreamID: e.StreamID, StreamVersion: e.StreamVersion, Type: e.Type, Data: e.Data,
		CorrelationID: e.CorrelationID, CausationID: e.CausationID, Values: e.Values, RecordedAt: e.RecordedAt}
}

// landing is where a batch's writer appended: ranges of positions, in
// order. It is set by the writer before the batches after it are written,
// and read by their writers. chained are the ranges of the events it
// chained, published once they committed, for the router's reads.
type landing struct {
	ranges  [][2]int64
	pending [][2]int64
	chained atomic.Pointer[[][2]int64]
}

// rangesOf returns the positions ps (sorted in place) as ranges.
func rangesOf(ps []int64) [][2]int64 {
	slices.Sort(ps)
	var out [][2]int64
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1][1]+1 == p {
			out[n-1][1] = p
		} else {
			out = append(out, [2]int64{p, p})
		}
	}
	return out
}

// chainedRanges returns the positions of the events this router chained
// that it may still read: those of the batches landed (r.skips, pruned as
// the checkpoints pass them) and of the batches in flight that committed.
func (r *router) chainedRanges(prevs []*batch) [][2]int64 {
	low := int64(-1)
	for _, pc := range r.cps {
		if low < 0 || pc.committed < low {
			low = pc.committed
		}
	}
	keep := r.skips[:0]
	for _, s := range r.skips {
		if s[1] > low {
			keep = append(keep, s)
		}
	}
	r.skips = keep
	out := slices.Clone(r.skips)
	for _, prev := range prevs {
		if rs := prev.landed.chained.Load(); rs != nil {
			out = append(out, *rs...)
		}
	}
	return out
}

// record adds the positions of x's appended events.
func (l *landing) record(x *execution) {
	var ps []int64
	for i := range x.results {
		for _, e := range x.results[i].Events {
			ps = append(ps, e.Position)
		}
	}
	l.ranges = append(l.ranges, rangesOf(ps)...)
}

// chain prepares b's follow-on steps; prevs are the batches in flight,
// newest first. It returns nil when nothing was chained.
func (r *router) chain(ctx context.Context, b *batch, prevs []*batch) (*chainResult, error) {
	c := r.newChainer(b, prevs)
	defer func() { r.perEvent = float64(c.steps+c.cut) / float64(max(c.read, 1)) }()
	evs := pending(b.exec)
	for round := 0; round < r.en.cfg.ChainDepth && len(evs) > 0; round++ {
		groups, order := c.gather(evs)
		order = c.budget(groups, order)
		if len(order) == 0 {
			break
		}
		r.stepAll(groups, order, r.en.cfg.Clock.Now(), false)
		now := c.split(c.keep(groups, order))
		if len(now) == 0 {
			break
		}
		x, err := r.en.decideAll(ctx, r.en.store, now, c.overlay, lookupNone, nil)
		if errors.Is(err, ErrStepTimeout) {
			// An aggregate overran: the commands wait in the outbox,
			// and chaining stops.
			for _, cmd := range now {
				c.res.queue(cmd)
			}
			break
		}
		if err != nil {
			return nil, err
		}
		c.executed(x)
		evs = pending(x)
	}
	if len(c.chained) == 0 {
		return nil, nil
	}
	c.res.merge(b, c.rounds, c.chained)
	return c.res, nil
}

// chainer is the state of one batch's chain as it goes round by round.
type chainer struct {
	r *router
	b *batch
	// blocked are the instances not chained (any more): a later batch
	// steps their events.
	blocked map[string]bool
	// cur holds the chainable instances as their latest step left them,
	// and states their states decoded (the next round starts from there).
	cur    map[string]*evokestore.Instance
	states map[string]any
	// inline: instances whose commands may run ahead (none of theirs is
	// waiting in the outbox).
	inline map[string]bool
	// overlay are the aggregates as the batches in flight, the batch and
	// the chain's rounds so far leave them.
	overlay map[string]*aggState
	res     *chainResult
	// read counts the batch's events; steps its steps, cut the chained
	// steps left out for the budget; their ratio to the events read sizes
	// the next batch.
	read, steps, cut int
	rounds           map[string][]*group // each chained instance's rounds
	chained          []string            // the chained instances, in order
}

// newChainer starts b's chain from the batch's own steps.
func (r *router) newChainer(b *batch, prevs []*batch) *chainer {
	c := &chainer{r: r, b: b, blocked: r.flightBlocked(prevs), res: &chainResult{ids: map[string]bool{}}, rounds: map[string][]*group{}}
	c.cur = make(map[string]*evokestore.Instance, len(b.order))
	c.states = make(map[string]any, len(b.order))
	for _, id := range b.order {
		g := b.groups[id]
		if w := g.write; w != nil && !w.Status.Done() && !w.Status.Stuck() && len(g.held) == 0 {
			in := w.Instance
			c.cur[id] = &in
			c.states[id] = g.state
		}
	}
	c.inline = make(map[string]bool, len(c.cur))
	for i := range b.exec.results {
		if id := b.exec.results[i].Outcome.InstanceID; c.cur[id] != nil && !b.queuedIDs[id] {
			c.inline[id] = true
		}
	}
	base := inflightAggs(prevs)
	c.overlay = make(map[string]*aggState, len(base)+len(b.exec.aggs))
	maps.Copy(c.overlay, base)
	maps.Copy(c.overlay, b.exec.aggs)
	for _, g := range b.groups {
		c.read += len(g.items)
	}
	c.steps = c.read
	return c
}

// flightBlocked returns the instances that the events the batches in
// flight append and do not chain reach: those events come before the
// batch's in the log, so those instances are not chained. (The writer's
// check skips the positions those batches appended.)
func (r *router) flightBlocked(prevs []*batch) map[string]bool {
	blocked := map[string]bool{}
	for _, prev := range prevs {
		xs := []*execution{prev.exec}
		if prev.chain != nil {
			xs = append(xs, prev.chain.execs...)
		}
		for _, x := range xs {
			if x == nil {
				continue
			}
			for i := range x.appends {
				if prev.chain != nil && prev.chain.ids[x.appends[i].ID] {
					continue
				}
				ev := pending1(&x.appends[i])
				for t := range r.route(&ev).targets {
					blocked[t.ID] = true
				}
			}
		}
	}
	return blocked
}

// gather routes a round's events to the chainable instances they reach,
// as groups starting from the states the round before left; the instances
// of an event that cannot be chained are blocked.
func (c *chainer) gather(evs []evokestore.Event) (map[string]*group, []string) {
	groups := map[string]*group{}
	var order []string
	for i := range evs {
		ev := &evs[i]
		route := c.r.route(ev)
		// An event that reaches several instances is not chained:
		// a later batch passes over the events this one chains, so it
		// would have to land for all of them or none.
		chainable := route.Kind != RouteEach
		for rt := range route.targets {
			chainable = chainable && !c.blocked[rt.ID] && c.cur[rt.ID] != nil && !c.r.ahead.reaches(rt.ID)
		}
		for rt := range route.targets {
			if !chainable {
				// Not chained: a later batch steps it, and every
				// later event of the instance.
				c.blocked[rt.ID] = true
				continue
			}
			g := groups[rt.ID]
			if g == nil {
				in := *c.cur[rt.ID]
				g = &group{id: rt.ID, partition: in.Partition, token: c.b.ls.tokens[in.Partition], inst: &in, start: c.states[rt.ID]}
				delete(c.states, rt.ID) // the round owns it now
				groups[rt.ID] = g
				order = append(order, rt.ID)
			}
			g.items = append(g.items, item{ev: ev, kind: rt.Kind, chained: true})
		}
	}
	return groups, order
}

// budget keeps the batch's steps within BatchSize: the instances past it
// are not chained. It returns the instances of the round kept.
func (c *chainer) budget(groups map[string]*group, order []string) []string {
	kept := order[:0]
	for _, id := range order {
		if n := len(groups[id].items); c.steps+n <= c.r.en.cfg.BatchSize {
			c.steps += n
			kept = append(kept, id)
		} else {
			c.cut += n
			c.blocked[id] = true
			delete(groups, id)
		}
	}
	return kept
}

// keep records the round's steps that succeeded as chained, and returns
// the commands they issued. An instance whose step failed keeps nothing of
// the round and is chained no further.
func (c *chainer) keep(groups map[string]*group, order []string) []evokestore.OutboxCommand {
	n := 0
	for _, id := range order {
		n += len(groups[id].outbox)
	}
	cmds := make([]evokestore.OutboxCommand, 0, n)
	for _, id := range order {
		g := groups[id]
		if g.write == nil || g.failed || len(g.held) > 0 || g.write.Status.Stuck() || len(g.history) != len(g.items) {
			// A step failed (or an event was dropped): nothing of
			// this round is kept for the instance.
			c.blocked[id] = true
			delete(c.cur, id)
			continue
		}
		for _, it := range g.items {
			c.res.ids[it.ev.ID] = true
		}
		c.res.steps += len(g.items)
		in := g.write.Instance
		if in.Status.Done() {
			delete(c.cur, id)
			c.blocked[id] = true
		} else {
			c.cur[id] = &in
			c.states[id] = g.state
		}
		if c.rounds[id] == nil {
			c.chained = append(c.chained, id)
		}
		c.rounds[id] = append(c.rounds[id], g)
		cmds = append(cmds, g.outbox...)
	}
	return cmds
}

// split queues the commands that cannot run ahead and returns the others,
// in place. An instance's commands run now or queue all together, as in
// settle: a step's commands are decided in one transaction, so that a
// rejected one can discard the later ones (Discarder).
func (c *chainer) split(cmds []evokestore.OutboxCommand) []evokestore.OutboxCommand {
	for i := range cmds {
		if c.r.en.aggregates[cmds[i].AggregateType] == nil {
			c.inline[cmds[i].InstanceID] = false
		}
	}
	now := cmds[:0] // the commands to run now, in place: usually all of them
	for i := range cmds {
		if c.inline[cmds[i].InstanceID] {
			now = append(now, cmds[i])
			continue
		}
		c.res.queue(cmds[i])
	}
	return now
}

// executed takes in a round's executed commands: the next round's
// commands run against the aggregates as they leave them.
func (c *chainer) executed(x *execution) {
	maps.Copy(c.overlay, x.aggs)
	if c.res.aggs == nil {
		c.res.aggs = make(map[string]*aggState, len(x.aggs))
	}
	maps.Copy(c.res.aggs, x.aggs)
	c.res.execs = append(c.res.execs, x)
}

// queue puts a follow-on command in the outbox.
func (res *chainResult) queue(c evokestore.OutboxCommand) {
	res.queued = append(res.queued, c)
	if res.queuedIDs == nil {
		res.queuedIDs = map[string]bool{}
	}
	res.queuedIDs[c.InstanceID] = true
}

// merge builds the result for each chained instance: its base batch
// output (left as it is, for a write without the chain) followed by its
// rounds' history, in slices allocated once. Its telemetry is the rounds'
// only (finish emits the base's first), and its commands are not kept (the
// chain's executions and queued commands are what is written).
func (res *chainResult) merge(b *batch, rounds map[string][]*group, order []string) {
	res.groups = make(map[string]*group, len(order))
	for _, id := range order {
		base, gs := b.groups[id], rounds[id]
		nh, nt := len(base.history), 0
		for _, g := range gs {
			nh, nt = nh+len(g.history), nt+len(g.telemetry)
		}
		m := *base
		m.history = append(make([]evokestore.HistoryRecord, 0, nh), base.history...)
		m.outbox = nil
		m.telemetry = make([]Telemetry, 0, nt)
		m.deadlines = slices.Clone(base.deadlines)
		w := *base.write
		m.write = &w
		for _, g := range gs {
			m.write.Instance = g.write.Instance // the base's previous version stays
			m.history = append(m.history, g.history...)
			m.telemetry = append(m.telemetry, g.telemetry...)
			if g.setDL {
				m.deadlines, m.setDL = append(m.deadlines[:0], g.deadlines...), true
			}
		}
		res.groups[id] = &m
	}
}

// chainedBy reports whether a batch in flight when b was prepared chained
// the event id.
func (b *batch) chainedBy(id string) bool {
	for _, ids := range b.prevChained {
		if ids[id] {
			return true
		}
	}
	return false
}

// landChain writes ch's appends in tx, after b's own (exec), checks the
// events committed since the end of what b read ahead, and returns the
// chained instances' writes and history with their positions.
func (r *router) landChain(ctx context.Context, tx evokestore.Tx, b *batch, exec *execution, ch *chainResult) (map[string]*evokestore.InstanceWrite, map[string][]evokestore.HistoryRecord, error) {
	xs := append([]*execution{exec}, ch.execs...)
	// The events committed between the batch's end and its appends, but
	// for those of the batches in flight (known, see chain), are read with
	// the appends where the store can (in the same round trip, under its
	// append lock), and otherwise after them.
	var covered [][2]int64
	for _, l := range b.prevLanded {
		covered = append(covered, l.ranges...)
	}
	ra := &readAlong{q: evokestore.LogQuery{After: b.checkedTo, Types: r.types, Limit: interveningPage}, skip: covered}
	if err := writeAll(ctx, tx, xs, nil, ra); err != nil {
		return nil, nil, err
	}
	pos := make(map[string]int64, len(ch.ids)+len(exec.appends))
	first := int64(0)
	for _, x := range xs {
		b.landed.record(x)
		for i := range x.results {
			for _, e := range x.results[i].Events {
				pos[e.ID] = e.Position
				if first == 0 || e.Position < first {
					first = e.Position
				}
			}
		}
	}
	chk := &intervening{r: r, b: b, ch: ch}
	if err := chk.all(ctx, tx, ra, first, covered); err != nil {
		return nil, nil, err
	}
	writes, history, err := ch.positioned(pos)
	if err != nil {
		return nil, nil, err
	}
	ps := make([]int64, 0, len(ch.ids))
	for id := range ch.ids {
		ps = append(ps, pos[id])
	}
	b.landed.pending = rangesOf(ps)
	return writes, history, nil
}

// intervening checks the events committed between the end of what a batch
// read ahead and its first append.
type intervening struct {
	r    *router
	b    *batch
	ch   *chainResult
	read int
}

// all checks the events read along with the appends (ra), then reads and
// checks the rest up to first, the batch's first append, but for the
// positions covered by the batches in flight.
func (c *intervening) all(ctx context.Context, tx evokestore.Tx, ra *readAlong, first int64, covered [][2]int64) error {
	from := c.b.checkedTo
	if ra.done {
		if err := c.check(ra.events); err != nil {
			return err
		}
		if len(ra.events) < interveningPage {
			from = first // all read
		} else {
			from = ra.events[len(ra.events)-1].Position // read the rest
		}
	}
	for _, gap := range gaps(from, first, covered) {
		for after := gap[0] - 1; after < gap[1]; {
			between, err := tx.ReadLog(ctx, evokestore.LogQuery{After: after, Until: gap[1], Types: c.r.types, Limit: interveningPage})
			if err != nil {
				return fmt.Errorf("read the events committed since the batch: %w", err)
			}
			if err := c.check(between); err != nil {
				return err
			}
			if len(between) < interveningPage {
				break
			}
			after = between[len(between)-1].Position
		}
	}
	return nil
}

// check fails if one of the events committed meanwhile reaches a
// chained instance, which its chained steps would then pass over.
func (c *intervening) check(between []evokestore.Event) error {
	if c.read += len(between); c.read > maxIntervening {
		return fmt.Errorf("%w: more than %d", errChainBlocked, maxIntervening)
	}
	for i := range between {
		ev := &between[i]
		for rt := range c.r.route(ev).targets {
			if c.ch.groups[rt.ID] == nil {
				continue
			}
			if in := c.b.groups[rt.ID].inst; in != nil && ev.Position <= in.LastPosition {
				continue // stepped already
			}
			return fmt.Errorf("%w: %s at %d, for %s", errChainBlocked, ev.Type, ev.Position, rt.ID)
		}
	}
	return nil
}

// positioned returns the chained instances' writes and history records
// with the positions their events were appended at (pos, by event ID).
func (ch *chainResult) positioned(pos map[string]int64) (map[string]*evokestore.InstanceWrite, map[string][]evokestore.HistoryRecord, error) {
	writes := make(map[string]*evokestore.InstanceWrite, len(ch.groups))
	history := make(map[string][]evokestore.HistoryRecord, len(ch.groups))
	for id, g := range ch.groups {
		w := *g.write
		hs := append([]evokestore.HistoryRecord(nil), g.history...)
		for i := range hs {
			if hs[i].Position != 0 {
				continue
			}
			p, ok := pos[hs[i].EventID]
			if !ok {
				return nil, nil, fmt.Errorf("chained event %s of %s was not appended", hs[i].EventID, id)
			}
			hs[i].Position = p
			w.LastPosition = max(w.LastPosition, p)
		}
		writes[id], history[id] = &w, hs
	}
	return writes, history, nil
}

// landedWrite returns the committed write of chained instance id, or nil
// (also for a nil ch).
func (ch *chainResult) landedWrite(id string) *evokestore.InstanceWrite {
	if ch == nil {
		return nil
	}
	return ch.landed[id]
}
