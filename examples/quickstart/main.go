// Command quickstart runs the order-fulfilment process manager of
// examples/orderfulfillment on a SQLite file: it places an order, waits for
// the order's saga to complete and reads the saga's typed state.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

func main() {
	if err := run(context.Background(), "orders.db", os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run places one order on the store at path and prints how its saga ended.
func run(ctx context.Context, path string, w io.Writer) error {
	store, err := evokesqlite.Open(ctx, path, nil) // created if missing
	if err != nil {
		return err
	}
	defer store.Close()

	rt, err := evoke.New(store, nil) // nil: evoke.Config's defaults
	if err != nil {
		return err
	}
	// The process manager, and the aggregates its commands go to.
	err = errors.Join(
		evoke.RegisterProcessManager(rt, of.Fulfillment{}, nil),
		evoke.RegisterAggregate(rt, of.AggregatePayment, of.Payment{}),
		evoke.RegisterAggregate(rt, of.AggregateInventory, of.Inventory{}),
		evoke.RegisterAggregate(rt, of.AggregateShipping, of.Shipping{}),
	)
	if err != nil {
		return err
	}
	if err := rt.Start(ctx); err != nil {
		return err
	}
	defer rt.Stop(context.WithoutCancel(ctx))

	// Placing an order starts its saga: payment, then inventory, then
	// shipping.
	orderID := fmt.Sprintf("order-%d", time.Now().UnixNano())
	_, err = rt.Append(ctx, orderID, evoke.NoStream, evoke.NewEvent(of.EventOrderPlaced, of.OrderPlaced{
		OrderID:    orderID,
		CustomerID: "customer-7",
		Items:      []of.Item{{SKU: "book", Qty: 1}},
		Amount:     1999,
	}))
	if err != nil {
		return err
	}

	inst, err := waitDone(ctx, store, of.Name, orderID)
	if err != nil {
		return err
	}
	var state of.State // the saga's typed state, as its last step left it
	if err := json.Unmarshal(inst.State, &state); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %s after %d steps; status %s, %d cents paid for %d item(s)\n",
		inst.ID, inst.Status, inst.Version, state.Status, state.Amount, len(state.Items))
	return nil
}

// waitDone waits up to 10 seconds for the instance id of processManager to
// complete (or be cancelled) and returns it.
func waitDone(ctx context.Context, store evokestore.Store, processManager, id string) (evokestore.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		insts, err := store.Instances(ctx, processManager, []string{id})
		if err != nil {
			return evokestore.Instance{}, err
		}
		if len(insts) == 1 && insts[0].Status.Done() {
			return insts[0], nil
		}
		select {
		case <-ctx.Done():
			return evokestore.Instance{}, fmt.Errorf("wait for %s %s: %w", processManager, id, ctx.Err())
		case <-tick.C:
		}
	}
}
