// Package orderfulfillment mirrors evoq's "Basic Process Manager"
// section (order_fulfillment_pm): an order is paid, its inventory reserved
// and its items shipped, one aggregate after the other.
//
// The Fulfillment process manager reacts to OrderPlaced, PaymentReceived,
// InventoryReserved and ItemShipped, correlating them by the order_id data
// field, and dispatches process_payment, reserve_inventory and ship_item to
// the Payment, Inventory and Shipping aggregates of this package. Beyond the
// seed it shows an inactivity timeout (a lost shipment is refunded) and
// compensation (a rejected inventory reservation is refunded).
package orderfulfillment

import (
	"time"

	"github.com/evoke-go/evoke"
)

// Name is the process manager's name.
const Name = "order_fulfillment"

// Event types.
const (
	// EventOrderPlaced starts a fulfillment; its data is OrderPlaced.
	EventOrderPlaced = "OrderPlaced"
	// EventPaymentReceived is emitted by Payment; its data is
	// PaymentReceived.
	EventPaymentReceived = "PaymentReceived"
	// EventInventoryReserved is emitted by Inventory; its data is
	// InventoryReserved.
	EventInventoryReserved = "InventoryReserved"
	// EventItemShipped is emitted by Shipping; its data is ItemShipped.
	EventItemShipped = "ItemShipped"
	// EventPaymentRefunded is emitted by Payment; its data is
	// PaymentRefunded. Fulfillment is not interested in it.
	EventPaymentRefunded = "PaymentRefunded"
)

// Command types.
const (
	// CommandProcessPayment goes to Payment; its payload is ProcessPayment.
	CommandProcessPayment = "process_payment"
	// CommandReserveInventory goes to Inventory; its payload is
	// ReserveInventory.
	CommandReserveInventory = "reserve_inventory"
	// CommandShipItem goes to Shipping; its payload is ShipItem.
	CommandShipItem = "ship_item"
	// CommandRefundPayment goes to Payment; its payload is RefundPayment.
	CommandRefundPayment = "refund_payment"
)

// Aggregate types. Every aggregate of this package is keyed by order ID.
const (
	// AggregatePayment is the aggregate type of Payment.
	AggregatePayment = "payment"
	// AggregateInventory is the aggregate type of Inventory.
	AggregateInventory = "inventory"
	// AggregateShipping is the aggregate type of Shipping.
	AggregateShipping = "shipping"
)

// Statuses of a fulfillment, in State.Status.
const (
	// StatusStarted is set by Apply on OrderPlaced.
	StatusStarted = "started"
	// StatusAwaitingPayment follows OrderPlaced.
	StatusAwaitingPayment = "awaiting_payment"
	// StatusAwaitingInventory follows PaymentReceived.
	StatusAwaitingInventory = "awaiting_inventory"
	// StatusAwaitingShipment follows InventoryReserved.
	StatusAwaitingShipment = "awaiting_shipment"
	// StatusCompleted follows ItemShipped; it is final.
	StatusCompleted = "completed"
	// StatusTimedOut follows a timeout while awaiting shipment; it is final.
	StatusTimedOut = "timed_out"
	// StatusPaymentFailed follows a rejected process_payment (delivered
	// to Handle as evoke.CommandRejectedEvent); it is final.
	StatusPaymentFailed = "payment_failed"
	// StatusInventoryFailed follows a rejected reserve_inventory, after
	// Compensate refunded the payment; it is final.
	StatusInventoryFailed = "inventory_failed"
)

// Refund reasons, in RefundPayment.Reason.
const (
	// ReasonShipmentTimeout refunds an order whose shipment never arrived.
	ReasonShipmentTimeout = "shipment_timeout"
	// ReasonInventoryUnavailable refunds an order whose reservation was
	// rejected.
	ReasonInventoryUnavailable = "inventory_unavailable"
)

// Item is one order line.
type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// OrderPlaced is the data of EventOrderPlaced.
type OrderPlaced struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Items      []Item `json:"items"`
	// Amount is in cents.
	Amount int64 `json:"amount"`
	// DeclinePayment makes Payment decline the order's payment (for demos
	// of rejection).
	DeclinePayment bool `json:"decline_payment,omitempty"`
	// LoseShipment makes Shipping lose the order's shipment, so that it
	// never arrives (for demos of the inactivity timeout).
	LoseShipment bool `json:"lose_shipment,omitempty"`
}

// PaymentReceived is the data of EventPaymentReceived.
type PaymentReceived struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
}

// InventoryReserved is the data of EventInventoryReserved.
type InventoryReserved struct {
	OrderID string `json:"order_id"`
}

// ItemShipped is the data of EventItemShipped.
type ItemShipped struct {
	OrderID string `json:"order_id"`
}

// PaymentRefunded is the data of EventPaymentRefunded.
type PaymentRefunded struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
	Reason  string `json:"reason,omitempty"`
}

// ProcessPayment is the payload of CommandProcessPayment.
type ProcessPayment struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
	// Decline makes Payment reject the command.
	Decline bool `json:"decline,omitempty"`
}

// ReserveInventory is the payload of CommandReserveInventory.
type ReserveInventory struct {
	OrderID string `json:"order_id"`
	Items   []Item `json:"items"`
}

// ShipItem is the payload of CommandShipItem.
type ShipItem struct {
	OrderID string `json:"order_id"`
	// Lost makes Shipping accept the command and emit nothing.
	Lost bool `json:"lost,omitempty"`
}

// RefundPayment is the payload of CommandRefundPayment.
type RefundPayment struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason,omitempty"`
}

// State is the state of one fulfillment instance.
type State struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Items      []Item `json:"items"`
	// Amount is in cents.
	Amount         int64  `json:"amount"`
	Status         string `json:"status"`
	DeclinePayment bool   `json:"decline_payment,omitempty"`
	LoseShipment   bool   `json:"lose_shipment,omitempty"`
}

// Fulfillment is the order fulfillment process manager.
type Fulfillment struct {
	// TimeoutAfter is the inactivity timeout; zero means none.
	TimeoutAfter time.Duration
}

var (
	_ evoke.ProcessManager[State] = Fulfillment{}
	_ evoke.Timeouter             = Fulfillment{}
	_ evoke.Compensator[State]    = Fulfillment{}
	_ evoke.Completer[State]      = Fulfillment{}
	_ evoke.PhaseReporter[State]  = Fulfillment{}
)

// Name returns "order_fulfillment".
func (Fulfillment) Name() string { return Name }

// InterestedIn returns evoq's interested_in/0.
func (Fulfillment) InterestedIn() []string {
	return []string{EventOrderPlaced, EventPaymentReceived, EventInventoryReserved, EventItemShipped}
}

// Correlate routes every event by its order_id data field, continuing (or
// creating) the instance, as evoq's correlate/2 does.
func (Fulfillment) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "order_id", evoke.Continue)
}

// Apply records the order on OrderPlaced and sets status "started". A
// second OrderPlaced for a running instance changes nothing.
func (Fulfillment) Apply(s State, e evoke.Event) State {
	if e.Type != EventOrderPlaced || s.Status != "" {
		return s
	}
	d, err := evoke.Decode[OrderPlaced](e)
	if err != nil {
		return s // Handle reports the error
	}
	s.OrderID = d.OrderID
	s.CustomerID = d.CustomerID
	s.Items = d.Items
	s.Amount = d.Amount
	s.DeclinePayment = d.DeclinePayment
	s.LoseShipment = d.LoseShipment
	s.Status = StatusStarted
	return s
}

// Handle dispatches the next step, as evoq's handle/3 does:
//
//	OrderPlaced       -> process_payment,   awaiting_payment
//	PaymentReceived   -> reserve_inventory, awaiting_inventory
//	InventoryReserved -> ship_item,         awaiting_shipment
//	ItemShipped       -> completed
//
// On evoke.CommandRejectedEvent it records the failed step
// (payment_failed, inventory_failed), which completes the instance.
// On evoke.TimeoutEvent while awaiting shipment it refunds the payment and
// sets status "timed_out"; a timeout in any other status, and any other
// event, does nothing.
func (Fulfillment) Handle(s State, e evoke.Event) (State, []evoke.Command, error) {
	switch e.Type {
	case EventOrderPlaced:
		if _, err := evoke.Decode[OrderPlaced](e); err != nil {
			return s, nil, err
		}
		if s.Status != StatusStarted {
			return s, nil, nil // duplicate OrderPlaced: already dispatched
		}
		cmd := evoke.NewCommand(CommandProcessPayment, AggregatePayment, s.OrderID,
			ProcessPayment{OrderID: s.OrderID, Amount: s.Amount, Decline: s.DeclinePayment})
		s.Status = StatusAwaitingPayment
		return s, []evoke.Command{cmd}, nil
	case EventPaymentReceived:
		cmd := evoke.NewCommand(CommandReserveInventory, AggregateInventory, s.OrderID,
			ReserveInventory{OrderID: s.OrderID, Items: s.Items})
		s.Status = StatusAwaitingInventory
		return s, []evoke.Command{cmd}, nil
	case EventInventoryReserved:
		cmd := evoke.NewCommand(CommandShipItem, AggregateShipping, s.OrderID,
			ShipItem{OrderID: s.OrderID, Lost: s.LoseShipment})
		s.Status = StatusAwaitingShipment
		return s, []evoke.Command{cmd}, nil
	case EventItemShipped:
		s.Status = StatusCompleted
		return s, nil, nil
	case evoke.CommandRejectedEvent:
		// Delivered after Compensate: record which step failed.
		d, _ := evoke.Rejected(e) // the runtime's own event: it decodes
		switch d.Command.Type {
		case CommandProcessPayment:
			s.Status = StatusPaymentFailed
		case CommandReserveInventory:
			s.Status = StatusInventoryFailed
		}
		return s, nil, nil
	case evoke.TimeoutEvent:
		if s.Status != StatusAwaitingShipment {
			return s, nil, nil
		}
		cmd := evoke.NewCommand(CommandRefundPayment, AggregatePayment, s.OrderID,
			RefundPayment{OrderID: s.OrderID, Reason: ReasonShipmentTimeout})
		s.Status = StatusTimedOut
		return s, []evoke.Command{cmd}, nil
	}
	return s, nil, nil
}

// Timeout returns f.TimeoutAfter.
func (f Fulfillment) Timeout() time.Duration { return f.TimeoutAfter }

// Compensate refunds the payment when reserve_inventory is rejected, and
// skips every other rejection (a rejected process_payment took no money).
func (Fulfillment) Compensate(s State, failed evoke.FailedCommand) ([]evoke.Command, bool) {
	if failed.Command.Type != CommandReserveInventory {
		return nil, false
	}
	orderID := s.OrderID
	if orderID == "" {
		orderID = failed.Command.AggregateID
	}
	return []evoke.Command{evoke.NewCommand(CommandRefundPayment, AggregatePayment, orderID,
		RefundPayment{OrderID: orderID, Reason: ReasonInventoryUnavailable})}, true
}

// Completed reports whether the status is final: completed, timed_out,
// payment_failed or inventory_failed.
func (Fulfillment) Completed(s State) bool {
	switch s.Status {
	case StatusCompleted, StatusTimedOut, StatusPaymentFailed, StatusInventoryFailed:
		return true
	}
	return false
}

// Status returns s.Status.
func (Fulfillment) Phase(s State) string { return s.Status }
