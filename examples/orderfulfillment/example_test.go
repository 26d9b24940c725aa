package orderfulfillment_test

import (
	"fmt"

	"github.com/evoke-go/evoke"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

// Example runs the full workflow by plain calls: each event is
// correlated, applied and handled, and each command is executed by its
// aggregate, whose event drives the next step.
func Example() {
	pm := of.Fulfillment{}
	aggregates := map[string]func(evoke.Command) ([]evoke.Event, error){
		of.AggregatePayment:   func(c evoke.Command) ([]evoke.Event, error) { return of.Payment{}.Execute(of.PaymentState{}, c) },
		of.AggregateInventory: func(c evoke.Command) ([]evoke.Event, error) { return of.Inventory{}.Execute(of.InventoryState{}, c) },
		of.AggregateShipping:  func(c evoke.Command) ([]evoke.Event, error) { return of.Shipping{}.Execute(of.ShippingState{}, c) },
	}

	var state of.State
	queue := []evoke.Event{evoke.NewEvent(of.EventOrderPlaced, of.OrderPlaced{
		OrderID:    "order-1",
		CustomerID: "cust-1",
		Items:      []of.Item{{SKU: "book", Qty: 1}},
		Amount:     1999,
	})}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		corr := pm.Correlate(e)
		before := pm.Phase(state)
		state = pm.Apply(state, e)
		var cmds []evoke.Command
		var err error
		state, cmds, err = pm.Handle(state, e)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("%s %v: %q -> %q\n", e.Type, corr, before, pm.Phase(state))
		for _, c := range cmds {
			fmt.Printf("  %s to %s %s: %s\n", c.Type, c.AggregateType, c.AggregateID, c.Payload)
			evs, err := aggregates[c.AggregateType](c)
			if err != nil {
				fmt.Println("  rejected:", err)
				continue
			}
			queue = append(queue, evs...)
		}
	}
	fmt.Println("completed:", pm.Completed(state))
	// Output:
	// OrderPlaced continue(order-1): "" -> "awaiting_payment"
	//   process_payment to payment order-1: {"order_id":"order-1","amount":1999}
	// PaymentReceived continue(order-1): "awaiting_payment" -> "awaiting_inventory"
	//   reserve_inventory to inventory order-1: {"order_id":"order-1","items":[{"sku":"book","qty":1}]}
	// InventoryReserved continue(order-1): "awaiting_inventory" -> "awaiting_shipment"
	//   ship_item to shipping order-1: {"order_id":"order-1"}
	// ItemShipped continue(order-1): "awaiting_shipment" -> "completed"
	// completed: true
}
