package evoke

import (
	"context"
)

// Operator actions on failing and parked instances. They work
// whether or not the runtime is started; on a started runtime they run
// between its steps, so an instance still runs one step at a time. They
// fail with ErrNotFound, ErrNotParked or ErrNotOwner (through a node whose
// partitions do not hold the instance).

// Retry runs a failing or parked instance's held events again now, with a
// fresh attempt count: after a fix is deployed, the instance picks up where
// it stopped, its held events applied in order.
func (rt *Runtime) Retry(ctx context.Context, processManager, instanceID string) error {
	return rt.eng.Retry(ctx, processManager, instanceID)
}

// Skip drops the event a failing or parked instance is stuck on, recording
// that in its history, and runs its other held events.
func (rt *Runtime) Skip(ctx context.Context, processManager, instanceID string) error {
	return rt.eng.Skip(ctx, processManager, instanceID)
}

// Cancel ends an instance that has not completed: it becomes a cancelled
// tombstone, and its held events and deadlines are dropped.
func (rt *Runtime) Cancel(ctx context.Context, processManager, instanceID string) error {
	return rt.eng.Cancel(ctx, processManager, instanceID)
}

// RetryEvent correlates again an event that was parked for a process
// manager because its Correlate failed, and steps it if that now succeeds.
// The event reaches its instance after the events the instance took while
// this one was parked.
func (rt *Runtime) RetryEvent(ctx context.Context, processManager string, position int64) error {
	return rt.eng.RetryEvent(ctx, processManager, position)
}

// SkipEvent drops an event parked for a process manager, recording that in
// the process manager's history.
func (rt *Runtime) SkipEvent(ctx context.Context, processManager string, position int64) error {
	return rt.eng.SkipEvent(ctx, processManager, position)
}

// Idle reports whether the runtime has nothing to do now: every process
// manager has stepped every event of interest, the outbox holds no command
// to dispatch and no deadline is due. Tests use it (through
// evoketest.WaitIdle) to wait for the runtime's background work. A failing
// instance whose next attempt is due counts as work; one still waiting for
// it does not, nor do the commands of an instance parked because one of
// them could not be dispatched (they wait for an operator's Retry).
func (rt *Runtime) Idle(ctx context.Context) (bool, error) {
	return rt.eng.Idle(ctx)
}

// Purge deletes, now, the completed and cancelled instances and the command
// deduplication records older than Config.Retention (the runtime also does
// this every Config.PurgeInterval).
func (rt *Runtime) Purge(ctx context.Context) error {
	return rt.eng.Purge(ctx)
}
