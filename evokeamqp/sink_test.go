package evokeamqp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/internal/remotetest"
)

var seq atomic.Int64

// dial connects to the RabbitMQ broker at EVOKE_TEST_AMQP_URL.
func dial(t *testing.T) *amqp.Connection {
	t.Helper()
	url := remotetest.ServiceURL(t, "EVOKE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// receiver declares an exchange of the test's own with a queue bound to
// every routing key, and answers what arrives there with r (nil: no queue
// is bound, so that every command is unroutable). It returns the exchange
// and the message IDs that did not match their command's ID.
func receiver(t *testing.T, conn *amqp.Connection, r *remotetest.Receiver) (string, func() []string) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	name := fmt.Sprintf("evoke-test-%d-%d", time.Now().UnixNano(), seq.Add(1))
	if err := ch.ExchangeDeclare(name, "topic", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.ExchangeDelete(name, false, false) })
	var mu sync.Mutex
	var bad []string
	if r == nil {
		return name, func() []string { return nil }
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err == nil {
		err = ch.QueueBind(q.Name, "#", name, false, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for d := range ds {
			cmd, err := CommandOf(d)
			if err == nil {
				err = r.Answer(cmd)
			}
			if cmd.ID != d.MessageId || cmd.AggregateType != remotetest.Aggregate {
				mu.Lock()
				bad = append(bad, d.MessageId)
				mu.Unlock()
			}
			_ = Reply(context.Background(), ch, d, err)
		}
	}()
	return name, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return bad
	}
}

// A request sink's answers over RabbitMQ map onto accepted, rejected
// (compensated) and transient (parked); the command's ID is the message ID.
func TestRequestSink(t *testing.T) {
	t.Parallel()
	conn := dial(t)
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		var r remotetest.Receiver
		exchange, bad := receiver(t, conn, &r)
		sink, err := NewSink(conn, SinkConfig{Exchange: exchange, Request: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		rt, err := evoke.New(st, remotetest.Config())
		if err != nil {
			t.Fatal(err)
		}
		if err := evoke.RegisterSink(rt, remotetest.Aggregate, sink); err != nil {
			t.Fatal(err)
		}
		remotetest.RunSink(t, rt, st, r.Got)
		if b := bad(); len(b) > 0 {
			t.Fatalf("messages whose ID is not their command's: %v", b)
		}
	})
}

// A confirmed command is accepted; an unroutable one fails, transiently.
func TestConfirmedSink(t *testing.T) {
	t.Parallel()
	conn := dial(t)
	st := remotetest.OpenSpec(t, remotetest.NewSpec(t, "sqlite"))
	var r remotetest.Receiver
	routed, _ := receiver(t, conn, &r)
	unroutable, _ := receiver(t, conn, nil)
	rt, err := evoke.New(st, remotetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	for typ, ex := range map[string]string{"routed": routed, "unroutable": unroutable} {
		sink, err := NewSink(conn, SinkConfig{Exchange: ex})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		if err := evoke.RegisterSink(rt, typ, sink); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	cmd := evoke.NewCommand(remotetest.CommandDo, "routed", "a", remotetest.Data{ID: "a"})
	cmd.ID = "0190a8e4-0000-8000-8000-000000000003"
	cmd.Metadata.Values = map[string]string{"tenant": "t-1"}
	if _, err := rt.Dispatch(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Dispatch(ctx, evoke.NewCommand(remotetest.CommandDo, "unroutable", "a", remotetest.Data{ID: "a"})); err == nil {
		t.Fatal("an unroutable command was accepted")
	}
	var got []evoke.Command
	evoketest.Eventually(t, 30*time.Second, "the command received", func() bool { got = r.Got(); return len(got) > 0 })
	if c := got[0]; c.ID != cmd.ID || c.Type != cmd.Type || c.AggregateID != "a" || c.Metadata.Values["tenant"] != "t-1" || string(c.Payload) != string(cmd.Payload) {
		t.Fatalf("received %+v, sent %+v", c, cmd)
	}
}
