package evoke

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"
)

// Config configures a Runtime. The zero value is usable: every field has a
// documented default, filled in by New.
type Config struct {
	// Logger receives the runtime's logs, including the state-transition
	// log "process <id>: <from> -> <to> on <EventType>" at Info.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Clock tells the time. Defaults to the system clock.
	Clock Clock
	// BatchSize is how many events one process manager steps per
	// transaction, chained follow-on steps (ChainDepth) included: a batch
	// that chains reads fewer events, as many as its steps allow (512 order
	// sagas of four steps by default). It bounds the memory a process
	// manager holds. Larger batches amortise the commit (see
	// docs/benchmarks.md); under light load batches are as small as the
	// events waiting. Defaults to 2048.
	BatchSize int
	// DispatchBatchSize is how many outbox commands are executed per
	// transaction. Defaults to 1024.
	DispatchBatchSize int
	// QueueCommands makes every command wait in the outbox and be
	// executed by the dispatcher in a transaction of its own. By default a
	// step's commands to aggregates registered with this runtime are
	// executed in the step's own transaction: the new state, the command's
	// deduplication record and its events commit together, which saves the
	// outbox round trip (about a third of the writes of a saga) and the
	// wait for the dispatcher. A command still goes through the outbox when
	// its aggregate is not registered here, when its instance has commands
	// queued before it, or when executing it with the step fails (a stream
	// another writer appended to, a store refusing the events); the
	// dispatcher then retries it with backoff and parks the instance if it
	// keeps failing. Set it when aggregates are slow (their Execute calls
	// out), so that they do not lengthen the steps' transactions.
	QueueCommands bool
	// InstanceCache is how many instances each process manager keeps in
	// memory between batches, as it committed them, so that a saga's next
	// step need not read its instance back from the store (on PostgreSQL
	// the costliest query of a step). Only running instances are kept, in
	// two generations of half the size each; what changes an instance
	// from outside the runtime moves its version (evokeops.Cancel) or
	// leaves it stopped (evokeops.Retry and Skip act on failing and parked
	// instances, which are never cached), so a stale entry can only fail a
	// write as fenced, which drops the cache and retries. The default size
	// added ~35 MB of peak RSS to evoke bench's runs (garbage collector
	// headroom included). Defaults to 32768; negative keeps none.
	InstanceCache int
	// ChainDepth bounds the follow-on steps a batch runs ahead. The
	// events a batch's inline commands will append are stepped at once,
	// for the batch's own instances, and so are the events of the commands
	// those steps issue, for up to ChainDepth rounds: a saga whose steps
	// all run inline can complete in one transaction, with one instance
	// write, instead of one transaction per step. An instance that a later
	// event in the log reaches is not chained (the router reads the log
	// ahead of its batches to know), nor are the steps past BatchSize. The
	// follow-on steps are prepared off the store's writer; the writer only
	// checks, after appending, that no event committed meanwhile by
	// someone else reached a chained instance (each instance sees its
	// events in log order), and otherwise writes the batch again without
	// them. A chained step's event has no log position yet when Handle sees
	// it: its Position is 0 (its history record and the instance's last
	// position get the real one; see Event.Position). Defaults to 8;
	// negative disables it (each event is then stepped by a later batch).
	// It has no effect with QueueCommands.
	ChainDepth int
	// Workers is how many goroutines step the instances of one batch in
	// parallel (one instance still runs one step at a time). Defaults to
	// GOMAXPROCS.
	Workers int
	// PollInterval is the fallback poll when no wake-up arrives; wake-ups
	// are pushed by the store. Defaults to 1s.
	PollInterval time.Duration
	// MaxAttempts is how many times a failing step is tried before its
	// instance is parked. Defaults to 5.
	MaxAttempts int
	// BackoffBase is the first retry delay; it doubles per attempt, with
	// jitter. Defaults to 100ms.
	BackoffBase time.Duration
	// BackoffMax caps the retry delay. Defaults to 30s.
	BackoffMax time.Duration
	// Hooks receives telemetry. Defaults to none.
	Hooks Hooks
	// Retention is how long completed and cancelled instances (their
	// tombstones and history) and the aggregates' command deduplication
	// records (of commands run from the outbox or by Runtime.Dispatch; a
	// command run with the step that issued it is recorded by its events,
	// which stay) are kept. An event for an instance purged from the store
	// would start it again, and a command redelivered after its record is
	// purged would run again, so keep it well above the longest gap between
	// an instance's events. Negative disables purging. Defaults to 7 days.
	Retention time.Duration
	// PurgeInterval is how often the runtime purges what is older than
	// Retention. Defaults to 1h.
	PurgeInterval time.Duration
	// Partitions is how many partitions instances are spread over (by a
	// hash of the instance ID). On a store shared by several nodes (one
	// implementing evokestore.Leaser, such as evokepg), each partition is
	// leased to one node at a time, so it bounds how many nodes can share
	// the work. Every node must use the same value, and it must not change
	// for a store's lifetime. Defaults to 16.
	Partitions int
	// NodeID names this node in leases and in the instance history.
	// Defaults to host name, process ID and a random suffix.
	NodeID string
	// StepTimeout bounds one step in wall-clock time: Correlate excepted,
	// the calls into a process manager for one event (Apply, Handle,
	// Compensate and the optional methods after them) must return within
	// it. A step that overruns fails its instance with ErrStepTimeout,
	// which parks it at once unless the process manager's OnFailure
	// decides otherwise, while the other instances go on. Go cannot stop a
	// goroutine: the overrunning call keeps its goroutine until it
	// returns, and its result is dropped. Per process manager,
	// ProcessManagerOpts.StepTimeout overrides it. Defaults to 30s;
	// negative leaves steps unbounded.
	StepTimeout time.Duration
	// LeaseTTL is how long a node's partition leases last without renewal
	// (renewed every third of it): a node that dies or stalls has its
	// partitions taken over after about this long. Only stores that lease
	// partitions use it. Defaults to 5s.
	LeaseTTL time.Duration
}

// DefaultConfig returns the documented defaults that New fills in for a
// zero field: the sizes, counts and durations. Logger, Clock and NodeID are
// left zero (New uses slog.Default(), the system clock and a name of its
// own making).
func DefaultConfig() Config {
	return Config{
		BatchSize:         2048,
		DispatchBatchSize: 1024,
		Workers:           runtime.GOMAXPROCS(0),
		InstanceCache:     32768,
		ChainDepth:        8,
		MaxAttempts:       5,
		PollInterval:      time.Second,
		BackoffBase:       100 * time.Millisecond,
		BackoffMax:        30 * time.Second,
		Retention:         7 * 24 * time.Hour,
		PurgeInterval:     time.Hour,
		Partitions:        16,
		LeaseTTL:          5 * time.Second,
		StepTimeout:       30 * time.Second,
	}
}

// withDefaults returns a copy of c (nil allowed) with defaults filled in,
// or an error for a value that cannot work.
func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Clock == nil {
		out.Clock = systemClock{}
	}
	d := DefaultConfig()
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&out.BatchSize, d.BatchSize)
	def(&out.DispatchBatchSize, d.DispatchBatchSize)
	def(&out.Workers, d.Workers)
	def(&out.InstanceCache, d.InstanceCache)
	def(&out.ChainDepth, d.ChainDepth)
	def(&out.MaxAttempts, d.MaxAttempts)
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defd(&out.PollInterval, d.PollInterval)
	defd(&out.BackoffBase, d.BackoffBase)
	defd(&out.BackoffMax, d.BackoffMax)
	defd(&out.Retention, d.Retention)
	defd(&out.PurgeInterval, d.PurgeInterval)
	def(&out.Partitions, d.Partitions)
	defd(&out.LeaseTTL, d.LeaseTTL)
	defd(&out.StepTimeout, d.StepTimeout)
	if out.NodeID == "" {
		host, _ := os.Hostname()
		out.NodeID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[24:])
	}
	switch {
	case out.BatchSize < 0 || out.DispatchBatchSize < 0 || out.Workers < 0 || out.MaxAttempts < 0 || out.Partitions < 0:
		return out, fmt.Errorf("%w: config: negative size", ErrInvalid)
	case out.PollInterval < 0 || out.BackoffBase < 0 || out.BackoffMax < out.BackoffBase:
		return out, fmt.Errorf("%w: config: bad durations (poll %v, backoff %v..%v)", ErrInvalid, out.PollInterval, out.BackoffBase, out.BackoffMax)
	}
	return out, nil
}

// StartFrom says where a newly deployed process manager starts reading the
// log.
type StartFrom uint8

// Start positions.
const (
	// FromOrigin replays the whole log (the default).
	FromOrigin StartFrom = iota
	// FromNow starts at the log head: only events appended later count.
	FromNow
)

// ProcessManagerOpts are per-registration options; nil means the defaults.
type ProcessManagerOpts struct {
	// StartFrom applies the first time the process manager runs against
	// a store (no checkpoint yet). Defaults to FromOrigin.
	StartFrom StartFrom
	// SuppressCatchupCommands drops (and records in the history, marked
	// suppressed) the commands of steps on events that were already in the
	// log when the process manager was first deployed, so that catching up
	// on old events rebuilds state without acting again.
	SuppressCatchupCommands bool
	// StepTimeout overrides Config.StepTimeout for this process manager;
	// 0 keeps the runtime's, negative leaves its steps unbounded.
	StepTimeout time.Duration
}
