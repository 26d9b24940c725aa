package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// System event types the engine writes to the log and routes itself.
const (
	// TypeCommandRejected records an aggregate's rejection of a command a
	// process manager issued; it is routed to that instance's Compensate.
	TypeCommandRejected = "$evoke.CommandRejected"
	// TypeDeadline records a due deadline; it is routed to its instance.
	TypeDeadline = "$evoke.Deadline"
)

// Clock tells the time and makes timers; tests inject a virtual one.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// Route is where Correlate sends an event.
type Route struct {
	Kind RouteKind
	ID   string
	Err  error
	// Each holds the single-instance routes of a RouteEach, at most one
	// per instance ID.
	Each []Route
}

// targets calls yield with each instance route of rt: rt itself when it
// names one instance, each of Each for RouteEach, none otherwise.
func (rt Route) targets(yield func(Route) bool) {
	switch rt.Kind {
	case RouteIgnore, RouteError:
	case RouteEach:
		for _, t := range rt.Each {
			if !yield(t) {
				return
			}
		}
	default:
		if rt.ID != "" {
			yield(rt)
		}
	}
}

// reaches reports whether rt routes to instance id.
func (rt Route) reaches(id string) bool {
	for t := range rt.targets {
		if t.ID == id {
			return true
		}
	}
	return false
}

// RouteKind mirrors evoke.CorrelationKind.
type RouteKind uint8

// Route kinds.
const (
	RouteIgnore RouteKind = iota
	RouteStart
	RouteContinue
	RouteStop
	RouteError
	// RouteStartNew starts a new instance; for one that has stepped
	// already, the event fails (ErrAlreadyStarted).
	RouteStartNew
	// RouteEach routes to every route of Each.
	RouteEach
	routeSystem // engine-routed system events
)

// Command is a command produced by a step, before the engine assigns its ID
// and lineage.
type Command struct {
	Type          string
	AggregateType string
	AggregateID   string
	Payload       []byte
	Values        []byte
}

// StepResult is the outcome of one step.
type StepResult struct {
	// Took is how long the process manager's Apply and Handle ran, when
	// the engine has telemetry hooks (else 0).
	Took      time.Duration
	State     any
	Commands  []Command
	Phase     string
	Completed bool
	Deadlines []NamedDeadline
}

// NamedDeadline is a deadline the process manager asked for.
type NamedDeadline struct {
	Name string
	At   time.Time
}

// FailedCommand is a rejected command handed to Compensate.
type FailedCommand struct {
	Command evokestore.OutboxCommand
	Reason  string
}

// ProcessManager is the untyped view of a registered process manager. The
// adapter recovers panics in user code and returns them as errors.
type ProcessManager interface {
	Name() string
	Types() []string
	Correlate(e *evokestore.Event) Route
	Strict() bool
	Timeout() time.Duration
	// Load decodes a stored state; nil means a new instance.
	Load(state []byte) (any, error)
	Save(state any) ([]byte, error)
	// Phase reports the phase of a state (evoke.PhaseReporter).
	Phase(state any) string
	// Step runs Apply then Handle for one event of instance id.
	Step(state any, id string, e *evokestore.Event) (StepResult, error)
	// HasDeadlines reports whether the process manager sets named
	// deadlines.
	HasDeadlines() bool
	// Compensate asks for compensating commands; ok false means skip.
	Compensate(state any, failed FailedCommand) (cmds []Command, ok bool, err error)
	// OnFailure decides what a failed step means; DecideDefault leaves it
	// to the runtime.
	OnFailure(f Failure) Decision
	// DiscardPending reports whether the commands its step issued after a
	// rejected command are discarded rather than executed.
	DiscardPending(failed FailedCommand) bool
}

// Failure is a failed step, as OnFailure sees it.
type Failure struct {
	InstanceID string
	Event      *evokestore.Event
	Err        error
	// Attempts counts the failures of this event in a row, this one
	// included.
	Attempts int
}

// Decision is what is done with a failed step.
type Decision struct {
	Action Action
	// Delay is the wait before the retry of ActionRetry.
	Delay time.Duration
}

// Action is the kind of a Decision.
type Action uint8

// Actions, mirrored by the root package's FailureAction.
const (
	// ActionDefault retries with backoff up to MaxAttempts, then parks
	// (a step that overran its time bound parks at once).
	ActionDefault Action = iota
	// ActionRetry retries after Decision.Delay, whatever the attempts.
	ActionRetry
	// ActionSkip passes over the event: the instance goes on as if it had
	// not come.
	ActionSkip
	// ActionStop ends the instance: it is cancelled, keeping the error.
	ActionStop
	// ActionPark parks the instance at once.
	ActionPark
)

// ErrStepTimeout reports a step that did not return within its time bound.
var ErrStepTimeout = errors.New("step did not return within its time bound")

// ErrAlreadyStarted reports a StartNew for an instance that has stepped.
var ErrAlreadyStarted = errors.New("instance already started")

// Aggregate is the untyped view of a registered aggregate.
type Aggregate interface {
	Type() string
	New() any
	Apply(state any, e *evokestore.Event) (any, error)
	// Execute decides on a command; an error is a business rejection.
	Execute(state any, cmd *evokestore.OutboxCommand) ([]NewEvent, error)
}

// NewEvent is an event an aggregate emits.
type NewEvent struct {
	Type   string
	Data   []byte
	Values []byte
}

// Options configure how one process manager is run.
type Options struct {
	// FromNow starts a newly deployed process manager at the log head
	// instead of the origin.
	FromNow bool
	// SuppressCatchup drops the commands of steps on events that were in
	// the log when the process manager was first deployed.
	SuppressCatchup bool
	// StepTimeout bounds one step's Apply and Handle (and Compensate) in
	// wall-clock time; 0 takes Config.StepTimeout.
	StepTimeout time.Duration
}

// Config configures an Engine; the root package fills defaults.
type Config struct {
	Store             evokestore.Store
	Logger            *slog.Logger
	Clock             Clock
	BatchSize         int
	DispatchBatchSize int
	Workers           int
	PollInterval      time.Duration
	MaxAttempts       int
	BackoffBase       time.Duration
	BackoffMax        time.Duration
	Hooks             Hooks
	// StepTelemetry sends a TelemetryStep for every committed step.
	StepTelemetry bool
	Retention     time.Duration
	PurgeInterval time.Duration
	// NodeID names this node in leases and history.
	NodeID string
	// Partitions is how many partitions instances are spread over.
	Partitions int
	// LeaseTTL is how long a partition lease lasts without renewal.
	LeaseTTL time.Duration
	// InlineDispatch executes a step's commands in the step's own
	// transaction when their aggregates are registered here and their
	// instance has none queued; the others wait in the outbox.
	InlineDispatch bool
	// InstanceCache is how many instances each router keeps in memory
	// between batches (cache.go); 0 keeps none.
	InstanceCache int
	// ChainDepth is how many rounds of follow-on steps a batch prepares
	// (07_chain.go); 0 runs none.
	ChainDepth int
	// StepTimeout bounds a step in wall-clock time (05_watchdog.go); 0 or less
	// leaves steps unbounded.
	StepTimeout time.Duration
}

// Engine runs registered process managers and aggregates.
type Engine struct {
	cfg        Config
	store      evokestore.Store
	log        *slog.Logger
	routers    []*router
	aggregates map[string]Aggregate
	// sinks deliver the commands of aggregate types that live elsewhere.
	sinks    map[string]Sink
	answers  answers
	counters Counters

	// busy counts batches committing or committed but not yet counted
	// (router writes, dispatcher passes), so that Idle does not report idle
	// before the counters and telemetry of what the store shows are done.
	busy atomic.Int64
	// parked are the instances the dispatcher parked.
	parked parkedSet

	// leaser is the store's lease manager, nil for a single-node store.
	leaser      evokestore.Leaser
	leases      atomic.Pointer[leaseSet]
	lastBalance time.Time // touched by Start and the lease loop only

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	running bool
}

// Counters are the engine's running totals.
type Counters struct {
	Steps         atomic.Int64
	Batches       atomic.Int64
	Commands      atomic.Int64
	Dispatched    atomic.Int64
	Rejected      atomic.Int64
	Failures      atomic.Int64
	Parked        atomic.Int64
	Completed     atomic.Int64
	DroppedDone   atomic.Int64 // events for completed instances
	DroppedStop   atomic.Int64 // stops for missing instances
	DroppedStrict atomic.Int64 // continues for missing instances of strict process managers
	DroppedStale  atomic.Int64 // deadlines the instance moved past
	CorrelateErrs atomic.Int64
	Suppressed    atomic.Int64 // commands dropped during catch-up
	Purged        atomic.Int64 // instances purged after the retention
	LeaseLost     atomic.Int64 // transactions fenced off by a lost lease
	// Conflicts counts transactions the store failed for a conflict
	// (evokestore.IsConflict) and that are run again.
	Conflicts atomic.Int64
	// InlineFallbacks counts batches whose commands, executed ahead, could
	// not be written with the steps and were queued instead.
	InlineFallbacks atomic.Int64
	// StepTimeouts counts steps that overran their time bound.
	StepTimeouts atomic.Int64
	// Chained counts steps committed as follow-on steps, in the
	// transaction that appended their events (07_chain.go).
	Chained atomic.Int64
	// ChainFallbacks counts batches written again without their
	// follow-on steps.
	ChainFallbacks atomic.Int64
	// The routers' time, in nanoseconds: preparing batches (reading,
	// correlating, stepping, executing commands ahead), a prepared batch
	// waiting for the one before it to be written, and writing batches
	// (their transactions, fallbacks and commit included); Writes counts
	// the batches written.
	PrepareNanos, WaitNanos, WriteNanos, Writes atomic.Int64
}

// New returns an engine; register before Start.
func New(cfg Config) *Engine {
	if cfg.Hooks == nil {
		cfg.Hooks = NopHooks{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if _, ok := deadlinesReader(nil, cfg.Store); !ok {
		// The dispatcher's park cannot move an instance's version with its
		// deadlines (dispatcher.park), so nothing may be cached.
		cfg.InstanceCache = 0
	}
	en := &Engine{cfg: cfg, store: cfg.Store, log: cfg.Logger, aggregates: map[string]Aggregate{}}
	if l, ok := cfg.Store.(evokestore.Leaser); ok && cfg.LeaseTTL > 0 {
		en.leaser = l
	} else {
		en.leases.Store(allPartitions(cfg.Partitions))
	}
	return en
}

// deadlinesReader returns what lists an instance's deadlines for the
// dispatcher's park: tx itself, or else the store. Read from the store, the
// deadlines are still those of the version the park writes over: a step
// committed in between moved the version, and the park's fenced write
// fails. New enables the instance cache on the same condition, so that a
// cache never exists without the park moving the version.
func deadlinesReader(tx evokestore.Tx, store evokestore.Store) (evokestore.DeadlinesReader, bool) {
	if dr, ok := tx.(evokestore.DeadlinesReader); ok {
		return dr, true
	}
	dr, ok := store.(evokestore.DeadlinesReader)
	return dr, ok
}

// Counters returns the engine's totals.
func (en *Engine) Counters() *Counters { return &en.counters }

// AddProcessManager registers a process manager.
func (en *Engine) AddProcessManager(pm ProcessManager, opts Options) {
	types := append([]string(nil), pm.Types()...)
	interest := make(map[string]bool, len(types))
	for _, t := range types {
		interest[t] = true
	}
	types = append(types, TypeCommandRejected, TypeDeadline)
	bound := en.cfg.StepTimeout
	if opts.StepTimeout != 0 {
		bound = max(opts.StepTimeout, 0)
	}
	en.routers = append(en.routers, &router{en: en, pm: pm, opts: opts, types: types, interest: interest, name: pm.Name(),
		usesDeadlines: pm.Timeout() > 0 || pm.HasDeadlines(), kick: make(chan struct{}, 1), cache: newInstCache(en.cfg.InstanceCache),
		stepTimeout: bound})
}

// AddAggregate registers an aggregate.
func (en *Engine) AddAggregate(a Aggregate) { en.aggregates[a.Type()] = a }

// Aggregate returns a registered aggregate.
func (en *Engine) Aggregate(typ string) Aggregate { return en.aggregates[typ] }

// Start initialises checkpoints and starts the engine's goroutines.
func (en *Engine) Start(ctx context.Context) error {
	en.mu.Lock()
	defer en.mu.Unlock()
	if en.running {
		return fmt.Errorf("engine already running")
	}
	if en.leaser != nil {
		if err := en.balance(ctx); err != nil {
			return fmt.Errorf("take partition leases: %w", err)
		}
	}
	for _, r := range en.routers {
		if err := r.initCheckpoints(ctx); err != nil {
			return err
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	en.cancel = cancel
	en.done = make(chan struct{})
	en.running = true
	var wg sync.WaitGroup
	for _, r := range en.routers {
		wg.Go(func() { r.run(runCtx) })
	}
	d := &dispatcher{en: en}
	wg.Go(func() { d.run(runCtx) })
	s := &scheduler{en: en}
	wg.Go(func() { s.run(runCtx) })
	j := &janitor{en: en}
	wg.Go(func() { j.run(runCtx) })
	if en.leaser != nil {
		wg.Go(func() { en.leaseLoop(runCtx) })
	}
	go func() { wg.Wait(); close(en.done) }()
	return nil
}

// Stop stops the engine and waits for its goroutines, or for ctx.
func (en *Engine) Stop(ctx context.Context) error {
	en.mu.Lock()
	if !en.running {
		en.mu.Unlock()
		return nil
	}
	en.cancel()
	done := en.done
	en.running = false
	en.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop engine: %w", ctx.Err())
	}
}

// wait blocks until wake, the poll interval, or ctx; it reports false when
// ctx is done.
func (en *Engine) wait(ctx context.Context, wake <-chan struct{}, d time.Duration) bool {
	awoken(ctx, d, wake, nil)
	return ctx.Err() == nil
}

// awoken waits up to d for a signal on wake or kick (nil: none), or for
// ctx, and reports whether a signal came.
func awoken(ctx context.Context, d time.Duration, wake, kick <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		return true
	case <-kick:
		return true
	case <-t.C:
		return false
	}
}

// backoff returns the delay before retry attempt n (1-based): exponential
// from BackoffBase, capped at BackoffMax, with full jitter in its upper half.
func (en *Engine) backoff(n int) time.Duration {
	d := en.cfg.BackoffBase
	for i := 1; i < n && d < en.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, en.cfg.BackoffMax)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// systemTarget is the routing part of a system event's data.
type systemTarget struct {
	ProcessManager string `json:"process_manager"`
	InstanceID     string `json:"instance_id"`
	Version        int64  `json:"version,omitempty"`
}

// RejectionData is the data of a TypeCommandRejected event.
type RejectionData struct {
	ProcessManager string                   `json:"process_manager"`
	InstanceID     string                   `json:"instance_id"`
	Command        evokestore.OutboxCommand `json:"command"`
	Reason         string                   `json:"reason"`
}

// DeadlineData is the data of a TypeDeadline event.
type DeadlineData struct {
	ProcessManager string    `json:"process_manager"`
	InstanceID     string    `json:"instance_id"`
	Version        int64     `json:"version"`
	Name           string    `json:"name"`
	At             time.Time `json:"at"`
}

func decodeTarget(e *evokestore.Event) (systemTarget, error) {
	var t systemTarget
	err := json.Unmarshal(e.Data, &t)
	return t, err
}

// StepTelemetry reports whether the engine sends a TelemetryStep for every
// committed step (the process managers then time their steps).
func (en *Engine) StepTelemetry() bool { return en.cfg.StepTelemetry }
