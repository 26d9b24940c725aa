package evoke

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// Command asks an aggregate to do something.
type Command struct {
	// ID identifies the command. Commands a process manager produces get a
	// deterministic ID (process manager, instance, triggering event, index),
	// so that a redelivered command is recognised and takes effect once.
	ID string
	// Type names the command, e.g. "process_payment".
	Type string
	// AggregateType selects the registered aggregate, e.g. "payment".
	AggregateType string
	// AggregateID selects the aggregate instance. Its events are stored in
	// the stream StreamID(AggregateType, AggregateID).
	AggregateID string
	// Payload is the command's JSON payload; see Decode.
	Payload json.RawMessage
	// Metadata carries lineage and user key/values: for a command a process
	// manager produces, the runtime sets CausationID to the triggering
	// event's ID, CorrelationID to the event's correlation ID, and carries
	// the event's Values, the command's own set over them (a key set to ""
	// is removed; see Metadata).
	Metadata Metadata

	err error // from NewCommand, reported when the command is used
}

// NewCommand returns a command, mirroring evoq_command:new/4. The payload is
// encoded as JSON; an encoding error is reported when the command is
// dispatched or returned from Handle.
func NewCommand(commandType, aggregateType, aggregateID string, payload any) Command {
	c := Command{Type: commandType, AggregateType: aggregateType, AggregateID: aggregateID}
	c.Payload, c.err = marshalPayload(payload)
	if c.err != nil {
		c.err = fmt.Errorf("command %s: %w", commandType, c.err)
	}
	return c
}

// Decode unmarshals the command's payload into v.
func (c Command) Decode(v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return fmt.Errorf("decode command %s (%s): %w", c.ID, c.Type, err)
	}
	return nil
}

// validate checks the command against the input contract (see the package
// documentation): its ID (if set), type, aggregate type and ID, its stream
// and lineage are identifiers, and its payload JSON. Its metadata values
// are checked where they are encoded (encodeValues).
func (c Command) validate() error {
	if c.err != nil {
		return c.err
	}
	return errors.Join(
		evokestore.CheckID("command type", c.Type),
		evokestore.CheckID("aggregate type", c.AggregateType),
		evokestore.CheckID("aggregate id", c.AggregateID),
		checkStreamLen(c.AggregateType, c.AggregateID),
		evokestore.CheckOptionalID("command id", c.ID),
		evokestore.CheckOptionalID("correlation id", c.Metadata.CorrelationID),
		evokestore.CheckOptionalID("causation id", c.Metadata.CausationID),
		evokestore.CheckJSON("command payload", c.Payload),
	)
}

// CommandID returns the deterministic ID of the index-th command that
// process manager pm's instance produced on the event trigger (its ID and
// Position are used). IDs are UUIDs whose first 48 bits are a sort key, so
// that IDs made in log order sort (nearly) in log order: the trigger ID's
// own first 48 bits when it is a UUID of version 7 (a time) or 8 (as evoke
// derives the IDs of the events aggregates append for its commands), and
// otherwise the trigger's position.
func CommandID(pm, instanceID string, trigger Event, index int) string {
	return engine.CommandID(pm, instanceID, trigger.ID, trigger.Position, index)
}

// checkStreamLen checks that the stream of an aggregate, whose type and ID
// are checked identifiers, is not longer than an identifier may be.
func checkStreamLen(aggregateType, aggregateID string) error {
	if n := len(aggregateType) + 1 + len(aggregateID); n > evokestore.MaxIDLen {
		return fmt.Errorf("%w: aggregate stream id %s is %d bytes long, longer than %d", ErrInvalid,
			evokestore.Quote(StreamID(aggregateType, aggregateID)), n, evokestore.MaxIDLen)
	}
	return nil
}
