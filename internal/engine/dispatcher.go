package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/evoke-go/evoke/evokestore"
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

// dispatcher moves commands from the outbox to their aggregates, a batch per
// transaction, in outbox order (so in order per instance).
type dispatcher struct {
	en *Engine
	// attempts counts the failed dispatches of commands that failed on
	// their own (not as part of a batch).
	attempts map[string]int
	// parked are the instances (process manager, ID) parked because one of
	// their commands could not be dispatched: their commands stay in the
	// outbox until an operator retries the instance.
	parked map[[2]string]bool
}

func (d *dispatcher) run(ctx context.Context) {
	wake, cancel := d.en.store.Subscribe(evokestore.TopicOutbox)
	defer cancel()
	d.attempts, d.parked = map[string]int{}, map[[2]string]bool{}
	failures := 0
	for ctx.Err() == nil {
		d.en.busy.Add(1)
		n, err := d.pass(ctx)
		d.en.busy.Add(-1)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			delay := d.en.backoff(failures)
			d.en.log.Log(ctx, d.en.retryLevel(err, failures), "dispatch failed; retrying", "err", err, "retry_in", delay)
			if !sleep(ctx, delay) {
				return
			}
			continue
		}
		failures = 0
		if n >= d.en.cfg.DispatchBatchSize {
			continue
		}
		if !d.en.wait(ctx, wake, d.en.cfg.PollInterval) {
			return
		}
	}
}

// pass dispatches one batch and returns how many commands it dispatched. If
// the batch as a whole fails, its commands are tried one by one so that one
// bad command cannot hold up the others; an instance whose command fails
// keeps its later commands back, to keep them in order. A command that
// fails on its own MaxAttempts times (a transient error that does not go
// away: the store refusing its events, a timeout) parks its instance.
func (d *dispatcher) pass(ctx context.Context) (int, error) {
	ls := d.en.leases.Load()
	q := evokestore.OutboxQuery{Limit: d.en.cfg.DispatchBatchSize}
	if d.en.leaser != nil {
		if len(ls.parts) == 0 {
			return 0, nil
		}
		q.Partitions = ls.parts
	}
	if err := d.unpark(ctx); err != nil {
		return 0, err
	}
	all, err := d.en.store.Outbox(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(all) == q.Limit {
		// A step's commands are decided in one transaction, so that a
		// rejected one can discard the later ones (Discarder): a full
		// read leaves the step it ends in to the next pass, unless that
		// step is all it read.
		last := stepKey(&all[len(all)-1])
		n := len(all)
		for n > 0 && stepKey(&all[n-1]) == last {
			n--
		}
		if n > 0 {
			all = all[:n]
		}
	}
	cmds := all[:0:0]
	for _, c := range all {
		if !d.parked[[2]string{c.ProcessManager, c.InstanceID}] {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 {
		return 0, nil
	}
	_, err = d.en.execute(ctx, cmds, ls)
	if err == nil {
		d.en.counters.Dispatched.Add(int64(len(cmds)))
		return len(cmds), nil
	}
	if ctx.Err() != nil {
		return 0, err
	}
	d.en.conflict(err)
	d.en.log.Warn("dispatch batch failed; dispatching its commands one by one", "commands", len(cmds), "err", err)
	blocked := map[string]bool{}
	var firstErr error
	n := 0
	for i := 0; i < len(cmds); {
		// One step's commands at a time (see above).
		j := i + 1
		for j < len(cmds) && stepKey(&cmds[j]) == stepKey(&cmds[i]) {
			j++
		}
		c := cmds[i]
		step := cmds[i:j]
		i = j
		key := c.ProcessManager + "\x00" + c.InstanceID
		if blocked[key] {
			continue
		}
		if _, err := d.en.execute(ctx, step, ls); err != nil {
			if ctx.Err() != nil {
				return n, err
			}
			blocked[key] = true
			// A conflict with another transaction is no fault of the
			// command's: it does not count towards parking its instance.
			// (It is counted as a conflict once, by run's retryLevel, when
			// the pass returns it.)
			if !evokestore.IsConflict(err) {
				d.attempts[c.ID]++
			}
			if d.attempts[c.ID] >= d.en.cfg.MaxAttempts && c.ProcessManager != "" {
				if perr := d.park(ctx, ls, &c, err); perr != nil {
					firstErr = cmp(firstErr, perr)
				}
				continue
			}
			firstErr = cmp(firstErr, fmt.Errorf("command %s (%s) of %s %s: %w", c.ID, c.Type, c.ProcessManager, c.InstanceID, err))
			continue
		}
		delete(d.attempts, c.ID)
		d.en.counters.Dispatched.Add(int64(len(step)))
		n += len(step)
	}
	return n, firstErr
}

// park parks the instance of a command that could not be dispatched.
func (d *dispatcher) park(ctx context.Context, ls *leaseSet, c *evokestore.OutboxCommand, cause error) error {
	en := d.en
	now := en.cfg.Clock.Now()
	reason := evokestore.Text(fmt.Sprintf("dispatch of command %s (%s) failed %d times: %v", c.ID, c.Type, d.attempts[c.ID], cause))
	var tel Telemetry
	err := evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
		if err := en.fence(ctx, tx, ls, []int{c.Partition}); err != nil {
			return err
		}
		insts, err := tx.Instances(ctx, c.ProcessManager, []string{c.InstanceID})
		if err != nil || len(insts) == 0 {
			return err
		}
		in := insts[0]
		if in.Status.Done() || in.Status == evokestore.StatusParked {
			return nil
		}
		prev := in.Version
		in.Status, in.LastError, in.UpdatedAt, in.NextAttemptAt = evokestore.StatusParked, reason, now, time.Time{}
		// The version moves on, so that the router, which may hold the
		// instance as running (in a batch committing, or cached), cannot
		// commit over the park: its write is fenced off. The instance's
		// deadlines move with it, to fire once it runs again. (A store
		// that cannot list an instance's deadlines keeps the version; the
		// router then caches no instances, see New.)
		if dr, ok := deadlinesReader(tx, en.store); ok {
			in.Version++
			dls, err := dr.InstanceDeadlines(ctx, c.ProcessManager, []string{c.InstanceID})
			if err != nil {
				return err
			}
			if len(dls) > 0 {
				for i := range dls {
					dls[i].Version = in.Version
				}
				if err := tx.ReplaceDeadlines(ctx, c.ProcessManager, []string{c.InstanceID}, dls); err != nil {
					return err
				}
			}
		}
		if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: in, PrevVersion: prev}}); err != nil {
			return err
		}
		tel = Telemetry{Kind: TelemetryPark, SystemTime: now, ProcessManager: c.ProcessManager, InstanceID: c.InstanceID,
			CommandType: c.Type, CommandID: c.ID, Attempt: d.attempts[c.ID], Err: reason}
		return tx.InsertHistory(ctx, []evokestore.HistoryRecord{{ProcessManager: c.ProcessManager, InstanceID: c.InstanceID,
			Kind: evokestore.KindParked, Version: in.Version, EventType: "$dispatch", PhaseBefore: in.Phase, PhaseAfter: in.Phase,
			Error: reason, RecordedAt: now, Node: en.cfg.NodeID, LeaseToken: ls.tokens[c.Partition]}})
	})
	if err != nil {
		return fmt.Errorf("park %s %s: %w", c.ProcessManager, c.InstanceID, err)
	}
	d.parked[[2]string{c.ProcessManager, c.InstanceID}] = true
	delete(d.attempts, c.ID)
	if tel.Kind != "" {
		en.counters.Parked.Add(1)
		en.log.Error("instance parked: its command cannot be dispatched", "process_manager", c.ProcessManager, "instance", c.InstanceID, "command", c.ID, "err", cause)
		en.cfg.Hooks.Telemetry(tel)
	}
	return nil
}

// unpark forgets parked instances an operator has retried or cancelled.
func (d *dispatcher) unpark(ctx context.Context) error {
	for key := range d.parked {
		insts, err := d.en.store.Instances(ctx, key[0], []string{key[1]})
		if err != nil {
			return fmt.Errorf("load parked instance: %w", err)
		}
		if len(insts) == 0 || insts[0].Status != evokestore.StatusParked {
			delete(d.parked, key)
		}
	}
	return nil
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Execute runs commands (not from the outbox) against their aggregates in
// one transaction: each command's events and its outcome (its deduplication
// record) commit together. A version conflict (another writer appended to
// one of the streams) retries the whole batch on fresh state.
func (en *Engine) Execute(ctx context.Context, cmds []evokestore.OutboxCommand) ([]CommandResult, error) {
	return en.execute(ctx, cmds, nil)
}

// execute is Execute; with ls, the commands come from the outbox of the
// partitions ls holds, leave it in the same transaction, and the
// transaction is fenced by those partitions' leases.
func (en *Engine) execute(ctx context.Context, cmds []evokestore.OutboxCommand, ls *leaseSet) ([]CommandResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := en.executeOnce(ctx, cmds, ls)
		if err != nil && (errors.Is(err, evokestore.ErrVersionConflict) || errors.Is(err, evokestore.ErrDuplicateCommand)) && attempt < 10 {
			continue
		}
		return res, err
	}
}

type aggState struct {
	state   any
	version int64
}

func (en *Engine) executeOnce(ctx context.Context, cmds []evokestore.OutboxCommand, ls *leaseSet) ([]CommandResult, error) {
	fromOutbox := ls != nil
	answers, err := en.send(ctx, cmds)
	if err != nil {
		return nil, err
	}
	var x *execution
	err = evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
		lookup := lookupAll
		if fromOutbox {
			lookup = lookupRecords
		}
		var err error
		if x, err = en.decideAll(ctx, tx, cmds, nil, lookup, answers); err != nil {
			return err
		}
		// The fence is the first write: on PostgreSQL it takes the append
		// lock, so the reads of the decisions come before it.
		var seqs []int64
		if fromOutbox {
			parts := make([]int, 0, len(cmds))
			seqs = make([]int64, 0, len(cmds))
			for i := range cmds {
				parts = append(parts, cmds[i].Partition)
				seqs = append(seqs, cmds[i].Seq)
			}
			slices.Sort(parts)
			if err := en.fence(ctx, tx, ls, slices.Compact(parts)); err != nil {
				return err
			}
		}
		return x.write(ctx, tx, seqs)
	})
	if err != nil {
		return nil, err
	}
	en.answers.forget(answers)
	en.counters.Rejected.Add(int64(x.rejected))
	return x.results, nil
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

// decideAll runs cmds, in order, against their aggregates' state as q (a
// transaction, or the store) sees it (or, for a command of a sink's
// aggregate type, takes its answer from answers, see send), except for those in overlay (the
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
	// an aggregate's Execute overruns (see watchdog.go).
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
	now := en.cfg.Clock.Now()
	cache, err := en.preload(ctx, tx, cmds, seen, overlay)
	if err != nil {
		return nil, err
	}
	x.aggs = cache
	// discarded maps a step (stepKey) to the rejected command whose
	// process manager discards the step's later commands.
	var discarded map[string]string
	for i := range cmds {
		c := &cmds[i]
		if o, ok := seen[c.ID]; ok {
			x.results[i] = CommandResult{Duplicate: true, Outcome: o}
			continue
		}
		correlation := c.CorrelationID
		if correlation == "" {
			correlation = c.ID
		}
		out := evokestore.CommandOutcome{
			CommandID: c.ID, Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
			ProcessManager: c.ProcessManager, InstanceID: c.InstanceID, Status: evokestore.OutcomeAccepted, RecordedAt: now,
		}
		if by, ok := discarded[stepKey(c)]; ok {
			out.Status, out.Error = evokestore.OutcomeDiscarded, "discarded: command "+by+" of the same step was rejected"
			seen[c.ID] = out
			x.results[i].Outcome = out
			x.outcomes = append(x.outcomes, out)
			continue
		}
		var evs []NewEvent
		var reason string
		if en.sinks[c.AggregateType] != nil {
			// Sent before the transaction (send): its answer is the
			// decision, and it appends nothing here.
			if r, ok := answers[c.ID]; ok {
				reason = r
			} else {
				reason = fmt.Sprintf("command for sink %q was not sent", c.AggregateType)
			}
		} else {
			evs, reason = en.decide(ctx, tx, cache, c, w, i)
		}
		if reason != "" {
			reason = evokestore.Text(reason)
			x.rejected++
			out.Status, out.Error = evokestore.OutcomeRejected, reason
			if pm := en.processManager(c.ProcessManager); pm != nil && pm.DiscardPending(FailedCommand{Command: *c, Reason: reason}) {
				if discarded == nil {
					discarded = map[string]string{}
				}
				discarded[stepKey(c)] = c.ID
			}
			if c.ProcessManager != "" {
				data, err := json.Marshal(RejectionData{ProcessManager: c.ProcessManager, InstanceID: c.InstanceID, Command: *c, Reason: reason})
				if err != nil {
					return nil, fmt.Errorf("encode rejection of %s: %w", c.ID, err)
				}
				x.appends = append(x.appends, evokestore.NewEvent{
					ID: RejectionEventID(c.ID), StreamID: RejectionStreamID(c.ID), StreamVersion: 1,
					Type: TypeCommandRejected, Data: data, CorrelationID: correlation, CausationID: c.ID, Values: c.Values, RecordedAt: now,
				})
				x.owner = append(x.owner, i)
			}
		} else {
			as := cache[StreamID(c.AggregateType, c.AggregateID)]
			agg := en.aggregates[c.AggregateType]
			for j, ne := range evs {
				as.version++
				e := evokestore.NewEvent{
					ID: EventID(c.ID, j), StreamID: StreamID(c.AggregateType, c.AggregateID), StreamVersion: as.version,
					Type: ne.Type, Data: ne.Data, CorrelationID: correlation, CausationID: c.ID, Values: ne.Values, RecordedAt: now,
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
