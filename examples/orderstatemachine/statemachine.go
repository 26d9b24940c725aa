// Package orderstatemachine mirrors evoq's "State Machine Pattern"
// section (order_state_machine_pm), with the correlation of its
// "correlate/2" section: Handle switches on the pair (status, event type),
// and every pair not in the table is an invalid transition, ignored.
//
//	new               + OrderPlaced     -> awaiting_payment,  process_payment
//	awaiting_payment  + PaymentReceived -> awaiting_shipment, ship_order
//	awaiting_payment  + PaymentFailed   -> cancelled,         notify_customer
//	awaiting_shipment + ItemShipped     -> completed
//
// OrderPlaced starts an instance, OrderCancelled stops it, and the other
// events continue it, all by order_id. The Payment, Shipping and Customer
// aggregates of this package answer the commands; unlike
// orderfulfillment.Payment, this Payment reports a declined payment as a
// PaymentFailed event, which the state machine handles.
package orderstatemachine

import "github.com/evoke-go/evoke"

// Name is the process manager's name.
const Name = "order_state_machine"

// Event types.
const (
	// EventOrderPlaced starts an instance; its data is OrderPlaced.
	EventOrderPlaced = "OrderPlaced"
	// EventPaymentReceived is emitted by Payment; its data is
	// PaymentReceived.
	EventPaymentReceived = "PaymentReceived"
	// EventPaymentFailed is emitted by Payment; its data is PaymentFailed.
	EventPaymentFailed = "PaymentFailed"
	// EventItemShipped is emitted by Shipping; its data is ItemShipped.
	EventItemShipped = "ItemShipped"
	// EventOrderCancelled stops an instance; its data is OrderCancelled.
	EventOrderCancelled = "OrderCancelled"
	// EventCustomerNotified is emitted by Customer; its data is
	// CustomerNotified. The state machine is not interested in it.
	EventCustomerNotified = "CustomerNotified"
)

// Command types.
const (
	// CommandProcessPayment goes to Payment; its payload is ProcessPayment.
	CommandProcessPayment = "process_payment"
	// CommandShipOrder goes to Shipping; its payload is ShipOrder.
	CommandShipOrder = "ship_order"
	// CommandNotifyCustomer goes to Customer; its payload is
	// NotifyCustomer.
	CommandNotifyCustomer = "notify_customer"
)

// Aggregate types.
const (
	// AggregatePayment is the aggregate type of Payment, keyed by order ID.
	AggregatePayment = "payment"
	// AggregateShipping is the aggregate type of Shipping, keyed by order
	// ID.
	AggregateShipping = "shipping"
	// AggregateCustomer is the aggregate type of Customer, keyed by
	// customer ID (the order ID when the order names no customer).
	AggregateCustomer = "customer"
)

// States of the machine, as reported by Status.
const (
	// StatusNew is the status of the zero State.
	StatusNew = "new"
	// StatusAwaitingPayment follows OrderPlaced.
	StatusAwaitingPayment = "awaiting_payment"
	// StatusAwaitingShipment follows PaymentReceived.
	StatusAwaitingShipment = "awaiting_shipment"
	// StatusCancelled follows PaymentFailed; it is final.
	StatusCancelled = "cancelled"
	// StatusCompleted follows ItemShipped; it is final.
	StatusCompleted = "completed"
)

// OrderPlaced is the data of EventOrderPlaced.
type OrderPlaced struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id,omitempty"`
	// Amount is in cents.
	Amount int64 `json:"amount"`
	// DeclinePayment makes Payment answer with PaymentFailed.
	DeclinePayment bool `json:"decline_payment,omitempty"`
}

// PaymentReceived is the data of EventPaymentReceived.
type PaymentReceived struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
}

// PaymentFailed is the data of EventPaymentFailed.
type PaymentFailed struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// ItemShipped is the data of EventItemShipped.
type ItemShipped struct {
	OrderID string `json:"order_id"`
}

// OrderCancelled is the data of EventOrderCancelled.
type OrderCancelled struct {
	OrderID string `json:"order_id"`
}

// CustomerNotified is the data of EventCustomerNotified.
type CustomerNotified struct {
	CustomerID string `json:"customer_id"`
	OrderID    string `json:"order_id"`
	Message    string `json:"message"`
}

// ProcessPayment is the payload of CommandProcessPayment.
type ProcessPayment struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
	Decline bool   `json:"decline,omitempty"`
}

// ShipOrder is the payload of CommandShipOrder.
type ShipOrder struct {
	OrderID string `json:"order_id"`
}

// NotifyCustomer is the payload of CommandNotifyCustomer.
type NotifyCustomer struct {
	CustomerID string `json:"customer_id"`
	OrderID    string `json:"order_id"`
	Message    string `json:"message"`
}

// State is the state of one order. Its zero Status ("") is the machine's
// "new" state.
type State struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id,omitempty"`
	// Amount is in cents.
	Amount         int64  `json:"amount"`
	DeclinePayment bool   `json:"decline_payment,omitempty"`
	Status         string `json:"status,omitempty"`
	// FailureReason is PaymentFailed's reason.
	FailureReason string `json:"failure_reason,omitempty"`
}

// Machine is the order state machine process manager.
type Machine struct{}

var (
	_ evoke.ProcessManager[State] = Machine{}
	_ evoke.Completer[State]      = Machine{}
	_ evoke.PhaseReporter[State]  = Machine{}
)

// Name returns "order_state_machine".
func (Machine) Name() string { return Name }

// InterestedIn returns the events of the machine plus OrderCancelled.
func (Machine) InterestedIn() []string {
	return []string{EventOrderPlaced, EventPaymentReceived, EventPaymentFailed, EventItemShipped, EventOrderCancelled}
}

// Correlate mirrors evoq's correlate/2 by order_id: OrderPlaced starts,
// OrderCancelled stops, PaymentReceived, PaymentFailed and ItemShipped
// continue, and anything else is ignored.
func (Machine) Correlate(e evoke.Event) evoke.Correlation {
	switch e.Type {
	case EventOrderPlaced:
		return evoke.ByField(e, "order_id", evoke.Start)
	case EventOrderCancelled:
		return evoke.ByField(e, "order_id", evoke.Stop)
	case EventPaymentReceived, EventPaymentFailed, EventItemShipped:
		return evoke.ByField(e, "order_id", evoke.Continue)
	}
	return evoke.Ignore()
}

// Apply records the order on the first OrderPlaced and the reason of
// PaymentFailed; it leaves the status to Handle.
func (m Machine) Apply(s State, e evoke.Event) State {
	switch e.Type {
	case EventOrderPlaced:
		if m.Phase(s) != StatusNew || s.OrderID != "" {
			return s
		}
		if d, err := evoke.Decode[OrderPlaced](e); err == nil {
			s.OrderID, s.CustomerID, s.Amount, s.DeclinePayment = d.OrderID, d.CustomerID, d.Amount, d.DeclinePayment
		}
	case EventPaymentFailed:
		if d, err := evoke.Decode[PaymentFailed](e); err == nil {
			s.FailureReason = d.Reason
		}
	}
	return s
}

// Handle is the transition table of the package documentation; any other
// (status, event) pair is ignored, as evoq's last handle/3 clause does.
func (m Machine) Handle(s State, e evoke.Event) (State, []evoke.Command, error) {
	switch [2]string{m.Phase(s), e.Type} {
	case [2]string{StatusNew, EventOrderPlaced}:
		if _, err := evoke.Decode[OrderPlaced](e); err != nil {
			return s, nil, err
		}
		s.Status = StatusAwaitingPayment
		return s, []evoke.Command{evoke.NewCommand(CommandProcessPayment, AggregatePayment, s.OrderID,
			ProcessPayment{OrderID: s.OrderID, Amount: s.Amount, Decline: s.DeclinePayment})}, nil
	case [2]string{StatusAwaitingPayment, EventPaymentReceived}:
		s.Status = StatusAwaitingShipment
		return s, []evoke.Command{evoke.NewCommand(CommandShipOrder, AggregateShipping, s.OrderID,
			ShipOrder{OrderID: s.OrderID})}, nil
	case [2]string{StatusAwaitingPayment, EventPaymentFailed}:
		s.Status = StatusCancelled
		customer := s.CustomerID
		if customer == "" {
			customer = s.OrderID
		}
		return s, []evoke.Command{evoke.NewCommand(CommandNotifyCustomer, AggregateCustomer, customer,
			NotifyCustomer{CustomerID: customer, OrderID: s.OrderID, Message: "order cancelled: " + s.FailureReason})}, nil
	case [2]string{StatusAwaitingShipment, EventItemShipped}:
		s.Status = StatusCompleted
	}
	return s, nil, nil
}

// Completed reports whether the order is completed or cancelled.
func (m Machine) Completed(s State) bool {
	st := m.Phase(s)
	return st == StatusCompleted || st == StatusCancelled
}

// Status returns the machine's state: s.Status, or "new" when it is empty.
func (Machine) Phase(s State) string {
	if s.Status == "" {
		return StatusNew
	}
	return s.Status
}
