// Package evokenats connects evoke to NATS: a Source that ingests a
// JetStream stream into the runtime's log, and Sinks that publish commands
// to NATS subjects.
//
// # Source
//
// A Source reads a JetStream stream with an ordered consumer and appends
// each message to the runtime's log as an event (evoke.Runtime.Ingest), a
// batch per transaction that also stores the stream sequence it reached in
// evoke's store. After a restart it reads on from the stored sequence, and
// a message delivered twice, or again after the process was killed between
// delivery and commit, is appended once: its event ID derives from the
// source's name and the message's sequence (evoke.SourceEventID). The
// runtime then routes the events as any others, with every guarantee it
// has for its own log. The consumer is ephemeral and acknowledges nothing:
// the position lives in evoke's store, with the events.
//
// A message becomes an event by SourceConfig.Map, DefaultMap by default:
// the event type is the Evoke-Event-Type header, or else the subject's last
// token ("orders.OrderPlaced" gives "OrderPlaced"); the data is the body
// (JSON; an empty body is {}); the correlation and causation IDs are the
// Evoke-Correlation-Id and Evoke-Causation-Id headers; every other header,
// except those beginning with Nats- or Evoke-, becomes a metadata value
// (its first value). The event goes to the stream named by the
// Evoke-Stream-Id header, after that stream's last event, or else to a
// stream named after the source, at a version equal to the message's
// sequence. The event is recorded at the time of its ingest, by the
// runtime's clock, as an appended event is.
//
// # Sinks
//
// NewSink publishes each command to a JetStream stream and records it
// accepted once the stream has stored it; NewRequestSink sends it as a
// request and records the receiver's answer (see Reply). Both name the
// message by the command's deterministic ID in the Nats-Msg-Id header, so
// that JetStream, and any receiver, drops a duplicate. The command's type,
// aggregate, lineage and metadata values travel in Evoke- headers, and its
// payload is the body; CommandOf reads them back.
//
// A receiver that publishes its own rejection later, as an event on a
// source, sets the Evoke-Causation-Id header to the command's ID and
// Evoke-Correlation-Id to the command's correlation ID: the process manager
// correlates the event by either (evoke.ByCorrelationID, or a field of the
// event that the command's payload carried).
package evokenats

import (
	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/internal/wire"
)

// Headers evoke reads and writes.
const (
	HeaderEventType     = "Evoke-Event-Type"
	HeaderStreamID      = "Evoke-Stream-Id"
	HeaderCorrelationID = wire.CorrelationID
	HeaderCausationID   = wire.CausationID
	HeaderCommandID     = wire.CommandID
	HeaderCommandType   = wire.CommandType
	HeaderAggregateType = wire.AggregateType
	HeaderAggregateID   = wire.AggregateID
	// HeaderValues holds a command's metadata values as a JSON object.
	HeaderValues = wire.Values
	// HeaderRejected, on a reply, rejects the command with its value as
	// the reason.
	HeaderRejected = "Evoke-Rejected"
	// HeaderError, on a reply, reports a transient failure: the command
	// is sent again later.
	HeaderError = "Evoke-Error"
)

var _ evoke.Sink = (*Sink)(nil)
