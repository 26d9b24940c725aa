// Package natsorders runs the order-fulfilment process manager of package
// orderfulfillment over NATS: its events come from a JetStream stream (an
// evokenats.Source ingests them), and its commands go out as NATS requests
// (evokenats request sinks) to a small service, Service, which decides on
// them with the payment, inventory and shipping aggregates it keeps in
// memory and publishes their events to the stream. The runtime registers
// no aggregate of its own: everything it does reaches the outside world
// through NATS. `evoke demo --source nats://127.0.0.1:4222` runs the demo
// this way.
//
// The service answers each request (evokenats.Reply): an aggregate's error
// rejects the command, so that a declined payment compensates as it does
// with local aggregates. It publishes an event with the command's ID as
// its causation ID and the command's correlation ID, under a JetStream
// message ID derived from the command's ID, so that a command delivered
// twice publishes its events once.
package natsorders

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokenats"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
)

// Config names the stream and subjects.
type Config struct {
	// Stream is the JetStream stream of the order events. Defaults to
	// "ORDERS".
	Stream string
	// Prefix begins every subject: events are published to
	// "<prefix>.events.<type>" and commands sent to
	// "<prefix>.commands.<aggregate type>.<command type>". Defaults to
	// "orders".
	Prefix string
	// Timeout is the order process's inactivity timeout (0 for none).
	Timeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = "ORDERS"
	}
	if c.Prefix == "" {
		c.Prefix = "orders"
	}
	return c
}

// EnsureStream creates or updates the stream of the order events.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg = cfg.withDefaults()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: cfg.Stream, Subjects: []string{cfg.Prefix + ".events.>"}})
	if err != nil {
		return fmt.Errorf("natsorders: stream %s: %w", cfg.Stream, err)
	}
	return nil
}

// Register adds the order-fulfilment process manager to rt with a request
// sink on nc for each of its aggregate types, and returns the source that
// ingests the order events from js (not started).
func Register(rt *evoke.Runtime, nc *nats.Conn, js jetstream.JetStream, cfg Config) (*evokenats.Source, error) {
	cfg = cfg.withDefaults()
	sink := evokenats.NewRequestSink(nc, &evokenats.SinkConfig{Subject: func(c evoke.Command) string {
		return cfg.Prefix + ".commands." + c.AggregateType + "." + c.Type
	}})
	err := errors.Join(
		evoke.RegisterProcessManager(rt, orderfulfillment.Fulfillment{TimeoutAfter: cfg.Timeout}, nil),
		evoke.RegisterSink(rt, orderfulfillment.AggregatePayment, sink),
		evoke.RegisterSink(rt, orderfulfillment.AggregateInventory, sink),
		evoke.RegisterSink(rt, orderfulfillment.AggregateShipping, sink),
	)
	if err != nil {
		return nil, err
	}
	return evokenats.NewSource(rt, js, evokenats.SourceConfig{Stream: cfg.Stream})
}

// Publish publishes an event of the order process to the stream, under
// JetStream message ID msgID (JetStream drops a duplicate), and waits for
// the stream to store it.
func Publish(ctx context.Context, js jetstream.JetStream, cfg Config, e evoke.Event, msgID string) error {
	_, err := js.PublishMsg(ctx, message(cfg.withDefaults(), e, msgID))
	return err
}

// PublishAsync publishes as Publish does, without waiting: wait on
// js.PublishAsyncComplete.
func PublishAsync(js jetstream.JetStream, cfg Config, e evoke.Event, msgID string) error {
	_, err := js.PublishMsgAsync(message(cfg.withDefaults(), e, msgID))
	return err
}

func message(cfg Config, e evoke.Event, msgID string) *nats.Msg {
	m := nats.NewMsg(cfg.Prefix + ".events." + e.Type)
	m.Data = e.Data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if e.Metadata.CorrelationID != "" {
		m.Header.Set(evokenats.HeaderCorrelationID, e.Metadata.CorrelationID)
	}
	if e.Metadata.CausationID != "" {
		m.Header.Set(evokenats.HeaderCausationID, e.Metadata.CausationID)
	}
	for k, v := range e.Metadata.Values {
		m.Header.Set(k, v)
	}
	return m
}

// Service answers the order process's commands with the payment,
// inventory and shipping aggregates, kept in memory, and publishes their
// events.
type Service struct {
	js  jetstream.JetStream
	cfg Config
	sub *nats.Subscription

	mu       sync.Mutex
	payments map[string]orderfulfillment.PaymentState
	stock    map[string]orderfulfillment.InventoryState
	ships    map[string]orderfulfillment.ShippingState
	// answered remembers each command's answer, so that a command
	// delivered again is answered alike and changes nothing; pending
	// holds the events of commands decided whose events are not all
	// published yet (a command delivered again publishes the same ones).
	answered map[string]error
	pending  map[string][]evoke.Event
}

// StartService subscribes the service to the commands on nc, publishing
// events with js.
func StartService(nc *nats.Conn, js jetstream.JetStream, cfg Config) (*Service, error) {
	s := &Service{js: js, cfg: cfg.withDefaults(), payments: map[string]orderfulfillment.PaymentState{},
		stock: map[string]orderfulfillment.InventoryState{}, ships: map[string]orderfulfillment.ShippingState{}, answered: map[string]error{},
		pending: map[string][]evoke.Event{}}
	sub, err := nc.QueueSubscribe(s.cfg.Prefix+".commands.>", "natsorders", s.handle)
	if err != nil {
		return nil, err
	}
	s.sub = sub
	return s, nil
}

// Stop unsubscribes the service.
func (s *Service) Stop() error { return s.sub.Drain() }

func (s *Service) handle(m *nats.Msg) {
	go func() {
		cmd, err := evokenats.CommandOf(m)
		if err != nil {
			_ = evokenats.Reply(m, evoke.Reject(err.Error()))
			return
		}
		_ = evokenats.Reply(m, s.decide(cmd))
	}()
}

// decide runs cmd against its aggregate, publishes the events and returns
// the answer. Commands are decided one at a time, and their events
// published outside the lock.
func (s *Service) decide(cmd evoke.Command) error {
	evs, answer, done := s.decideLocked(cmd)
	if done {
		return answer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var acks []jetstream.PubAckFuture
	for i, e := range evs {
		ack, err := s.js.PublishMsgAsync(message(s.cfg, e, cmd.ID+"/"+strconv.Itoa(i)))
		if err != nil {
			return err // transient: the command comes again, and publishes the same events
		}
		acks = append(acks, ack)
	}
	for _, ack := range acks {
		select {
		case <-ack.Ok():
		case err := <-ack.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.answered[cmd.ID] = nil
	delete(s.pending, cmd.ID)
	s.mu.Unlock()
	return nil
}

// decideLocked decides cmd, or returns its earlier answer (done) or the
// events it decided before that are not published yet.
func (s *Service) decideLocked(cmd evoke.Command) (evs []evoke.Event, answer error, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if answer, ok := s.answered[cmd.ID]; ok {
		return nil, answer, true
	}
	if evs, ok := s.pending[cmd.ID]; ok {
		return evs, nil, false
	}
	var err error
	id := cmd.AggregateID
	switch cmd.AggregateType {
	case orderfulfillment.AggregatePayment:
		evs, err = run(orderfulfillment.Payment{}, s.payments, id, cmd)
	case orderfulfillment.AggregateInventory:
		evs, err = run(orderfulfillment.Inventory{}, s.stock, id, cmd)
	case orderfulfillment.AggregateShipping:
		evs, err = run(orderfulfillment.Shipping{}, s.ships, id, cmd)
	default:
		err = fmt.Errorf("unknown aggregate type %q", cmd.AggregateType)
	}
	if err != nil {
		s.answered[cmd.ID] = evoke.Reject(err.Error())
		return nil, s.answered[cmd.ID], true
	}
	for i := range evs {
		evs[i].Metadata.CausationID, evs[i].Metadata.CorrelationID = cmd.ID, cmd.Metadata.CorrelationID
	}
	s.pending[cmd.ID] = evs
	return evs, nil, false
}

// run executes cmd against the aggregate id of states and applies its
// events.
func run[S any](agg evoke.Aggregate[S], states map[string]S, id string, cmd evoke.Command) ([]evoke.Event, error) {
	evs, err := agg.Execute(states[id], cmd)
	if err != nil {
		return nil, err
	}
	s := states[id]
	for _, e := range evs {
		s = agg.Apply(s, e)
	}
	states[id] = s
	return evs, nil
}
