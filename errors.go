package evoke

import (
	"errors"
	"fmt"

	"github.com/evoke-go/evoke/evokestore"
)

// Sentinel errors.
var (
	// ErrInvalid reports input the runtime cannot take: an identifier or
	// payload outside the input contract (see the package documentation),
	// a malformed command or event, a payload that does not encode, a bad
	// configuration. It is evokestore.ErrInvalid, which the stores return.
	ErrInvalid = evokestore.ErrInvalid
	// ErrVersionConflict reports an append whose expected stream version
	// did not match.
	ErrVersionConflict = evokestore.ErrVersionConflict
	// ErrDuplicateEvent reports an append whose event ID exists already.
	ErrDuplicateEvent = evokestore.ErrDuplicateEvent
	// ErrUnknownAggregate reports a command for an aggregate type that is
	// not registered.
	ErrUnknownAggregate = errors.New("evoke: unknown aggregate type")
	// ErrAlreadyRegistered reports a second registration under one name.
	ErrAlreadyRegistered = errors.New("evoke: already registered")
	// ErrStarted reports a registration after Start.
	ErrStarted = errors.New("evoke: runtime already started")
	// ErrNotStarted reports a call that needs a started runtime.
	ErrNotStarted = errors.New("evoke: runtime not started")
	// ErrNotFound reports an instance, a process manager or an event that
	// is not there; evokeops, the web UI and the CLI report the same value.
	ErrNotFound = evokestore.ErrNotFound
	// ErrNotParked reports a Retry or Skip of an instance that is neither
	// failing nor parked, a Cancel of one that has ended, or a RetryEvent
	// or SkipEvent of an event that is not parked.
	ErrNotParked = evokestore.ErrNotParked
	// ErrNotOwner reports an operator action on an instance whose
	// partition another node leases: act through that node, or from the
	// store with evokeops.
	ErrNotOwner = evokestore.ErrNotOwner
)

// PanicError is a panic in user code (Correlate, Apply, Handle, Compensate,
// Execute), recovered and turned into an error on the affected instance.
type PanicError struct {
	// Where names the callback, e.g. "order_fulfillment.Handle".
	Where string
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack (runtime/debug.Stack).
	Stack []byte
}

// Error describes the panic and where it happened.
func (e *PanicError) Error() string { return fmt.Sprintf("panic in %s: %v", e.Where, e.Value) }

// StackTrace returns Stack. The runtime stores it, trimmed to the frames
// from the panicking function on, after the error's message as the
// instance's last error (what evoke show and the UI display), logs it,
// and passes it to telemetry (Telemetry.Stack).
func (e *PanicError) StackTrace() []byte { return e.Stack }

// RejectedError is a command's rejection by its aggregate (a business
// error), as recorded and passed to Compensate.
type RejectedError struct {
	// FailedCommand is the command and the aggregate's reason, as
	// Compensate would receive them.
	FailedCommand
}

// Error describes the rejected command and the reason.
func (e *RejectedError) Error() string {
	c := &e.Command
	return fmt.Sprintf("command %s (%s) rejected by %s %s: %s", c.ID, c.Type, c.AggregateType, c.AggregateID, e.Reason)
}
