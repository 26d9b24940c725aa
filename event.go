package evoke

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/evoke-go/evoke/evokestore"
)

// Event is a fact recorded in the log.
type Event struct {
	// ID is unique across the log.
	ID string
	// Type names the event, e.g. "OrderPlaced".
	Type string
	// StreamID is the stream (usually an aggregate) the event belongs to.
	StreamID string
	// StreamVersion is the event's 1-based version within its stream.
	StreamVersion int64
	// Position is the event's place in the global log, strictly increasing.
	// Apply and Handle see 0 for an event stepped in the transaction that
	// appends it (a chained step, see Config.ChainDepth: an event an
	// aggregate appends for a command of the same batch has no position
	// yet), and the same event may be stepped with its real position
	// instead (when the batch is written again without chained steps, or
	// chaining is off). A process manager therefore must not base
	// decisions on Position; ID, Type, Data, Metadata and RecordedAt are
	// the same either way.
	Position int64
	// Data is the event's JSON payload; see Decode.
	Data json.RawMessage
	// Metadata carries lineage and user key/values.
	Metadata Metadata
	// RecordedAt is when the event was appended. Process managers read time
	// from here, never from a clock, so that replays see the same time.
	RecordedAt time.Time
	// InstanceID is the process-manager instance the event is delivered to,
	// as Correlate routed it: set on the events Apply, Handle and OnFailure
	// receive (an event routed to several instances with Each is delivered
	// to each with its own), empty elsewhere. It is not stored with the
	// event.
	InstanceID string

	err error // from NewEvent, reported when the event is appended
	// checked is the data NewEvent made and checked against the input
	// contract: while Data is still that slice, it need not be checked
	// again (dataChecked).
	checked []byte
}

// Metadata carries an event's or command's lineage and user key/values.
//
// The runtime carries metadata along the work: a command a process manager
// produces (from Handle or Compensate) has the correlation ID of the event
// it reacts to, that event's ID as causation ID, and that event's Values;
// an event an aggregate appends for a command has the command's
// correlation ID, the command's ID as causation ID, and the command's
// Values. A command's or event's own Values are set over the ones it
// carries, key by key, and a key it sets to "" is removed. The $rejected
// event a process manager sees for a rejected command carries that
// command's Values, so that Compensate's commands carry them too; timeouts
// and deadlines carry none. Events a caller appends (Append) and commands
// it dispatches (Dispatch) have only the Values the caller gives them.
type Metadata struct {
	// CorrelationID ties together everything one business process caused.
	CorrelationID string
	// CausationID is the ID of the message that directly caused this one.
	CausationID string
	// Values holds user key/values, such as a tenant, a user or a trace
	// context (the W3C keys TraceParentKey and TraceStateKey, which package
	// evokeotel writes and reads). Keys are identifiers (see the package
	// documentation); a command's or event's Values are carried onto the
	// work it causes.
	Values map[string]string
}

// Metadata keys of the W3C trace context (https://www.w3.org/TR/trace-context/),
// carried in Metadata.Values like any other key, so that one trace spans a
// business process from the event that starts it to the last command.
// Package evokeotel writes them (Inject) and reads them.
const (
	TraceParentKey = "traceparent"
	TraceStateKey  = "tracestate"
)

// NewEvent returns an event of the given type with data encoded as JSON, for
// Aggregate.Execute to return or Runtime.Append to record. An encoding error
// is reported when the event is appended.
func NewEvent(eventType string, data any) Event {
	e := Event{Type: eventType}
	e.Data, e.err = marshalPayload(data)
	e.checked = e.Data
	if e.err != nil {
		e.err = fmt.Errorf("event %s: %w", eventType, e.err)
	}
	return e
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return &DecodeError{EventID: e.ID, EventType: e.Type, Position: e.Position, Err: err}
	}
	return nil
}

// Decode returns the event's data decoded as T.
func Decode[T any](e Event) (T, error) {
	var v T
	err := e.Decode(&v)
	return v, err
}

// DecodeError reports event data that does not decode.
type DecodeError struct {
	EventID   string
	EventType string
	Position  int64
	Err       error
}

// Error names the event that did not decode and why.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode event %s (%s at position %d): %v", e.EventID, e.EventType, e.Position, e.Err)
}

// Unwrap returns the JSON error.
func (e *DecodeError) Unwrap() error { return e.Err }

// marshalPayload encodes v as JSON; raw JSON and nil pass through. A
// string that is not valid UTF-8 is refused: encoding/json would write each
// invalid byte as \ufffd (an escape it writes for nothing else), and two
// different IDs would then read back as one.
func marshalPayload(v any) (json.RawMessage, error) {
	switch p := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		if len(p) == 0 {
			return nil, fmt.Errorf("%w: payload is not valid JSON", ErrInvalid)
		}
		return p, evokestore.CheckJSON("payload", p)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: encode payload: %v", ErrInvalid, err)
	}
	if replacedInvalidUTF8(b) {
		return nil, fmt.Errorf("%w: payload has a string that is not valid UTF-8", ErrInvalid)
	}
	// What json.Marshal writes is valid JSON and UTF-8, and escapes no
	// surrogate: only its length is left to check.
	if len(b) > evokestore.MaxPayloadLen {
		return nil, fmt.Errorf("%w: payload is %d bytes long, longer than %d", ErrInvalid, len(b), evokestore.MaxPayloadLen)
	}
	return b, nil
}

// newID returns a random, time-ordered UUID (version 7).
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// dataChecked reports whether e's data is the data NewEvent made and
// checked. (Should a caller change those bytes in place, the store's own
// check still refuses what breaks the input contract.)
func (e *Event) dataChecked() bool {
	return len(e.Data) > 0 && len(e.Data) == len(e.checked) && &e.Data[0] == &e.checked[0]
}

// replacedInvalidUTF8 reports whether json.Marshal's output b holds the
// escape \ufffd, which it writes for invalid UTF-8 only (a U+FFFD in a
// string is written as itself). A backslash written as \\ before "ufffd"
// is not an escape: the backslashes before the u must be odd in number.
func replacedInvalidUTF8(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`ufffd`))
		if i < 0 {
			return false
		}
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		b = b[i+5:]
	}
}
