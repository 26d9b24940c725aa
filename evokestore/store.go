// Package evokestore defines the narrow interface between evoke's runtime and
// its storage backends, in the manner of database/sql/driver: the runtime is
// written against these types and each backend (evokesqlite, evokepg)
// implements them. Everything here works on bytes; the typed, generic user API
// lives in the root evoke package.
//
// A backend must make each Tx atomic and isolated: the runtime relies on one
// transaction per batch of steps to commit new states, outbox commands,
// history, held events, deadlines and checkpoints together.
//
// # Input contract
//
// Every backend takes the same input, so that what one store accepts the
// other accepts too and reads back byte for byte:
//
//   - Identifiers are between 1 and MaxIDLen bytes of valid UTF-8 without
//     a NUL byte (CheckID): event IDs, types and stream IDs, instance IDs,
//     process-manager names, command IDs and types, aggregate types and
//     IDs, deadline names, metadata keys. Correlation and causation IDs
//     follow the same rules but may be empty (CheckOptionalID).
//   - JSON payloads (event data, command payloads, metadata values) are
//     at most MaxPayloadLen bytes of valid JSON and valid UTF-8 whose \u
//     escapes of UTF-16 surrogates come in pairs (CheckJSON); metadata
//     values are a JSON object (CheckJSONObject). A \u0000 escape inside a
//     payload is allowed: payloads are stored as bytes. A store takes an
//     empty payload as none.
//   - Free text the runtime stores about instances (error texts, phases)
//     is passed through Text, which replaces invalid UTF-8 and NUL bytes.
//
// Tx.AppendEvents checks each event with CheckNewEvents and fails with
// ErrInvalid, appending nothing, when one breaks the contract. The runtime
// checks its input at the edges with the same functions, before anything
// reaches a store.
package evokestore

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every backend returns (wrapped or bare) so the runtime can
// react to them with errors.Is.
var (
	// ErrVersionConflict reports that an appended event's stream version is
	// already taken: another writer appended to the stream first.
	ErrVersionConflict = errors.New("evokestore: stream version conflict")
	// ErrDuplicateEvent reports that an appended event's ID already exists.
	ErrDuplicateEvent = errors.New("evokestore: duplicate event id")
	// ErrFenced reports that an instance write found a version other than the
	// one it expected: another writer stepped the instance, so this write must
	// not commit.
	ErrFenced = errors.New("evokestore: instance version fenced")
	// ErrDuplicateCommand reports that a command outcome for the same command
	// ID was already recorded.
	ErrDuplicateCommand = errors.New("evokestore: command already recorded")
	// ErrLeaseLost reports a write fenced because its node no longer holds
	// the lease of a partition it wrote to.
	ErrLeaseLost = errors.New("evokestore: partition lease lost")
	// ErrInvalid reports input outside the input contract (see the package
	// documentation): an identifier or payload a store does not take.
	ErrInvalid = errors.New("evokestore: invalid input")
	// ErrStoreNotFound reports that a backend asked to open an existing
	// store only (the MustExist option of evokesqlite and evokepg) found
	// none: the SQLite file or the PostgreSQL schema is missing, or holds no
	// evoke tables. Nothing was created.
	ErrStoreNotFound = errors.New("evokestore: no evoke store")
	// ErrNotFound reports an instance, a process manager or an event that
	// is not there. The operator actions of every layer (evoke.Runtime,
	// evokeops, the web UI, the CLI) report it with this one value
	// (evoke.ErrNotFound is the same).
	ErrNotFound = errors.New("evoke: not found")
	// ErrNotParked reports a retry or skip of an instance that is neither
	// failing nor parked (or holds no event), a cancel of one that has
	// ended, or an action on an event that is not parked for its process
	// manager (evoke.ErrNotParked is the same).
	ErrNotParked = errors.New("evoke: not failing or parked")
	// ErrNotOwner reports an operator action, through a runtime, on an
	// instance whose partition another node leases: act through that
	// node, or from the store with evokeops (evoke.ErrNotOwner is the
	// same).
	ErrNotOwner = errors.New("evoke: partition leased by another node")
)

// Topic names a class of committed change that wakes waiting workers.
type Topic string

// The topics a store signals after a commit that wrote to them.
const (
	TopicEvents    Topic = "events"
	TopicOutbox    Topic = "outbox"
	TopicDeadlines Topic = "deadlines"
)

// Store is a storage backend.
type Store interface {
	Querier
	// Begin starts a write transaction. Backends serialise or isolate
	// writers as needed; a Tx must be committed or rolled back. Cancelling
	// ctx before Commit rolls the transaction back and frees its resources.
	Begin(ctx context.Context) (Tx, error)
	// Subscribe returns a channel that receives a value (coalesced, never
	// blocking the writer) after each commit that wrote to topic, from this
	// process or, where the backend can tell, from others. cancel releases it.
	Subscribe(topic Topic) (wake <-chan struct{}, cancel func())
	// Backend names the backend ("sqlite", "postgres").
	Backend() string
	// Close releases the store's resources.
	Close() error
}

// Querier holds the reads, usable on a Store or inside a Tx.
type Querier interface {
	// ReadLog returns events after q.After in position order.
	ReadLog(ctx context.Context, q LogQuery) ([]Event, error)
	// ReadStream returns one stream's events with version > afterVersion, in
	// version order.
	ReadStream(ctx context.Context, streamID string, afterVersion int64) ([]Event, error)
	// Head returns the highest committed position (0 for an empty log).
	Head(ctx context.Context) (int64, error)
	// Instances loads the named instances of one process manager; missing
	// ones are absent from the result.
	Instances(ctx context.Context, processManager string, ids []string) ([]Instance, error)
	// ListInstances lists instances for inspection.
	ListInstances(ctx context.Context, q InstanceQuery) ([]Instance, error)
	// Checkpoint returns a subscription checkpoint; ok is false if none.
	Checkpoint(ctx context.Context, processManager string, partition int) (cp Checkpoint, ok bool, err error)
	// Outbox returns pending commands in sequence order.
	Outbox(ctx context.Context, q OutboxQuery) ([]OutboxCommand, error)
	// CommandOutcomes returns the recorded outcomes of the given command IDs.
	// A command the runtime executed with the step that issued it, and
	// that appended events, has no record: its events are
	// (evoke.Runtime.CommandOutcomes finds those too).
	CommandOutcomes(ctx context.Context, ids []string) ([]CommandOutcome, error)
	// Held returns the events held for one instance (instanceID "" for
	// events whose correlation failed), in position order.
	Held(ctx context.Context, processManager, instanceID string) ([]HeldEvent, error)
	// History returns one instance's history in order.
	History(ctx context.Context, processManager, instanceID string) ([]HistoryRecord, error)
	// DueDeadlines returns deadlines due at or before now, earliest first.
	DueDeadlines(ctx context.Context, now time.Time, limit int) ([]Deadline, error)
	// NextDeadline returns the earliest deadline; ok is false if none.
	NextDeadline(ctx context.Context) (d Deadline, ok bool, err error)
	// Stats counts what the store holds.
	Stats(ctx context.Context) (Stats, error)
}

// StreamsReader is an optional extension of a Querier (database/sql/driver
// style: the runtime discovers it by type assertion). ReadStreams returns
// the events of several streams in one query, ordered by stream ID and then
// version; the dispatcher uses it to load a batch's aggregates at once.
type StreamsReader interface {
	ReadStreams(ctx context.Context, streamIDs []string) ([]Event, error)
}

// EventsReader is an optional extension of a Querier: ReadEvents returns
// the events with the given IDs, in log order; IDs not in the log are
// absent. The runtime finds the outcome of a command executed inline (with
// the step that issued it, so without an outcome record of its own) by the
// IDs of its events, which derive from the command's ID.
type EventsReader interface {
	ReadEvents(ctx context.Context, ids []string) ([]Event, error)
}

// DeadlinesReader is an optional extension of a Querier: the deadlines of
// some instances of one process manager, ordered by instance ID and then
// due time. The inspection UI shows each instance's next deadline with it.
type DeadlinesReader interface {
	InstanceDeadlines(ctx context.Context, processManager string, instanceIDs []string) ([]Deadline, error)
}

// TallyReader is an optional extension of a Querier: counts the inspection
// UI and its /metrics show.
type TallyReader interface {
	// Tally counts executed commands and how done instances ended. The
	// commands found by their events are counted from the log, a scan: with
	// since, a tally taken before (nil: none), Tally reads only the events
	// after since.Until and adds them to since's.
	Tally(ctx context.Context, since *Tally) (Tally, error)
	// Ended counts, per process manager, the instances that ended (their
	// CompletedAt) in each of n intervals of length every from since on:
	// counts[pm][i] is for [since+i*every, since+(i+1)*every). Each slice
	// has n counts.
	Ended(ctx context.Context, since time.Time, every time.Duration, n int) (map[string][]int64, error)
}

// Tally counts executed commands and how done instances ended.
type Tally struct {
	// Executed counts the commands executed: those with an outcome
	// record, and those executed inline (with the step that issued them)
	// that appended events or a rejection, which have none (their events
	// are their record: an event whose ID derives from the command's and
	// whose causation ID is the command's). Rejected counts the rejected
	// ones among them.
	Executed, Rejected int64
	// Outcomes counts done instances per process manager and outcome.
	Outcomes map[string]map[InstanceOutcome]int64
	// Until is the log position up to which the tally read the log.
	// ByEvents and RejectedByEvents count, among Executed and Rejected,
	// the commands it found by their events (those executed inline, and
	// the rejections of process managers' commands, which append a
	// CommandRejected event).
	Until, ByEvents, RejectedByEvents int64
}

// DeadlinesDeleter is an optional extension of a Tx: DeleteDeadlines
// deletes each deadline as Tx.DeleteDeadline does, in one call (on a
// server, one round trip), and reports for each whether it was deleted.
type DeadlinesDeleter interface {
	DeleteDeadlines(ctx context.Context, ds []Deadline) (deleted []bool, err error)
}

// Purger is an optional extension of a Tx: retention. Purge deletes up to
// limit instances that completed or were cancelled before before (their
// tombstones), with their history, held events and deadlines, and up to
// limit command outcomes (the aggregates' deduplication records) recorded
// before before.
type Purger interface {
	Purge(ctx context.Context, before time.Time, limit int) (PurgeResult, error)
}

// PurgeResult counts what a Purge deleted.
type PurgeResult struct {
	Instances       int
	CommandOutcomes int
}

// Lease is a node's claim on a partition of the instances. Token grows each
// time the partition changes hands, so a write fenced by (partition, node,
// token) cannot commit once the lease moved on.
type Lease struct {
	Partition int
	Node      string
	Token     int64
}

// Leaser is an optional Store extension for running several nodes on one
// store: each partition is owned by at most one live node at a time.
type Leaser interface {
	// Balance, in one transaction, records node as alive for ttl (by the
	// store's clock), which keeps the leases it holds valid for as long;
	// releases those above its fair share (partitions divided by live
	// nodes, rounded up) and takes free partitions, or those of nodes no
	// longer alive, up to it. It returns the leases node holds afterwards,
	// in partition order.
	Balance(ctx context.Context, node string, partitions int, ttl time.Duration) ([]Lease, error)
	// Leave releases node's leases and forgets it.
	Leave(ctx context.Context, node string) error
}

// LeaseReader is an optional extension of a Store with Leaser: the
// partitions' leases as they stand, for inspection (which node steps an
// instance, and whether it is alive).
type LeaseReader interface {
	PartitionLeases(ctx context.Context) ([]PartitionLease, error)
}

// PartitionLease is one partition's lease as the store holds it. Node is
// "" when no node holds the partition. AliveUntil is when the node's
// heartbeat expires (zero if the store forgot the node), and Alive whether
// it still runs, both by the store's clock.
type PartitionLease struct {
	Lease
	AliveUntil time.Time
	Alive      bool
}

// LeaseChecker is an optional Tx extension used with Leaser: CheckLeases
// fails with ErrLeaseLost unless node still holds every given lease (same
// token, node still alive), and keeps those leases from changing hands until the
// transaction ends, so that no write of a node that lost its lease commits.
type LeaseChecker interface {
	CheckLeases(ctx context.Context, node string, leases []Lease) error
}

// WriteDeferrer is an optional Tx extension for stores that talk to a
// server: after DeferWrites, a write that returns nothing but an error may
// be held back and sent with the next call that needs the server's reply
// (an append, a read, DeleteDeadline, Purge) or with Commit, saving a round trip
// each. The error of a held-back write is then returned by that later call
// (wrapping the same sentinels, such as ErrFenced or ErrLeaseLost, as it
// would have returned itself), and the transaction must be rolled back as
// after any failed call. A caller that tells its calls' errors apart (as
// the conformance suite does) must not use it; evoke's router, which rolls
// back a batch on any error, does.
type WriteDeferrer interface {
	DeferWrites()
}

// AppendReader is an optional extension of a Tx, for a store whose calls
// cost a round trip: AppendEventsAfter reads the events of the log that q
// selects (q.Until is ignored; skip lists ranges of positions, inclusive, to
// pass over), as the Tx sees them once it holds the right to append, then
// appends events as AppendEvents does, in one round trip. Nothing is
// committed between the two: every event read precedes the appended ones,
// and every event committed before them after q.After and outside skip is
// read (up to q.Limit). evoke's router checks, before committing a batch
// that ran steps ahead (chained), that no event committed meanwhile reaches
// those steps' instances; with this, that check costs no round trip of its
// own while the append lock is held.
type AppendReader interface {
	AppendEventsAfter(ctx context.Context, q LogQuery, skip [][2]int64, events []NewEvent) (read, appended []Event, err error)
}

// Tx is a write transaction. Its writes become visible together at Commit.
type Tx interface {
	Querier
	// AppendEvents appends events at the stream versions they name. It fails
	// with ErrVersionConflict or ErrDuplicateEvent, or with ErrInvalid for an
	// event outside the input contract (CheckNewEvents), and assigns
	// positions in order. The returned events carry their positions and RecordedAt.
	AppendEvents(ctx context.Context, events []NewEvent) ([]Event, error)
	// PutInstances inserts (PrevVersion -1) or updates instances, fenced: an
	// update whose stored version is not PrevVersion, or an insert of an
	// existing instance, fails with ErrFenced.
	PutInstances(ctx context.Context, writes []InstanceWrite) error
	// InsertOutbox adds commands to the outbox; the store assigns Seq. A
	// command whose ID is already in the outbox is ignored.
	InsertOutbox(ctx context.Context, cmds []OutboxCommand) error
	// DeleteOutbox removes dispatched commands.
	DeleteOutbox(ctx context.Context, seqs []int64) error
	// PutCommandOutcomes records what aggregates made of commands; a command
	// ID already recorded fails with ErrDuplicateCommand.
	PutCommandOutcomes(ctx context.Context, outcomes []CommandOutcome) error
	// InsertHistory appends history records.
	InsertHistory(ctx context.Context, records []HistoryRecord) error
	// PutCheckpoint stores a subscription checkpoint.
	PutCheckpoint(ctx context.Context, cp Checkpoint) error
	// PutCheckpoints stores several checkpoints.
	PutCheckpoints(ctx context.Context, cps []Checkpoint) error
	// Hold stores events held for an instance until it is released.
	Hold(ctx context.Context, held []HeldEvent) error
	// Release deletes held events.
	Release(ctx context.Context, processManager, instanceID string, positions []int64) error
	// ReplaceDeadlines replaces all deadlines of the listed instances of
	// one process manager with deadlines (each of which belongs to one of
	// them), so that one call serves a whole batch of steps.
	ReplaceDeadlines(ctx context.Context, processManager string, instanceIDs []string, deadlines []Deadline) error
	// DeleteDeadline deletes one deadline if it is still stored with the
	// same name and Version (DueAt is ignored); deleted reports whether it
	// was. The deadline scheduler fires a deadline only if it deleted it,
	// so that one deadline never fires twice.
	DeleteDeadline(ctx context.Context, d Deadline) (deleted bool, err error)
	Commit() error
	Rollback() error
}

// Event is a recorded event.
type Event struct {
	Position      int64
	ID            string
	StreamID      string
	StreamVersion int64
	Type          string
	Data          []byte
	CorrelationID string
	CausationID   string
	// Values is the JSON object of user metadata, or nil.
	Values     []byte
	RecordedAt time.Time
}

// NewEvent is an event to append.
type NewEvent struct {
	ID            string
	StreamID      string
	StreamVersion int64
	Type          string
	Data          []byte
	CorrelationID string
	CausationID   string
	Values        []byte
	RecordedAt    time.Time
}

// LogQuery selects events from the global log.
type LogQuery struct {
	After int64
	// Types, if not empty, restricts the result to these event types.
	Types []string
	// Until, if > 0, restricts the result to positions <= Until; readers
	// bound their scans to a window of positions with it.
	Until int64
	// Limit caps the number of events; 0 means the backend's default (1000).
	Limit int
}

// InstanceStatus is the runtime's status of a process-manager instance.
type InstanceStatus string

// Instance statuses.
const (
	StatusRunning      InstanceStatus = "running"
	StatusCompensating InstanceStatus = "compensating"
	// StatusFailing: a step failed and is retried with backoff.
	StatusFailing   InstanceStatus = "failing"
	StatusParked    InstanceStatus = "parked"
	StatusCompleted InstanceStatus = "completed"
	StatusCancelled InstanceStatus = "cancelled"
)

// Statuses lists every instance status, running first and the final ones
// last.
var Statuses = []InstanceStatus{StatusRunning, StatusCompensating, StatusFailing, StatusParked, StatusCompleted, StatusCancelled}

// Done reports whether the status is final (a tombstone).
func (s InstanceStatus) Done() bool { return s == StatusCompleted || s == StatusCancelled }

// Stuck reports whether the instance waits for a retry or an operator
// (failing or parked): it holds its new events instead of stepping them.
func (s InstanceStatus) Stuck() bool { return s == StatusFailing || s == StatusParked }

// InstanceOutcome is how a done instance ended, as `evoke list`, `evoke
// show` and the UI show it beside its status.
type InstanceOutcome string

// Instance outcomes.
const (
	// EndCompleted: the process manager completed the instance and it
	// never stepped a command rejection.
	EndCompleted InstanceOutcome = "completed"
	// EndCompensated: the instance stepped a command rejection (its
	// Compensate ran) during its life, before or after it completed. A
	// live instance carries it as soon as it steps one, ahead of its end.
	EndCompensated InstanceOutcome = "compensated"
	// EndTimedOut: the step that completed the instance was a deadline
	// ($timeout or a named deadline), and it stepped no rejection.
	EndTimedOut InstanceOutcome = "timed_out"
	// EndCancelled: an operator cancelled the instance.
	EndCancelled InstanceOutcome = "cancelled"
)

// Outcomes lists every instance outcome.
var Outcomes = []InstanceOutcome{EndCompleted, EndCompensated, EndTimedOut, EndCancelled}

// Instance is a stored process-manager instance.
type Instance struct {
	ProcessManager string
	ID             string
	Partition      int
	State          []byte
	// Version counts the instance's committed steps.
	Version int64
	Status  InstanceStatus
	// Phase is the phase reported by the process manager
	// (evoq's status field), for logs and inspection.
	Phase string
	// LastPosition is the log position of the last event stepped.
	LastPosition  int64
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	CompletedAt   time.Time
	// Outcome is how the instance ended once it is done; while it runs it
	// is empty, or EndCompensated once it stepped a command rejection.
	// FinalOutcome reads it.
	Outcome InstanceOutcome
}

// FinalOutcome returns how a done instance ended ("" while it runs). A done
// instance stored without an outcome reads as completed, or cancelled.
func (in *Instance) FinalOutcome() InstanceOutcome {
	switch {
	case !in.Status.Done():
		return ""
	case in.Status == StatusCancelled:
		return EndCancelled
	case in.Outcome == "":
		return EndCompleted
	}
	return in.Outcome
}

// InstanceWrite is a fenced instance write.
type InstanceWrite struct {
	Instance
	// PrevVersion is the version the writer loaded, or -1 for a new
	// instance.
	PrevVersion int64
}

// InstanceQuery selects instances to list.
type InstanceQuery struct {
	ProcessManager string // "" for all
	Status         InstanceStatus
	// Outcome, if set, selects done instances that ended so.
	Outcome InstanceOutcome
	// IDPrefix, if set, selects instances whose ID starts with it.
	IDPrefix string
	// CreatedBefore and CreatedAfter, if set, select instances created
	// before, or after, that time.
	CreatedBefore, CreatedAfter time.Time
	Limit                       int
	// AfterID pages through results ordered by (process manager, id).
	AfterProcessManager, AfterID string
}

// Checkpoint is a subscription position of one process manager partition.
type Checkpoint struct {
	ProcessManager string
	Partition      int
	Position       int64
	// CatchupUntil is the log head when the process manager was first
	// deployed; events at or below it are catch-up.
	CatchupUntil int64
}

// OutboxQuery selects pending commands.
type OutboxQuery struct {
	After int64
	Limit int
	// Partitions, if not nil, restricts the result to commands of these
	// partitions.
	Partitions []int
	// Instances, if not nil, restricts the result to commands of these
	// instances of ProcessManager. The runtime asks it before executing a
	// step's commands in the step's own transaction: an instance with
	// commands still pending must have its new ones queued behind them.
	// Partitions and Instances do not combine.
	ProcessManager string
	Instances      []string
}

// OutboxCommand is a command waiting to be dispatched.
type OutboxCommand struct {
	Seq            int64
	ID             string
	ProcessManager string
	InstanceID     string
	Partition      int
	Type           string
	AggregateType  string
	AggregateID    string
	Payload        []byte
	CorrelationID  string
	CausationID    string
	Values         []byte
	CreatedAt      time.Time
}

// Command outcome statuses.
const (
	OutcomeAccepted = "accepted"
	OutcomeRejected = "rejected"
	// OutcomeDiscarded: not executed, because an earlier command of the
	// step that issued it was rejected and its process manager discards
	// the rest of such a step (evoke.Discarder). Error names the
	// rejected command.
	OutcomeDiscarded = "discarded"
)

// CommandOutcome is what an aggregate made of a command; it is also the
// aggregate's deduplication record.
type CommandOutcome struct {
	CommandID      string
	Type           string
	AggregateType  string
	AggregateID    string
	ProcessManager string
	InstanceID     string
	Status         string
	Error          string
	Events         int
	RecordedAt     time.Time
}

// History record kinds.
const (
	KindStep    = "step"
	KindDropped = "dropped"
	KindFailed  = "failed"
	KindParked  = "parked"
	KindRetried = "retried"
	KindSkipped = "skipped"
	KindCancel  = "cancelled"
)

// HistoryRecord is one entry in an instance's timeline.
type HistoryRecord struct {
	ID             int64
	ProcessManager string
	InstanceID     string
	Kind           string
	// Version is the instance version after a step.
	Version     int64
	Position    int64
	EventID     string
	EventType   string
	PhaseBefore string
	PhaseAfter  string
	// Commands is a JSON array of the commands the step produced.
	Commands   []byte
	Error      string
	RecordedAt time.Time
	// Node is the node that wrote the record, and LeaseToken the token of
	// the partition lease it held (0 without leases).
	Node       string
	LeaseToken int64
}

// HeldEvent is an event kept for an instance that cannot take it now.
type HeldEvent struct {
	ProcessManager string
	InstanceID     string
	Position       int64
	Error          string
}

// Deadline is a durable timer of an instance, fenced by Version: it fires
// only if the instance is still at that version when it is due.
type Deadline struct {
	ProcessManager string
	InstanceID     string
	Name           string
	DueAt          time.Time
	Version        int64
}

// Stats counts what a store holds.
type Stats struct {
	Events int64
	Head   int64
	Outbox int64
	// Commands and Rejected count the command outcome records (of the
	// commands executed from the outbox or by Runtime.Dispatch, and of
	// those executed inline that appended nothing), and how many of them
	// are rejections. A command executed inline that appended events has
	// no record: its events are (TallyReader counts those too).
	Commands int64
	Rejected int64
	// Instances counts instances per process manager and status.
	Instances map[string]map[InstanceStatus]int64
}
