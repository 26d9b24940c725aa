package evoke

import (
	"context"
	"errors"
	"fmt"

	"github.com/evoke-go/evoke/evokestore"
)

// Sink delivers the commands of an aggregate type that lives in another
// system: a service behind a message bus or an HTTP endpoint. Packages
// evokenats, evokeamqp and evokehttp hold sinks for NATS, RabbitMQ and
// HTTP.
//
// The dispatcher sends such a command from the outbox, never with the step
// that issued it, and outside any store transaction, at least once: the
// command's ID is deterministic, and a sink passes it on as the message ID
// or idempotency key, so that the receiver drops duplicates. Send's answer
// is the command's outcome: nil records it accepted (it appends no events;
// the receiver's own events reach the runtime through a source, if at all),
// an error made by Reject records it rejected with the reason (the issuing
// process manager's Compensate runs and Handle receives
// CommandRejectedEvent, as for an aggregate's rejection), and any other
// error is a transient failure: the command is sent again with backoff and
// its instance parked after Config.MaxAttempts failures. Send is bounded by
// Config.StepTimeout. The commands of one instance are sent one at a time,
// in order (a command waits for the answer to the one before it); those of
// different instances concurrently, so Send must be safe for concurrent
// use.
type Sink interface {
	Send(ctx context.Context, cmd Command) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, cmd Command) error

// Send calls f.
func (f SinkFunc) Send(ctx context.Context, cmd Command) error { return f(ctx, cmd) }

// RejectError is a sink's report that the receiver rejected a command.
type RejectError struct {
	Reason string
}

// Error returns the reason.
func (e *RejectError) Error() string { return "rejected: " + e.Reason }

// Reject returns the error with which a Sink reports that the receiver
// rejected its command for reason.
func Reject(reason string) error { return &RejectError{Reason: reason} }

// RegisterSink sends the commands of aggregateType, which no aggregate of
// rt handles, to sink, before Start. An aggregate type is either an
// aggregate's or a sink's.
func RegisterSink(rt *Runtime, aggregateType string, sink Sink) error {
	if sink == nil {
		return fmt.Errorf("%w: nil sink", ErrInvalid)
	}
	if err := evokestore.CheckID("aggregate type", aggregateType); err != nil {
		return err
	}
	if err := rt.register("aggregate", aggregateType); err != nil {
		return err
	}
	rt.eng.AddSink(aggregateType, sinkAdapter{sink})
	return nil
}

// sinkAdapter runs a Sink for the engine.
type sinkAdapter struct{ s Sink }

func (a sinkAdapter) Send(ctx context.Context, c *evokestore.OutboxCommand) (reason string, err error) {
	defer recovered(c.AggregateType+" sink", &err)
	err = a.s.Send(ctx, fromOutbox(c))
	if re, ok := errors.AsType[*RejectError](err); ok {
		return re.Reason, nil
	}
	return "", err
}
