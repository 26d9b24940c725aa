package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokenats"
	"github.com/evoke-go/evoke/examples/natsorders"
)

// natsStream records, in the store, the name of the store's own stream on
// NATS: a new store gets a new stream, rather than replaying the orders
// of every store before it.
const natsStream = "evoke-demo-nats"

// natsName returns the name of the store's stream on NATS, choosing one
// the first time.
func natsName(ctx context.Context, rt *evoke.Runtime) (string, error) {
	type named struct {
		Name string `json:"name"`
	}
	for {
		past, err := rt.Store().ReadStream(ctx, natsStream, 0)
		if err != nil {
			return "", err
		}
		if len(past) > 0 {
			var n named
			err := json.Unmarshal(past[0].Data, &n)
			return n.Name, err
		}
		_, err = rt.Append(ctx, natsStream, evoke.NoStream, evoke.NewEvent("DemoStreamNamed", named{Name: fmt.Sprintf("%d", time.Now().UnixNano())}))
		if err != nil && !errors.Is(err, evoke.ErrVersionConflict) {
			return "", err
		}
	}
}

// overNATS registers the order process on rt over the NATS server at
// opts.Source (see Options.Source), starts the service that answers its
// commands, and returns the source of its events, the sink that places
// orders on the stream, and a function that closes it all.
func overNATS(ctx context.Context, rt *evoke.Runtime, opts Options) (*evokenats.Source, orderSink, func(), error) {
	nc, err := nats.Connect(opts.Source)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("demo: connect to %s: %w", opts.Source, err)
	}
	fail := func(err error) (*evokenats.Source, orderSink, func(), error) {
		nc.Close()
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	name, err := natsName(ctx, rt)
	if err != nil {
		return fail(fmt.Errorf("demo: name the stream: %w", err))
	}
	cfg := natsorders.Config{Stream: "EVOKE_DEMO_" + name, Prefix: "evoke-demo." + name, Timeout: opts.Timeout}
	if err := natsorders.EnsureStream(ctx, js, cfg); err != nil {
		return fail(err)
	}
	svc, err := natsorders.StartService(nc, js, cfg)
	if err != nil {
		return fail(err)
	}
	src, err := natsorders.Register(rt, nc, js, cfg)
	if err != nil {
		_ = svc.Stop()
		return fail(err)
	}
	out := func(ctx context.Context, batch []evoke.StreamAppend) error {
		for _, a := range batch {
			for _, e := range a.Events {
				if err := natsorders.PublishAsync(js, cfg, e, e.ID); err != nil {
					return err
				}
			}
		}
		select {
		case <-js.PublishAsyncComplete():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return src, out, func() { _ = svc.Stop(); nc.Close() }, nil
}
