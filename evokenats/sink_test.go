package evokenats

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/remotetest"
)

// A request sink's answers map onto accepted, rejected (compensated) and
// transient (parked), and the command's ID is the message's ID.
func TestRequestSink(t *testing.T) {
	t.Parallel()
	nc, js := connect(t)
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		prefix := newStream(t, js) + "cmd"
		var r remotetest.Receiver
		var mu sync.Mutex
		var bad []string
		sub, err := nc.Subscribe(prefix+".>", func(m *nats.Msg) {
			cmd, err := CommandOf(m)
			if err == nil && m.Header.Get(jetstream.MsgIDHeader) != cmd.ID {
				mu.Lock()
				bad = append(bad, m.Header.Get(jetstream.MsgIDHeader)+" != "+cmd.ID)
				mu.Unlock()
			}
			if err == nil {
				err = r.Answer(cmd)
			}
			_ = Reply(m, err)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		rt, err := evoke.New(st, remotetest.Config())
		if err != nil {
			t.Fatal(err)
		}
		sink := NewRequestSink(nc, &SinkConfig{Subject: func(c evoke.Command) string { return prefix + "." + c.Type }})
		if err := evoke.RegisterSink(rt, remotetest.Aggregate, sink); err != nil {
			t.Fatal(err)
		}
		remotetest.RunSink(t, rt, st, r.Got)
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("message ids: %v", bad)
		}
	})
}

// A receiver that answers after the send's time bound fails the send,
// which is sent again; the command is recorded once.
func TestRequestSinkSlowReceiver(t *testing.T) {
	t.Parallel()
	nc, js := connect(t)
	spec := remotetest.NewSpec(t, "sqlite")
	st := remotetest.OpenSpec(t, spec)
	subject := newStream(t, js) + "slow"
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		go func() {
			if first {
				<-release // answers only after the sender gave up
			}
			_ = Reply(m, nil)
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	defer close(release)
	cfg := remotetest.Config()
	cfg.StepTimeout = 200 * time.Millisecond
	rt, err := evoke.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterSink(rt, remotetest.Aggregate, NewRequestSink(nc, &SinkConfig{Subject: func(evoke.Command) string { return subject }})); err != nil {
		t.Fatal(err)
	}
	res, err := rt.Dispatch(context.Background(), evoke.NewCommand(remotetest.CommandDo, remotetest.Aggregate, "s", remotetest.Data{ID: "s"}))
	if err == nil {
		t.Fatalf("a send past its time bound succeeded: %+v", res)
	}
	cmd := evoke.NewCommand(remotetest.CommandDo, remotetest.Aggregate, "s", remotetest.Data{ID: "s"})
	cmd.ID = "0190a8e4-0000-8000-8000-000000000001"
	for i := range 2 {
		res, err := rt.Dispatch(context.Background(), cmd)
		if err != nil || res.Duplicate != (i == 1) {
			t.Fatalf("dispatch %d: %+v, %v", i, res, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("the receiver got %d requests, want 2 (the slow one and the command once)", calls)
	}
}

// A JetStream sink stores each command once in the stream, under its ID.
func TestJetStreamSink(t *testing.T) {
	t.Parallel()
	_, js := connect(t)
	st := remotetest.OpenSpec(t, remotetest.NewSpec(t, "sqlite"))
	stream := newStream(t, js)
	rt, err := evoke.New(st, remotetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterSink(rt, remotetest.Aggregate, NewSink(js, &SinkConfig{Subject: func(c evoke.Command) string { return stream + "." + c.Type }})); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cmd := evoke.NewCommand(remotetest.CommandDo, remotetest.Aggregate, "j", remotetest.Data{ID: "j"})
	cmd.ID = "0190a8e4-0000-8000-8000-000000000002"
	cmd.Metadata.Values = map[string]string{"tenant": "t-1"}
	if _, err := rt.Dispatch(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	// Sent again, as after a crash before the outcome's commit:
	// JetStream drops the duplicate by its Nats-Msg-Id.
	if err := NewSink(js, &SinkConfig{Subject: func(c evoke.Command) string { return stream + "." + c.Type }}).Send(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
	raw, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := CommandOf(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get(jetstream.MsgIDHeader) != cmd.ID || got.ID != cmd.ID || got.Type != cmd.Type || got.AggregateID != "j" ||
		got.Metadata.Values["tenant"] != "t-1" || string(got.Payload) != string(cmd.Payload) {
		t.Fatalf("stored %+v (headers %v)", got, raw.Header)
	}
}
