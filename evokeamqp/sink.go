// Package evokeamqp sends evoke's commands to a RabbitMQ exchange (AMQP
// 0-9-1) with publisher confirms.
//
// A Sink publishes each command to an exchange, persistent and mandatory,
// and waits for the broker's confirm: a confirmed command is accepted, and
// a nack, an unroutable command (no queue bound for its routing key), a
// closed channel or a timeout is a transient failure, after which the
// command is sent again. The message ID is the command's deterministic ID,
// so that the receiver drops a duplicate; the message type is the command
// type and the correlation ID the command's correlation ID; the aggregate,
// causation ID and metadata values travel in evoke- headers (CommandOf
// reads them back), and the payload is the body.
//
// With SinkConfig.Request, the sink also waits for the receiver's answer
// on a reply queue of its own (the AMQP RPC pattern): the receiver answers
// with Reply, and a rejection there rejects the command (its process
// manager compensates), as an aggregate's does.
package evokeamqp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/internal/wire"
)

// Headers evoke writes and reads.
const (
	HeaderAggregateType = "evoke-aggregate-type"
	HeaderAggregateID   = "evoke-aggregate-id"
	HeaderCausationID   = "evoke-causation-id"
	// HeaderValues holds a command's metadata values as a JSON object.
	HeaderValues = "evoke-values"
	// HeaderRejected, on a reply, rejects the command with its value as
	// the reason.
	HeaderRejected = "evoke-rejected"
	// HeaderError, on a reply, reports a transient failure.
	HeaderError = "evoke-error"
)

// headers carries a command's aggregate, causation and values in the
// headers above; its ID, type and correlation ID travel in AMQP's own
// properties.
var headers = wire.Names{AggregateType: HeaderAggregateType, AggregateID: HeaderAggregateID,
	CausationID: HeaderCausationID, Values: HeaderValues}

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Exchange is the exchange commands are published to. Required.
	Exchange string
	// RoutingKey returns a command's routing key. Defaults to
	// "<aggregate type>.<command type>".
	RoutingKey func(cmd evoke.Command) string
	// Request makes the sink wait for the receiver's answer (Reply) on a
	// reply queue of its own, after the broker's confirm.
	Request bool
}

// Sink publishes commands to an exchange.
type Sink struct {
	conn *amqp.Connection
	cfg  SinkConfig

	mu      sync.Mutex // one send at a time: a confirm, a return, a reply belong to it
	ch      *amqp.Channel
	returns chan amqp.Return
	replyTo string
	replies <-chan amqp.Delivery
}

var _ evoke.Sink = (*Sink)(nil)

// NewSink returns a sink publishing on channels of conn.
func NewSink(conn *amqp.Connection, cfg SinkConfig) (*Sink, error) {
	if cfg.Exchange == "" {
		return nil, fmt.Errorf("%w: evokeamqp: no exchange", evoke.ErrInvalid)
	}
	if cfg.RoutingKey == nil {
		cfg.RoutingKey = func(c evoke.Command) string { return c.AggregateType + "." + c.Type }
	}
	return &Sink{conn: conn, cfg: cfg}, nil
}

// Close closes the sink's channel.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		return nil
	}
	err := s.ch.Close()
	s.ch = nil
	return err
}

// open opens the sink's channel, in confirm mode, with its reply queue.
func (s *Sink) open() error {
	if s.ch != nil && !s.ch.IsClosed() {
		return nil
	}
	ch, err := s.conn.Channel()
	if err != nil {
		return fmt.Errorf("evokeamqp: open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return fmt.Errorf("evokeamqp: confirm mode: %w", err)
	}
	// Buffered: the broker returns an unroutable message before it
	// confirms it, and the channel delivers the return first.
	s.returns = ch.NotifyReturn(make(chan amqp.Return, 64))
	if s.cfg.Request {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err == nil {
			s.replies, err = ch.Consume(q.Name, "", true, true, false, false, nil)
		}
		if err != nil {
			ch.Close()
			return fmt.Errorf("evokeamqp: reply queue: %w", err)
		}
		s.replyTo = q.Name
	}
	s.ch = ch
	return nil
}

// Send publishes cmd and waits for the broker's confirm (and, with
// Request, the receiver's answer).
func (s *Sink) Send(ctx context.Context, cmd evoke.Command) error {
	pub := Publishing(cmd)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.open(); err != nil {
		return err
	}
	for len(s.returns) > 0 {
		<-s.returns
	}
	pub.ReplyTo = s.replyTo
	dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, s.cfg.Exchange, s.cfg.RoutingKey(cmd), true, false, pub)
	if err != nil {
		s.ch.Close()
		return fmt.Errorf("evokeamqp: publish: %w", err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		s.ch.Close() // a confirm may still come: not on this channel again
		return fmt.Errorf("evokeamqp: confirm: %w", err)
	}
	select {
	case r := <-s.returns:
		if r.MessageId == cmd.ID {
			return fmt.Errorf("evokeamqp: unroutable: %d %s (exchange %q, routing key %q)", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
		}
	default:
	}
	if !acked {
		return errors.New("evokeamqp: the broker nacked the command")
	}
	if !s.cfg.Request {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			s.ch.Close() // a late reply must not answer the next command
			return fmt.Errorf("evokeamqp: no answer: %w", ctx.Err())
		case d, ok := <-s.replies:
			if !ok {
				return errors.New("evokeamqp: reply queue closed")
			}
			if d.CorrelationId != cmd.ID {
				continue // a late answer to an earlier send
			}
			if reason, _ := d.Headers[HeaderRejected].(string); reason != "" {
				return evoke.Reject(reason)
			}
			if e, _ := d.Headers[HeaderError].(string); e != "" {
				return errors.New(e)
			}
			return nil
		}
	}
}

// Publishing returns the message of cmd (see the package documentation).
func Publishing(cmd evoke.Command) amqp.Publishing {
	h := amqp.Table{}
	headers.Encode(cmd, func(k, v string) { h[k] = v })
	return amqp.Publishing{Headers: h, ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: cmd.ID, CorrelationId: cmd.Metadata.CorrelationID, Type: cmd.Type, Body: cmd.Payload}
}

// CommandOf reads the command a sink sent in d.
func CommandOf(d amqp.Delivery) (evoke.Command, error) {
	str := func(k string) string { v, _ := d.Headers[k].(string); return v }
	c := evoke.Command{ID: d.MessageId, Type: d.Type, Payload: d.Body, Metadata: evoke.Metadata{CorrelationID: d.CorrelationId}}
	if err := headers.Decode(str, &c); err != nil {
		return c, fmt.Errorf("evokeamqp: message: %w", err)
	}
	return c, nil
}

// Reply answers, on ch, a command a Request sink sent in d: nil accepts
// it, an error made by evoke.Reject rejects it with its reason, and any
// other error is a transient failure, after which the sink sends it again.
func Reply(ctx context.Context, ch *amqp.Channel, d amqp.Delivery, answer error) error {
	if d.ReplyTo == "" {
		return nil
	}
	h := amqp.Table{}
	if answer != nil {
		if re, ok := errors.AsType[*evoke.RejectError](answer); ok {
			h[HeaderRejected] = re.Reason
		} else {
			h[HeaderError] = answer.Error()
		}
	}
	return ch.PublishWithContext(ctx, "", d.ReplyTo, false, false, amqp.Publishing{Headers: h, CorrelationId: d.MessageId})
}
