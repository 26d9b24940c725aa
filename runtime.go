package evoke

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// Runtime runs registered process managers and aggregates on a store:
// it routes new events to process-manager instances, commits their steps,
// and dispatches their commands to aggregates.
type Runtime struct {
	store evokestore.Store
	cfg   Config
	eng   *engine.Engine

	mu      sync.Mutex
	names   map[string]bool
	started bool
}

// New returns a runtime on store. cfg may be nil for the defaults.
func New(store evokestore.Store, cfg *Config) (*Runtime, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalid)
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ec := engine.Config{
		Store: store, Logger: c.Logger, Clock: c.Clock, BatchSize: c.BatchSize, DispatchBatchSize: c.DispatchBatchSize, InlineDispatch: !c.QueueCommands,
		ChainDepth:    max(c.ChainDepth, 0),
		InstanceCache: max(c.InstanceCache, 0),
		Workers:       c.Workers, PollInterval: c.PollInterval, MaxAttempts: c.MaxAttempts, BackoffBase: c.BackoffBase, BackoffMax: c.BackoffMax,
		Retention: c.Retention, PurgeInterval: c.PurgeInterval,
		NodeID: c.NodeID, Partitions: c.Partitions, LeaseTTL: c.LeaseTTL,
		StepTimeout: max(c.StepTimeout, 0),
	}
	if c.Hooks != nil {
		ec.Hooks = hooksAdapter{c.Hooks}
		sh, ok := c.Hooks.(StepHooks)
		ec.StepTelemetry = ok && sh.TimesSteps()
	}
	return &Runtime{store: store, cfg: c, eng: engine.New(ec), names: map[string]bool{}}, nil
}

// Store returns the runtime's store.
func (rt *Runtime) Store() evokestore.Store { return rt.store }

func (rt *Runtime) register(kind, name string) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.started {
		return ErrStarted
	}
	if err := evokestore.CheckID(kind+" name", name); err != nil {
		return err
	}
	key := kind + ":" + name
	if rt.names[key] {
		return fmt.Errorf("%w: %s %q", ErrAlreadyRegistered, kind, name)
	}
	rt.names[key] = true
	return nil
}

// RegisterProcessManager adds a process manager to rt, before Start. opts
// may be nil for the defaults. A process manager with a method named like
// one of an optional interface (Compensate, Timeout, Deadlines, Completed,
// Status, Strict, OnFailure, DiscardPending, StateVersion, Upcasters) that
// does not implement it, by its signature or by a pointer receiver, is
// refused with ErrInvalid naming the signature wanted.
func RegisterProcessManager[S any](rt *Runtime, pm ProcessManager[S], opts *ProcessManagerOpts) error {
	if pm == nil {
		return fmt.Errorf("%w: nil process manager", ErrInvalid)
	}
	if err := checkOptional(pm); err != nil {
		return err
	}
	if err := newStateCodec(pm).check(); err != nil {
		return err
	}
	if len(pm.InterestedIn()) == 0 {
		return fmt.Errorf("%w: process manager %q is interested in no event types", ErrInvalid, pm.Name())
	}
	for _, typ := range pm.InterestedIn() {
		if err := evokestore.CheckID("event type", typ); err != nil {
			return fmt.Errorf("process manager %q: %w", pm.Name(), err)
		}
	}
	if reservedName(pm.Name()) {
		return fmt.Errorf("%w: process manager name %q begins with %q, which names sources", ErrInvalid, pm.Name(), SourcePrefix)
	}
	if err := rt.register("process manager", pm.Name()); err != nil {
		return err
	}
	var o ProcessManagerOpts
	if opts != nil {
		o = *opts
	}
	rt.eng.AddProcessManager(newPMAdapter(pm, rt.eng.StepTelemetry()), engine.Options{FromNow: o.StartFrom == FromNow, SuppressCatchup: o.SuppressCatchupCommands,
		StepTimeout: o.StepTimeout})
	return nil
}

// RegisterAggregate adds an aggregate under aggregateType (the command's
// AggregateType), before Start.
func RegisterAggregate[S any](rt *Runtime, aggregateType string, agg Aggregate[S]) error {
	if agg == nil {
		return fmt.Errorf("%w: nil aggregate", ErrInvalid)
	}
	if err := rt.register("aggregate", aggregateType); err != nil {
		return err
	}
	rt.eng.AddAggregate(&aggAdapter[S]{typ: aggregateType, agg: agg})
	return nil
}

// Start starts routing and dispatching in the background. It returns once
// every process manager has its checkpoint.
func (rt *Runtime) Start(ctx context.Context) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.started {
		return ErrStarted
	}
	if err := rt.eng.Start(ctx); err != nil {
		return err
	}
	rt.started = true
	return nil
}

// Stop stops the runtime and waits for its goroutines to finish their
// current transaction, or for ctx. Work not committed is redone after the
// next Start: nothing is lost.
func (rt *Runtime) Stop(ctx context.Context) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !rt.started {
		return nil
	}
	rt.started = false
	return rt.eng.Stop(ctx)
}

// Expected stream versions for Append.
const (
	// AnyVersion appends whatever the stream's version.
	AnyVersion int64 = -1
	// NoStream requires the stream not to exist yet.
	NoStream int64 = 0
)

// Append appends events to a stream atomically. expectedVersion is the
// stream's current version (NoStream for a new stream) or AnyVersion; a
// mismatch fails with ErrVersionConflict. Events without an ID get a random
// one; the returned events carry their positions. Append does not need a
// started runtime.
func (rt *Runtime) Append(ctx context.Context, streamID string, expectedVersion int64, events ...Event) ([]Event, error) {
	out, err := rt.AppendBatch(ctx, []StreamAppend{{StreamID: streamID, ExpectedVersion: expectedVersion, Events: events}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// StreamAppend is one stream's share of an AppendBatch.
type StreamAppend struct {
	StreamID string
	// ExpectedVersion is the stream's current version, NoStream or
	// AnyVersion.
	ExpectedVersion int64
	Events          []Event
}

// AppendBatch appends to several streams in one transaction: all of it
// commits or none of it does. It is the fast way to record many events.
func (rt *Runtime) AppendBatch(ctx context.Context, batch []StreamAppend) ([][]Event, error) {
	now := rt.cfg.Clock.Now()
	anyVersion := false
	var news []evokestore.NewEvent
	for _, a := range batch {
		if err := evokestore.CheckID("stream id", a.StreamID); err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		if a.ExpectedVersion < AnyVersion {
			return nil, fmt.Errorf("%w: append to %q: expected version %d", ErrInvalid, a.StreamID, a.ExpectedVersion)
		}
		anyVersion = anyVersion || a.ExpectedVersion == AnyVersion
		for i, e := range a.Events {
			if e.ID == "" {
				e.ID = newID()
			}
			ne, err := storeEvent(e, a.StreamID, a.ExpectedVersion+int64(i)+1, now)
			if err != nil {
				return nil, fmt.Errorf("append to %q: event %d: %w", a.StreamID, i, err)
			}
			news = append(news, ne)
		}
	}
	for attempt := 1; ; attempt++ {
		out := make([][]Event, len(batch))
		err := evokestore.WithTx(ctx, rt.store, func(tx evokestore.Tx) error {
			k := 0
			for _, a := range batch {
				if a.ExpectedVersion == AnyVersion && len(a.Events) > 0 {
					v, err := streamVersion(ctx, tx, a.StreamID)
					if err != nil {
						return err
					}
					for i := range a.Events {
						news[k+i].StreamVersion = v + int64(i) + 1
					}
				}
				k += len(a.Events)
			}
			recs, err := tx.AppendEvents(ctx, news)
			if err != nil {
				return err
			}
			k = 0
			for i, a := range batch {
				out[i] = make([]Event, len(a.Events))
				for j := range a.Events {
					out[i][j] = fromRecord(&recs[k])
					k++
				}
			}
			return nil
		})
		if err != nil && anyVersion && errors.Is(err, ErrVersionConflict) && attempt < 10 {
			continue
		}
		if err != nil && evokestore.IsConflict(err) && attempt < 10 {
			// The store failed the transaction for a conflict with
			// another: it appended nothing, and runs again.
			rt.eng.Counters().Conflicts.Add(1)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("append %d events: %w", len(news), err)
		}
		return out, nil
	}
}

// streamVersion returns a stream's current version (0 if it has none).
// storeEvent checks e and makes the store's event of it, at version of
// stream, recorded at now unless e says when.
func storeEvent(e Event, stream string, version int64, now time.Time) (evokestore.NewEvent, error) {
	if e.err != nil {
		return evokestore.NewEvent{}, e.err
	}
	values, err := encodeValues(e.Metadata.Values)
	if err != nil {
		return evokestore.NewEvent{}, err
	}
	data := e.Data
	if len(data) == 0 {
		data = []byte("{}")
	}
	at := e.RecordedAt
	if at.IsZero() {
		at = now
	}
	ne := evokestore.NewEvent{
		ID: e.ID, StreamID: stream, StreamVersion: version, Type: e.Type, Data: data,
		CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
		Values: values, RecordedAt: at,
	}
	if err := evokestore.CheckNewEvent(&ne); err != nil {
		return evokestore.NewEvent{}, err
	}
	return ne, nil
}

func streamVersion(ctx context.Context, q evokestore.Querier, streamID string) (int64, error) {
	past, err := q.ReadStream(ctx, streamID, 0)
	if err != nil || len(past) == 0 {
		return 0, err
	}
	return past[len(past)-1].StreamVersion, nil
}

// CommandResult is what dispatching a command gave.
type CommandResult struct {
	// Duplicate reports that the command ID had been executed before: the
	// recorded outcome is returned and nothing was done again.
	Duplicate bool
	// Events are the events the command caused now (none for a duplicate).
	Events []Event
}

// Dispatch executes a command against its aggregate now, in one
// transaction: the aggregate's events and the command's outcome commit
// together, and a command ID seen before is not executed again. A command
// without an ID gets a random one. The aggregate's rejection is returned as
// a *RejectedError. A command of a sink's aggregate type (RegisterSink) is
// sent to the sink, and its answer recorded, in the same way.
func (rt *Runtime) Dispatch(ctx context.Context, cmd Command) (CommandResult, error) {
	if err := cmd.validate(); err != nil {
		return CommandResult{}, err
	}
	if rt.eng.Aggregate(cmd.AggregateType) == nil && rt.eng.Sink(cmd.AggregateType) == nil {
		return CommandResult{}, fmt.Errorf("%w: %q", ErrUnknownAggregate, cmd.AggregateType)
	}
	values, err := encodeValues(cmd.Metadata.Values)
	if err != nil {
		return CommandResult{}, fmt.Errorf("dispatch %s: %w", cmd.Type, err)
	}
	if cmd.ID == "" {
		cmd.ID = newID()
	}
	oc := evokestore.OutboxCommand{
		ID: cmd.ID, Type: cmd.Type, AggregateType: cmd.AggregateType, AggregateID: cmd.AggregateID, Payload: cmd.Payload,
		CorrelationID: cmd.Metadata.CorrelationID, CausationID: cmd.Metadata.CausationID, Values: values,
		CreatedAt: rt.cfg.Clock.Now(),
	}
	res, err := rt.eng.Execute(ctx, []evokestore.OutboxCommand{oc})
	if err != nil {
		return CommandResult{}, fmt.Errorf("dispatch %s (%s): %w", cmd.ID, cmd.Type, err)
	}
	r := res[0]
	out := CommandResult{Duplicate: r.Duplicate}
	for i := range r.Events {
		out.Events = append(out.Events, fromRecord(&r.Events[i]))
	}
	if r.Outcome.Status == evokestore.OutcomeRejected {
		return out, &RejectedError{FailedCommand{Command: cmd, Reason: r.Outcome.Error}}
	}
	return out, nil
}

// CommandOutcomes returns what became of the commands with the given IDs
// that were executed, by ID: accepted (with how many events) or rejected
// (with the reason), and when. Commands not executed (still queued, or
// never issued) are absent. It finds a command run from the outbox or by
// Dispatch by its outcome record, and one run with the step that issued it
// by its events, whose IDs derive from the command's (the store's
// CommandOutcomes alone does not: such a command has no record of its own;
// on a store without evokestore.EventsReader, which cannot look events up
// by ID, only the records and the rejections are found, the aggregates of
// the commands being unknown here).
func (rt *Runtime) CommandOutcomes(ctx context.Context, ids ...string) (map[string]evokestore.CommandOutcome, error) {
	cmds := make([]evokestore.OutboxCommand, len(ids))
	for i, id := range ids {
		cmds[i].ID = id
	}
	out, err := engine.Outcomes(ctx, rt.store, cmds)
	if err != nil {
		return nil, fmt.Errorf("command outcomes: %w", err)
	}
	return out, nil
}

// StreamID returns the stream an aggregate instance's events are stored in.
func StreamID(aggregateType, aggregateID string) string {
	return engine.StreamID(aggregateType, aggregateID)
}

// Stats are the runtime's counters since New.
type Stats struct {
	// Steps counts the steps committed (an event applied and handled by
	// an instance); Batches the batches of steps prepared and written.
	Steps, Batches int64
	// Commands counts the commands steps issued (suppressed ones aside);
	// Dispatched those executed, with their step or from the outbox, and
	// Rejected those their aggregate rejected. (The store counts them for
	// every runtime that shares it: see evokestore.TallyReader.)
	Commands, Dispatched, Rejected int64
	// Failures counts failed steps committed (retried, parked, skipped or
	// stopped by the process manager's OnFailure); Parked the instances
	// parked, by a step or by a command that could not be dispatched;
	// Completed the instances completed (not the cancelled or stopped).
	Failures, Parked, Completed int64
	// Dropped events: for completed instances, stops for missing
	// instances, continues for missing instances of strict process
	// managers, deadlines the instance had moved past.
	DroppedCompleted, DroppedStop, DroppedStrict, DroppedStale int64
	// CorrelateErrors counts events parked because Correlate failed.
	CorrelateErrors int64
	// Suppressed counts commands dropped while catching up.
	Suppressed int64
	// Purged counts instances purged after the retention.
	Purged int64
	// LeaseLost counts transactions fenced off because this node had lost
	// a partition's lease.
	LeaseLost int64
	// Conflicts counts transactions the store failed for a conflict with
	// another (on PostgreSQL a deadlock, SQLSTATE 40P01, or a
	// serialization failure, 40001) and that ran again: a batch, a
	// dispatch, a firing of deadlines, an append. One is logged as a
	// warning; one that keeps failing past a few attempts as an error.
	Conflicts int64
	// InlineFallbacks counts batches whose commands, executed with their
	// steps, could not be written with them (a stream another writer
	// appended to, a store refusing the events) and were queued in the
	// outbox instead (see Config.QueueCommands).
	InlineFallbacks int64
	// StepTimeouts counts steps that overran their time bound (see
	// Config.StepTimeout).
	StepTimeouts int64
	// Chained counts steps committed as follow-on steps, in the
	// transaction that appended their events (see Config.ChainDepth);
	// ChainFallbacks counts batches written again without them (an event
	// committed meanwhile reached a chained instance, or the transaction
	// with them failed).
	Chained, ChainFallbacks int64
	// Where the process managers' routers spend their time: preparing
	// batches (reading the log, correlating, stepping, executing commands
	// ahead of the write), a prepared batch waiting for the one before it
	// to be written, and writing batches (the transactions, commit
	// included), summed over the process managers; Writes counts the
	// batches written. A store has one writer at a time (SQLite's write
	// lock; on PostgreSQL the append lock, from a batch's first append to
	// its commit), so with one process manager WriteTime over the wall time
	// is how busy the writer is, and near 1 it is what limits the
	// throughput.
	PrepareTime, WriteWait, WriteTime time.Duration
	Writes                            int64
}

// Stats returns the runtime's counters.
func (rt *Runtime) Stats() Stats {
	c := rt.eng.Counters()
	return Stats{
		Steps: c.Steps.Load(), Batches: c.Batches.Load(), Commands: c.Commands.Load(), Dispatched: c.Dispatched.Load(),
		Rejected: c.Rejected.Load(), Failures: c.Failures.Load(), Parked: c.Parked.Load(), Completed: c.Completed.Load(),
		DroppedCompleted: c.DroppedDone.Load(), DroppedStop: c.DroppedStop.Load(), DroppedStrict: c.DroppedStrict.Load(),
		DroppedStale: c.DroppedStale.Load(), CorrelateErrors: c.CorrelateErrs.Load(), Suppressed: c.Suppressed.Load(),
		Purged: c.Purged.Load(), LeaseLost: c.LeaseLost.Load(), Conflicts: c.Conflicts.Load(), InlineFallbacks: c.InlineFallbacks.Load(),
		Chained: c.Chained.Load(), ChainFallbacks: c.ChainFallbacks.Load(), StepTimeouts: c.StepTimeouts.Load(),
		PrepareTime: time.Duration(c.PrepareNanos.Load()), WriteWait: time.Duration(c.WaitNanos.Load()),
		WriteTime: time.Duration(c.WriteNanos.Load()), Writes: c.Writes.Load(),
	}
}
