package orderfulfillment_test

// The same process manager through evoketest.Fixture: each event is stepped
// by the runtime itself, on a SQLite file, with a virtual clock.

import (
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

// stubs accept every command: nothing flows back.
var stubs = &evoketest.FixtureOpts{Aggregates: []evoketest.Aggregate{
	evoketest.StubAggregate(of.AggregatePayment), evoketest.StubAggregate(of.AggregateInventory), evoketest.StubAggregate(of.AggregateShipping),
}}

// aggregates are the package's own: their events and rejections flow back.
var aggregates = &evoketest.FixtureOpts{Aggregates: []evoketest.Aggregate{
	evoketest.NewAggregate(of.AggregatePayment, of.Payment{}), evoketest.NewAggregate(of.AggregateInventory, of.Inventory{}),
	evoketest.NewAggregate(of.AggregateShipping, of.Shipping{}),
}}

func TestFixtureFullWorkflow(t *testing.T) {
	t.Parallel()
	f := evoketest.NewFixture(t, of.Fulfillment{}, stubs)
	f.When(evoke.NewEvent(of.EventOrderPlaced, orderPlaced())).
		ThenCommands(evoke.NewCommand(of.CommandProcessPayment, of.AggregatePayment, "order-1", of.ProcessPayment{OrderID: "order-1", Amount: 4200})).
		ThenState(of.State{OrderID: "order-1", CustomerID: "cust-1", Items: []of.Item{{SKU: "sku-1", Qty: 2}}, Amount: 4200, Status: of.StatusAwaitingPayment})
	f.When(evoke.NewEvent(of.EventPaymentReceived, of.PaymentReceived{OrderID: "order-1", Amount: 4200})).
		ThenCommands(evoke.NewCommand(of.CommandReserveInventory, of.AggregateInventory, "order-1", of.ReserveInventory{OrderID: "order-1", Items: []of.Item{{SKU: "sku-1", Qty: 2}}})).
		ThenPhase(of.StatusAwaitingInventory)
	f.When(evoke.NewEvent(of.EventInventoryReserved, of.InventoryReserved{OrderID: "order-1"})).
		ThenCommands(evoke.NewCommand(of.CommandShipItem, of.AggregateShipping, "order-1", of.ShipItem{OrderID: "order-1"})).
		ThenPhase(of.StatusAwaitingShipment).ThenStatus(evokestore.StatusRunning)
	f.When(evoke.NewEvent(of.EventItemShipped, of.ItemShipped{OrderID: "order-1"})).
		ThenCommands().ThenPhase(of.StatusCompleted).ThenStatus(evokestore.StatusCompleted)
}

func TestFixtureWorkflowThroughTheAggregates(t *testing.T) {
	t.Parallel()
	evoketest.NewFixture(t, of.Fulfillment{}, aggregates).
		When(evoke.NewEvent(of.EventOrderPlaced, orderPlaced())).
		ThenCommands(
			evoke.Command{Type: of.CommandProcessPayment, AggregateType: of.AggregatePayment, AggregateID: "order-1"},
			evoke.Command{Type: of.CommandReserveInventory, AggregateType: of.AggregateInventory, AggregateID: "order-1"},
			evoke.Command{Type: of.CommandShipItem, AggregateType: of.AggregateShipping, AggregateID: "order-1"},
		).
		ThenPhase(of.StatusCompleted).ThenStatus(evokestore.StatusCompleted)
}

func TestFixtureDuplicateOrderPlacedDispatchesOnce(t *testing.T) {
	t.Parallel()
	again := orderPlaced()
	again.Amount = 1
	evoketest.NewFixture(t, of.Fulfillment{}, stubs).
		Given(evoke.NewEvent(of.EventOrderPlaced, orderPlaced())).
		When(evoke.NewEvent(of.EventOrderPlaced, again)).
		ThenCommands().ThenPhase(of.StatusAwaitingPayment)
}

func TestFixtureLostShipmentTimesOut(t *testing.T) {
	t.Parallel()
	o := orderPlaced()
	o.LoseShipment = true
	f := evoketest.NewFixture(t, of.Fulfillment{TimeoutAfter: time.Hour}, aggregates)
	f.When(evoke.NewEvent(of.EventOrderPlaced, o)).ThenPhase(of.StatusAwaitingShipment)
	f.AdvanceTime(time.Hour).
		ThenCommands(evoke.NewCommand(of.CommandRefundPayment, of.AggregatePayment, "order-1",
			of.RefundPayment{OrderID: "order-1", Reason: of.ReasonShipmentTimeout})).
		ThenPhase(of.StatusTimedOut).ThenStatus(evokestore.StatusCompleted)
}

func TestFixtureDeclinedPayment(t *testing.T) {
	t.Parallel()
	o := orderPlaced()
	o.DeclinePayment = true
	evoketest.NewFixture(t, of.Fulfillment{}, aggregates).
		When(evoke.NewEvent(of.EventOrderPlaced, o)).
		ThenCommands(evoke.Command{Type: of.CommandProcessPayment, AggregateType: of.AggregatePayment, AggregateID: "order-1"}).
		ThenPhase(of.StatusPaymentFailed).ThenStatus(evokestore.StatusCompleted)
}

func TestFixtureRejectedInventoryIsCompensated(t *testing.T) {
	t.Parallel()
	o := orderPlaced()
	o.Items = nil // nothing to reserve
	evoketest.NewFixture(t, of.Fulfillment{}, aggregates).
		When(evoke.NewEvent(of.EventOrderPlaced, o)).
		ThenCommands(
			evoke.Command{Type: of.CommandProcessPayment, AggregateType: of.AggregatePayment, AggregateID: "order-1"},
			evoke.Command{Type: of.CommandReserveInventory, AggregateType: of.AggregateInventory, AggregateID: "order-1"},
			evoke.NewCommand(of.CommandRefundPayment, of.AggregatePayment, "order-1",
				of.RefundPayment{OrderID: "order-1", Reason: of.ReasonInventoryUnavailable}),
		).
		ThenPhase(of.StatusInventoryFailed).ThenStatus(evokestore.StatusCompleted)
}
