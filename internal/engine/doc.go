// Package engine is evoke's untyped runtime: it routes events from the log
// to process-manager instances in batches, commits each batch of steps in
// one store transaction, and dispatches the outbox to aggregates. The root
// evoke package adapts the generic user API onto the interfaces here.
//
// The numbered files are the pipeline's stages, in the order an event goes
// through them:
//
//	00_engine.go      the Engine: configuration, the interfaces user code
//	                  implements, Start and Stop of its goroutines
//	01_router.go      a router per process manager: its loop, and the
//	                  pipeline that prepares a batch while the batches
//	                  before it are written (drain, prepare)
//	02_read.go        reading the log ahead of the batches, routing each
//	                  event once as it is read
//	03_route.go       route and correlate: which instances an event
//	                  reaches; loading the batch's instances
//	04_step.go        stepping an instance's events: the lifecycle
//	                  (tryGroup), a step's output (succeed) or failure (fail)
//	05_watchdog.go    bounding a step in wall-clock time
//	06_execute.go     executing commands against their aggregates: inline,
//	                  with the steps that issued them (settle), and the core
//	                  the outbox dispatcher shares (decideAll, writeAll)
//	07_chain.go       chaining: stepping the events a batch's commands
//	                  append, in the same batch, and landing them
//	08_write.go       writing a batch in one transaction and landing it
//	                  (counts, cache, telemetry)
//	09_dispatcher.go  the outbox dispatcher, and Execute (Runtime.Dispatch)
//	10_retry.go       retrying failing instances from their held events
//	11_scheduler.go   firing due deadlines as events in the log
//	12_leases.go      partition leases and fencing (several nodes)
//	13_ops.go         operator actions: retry, skip, cancel
//	14_janitor.go     purging old history and outcomes
//
// The unnumbered files hold what several stages use: the instance cache,
// IDs, command outcomes, telemetry hooks, conflict counting, panic stacks
// and permanent errors; sink.go sends the commands of aggregate types that
// live elsewhere (the dispatcher calls it before its transaction); replay.go
// steps a recorded event for a replay, writing nothing.
package engine
