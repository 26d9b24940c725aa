package orderfulfillment

import (
	"errors"

	"github.com/evoke-go/evoke"
)

// Register adds the process manager f and the payment, inventory and
// shipping aggregates to rt, before rt.Start.
func Register(rt *evoke.Runtime, f Fulfillment) error {
	return errors.Join(
		evoke.RegisterProcessManager(rt, f, nil),
		evoke.RegisterAggregate(rt, AggregatePayment, Payment{}),
		evoke.RegisterAggregate(rt, AggregateInventory, Inventory{}),
		evoke.RegisterAggregate(rt, AggregateShipping, Shipping{}),
	)
}
