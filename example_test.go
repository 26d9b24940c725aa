package evoke_test

import (
	"context"
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
	"github.com/evoke-go/evoke/examples/orderfulfillment"
)

// Order fulfilment, end to end on a SQLite file: an order is
// placed, the process manager drives payment, inventory and shipping, and
// completes.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "evoke-example")
	defer os.RemoveAll(dir)
	store, err := evokesqlite.Open(ctx, filepath.Join(dir, "orders.db"), nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	rt, _ := evoke.New(store, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := orderfulfillment.Register(rt, orderfulfillment.Fulfillment{}); err != nil {
		panic(err)
	}
	if err := rt.Start(ctx); err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)

	_, err = rt.Append(ctx, "order-1", evoke.NoStream, evoke.NewEvent(orderfulfillment.EventOrderPlaced, orderfulfillment.OrderPlaced{
		OrderID: "order-1", CustomerID: "c-7", Items: []orderfulfillment.Item{{SKU: "book", Qty: 1}}, Amount: 1999,
	}))
	if err != nil {
		panic(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		insts, err := store.Instances(ctx, orderfulfillment.Name, []string{"order-1"})
		if err != nil {
			panic(err)
		}
		if len(insts) == 1 && insts[0].Status.Done() {
			fmt.Println(insts[0].ID, insts[0].Status, insts[0].Phase, "after", insts[0].Version, "steps")
			break
		}
		if time.Now().After(deadline) {
			panic("order-1 did not complete within a minute")
		}
	}
	hist, _ := store.History(ctx, orderfulfillment.Name, "order-1")
	for _, h := range hist {
		fmt.Printf("%s: %s -> %s\n", h.EventType, h.PhaseBefore, h.PhaseAfter)
	}
	// Output:
	// order-1 completed completed after 4 steps
	// OrderPlaced:  -> awaiting_payment
	// PaymentReceived: awaiting_payment -> awaiting_inventory
	// InventoryReserved: awaiting_inventory -> awaiting_shipment
	// ItemShipped: awaiting_shipment -> completed
}

func ExampleKey() {
	// evoq's composite key {transfer, Src, Dst}.
	fmt.Println(evoke.Key("transfer", "acc|1", "acc-2"))
	// Output: transfer|acc%7C1|acc-2
}

func ExampleByField() {
	e := evoke.NewEvent("PaymentReceived", map[string]any{"order_id": "order-9", "amount": 10})
	fmt.Println(evoke.ByField(e, "order_id", evoke.Continue))
	fmt.Println(evoke.ByField(e, "missing", evoke.Continue).Kind())
	// Output:
	// continue(order-9)
	// error
}

// Metadata values set on the event that places an order (a tenant and
// the user who placed it) reach every command and event the order causes,
// without the process manager or the aggregates copying them.
func ExampleMetadata() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "evoke-example")
	defer os.RemoveAll(dir)
	store, err := evokesqlite.Open(ctx, filepath.Join(dir, "orders.db"), nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	rt, _ := evoke.New(store, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := orderfulfillment.Register(rt, orderfulfillment.Fulfillment{}); err != nil {
		panic(err)
	}
	if err := rt.Start(ctx); err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)

	placed := evoke.NewEvent(orderfulfillment.EventOrderPlaced, orderfulfillment.OrderPlaced{
		OrderID: "order-1", CustomerID: "c-7", Items: []orderfulfillment.Item{{SKU: "book", Qty: 1}}, Amount: 1999,
	})
	placed.Metadata.Values = map[string]string{"tenant": "acme", "user": "ann"}
	if _, err := rt.Append(ctx, "order-1", evoke.NoStream, placed); err != nil {
		panic(err)
	}
	for {
		insts, _ := store.Instances(ctx, orderfulfillment.Name, []string{"order-1"})
		if len(insts) == 1 && insts[0].Status.Done() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	evs, _ := store.ReadLog(ctx, evokestore.LogQuery{Limit: 100})
	for _, e := range evs {
		fmt.Printf("%s %s\n", e.Type, e.Values)
	}
	// Output:
	// OrderPlaced {"tenant":"acme","user":"ann"}
	// PaymentReceived {"tenant":"acme","user":"ann"}
	// InventoryReserved {"tenant":"acme","user":"ann"}
	// ItemShipped {"tenant":"acme","user":"ann"}
}

// An event that concerns several running instances goes to each of them:
// here every open order of a recalled product, listed in the event.
func ExampleEach() {
	recalled := evoke.Event{Type: "ProductRecalled", Data: []byte(`{"sku":"sku-7","orders":["o-1","o-2","o-1"]}`)}
	var d struct{ Orders []string }
	_ = recalled.Decode(&d)
	c := evoke.ContinueEach(d.Orders...)
	fmt.Println(c)
	fmt.Println(evoke.Each(evoke.StartNew("o-9"), c))
	// Output:
	// each(continue(o-1), continue(o-2))
	// each(start-new(o-9), continue(o-1), continue(o-2))
}

// A process manager decides what its failures mean by implementing
// FailureHandler: errors of one kind skip the event, of another stop the
// instance, and a third is retried after a delay; the rest get the
// runtime's backoff.
func ExampleFailureHandler() {
	errUnknownSKU := errors.New("unknown SKU")
	errFraud := errors.New("fraud suspected")
	errWarehouseDown := errors.New("warehouse unavailable")
	onFailure := func(f evoke.Failure) evoke.FailureAction {
		switch {
		case errors.Is(f.Err, errUnknownSKU):
			return f.Skip()
		case errors.Is(f.Err, errFraud):
			return f.Stop()
		case errors.Is(f.Err, errWarehouseDown) && f.Attempts < 10:
			return f.RetryAfter(30 * time.Second)
		}
		return f.RetryWithBackoff()
	}
	for _, err := range []error{errUnknownSKU, errFraud, errWarehouseDown, errors.New("boom")} {
		f := evoke.Failure{InstanceID: "o-1", Err: fmt.Errorf("reserve: %w", err), Attempts: 1}
		fmt.Printf("%v: %v\n", f.Err, onFailure(f))
	}
	// Output:
	// reserve: unknown SKU: skip
	// reserve: fraud suspected: stop
	// reserve: warehouse unavailable: retry after 30s
	// reserve: boom: retry with backoff
}
