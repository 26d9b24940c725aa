package evoke

import (
	"time"

	"github.com/evoke-go/evoke/internal/engine"
)

// FailureHandler is implemented by process managers that decide what a
// failed step means (Commanded's error/3, Axon's error handler,
// MassTransit's retry policies). A step fails when Apply, Handle or
// Compensate returns an error or panics, when the instance's state cannot
// be decoded, when Handle returns a command outside the input contract,
// when the step overruns its time bound (ErrStepTimeout) or when a StartNew
// reaches a running instance (ErrAlreadyStarted). OnFailure is called with
// the failure and returns what to do; like Handle it must be pure (it may
// be called again for the same failure when the runtime re-runs a batch).
// A panic in OnFailure counts as f.RetryWithBackoff().
//
//	func (orders) OnFailure(f evoke.Failure) evoke.FailureAction {
//		switch {
//		case errors.Is(f.Err, errUnknownSKU):
//			return f.Skip() // permanent: this event will never succeed
//		case errors.Is(f.Err, errFraud):
//			return f.Stop()
//		case errors.Is(f.Err, errWarehouseDown):
//			return f.RetryAfter(30 * time.Second)
//		}
//		return f.RetryWithBackoff()
//	}
//
// Without it, a failed step is retried with backoff (Config.BackoffBase,
// BackoffMax) and the instance parked after Config.MaxAttempts failures in
// a row; a step that overran its time bound parks at once.
type FailureHandler interface {
	OnFailure(f Failure) FailureAction
}

// Failure is a failed step, as OnFailure sees it.
type Failure struct {
	// InstanceID is the instance whose step failed.
	InstanceID string
	// Event is the event it was stepping, as Handle saw it (the runtime's
	// own events with their user-level types: $rejected, $timeout,
	// $deadline).
	Event Event
	// Err is the step's error: a *PanicError for a panic, ErrStepTimeout
	// for an overrun, ErrAlreadyStarted for a StartNew, or what Handle
	// returned (wrapped: use errors.Is and errors.As).
	Err error
	// Attempts counts the failures of this event in a row, this one
	// included: 1 the first time.
	Attempts int
}

// FailureAction is what OnFailure decides; the failure's methods make one:
// RetryWithBackoff, RetryAfter, Skip, Stop or Park.
type FailureAction struct {
	d engine.Decision
}

// RetryWithBackoff retries the step with the runtime's backoff and parks the
// instance after Config.MaxAttempts failures: what happens without a
// FailureHandler (a step that overran its time bound parks at once).
func (Failure) RetryWithBackoff() FailureAction { return FailureAction{} }

// RetryAfter retries the step after d (on the runtime's clock), whatever the
// number of attempts: OnFailure decides when to give up, by Failure.Attempts.
// The instance is failing meanwhile: its later events wait, held.
func (Failure) RetryAfter(d time.Duration) FailureAction {
	return FailureAction{engine.Decision{Action: engine.ActionRetry, Delay: max(d, 0)}}
}

// Skip passes over the event for this instance: its state, phase and
// deadlines stay as they were, its history records the event
// as skipped with the error, and it goes on with its next event (an
// operator's Skip, decided in code).
func (Failure) Skip() FailureAction { return FailureAction{engine.Decision{Action: engine.ActionSkip}} }

// Stop ends the instance: it becomes a cancelled tombstone, as an
// operator's Cancel makes it, keeping the error as its last error; its
// deadlines are dropped, its later events are dropped, and the commands its
// earlier steps issued still run.
func (Failure) Stop() FailureAction { return FailureAction{engine.Decision{Action: engine.ActionStop}} }

// Park parks the instance at once, with the event held, for an
// operator to retry, skip or cancel.
func (Failure) Park() FailureAction { return FailureAction{engine.Decision{Action: engine.ActionPark}} }

// String names the action: retry with backoff, retry after D, skip, stop
// or park.
func (a FailureAction) String() string {
	switch a.d.Action {
	case engine.ActionRetry:
		return "retry after " + a.d.Delay.String()
	case engine.ActionSkip:
		return "skip"
	case engine.ActionStop:
		return "stop"
	case engine.ActionPark:
		return "park"
	}
	return "retry with backoff"
}

// Discarder is implemented by process managers whose steps issue commands
// that depend on the earlier ones of the same step ("reserve" then
// "charge"): when an aggregate rejects one of a step's commands and
// DiscardPending returns true for it, the commands the step issued after
// it are not executed, on every path (inline with the step, from the
// outbox, chained). Each is recorded as discarded (a command outcome of
// status evokestore.OutcomeDiscarded naming the rejected command) and
// appends no event. The rejected command reaches Compensate and Handle as
// usual. Without it, or when it returns false, the later commands run
// (Commanded's continue_pending). Like Handle it must be pure.
type Discarder interface {
	DiscardPending(rejected FailedCommand) bool
}

// ErrStepTimeout is the error of a step that did not return within its time
// bound (Config.StepTimeout).
var ErrStepTimeout = engine.ErrStepTimeout

// ErrAlreadyStarted is the error of a step on an event correlated with
// StartNew to an instance that has stepped already.
var ErrAlreadyStarted = engine.ErrAlreadyStarted
