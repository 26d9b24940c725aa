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
// the state), StatusReporter (a user-level status for logs, history and
// state machines) and Strict (no instance from a Continue).
//
// An Aggregate over its own state type decides on commands (Execute) and
// evolves from its events (Apply).
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
// Cancel). Deadlines are durable and fenced by the instance's version. See
// docs/design.md in the repository for how and why.
package evoke
