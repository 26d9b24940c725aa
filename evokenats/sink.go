package evokenats

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/internal/wire"
)

// SinkConfig configures a sink.
type SinkConfig struct {
	// Subject returns the subject a command is sent to. Defaults to
	// "commands.<aggregate type>.<command type>".
	Subject func(cmd evoke.Command) string
}

// Sink sends commands to NATS subjects (see NewSink and NewRequestSink).
type Sink struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	subject func(cmd evoke.Command) string
}

// NewSink returns a sink that publishes each command to the JetStream
// stream that captures its subject: the command is accepted once the
// stream has stored it, and a failure to store it (no stream, no quorum,
// a timeout) is transient. The receiver's rejection, if any, arrives later
// as an event on a source.
func NewSink(js jetstream.JetStream, cfg *SinkConfig) *Sink {
	return &Sink{js: js, subject: subjectOf(cfg)}
}

// NewRequestSink returns a sink that sends each command as a core NATS
// request and takes the receiver's reply as its answer (see Reply): a
// reply with the Evoke-Rejected header rejects the command, one with
// Evoke-Error, no reply within the send's time bound, or no responder is
// a transient failure, and any other reply accepts it.
func NewRequestSink(nc *nats.Conn, cfg *SinkConfig) *Sink {
	return &Sink{nc: nc, subject: subjectOf(cfg)}
}

func subjectOf(cfg *SinkConfig) func(evoke.Command) string {
	if cfg != nil && cfg.Subject != nil {
		return cfg.Subject
	}
	return func(c evoke.Command) string { return "commands." + c.AggregateType + "." + c.Type }
}

// Send sends cmd.
func (s *Sink) Send(ctx context.Context, cmd evoke.Command) error {
	msg := Message(s.subject(cmd), cmd)
	if s.js != nil {
		_, err := s.js.PublishMsg(ctx, msg)
		return err
	}
	reply, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return err
	}
	if reason := reply.Header.Get(HeaderRejected); reason != "" {
		return evoke.Reject(reason)
	}
	if e := reply.Header.Get(HeaderError); e != "" {
		return errors.New(e)
	}
	return nil
}

// Message returns the message of cmd on subject: the payload as the body,
// the command's ID in Nats-Msg-Id and Evoke-Command-Id, and its type,
// aggregate, lineage and metadata values in Evoke- headers.
func Message(subject string, cmd evoke.Command) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = cmd.Payload
	m.Header.Set(jetstream.MsgIDHeader, cmd.ID)
	wire.Canonical.Encode(cmd, m.Header.Set)
	return m
}

// CommandOf reads the command a sink sent in msg.
func CommandOf(msg *nats.Msg) (evoke.Command, error) {
	c := evoke.Command{Payload: msg.Data}
	if err := wire.Canonical.Decode(msg.Header.Get, &c); err != nil {
		return c, fmt.Errorf("evokenats: message on %s: %w", msg.Subject, err)
	}
	return c, nil
}

// Reply answers a request that a request sink sent: nil accepts the
// command, an error made by evoke.Reject rejects it with its reason, and
// any other error is a transient failure, after which the sink sends the
// command again.
func Reply(msg *nats.Msg, answer error) error {
	r := nats.NewMsg(msg.Reply)
	if answer != nil {
		if re, ok := errors.AsType[*evoke.RejectError](answer); ok {
			r.Header.Set(HeaderRejected, re.Reason)
		} else {
			r.Header.Set(HeaderError, answer.Error())
		}
	}
	return msg.RespondMsg(r)
}
