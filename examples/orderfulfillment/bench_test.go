package orderfulfillment_test

import (
	"testing"

	"github.com/evoke-go/evoke"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

// BenchmarkApplyHandle runs one order's whole life through plain Apply and
// Handle calls (OrderPlaced, PaymentReceived, InventoryReserved,
// ItemShipped): pure CPU, no store. steps/s counts Apply+Handle pairs.
func BenchmarkApplyHandle(b *testing.B) {
	pm := of.Fulfillment{}
	evs := []evoke.Event{
		evoke.NewEvent(of.EventOrderPlaced, of.OrderPlaced{OrderID: "order-1", CustomerID: "customer-1",
			Items: []of.Item{{SKU: "sku-1", Qty: 2}}, Amount: 1999}),
		evoke.NewEvent(of.EventPaymentReceived, of.PaymentReceived{OrderID: "order-1", Amount: 1999}),
		evoke.NewEvent(of.EventInventoryReserved, of.InventoryReserved{OrderID: "order-1"}),
		evoke.NewEvent(of.EventItemShipped, of.ItemShipped{OrderID: "order-1"}),
	}
	steps := 0
	b.ReportAllocs()
	for b.Loop() {
		var s of.State
		for _, e := range evs {
			s = pm.Apply(s, e)
			var err error
			if s, _, err = pm.Handle(s, e); err != nil {
				b.Fatal(err)
			}
			steps++
		}
		if !pm.Completed(s) {
			b.Fatalf("not completed: %+v", s)
		}
	}
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
}
