package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

const (
	// lookupNone: the commands were just issued by steps not yet
	// committed, and are executed inline, to commit with them (the
	// router): none can have been executed, and none is looked up (were
	// one executed after all, its events' IDs would collide, and the write
	// fail). Those that append events, or whose rejection does, get no
	// outcome record: the events are the record (Outcomes).
	lookupNone lookup = iota
	// lookupRecords: the commands come from the outbox, which never holds
	// a command executed inline (a step's commands are either executed
	// with it or queued with it): only outcome records are looked up.
	lookupRecords
	// lookupAll: commands from outside (Runtime.Dispatch), whose IDs may be
	// any: outcome records and the events of inline executions.
	lookupAll
)

// StreamID returns the stream of an aggregate instance.
func StreamID(aggregateType, aggregateID string) string { return aggregateType + "-" + aggregateID }

// CommandResult is what executing one command gave.
type CommandResult struct {
	// Duplicate: the command had been executed before; Outcome is the
	// recorded one and nothing was done now.
	Duplicate bool
	Outcome   evokestore.CommandOutcome
	Events    []evokestore.Event
}

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
	b.gatherOutbox()
	if len(b.outbox) == 0 {
		return nil
	}
	if !r.en.cfg.InlineDispatch {
		b.queue(b.outbox)
		return nil
	}
	waiting, err := r.waiting(ctx, b, prevs)
	if err != nil {
		return err
	}
	if waiting == nil {
		b.queue(b.outbox)
		return nil
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

// gatherOutbox collects the commands the batch's steps issued, in order.
func (b *batch) gatherOutbox() {
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
}

// waiting returns the instances of b whose commands are queued: those with
// commands waiting in the outbox or queued by the batches in flight
// (prevs), and those with a command to an aggregate not registered here.
// It returns nil when there are too many queued commands to tell: then
// all are queued.
func (r *router) waiting(ctx context.Context, b *batch, prevs []*batch) (map[string]bool, error) {
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
			return nil, fmt.Errorf("look for queued commands: %w", err)
		}
		if len(pending) == maxPendingScan {
			return nil, nil
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
	return waiting, nil
}

// maxPendingScan bounds the outbox rows read to learn which instances of a
// batch have commands queued; past it, every command of the batch is queued.
const maxPendingScan = 1 << 16

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

type aggState struct {
	state   any
	version int64
}

// execution is a batch of commands decided inside a transaction: their
// outcomes and events, not yet written.
type execution struct {
	results  []CommandResult
	appends  []evokestore.NewEvent
	owner    []int // appends[i] belongs to results[owner[i]]
	outcomes []evokestore.CommandOutcome
	rejected int
	// aggs are the aggregates the commands ran against, as the execution
	// leaves them once written.
	aggs map[string]*aggState
}

// lookup says how decideAll finds commands executed before.
type lookup int

// decideAll runs cmds, in order, against their aggregates' state as q (a
// transaction, or the store) sees it (or, for a command of a sink's
// aggregate type, takes its answer from answers, see send), except for
// those in overlay (the
// aggregates of an execution not yet committed), which start from there. A
// command already executed (as lookup finds them) is reported as a
// duplicate and not run again. Only store errors are returned: what user
// code does wrong (a panic, an error, an undecodable stream) rejects the
// command.
func (en *Engine) decideAll(ctx context.Context, tx evokestore.Querier, cmds []evokestore.OutboxCommand, overlay map[string]*aggState, lookup lookup, answers map[string]string) (*execution, error) {
	bound := en.cfg.StepTimeout
	if bound <= 0 {
		return en.decideEach(ctx, tx, cmds, overlay, lookup, answers, nil)
	}
	// Bounded: decided on a goroutine of their own, which is abandoned if
	// an aggregate's Execute overruns (see 05_watchdog.go).
	w := &slot{}
	type result struct {
		x   *execution
		err error
	}
	done := make(chan result, 1)
	go func() {
		x, err := en.decideEach(ctx, tx, cmds, overlay, lookup, answers, w)
		done <- result{x, err}
	}()
	tick := max(bound/4, time.Millisecond)
	timer := time.NewTimer(tick)
	defer timer.Stop()
	for {
		select {
		case r := <-done:
			return r.x, r.err
		case <-timer.C:
			timer.Reset(tick)
		}
		if began := w.began.Load(); began != 0 && time.Since(time.Unix(0, began)) > bound {
			w.abandoned.Store(true)
			c := &cmds[w.idx.Load()]
			en.counters.StepTimeouts.Add(1)
			en.log.Error("an aggregate's Execute overran its time bound; its goroutine is abandoned", "aggregate_type", c.AggregateType,
				"aggregate_id", c.AggregateID, "command", c.ID, "command_type", c.Type, "bound", bound)
			return nil, fmt.Errorf("%w: %s.Execute(%s) of command %s ran longer than %v", ErrStepTimeout, c.AggregateType, c.Type, c.ID, bound)
		}
	}
}

// decideEach is decideAll, publishing each Execute in w (nil: unwatched).
func (en *Engine) decideEach(ctx context.Context, tx evokestore.Querier, cmds []evokestore.OutboxCommand, overlay map[string]*aggState, lookup lookup, answers map[string]string, w *slot) (*execution, error) {
	x := &execution{
		results:  make([]CommandResult, len(cmds)),
		appends:  make([]evokestore.NewEvent, 0, len(cmds)),
		owner:    make([]int, 0, len(cmds)),
		outcomes: make([]evokestore.CommandOutcome, 0, len(cmds)),
	}
	seen, err := executedBefore(ctx, tx, cmds, lookup)
	if err != nil {
		return nil, err
	}
	now := en.cfg.Clock.Now()
	cache, err := en.preload(ctx, tx, cmds, seen, overlay)
	if err != nil {
		return nil, err
	}
	x.aggs = cache
	d := &decisions{en: en, x: x, now: now}
	for i := range cmds {
		c := &cmds[i]
		if o, ok := seen[c.ID]; ok {
			x.results[i] = CommandResult{Duplicate: true, Outcome: o}
			continue
		}
		out := evokestore.CommandOutcome{
			CommandID: c.ID, Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
			ProcessManager: c.ProcessManager, InstanceID: c.InstanceID, Status: evokestore.OutcomeAccepted, RecordedAt: now,
		}
		if by, ok := d.discardedBy(c); ok {
			out.Status, out.Error = evokestore.OutcomeDiscarded, "discarded: command "+by+" of the same step was rejected"
			seen[c.ID] = out
			x.results[i].Outcome = out
			x.outcomes = append(x.outcomes, out)
			continue
		}
		evs, reason := en.decideOne(ctx, tx, cache, c, answers, w, i)
		if reason != "" {
			if err := d.reject(i, c, &out, reason); err != nil {
				return nil, err
			}
		} else {
			d.accept(i, c, &out, evs, cache)
		}
		seen[c.ID] = out
		x.results[i].Outcome = out
		if lookup == lookupNone && (out.Events > 0 || out.Status == evokestore.OutcomeRejected && c.ProcessManager != "") {
			// Executed inline, with the step that issued it: its events
			// (or its rejection's) are its record (Outcomes).
			continue
		}
		x.outcomes = append(x.outcomes, out)
	}
	return x, nil
}

// executedBefore returns the outcomes of the commands of cmds executed
// before, as lookup finds them.
func executedBefore(ctx context.Context, tx evokestore.Querier, cmds []evokestore.OutboxCommand, lookup lookup) (map[string]evokestore.CommandOutcome, error) {
	var seen map[string]evokestore.CommandOutcome
	switch lookup {
	case lookupNone:
		seen = make(map[string]evokestore.CommandOutcome, len(cmds))
	case lookupRecords, lookupAll:
		find := recordedOutcomes
		if lookup == lookupAll {
			find = Outcomes
		}
		var err error
		if seen, err = find(ctx, tx, cmds); err != nil {
			return nil, fmt.Errorf("load command outcomes: %w", err)
		}
	}
	return seen, nil
}

// decisions is decideEach's execution as its commands are decided.
type decisions struct {
	en  *Engine
	x   *execution
	now time.Time
	// discarded maps a step (stepKey) to the rejected command whose
	// process manager discards the step's later commands.
	discarded map[string]string
}

// correlationOf is the correlation ID of the events a command causes.
func correlationOf(c *evokestore.OutboxCommand) string {
	if c.CorrelationID == "" {
		return c.ID
	}
	return c.CorrelationID
}

// reject records the rejection of the command i: its outcome, whether its
// process manager discards the step's later commands, and the
// CommandRejected event that takes the rejection to its instance.
func (d *decisions) reject(i int, c *evokestore.OutboxCommand, out *evokestore.CommandOutcome, reason string) error {
	x := d.x
	reason = evokestore.Text(reason)
	x.rejected++
	out.Status, out.Error = evokestore.OutcomeRejected, reason
	if pm := d.en.processManager(c.ProcessManager); pm != nil && pm.DiscardPending(FailedCommand{Command: *c, Reason: reason}) {
		if d.discarded == nil {
			d.discarded = map[string]string{}
		}
		d.discarded[stepKey(c)] = c.ID
	}
	if c.ProcessManager != "" {
		data, err := json.Marshal(RejectionData{ProcessManager: c.ProcessManager, InstanceID: c.InstanceID, Command: *c, Reason: reason})
		if err != nil {
			return fmt.Errorf("encode rejection of %s: %w", c.ID, err)
		}
		x.appends = append(x.appends, evokestore.NewEvent{
			ID: RejectionEventID(c.ID), StreamID: RejectionStreamID(c.ID), StreamVersion: 1,
			Type: TypeCommandRejected, Data: data, CorrelationID: correlationOf(c), CausationID: c.ID, Values: c.Values, RecordedAt: d.now,
		})
		x.owner = append(x.owner, i)
	}
	return nil
}

// accept records the events evs of the command i at its stream's next
// versions, and applies them to the aggregate in cache, so that the next
// command to it sees them.
func (d *decisions) accept(i int, c *evokestore.OutboxCommand, out *evokestore.CommandOutcome, evs []NewEvent, cache map[string]*aggState) {
	x, now := d.x, d.now
	as := cache[StreamID(c.AggregateType, c.AggregateID)]
	agg := d.en.aggregates[c.AggregateType]
	for j, ne := range evs {
		as.version++
		e := evokestore.NewEvent{
			ID: EventID(c.ID, j), StreamID: StreamID(c.AggregateType, c.AggregateID), StreamVersion: as.version,
			Type: ne.Type, Data: ne.Data, CorrelationID: correlationOf(c), CausationID: c.ID, Values: ne.Values, RecordedAt: now,
		}
		x.appends = append(x.appends, e)
		x.owner = append(x.owner, i)
		rec := evokestore.Event{ID: e.ID, StreamID: e.StreamID, StreamVersion: e.StreamVersion, Type: e.Type, Data: e.Data,
			CorrelationID: e.CorrelationID, CausationID: e.CausationID, Values: e.Values, RecordedAt: now}
		if s, err := agg.Apply(as.state, &rec); err == nil {
			as.state = s
		} else {
			delete(cache, e.StreamID) // reload from the log next time
		}
	}
	out.Events = len(evs)
}

// discardedBy returns the rejected command of c's step whose process
// manager discards the step's later commands, if any.
func (d *decisions) discardedBy(c *evokestore.OutboxCommand) (string, bool) {
	if d.discarded == nil {
		return "", false // no rejection discards anything: no key to build
	}
	by, ok := d.discarded[stepKey(c)]
	return by, ok
}

// decideOne decides command c (the i-th): a sink's command by the answer
// send got before the transaction (it appends nothing here), any other by
// its aggregate (decide).
func (en *Engine) decideOne(ctx context.Context, tx evokestore.Querier, cache map[string]*aggState, c *evokestore.OutboxCommand,
	answers map[string]string, w *slot, i int) ([]NewEvent, string) {
	if en.sinks[c.AggregateType] == nil {
		return en.decide(ctx, tx, cache, c, w, i)
	}
	if r, ok := answers[c.ID]; ok {
		return nil, r
	}
	return nil, fmt.Sprintf("command for sink %q was not sent", c.AggregateType)
}

// decide runs one command against its aggregate's current state and returns
// its events, or a rejection reason.
func (en *Engine) decide(ctx context.Context, tx evokestore.Querier, cache map[string]*aggState, c *evokestore.OutboxCommand, w *slot, i int) (evs []NewEvent, reason string) {
	agg := en.aggregates[c.AggregateType]
	if agg == nil {
		return nil, fmt.Sprintf("unknown aggregate type %q", c.AggregateType)
	}
	stream := StreamID(c.AggregateType, c.AggregateID)
	as := cache[stream]
	if as == nil {
		past, err := tx.ReadStream(ctx, stream, 0)
		if err != nil {
			return nil, fmt.Sprintf("load aggregate %s: %v", stream, err)
		}
		as = &aggState{state: agg.New()}
		for k := range past {
			s, err := agg.Apply(as.state, &past[k])
			if err != nil {
				return nil, fmt.Sprintf("replay aggregate %s at version %d: %v", stream, past[k].StreamVersion, err)
			}
			as.state, as.version = s, past[k].StreamVersion
		}
		cache[stream] = as
	}
	defer func() {
		if p := recover(); p != nil {
			evs, reason = nil, fmt.Sprintf("panic in %s.Execute(%s): %v\n\n%s", c.AggregateType, c.Type, p, TrimStack(debug.Stack()))
		}
	}()
	w.begin(i)
	evs, err := agg.Execute(as.state, c)
	w.end()
	if err != nil {
		return nil, err.Error()
	}
	return evs, ""
}

// preload loads the aggregates of a batch's new commands: from overlay
// where it has them, the others in one query if the store can
// (evokestore.StreamsReader); otherwise decide loads each.
func (en *Engine) preload(ctx context.Context, tx evokestore.Querier, cmds []evokestore.OutboxCommand, seen map[string]evokestore.CommandOutcome, overlay map[string]*aggState) (map[string]*aggState, error) {
	cache := make(map[string]*aggState, len(cmds))
	for i := range cmds {
		stream := StreamID(cmds[i].AggregateType, cmds[i].AggregateID)
		if as := overlay[stream]; as != nil && cache[stream] == nil {
			cp := *as
			cache[stream] = &cp
		}
	}
	sr, ok := tx.(evokestore.StreamsReader)
	if !ok || len(cmds) < 2 {
		return cache, nil
	}
	var ids []string
	want := map[string]bool{}
	for i := range cmds {
		c := &cmds[i]
		stream := StreamID(c.AggregateType, c.AggregateID)
		if _, dup := seen[c.ID]; dup || want[stream] || cache[stream] != nil || en.aggregates[c.AggregateType] == nil {
			continue
		}
		want[stream] = true
		ids = append(ids, stream)
	}
	evs, err := sr.ReadStreams(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load %d aggregates: %w", len(ids), err)
	}
	byStream := make(map[string][]evokestore.Event, len(ids))
	for i := range evs {
		byStream[evs[i].StreamID] = append(byStream[evs[i].StreamID], evs[i])
	}
	for i := range cmds {
		c := &cmds[i]
		stream := StreamID(c.AggregateType, c.AggregateID)
		if !want[stream] || cache[stream] != nil {
			continue
		}
		agg := en.aggregates[c.AggregateType]
		as := &aggState{state: agg.New()}
		ok := true
		for _, e := range byStream[stream] {
			s, err := agg.Apply(as.state, &e)
			if err != nil {
				ok = false // decide reloads it and reports the error
				break
			}
			as.state, as.version = s, e.StreamVersion
		}
		if ok {
			cache[stream] = as
		}
	}
	return cache, nil
}

// stepKey identifies the step that issued c: its process manager, instance
// and triggering event.
func stepKey(c *evokestore.OutboxCommand) string {
	return c.ProcessManager + "\x00" + c.InstanceID + "\x00" + c.CausationID
}

// processManager returns the registered process manager named name, or nil.
func (en *Engine) processManager(name string) ProcessManager {
	if name == "" {
		return nil
	}
	for _, r := range en.routers {
		if r.name == name {
			return r.pm
		}
	}
	return nil
}

// write records the outcomes, deletes the outbox rows seqs, and appends the
// events. Appends come last: a backend that serialises appends until commit
// (the log's positions follow commit order) holds that lock briefly and
// never while waiting for other rows.
func (x *execution) write(ctx context.Context, tx evokestore.Tx, seqs []int64) error {
	return writeAll(ctx, tx, []*execution{x}, seqs, nil)
}

// readAlong asks writeAll to read the log with its append, in the same
// round trip, where the Tx can (evokestore.AppendReader): done reports
// whether it did, and events holds what it read.
type readAlong struct {
	q      evokestore.LogQuery
	skip   [][2]int64
	events []evokestore.Event
	done   bool
}

// writeAll writes the outcomes and events of xs, in order, as write does
// for one, with one call for all outcomes and one for all events (a chain's
// rounds are an execution each). ra, if not nil, asks for a read of the
// log along with the append.
func writeAll(ctx context.Context, tx evokestore.Tx, xs []*execution, seqs []int64, ra *readAlong) error {
	outcomes, appends := xs[0].outcomes, xs[0].appends
	if len(xs) > 1 {
		no, na := 0, 0
		for _, x := range xs {
			no, na = no+len(x.outcomes), na+len(x.appends)
		}
		outcomes, appends = make([]evokestore.CommandOutcome, 0, no), make([]evokestore.NewEvent, 0, na)
		for _, x := range xs {
			outcomes, appends = append(outcomes, x.outcomes...), append(appends, x.appends...)
		}
	}
	if len(outcomes) > 0 {
		if err := tx.PutCommandOutcomes(ctx, outcomes); err != nil {
			return fmt.Errorf("record command outcomes: %w", err)
		}
	}
	if len(seqs) > 0 {
		if err := tx.DeleteOutbox(ctx, seqs); err != nil {
			return fmt.Errorf("delete dispatched commands: %w", err)
		}
	}
	for _, x := range xs {
		for i := range x.results {
			x.results[i].Events = nil // from an earlier attempt
		}
	}
	if len(appends) == 0 {
		return nil
	}
	var evs []evokestore.Event
	var err error
	if ar, ok := tx.(evokestore.AppendReader); ok && ra != nil {
		ra.events, evs, err = ar.AppendEventsAfter(ctx, ra.q, ra.skip, appends)
		ra.done = err == nil
	} else {
		evs, err = tx.AppendEvents(ctx, appends)
	}
	if err != nil {
		return fmt.Errorf("append %d events: %w", len(appends), err)
	}
	for _, x := range xs {
		for k := range x.appends {
			x.results[x.owner[k]].Events = append(x.results[x.owner[k]].Events, evs[k])
		}
		evs = evs[len(x.appends):]
	}
	return nil
}
