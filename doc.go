// Package evoke runs process managers (sagas) for event-sourced CQRS
// systems: long-running business processes that react to events, keep state
// across them, and dispatch commands to aggregates — with durable state,
// compensation and timeouts.
//
// # Writing a process manager
//
// A ProcessManager over a state type S names itself, lists the event types
// it reacts to, routes each event to an instance (Correlate: Start,
// Continue, Stop or Ignore; ByField, ByCorrelationID and ByFields/Key cover
// the usual strategies), evolves the state (Apply) and reacts (Handle)
// with new commands. Apply and Handle are pure, so a process manager is
// tested with plain function calls. Optional interfaces add behaviour:
// Compensator (undo when an aggregate rejects a command), Timeouter (an
// inactivity timeout), Deadliner (named deadlines), Completer (complete from
// the state), PhaseReporter (the process's phase for logs, history and
// state machines) and Strict (no instance from a Continue).
// RegisterProcessManager refuses a method named like one of theirs whose
// signature does not match, instead of leaving the behaviour off.
//
// Apply and Handle also receive three events the runtime makes itself,
// which InterestedIn does not list: CommandRejectedEvent after an aggregate
// rejected a command (Rejected returns it as a FailedCommand),
// TimeoutEvent when the inactivity timeout passed (IsTimeout) and
// DeadlineEvent when a named deadline passed (DeadlineOf returns the
// Deadline).
//
// An Aggregate over its own state type decides on commands (Execute) and
// evolves from its events (Apply).
//
// # Routing
//
// Correlate routes an event to one instance (Start, StartNew, Continue,
// Stop) or to several (Each, ContinueEach): "account frozen" for every
// transfer of the account. Each instance steps such an event once, in log
// order with its other events, with its own history, failures and parking,
// as if the event had been routed to it alone. StartNew is the strict
// start: on an instance that has stepped already, the event fails that
// instance's step with ErrAlreadyStarted. Apply, Handle and OnFailure read
// the instance they step from Event.InstanceID.
//
// # Failures
//
// A step fails when Apply, Handle or Compensate returns an error or
// panics, when the instance's state cannot be decoded, when Handle returns
// a command outside the input contract, when it overruns its time bound
// (Config.StepTimeout, 30 s by default; ErrStepTimeout) or on StartNew's
// ErrAlreadyStarted. Only that instance is affected; its later events wait,
// held. A FailureHandler decides what a failure means: retry with backoff
// (the default, parking after Config.MaxAttempts; an overrun parks at
// once), retry after a delay, skip the event, stop the instance or park it.
// A parked instance waits for an operator: Retry, Skip or Cancel.
//
// When an aggregate rejects a command, Compensate (a Compensator) returns
// the commands that undo the work, and Handle receives CommandRejectedEvent.
// The step's later commands still run, unless the process manager is a
// Discarder that discards them ("reserve" rejected, so "charge" never runs).
//
// # Running them
//
// New makes a Runtime on a store (evokesqlite for an embedded SQLite file,
// evokepg for PostgreSQL shared by several nodes). Register process managers
// and aggregates, Start it, and Append events or Dispatch commands:
//
//	rt, _ := evoke.New(store, nil)
//	evoke.RegisterProcessManager(rt, orderfulfillment.Fulfillment{}, nil)
//	evoke.RegisterAggregate(rt, "payment", orderfulfillment.Payment{})
//	rt.Start(ctx)
//	defer rt.Stop(ctx)
//
// # Existing logs and buses
//
// RegisterSink sends the commands of an aggregate type that lives in
// another service to a Sink (packages evokenats, evokeamqp, evokehttp),
// from the outbox, at least once, with the command's deterministic ID as
// the message ID; its answer is the command's outcome, as an aggregate's
// would be: accepted, rejected (Reject; the process manager compensates)
// or a transient failure, retried with backoff and then parked. Ingest
// appends the messages of an external log to the runtime's log once each,
// storing the source's position in the same transaction (packages
// evokenats and evokekafka read JetStream and Kafka with it), so that
// process managers run over events from elsewhere with every guarantee of
// the runtime's own log.
//
// # Metadata
//
// Every event and command has Metadata: a correlation ID, a causation ID
// and user Values (a tenant, a user, a trace context). The runtime carries
// them along the work, so that a key set on the event that starts a
// business process reaches every command and event it causes: a command a
// process manager produces carries the Values of the event it reacts to,
// and an event an aggregate appends carries the Values of its command. A
// command or event sets its own Values over the ones it carries, key by
// key, and removes one by setting it to "". A rejected command's Values
// reach the process manager on its $rejected event (and so Compensate's
// commands); timeouts and deadlines carry none. The W3C trace context
// travels the same way under TraceParentKey and TraceStateKey: package
// evokeotel writes it onto an event (Inject) and makes its spans children
// of the trace it finds there.
//
// # Reading instances
//
// ReadInstance returns an instance with its state typed, its phase
// (PhaseReporter), its status (the runtime's: running, parked, completed,
// …) and, once done, its outcome (how it ended: completed, compensated,
// timed_out, cancelled); ListInstances lists them by status or outcome;
// Runtime.History,
// HeldEvents and ParkedEvents return an instance's steps, the events it
// holds, and the events whose correlation failed.
//
// # Changing a process manager
//
// A process manager whose state type changed implements Versioned: its
// state version and an Upcaster from each older version. Stored states are
// upgraded when loaded and written back at the new version; a state that
// does not load parks its instance at once with a *StateError. Replay runs
// the recorded events of stored instances through the current code and
// reports each instance whose commands, statuses, completion or final
// state would differ, with the first differing step: run it (or
// evoketest.Replay) before deploying a change.
//
// # Input
//
// Both stores take the same input, checked where it enters the runtime and
// again by the stores (package evokestore holds the rules and their limits):
//
//   - Identifiers are 1 to evokestore.MaxIDLen (1024) bytes of valid UTF-8
//     without a NUL byte: event types and IDs, stream IDs, instance IDs
//     (what Correlate returns, and so each part of a Key), process-manager
//     names, aggregate types and IDs (and the stream StreamID makes of
//     them), command types and IDs, deadline names and metadata keys.
//     Correlation and causation IDs follow the same rules but may be empty.
//   - Event data and command payloads are JSON of at most
//     evokestore.MaxPayloadLen (4 MiB) bytes, valid UTF-8, whose \u escapes
//     of UTF-16 surrogates come in pairs. A \u0000 escape inside a payload
//     is data like any other; a field read as an instance ID must still
//     decode to an identifier. NewEvent and NewCommand refuse a value with
//     a string that is not valid UTF-8 (encoding/json would write it as
//     U+FFFD, so that different strings would read back alike). Metadata
//     values are valid UTF-8 and encode to at most evokestore.MaxPayloadLen
//     bytes.
//
// Append, AppendBatch and Dispatch fail with ErrInvalid, writing nothing,
// on input outside these rules, and so does a store's own AppendEvents.
// Input that user code returns while the runtime works costs at most its
// own event or instance: a command from Handle or Compensate, or a
// deadline name, fails the step (retried, then parked) of that instance
// only; an event from an aggregate's Execute rejects the command, as an
// error from Execute does; an instance ID from Correlate parks that event
// for the process manager, as a failed correlation does, and later events
// go on. Error texts and phases are stored with invalid UTF-8 and NUL
// bytes replaced (evokestore.Text).
//
// # Guarantees
//
// Each instance sees its events in log order and each event changes its
// state exactly once: a step's new state, its commands (an outbox), its
// deadlines, its history record and the subscription checkpoint commit in
// one transaction, many steps per transaction. Commands carry deterministic
// IDs and aggregates record each command's outcome under its ID in the same
// transaction as its events, so a command takes effect once however often
// it is delivered. A panic or error in user code affects one instance: it
// is retried with backoff, then parked for an operator (Retry, Skip,
// Cancel), or as its FailureHandler decides. Deadlines are durable and
// fenced by the instance's version. See
// docs/design.md in the repository for how and why.
package evoke
