// Package wire carries an evoke command in the headers of a message or a
// request, for the sinks that send commands to aggregates living elsewhere
// (evokenats, evokehttp, evokeamqp): the payload is the body, and the
// command's ID, type, aggregate, lineage and metadata values travel as text
// headers that the receiving side reads back.
package wire

import (
	"encoding/json"
	"fmt"

	"github.com/evoke-go/evoke"
)

// Names says which header carries each part of a command. A part whose
// name is "" is not written or read here: the transport carries it in a
// property of its own (AMQP's message ID, type and correlation ID).
type Names struct {
	ID, Type, AggregateType, AggregateID, CorrelationID, CausationID string
	// Values carries the metadata values as one JSON object.
	Values string
}

// The header names of NATS and HTTP, in their canonical form.
const (
	CommandID     = "Evoke-Command-Id"
	CommandType   = "Evoke-Command-Type"
	AggregateType = "Evoke-Aggregate-Type"
	AggregateID   = "Evoke-Aggregate-Id"
	CorrelationID = "Evoke-Correlation-Id"
	CausationID   = "Evoke-Causation-Id"
	Values        = "Evoke-Values"
)

// Canonical carries every part in the canonical headers.
var Canonical = Names{ID: CommandID, Type: CommandType, AggregateType: AggregateType, AggregateID: AggregateID,
	CorrelationID: CorrelationID, CausationID: CausationID, Values: Values}

// Encode writes cmd's parts through set. The ID, type and aggregate are
// always written; the lineage and the values only when there are any.
func (n Names) Encode(cmd evoke.Command, set func(name, value string)) {
	put := func(name, v string, always bool) {
		if name != "" && (always || v != "") {
			set(name, v)
		}
	}
	put(n.ID, cmd.ID, true)
	put(n.Type, cmd.Type, true)
	put(n.AggregateType, cmd.AggregateType, true)
	put(n.AggregateID, cmd.AggregateID, true)
	put(n.CorrelationID, cmd.Metadata.CorrelationID, false)
	put(n.CausationID, cmd.Metadata.CausationID, false)
	if len(cmd.Metadata.Values) > 0 && n.Values != "" {
		b, _ := json.Marshal(cmd.Metadata.Values) // a map of strings always encodes
		set(n.Values, string(b))
	}
}

// Decode reads into cmd the parts n names, through get, which returns a
// header's value or "". A command without an ID or a type, or with values
// that are not a JSON object of strings, fails with evoke.ErrInvalid.
func (n Names) Decode(get func(name string) string, cmd *evoke.Command) error {
	read := func(name string, to *string) {
		if name != "" {
			*to = get(name)
		}
	}
	read(n.ID, &cmd.ID)
	read(n.Type, &cmd.Type)
	read(n.AggregateType, &cmd.AggregateType)
	read(n.AggregateID, &cmd.AggregateID)
	read(n.CorrelationID, &cmd.Metadata.CorrelationID)
	read(n.CausationID, &cmd.Metadata.CausationID)
	if cmd.ID == "" || cmd.Type == "" {
		return fmt.Errorf("%w: carries no command", evoke.ErrInvalid)
	}
	if n.Values == "" {
		return nil
	}
	if v := get(n.Values); v != "" {
		if err := json.Unmarshal([]byte(v), &cmd.Metadata.Values); err != nil {
			return fmt.Errorf("%w: command %s: values: %v", evoke.ErrInvalid, cmd.ID, err)
		}
	}
	return nil
}
