package evoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

// runOrders runs the order-fulfilment process on store until order-1 and
// order-2 (whose payment is declined) are done.
func runOrders(ctx context.Context, store evokestore.Store) *evoke.Runtime {
	rt, _ := evoke.New(store, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := of.Register(rt, of.Fulfillment{}); err != nil {
		panic(err)
	}
	if err := rt.Start(ctx); err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)
	for _, o := range []of.OrderPlaced{
		{OrderID: "order-1", Items: []of.Item{{SKU: "book", Qty: 1}}, Amount: 1999},
		{OrderID: "order-2", Items: []of.Item{{SKU: "pen", Qty: 2}}, Amount: 300, DeclinePayment: true},
	} {
		if _, err := rt.Append(ctx, o.OrderID, evoke.NoStream, evoke.NewEvent(of.EventOrderPlaced, o)); err != nil {
			panic(err)
		}
	}
	untilIdle(ctx, rt)
	return rt
}

func untilIdle(ctx context.Context, rt *evoke.Runtime) {
	for {
		if idle, err := rt.Idle(ctx); err != nil || idle {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tempStore(ctx context.Context) (*evokesqlite.Store, func()) {
	dir, _ := os.MkdirTemp("", "evoke-example")
	store, err := evokesqlite.Open(ctx, filepath.Join(dir, "evoke.db"), nil)
	if err != nil {
		panic(err)
	}
	return store, func() { store.Close(); os.RemoveAll(dir) }
}

// An instance read with its state typed, and the instances of a process
// manager listed by the runtime's status.
func ExampleReadInstance() {
	ctx := context.Background()
	store, done := tempStore(ctx)
	defer done()
	rt := runOrders(ctx, store)

	in, err := evoke.ReadInstance(ctx, rt, of.Fulfillment{}, "order-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(in.ID, in.Outcome, in.Phase, in.State.Amount, in.State.Items[0].SKU)

	completed, _ := evoke.ListInstances(ctx, rt, of.Fulfillment{}, &evoke.ListOpts{Status: evokestore.StatusCompleted})
	for _, in := range completed {
		fmt.Println(in.ID, in.Phase)
	}
	history, _ := rt.History(ctx, of.Name, "order-2")
	for _, h := range history {
		fmt.Println(h.EventType, h.PhaseAfter)
	}
	_, err = evoke.ReadInstance(ctx, rt, of.Fulfillment{}, "order-3")
	fmt.Println(errors.Is(err, evoke.ErrNotFound))
	// Output:
	// order-1 completed completed 1999 book
	// order-1 completed
	// order-2 payment_failed
	// OrderPlaced awaiting_payment
	// $rejected payment_failed
	// true
}

// visits counts events; its state's version 2 keeps the count under a new
// name, and its upcaster turns a state stored at version 1 into one at
// version 2.
type visits struct{}

type visitsState struct {
	Total int `json:"total"`
}

func (visits) Name() string                                   { return "visits" }
func (visits) InterestedIn() []string                         { return []string{"Counted"} }
func (visits) Correlate(e evoke.Event) evoke.Correlation      { return evoke.Continue("c-1") }
func (visits) Apply(s visitsState, e evoke.Event) visitsState { s.Total++; return s }
func (visits) Handle(s visitsState, e evoke.Event) (visitsState, []evoke.Command, error) {
	return s, nil, nil
}

// StateVersion is 2: version 1 stored {"count": n}.
func (visits) StateVersion() int { return 2 }

// Upcasters turns {"count": n} into {"total": n}.
func (visits) Upcasters() map[int]evoke.Upcaster {
	return map[int]evoke.Upcaster{
		1: func(v1 json.RawMessage) (json.RawMessage, error) {
			var old struct{ Count int }
			if err := json.Unmarshal(v1, &old); err != nil {
				return nil, err
			}
			return json.Marshal(visitsState{Total: old.Count})
		},
	}
}

// A state stored at version 1 is upgraded when its instance is loaded, and
// written back at version 2 with its next step.
func ExampleVersioned() {
	ctx := context.Background()
	store, done := tempStore(ctx)
	defer done()
	// An instance that the code at version 1 left with {"count":2}.
	_ = evokestore.WithTx(ctx, store, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: -1, Instance: evokestore.Instance{
			ProcessManager: "visits", ID: "c-1", State: []byte(`{"count":2}`), Version: 2, Status: evokestore.StatusRunning,
		}}})
	})

	rt, _ := evoke.New(store, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := evoke.RegisterProcessManager(rt, visits{}, nil); err != nil {
		panic(err)
	}
	in, _ := evoke.ReadInstance(ctx, rt, visits{}, "c-1")
	fmt.Println("loaded:", in.State.Total)

	if err := rt.Start(ctx); err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)
	if _, err := rt.Append(ctx, "counts", evoke.AnyVersion, evoke.NewEvent("Counted", struct{}{})); err != nil {
		panic(err)
	}
	untilIdle(ctx, rt)
	stored, _ := store.Instances(ctx, "visits", []string{"c-1"})
	fmt.Println("stored:", string(stored[0].State))
	// Output:
	// loaded: 2
	// stored: {"$version":2,"$state":{"total":3}}
}

// expressShipping changes the order process: ship_item asks for express
// delivery.
type expressShipping struct{ of.Fulfillment }

func (p expressShipping) Handle(s of.State, e evoke.Event) (of.State, []evoke.Command, error) {
	s, cmds, err := p.Fulfillment.Handle(s, e)
	if e.Type == of.EventInventoryReserved {
		cmds[0].Payload, _ = json.Marshal(map[string]any{"order_id": s.OrderID, "express": true})
	}
	return s, cmds, err
}

// A replay before deploying a change: the unchanged code gives what the
// instances recorded; the changed one issues ship_item with another
// payload.
func ExampleReplay() {
	ctx := context.Background()
	store, done := tempStore(ctx)
	defer done()
	runOrders(ctx, store)

	rep, err := evoke.Replay(ctx, store, of.Fulfillment{}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Print(rep)
	rep, _ = evoke.Replay(ctx, store, expressShipping{}, nil)
	for _, d := range rep.Differences {
		fmt.Printf("%s differs at step %d (%s) in its %s\n", d.InstanceID, d.Step, d.EventType, d.What)
		fmt.Println("recorded:", d.Recorded)
		fmt.Println("replayed:", d.Replayed)
	}
	// Output:
	// order_fulfillment: 2 instances, 6 steps replayed, 0 differ
	// order-1 differs at step 3 (InventoryReserved) in its commands
	// recorded: ship_item to shipping order-1 {"order_id":"order-1"}
	// replayed: ship_item to shipping order-1 {"express":true,"order_id":"order-1"}
}
