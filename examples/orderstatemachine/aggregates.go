package orderstatemachine

import (
	"errors"
	"fmt"

	"github.com/evoke-go/evoke"
)

// Rejection errors of the aggregates of this package.
var (
	// ErrAlreadyPaid rejects a second payment of one order, including
	// after a failed one.
	ErrAlreadyPaid = errors.New("payment already processed")
	// ErrAlreadyShipped rejects a second shipment of one order.
	ErrAlreadyShipped = errors.New("already shipped")
)

// Payment failure reasons, in PaymentFailed.Reason.
const (
	// ReasonDeclined is the reason of a payment whose payload asks to
	// decline.
	ReasonDeclined = "declined"
	// ReasonInvalidAmount is the reason of a payment of zero or less.
	ReasonInvalidAmount = "invalid_amount"
)

// PaymentState is the state of one order's payment.
type PaymentState struct {
	// Processed is set by PaymentReceived and PaymentFailed.
	Processed bool `json:"processed"`
	Paid      bool `json:"paid"`
}

// Payment is the "payment" aggregate of the state machine, one per order.
// process_payment emits PaymentReceived, or PaymentFailed when the amount
// is not positive or the payload has "decline": true; a second
// process_payment is rejected.
type Payment struct{}

var _ evoke.Aggregate[PaymentState] = Payment{}

// Execute decides on process_payment.
func (Payment) Execute(s PaymentState, cmd evoke.Command) ([]evoke.Event, error) {
	if cmd.Type != CommandProcessPayment {
		return nil, fmt.Errorf("%s: unknown command %q", AggregatePayment, cmd.Type)
	}
	var p ProcessPayment
	if err := cmd.Decode(&p); err != nil {
		return nil, err
	}
	if s.Processed {
		return nil, ErrAlreadyPaid
	}
	id := p.OrderID
	if id == "" {
		id = cmd.AggregateID
	}
	switch {
	case p.Amount <= 0:
		return []evoke.Event{evoke.NewEvent(EventPaymentFailed, PaymentFailed{OrderID: id, Reason: ReasonInvalidAmount})}, nil
	case p.Decline:
		return []evoke.Event{evoke.NewEvent(EventPaymentFailed, PaymentFailed{OrderID: id, Reason: ReasonDeclined})}, nil
	}
	return []evoke.Event{evoke.NewEvent(EventPaymentReceived, PaymentReceived{OrderID: id, Amount: p.Amount})}, nil
}

// Apply evolves the payment from PaymentReceived and PaymentFailed.
func (Payment) Apply(s PaymentState, e evoke.Event) PaymentState {
	switch e.Type {
	case EventPaymentReceived:
		s.Processed, s.Paid = true, true
	case EventPaymentFailed:
		s.Processed = true
	}
	return s
}

// ShippingState is the state of one order's shipment.
type ShippingState struct {
	Shipped bool `json:"shipped"`
}

// Shipping is the "shipping" aggregate of the state machine, one per order:
// ship_order emits ItemShipped, and a second ship_order is rejected.
type Shipping struct{}

var _ evoke.Aggregate[ShippingState] = Shipping{}

// Execute decides on ship_order.
func (Shipping) Execute(s ShippingState, cmd evoke.Command) ([]evoke.Event, error) {
	if cmd.Type != CommandShipOrder {
		return nil, fmt.Errorf("%s: unknown command %q", AggregateShipping, cmd.Type)
	}
	var p ShipOrder
	if err := cmd.Decode(&p); err != nil {
		return nil, err
	}
	if s.Shipped {
		return nil, ErrAlreadyShipped
	}
	id := p.OrderID
	if id == "" {
		id = cmd.AggregateID
	}
	return []evoke.Event{evoke.NewEvent(EventItemShipped, ItemShipped{OrderID: id})}, nil
}

// Apply evolves the shipment from ItemShipped.
func (Shipping) Apply(s ShippingState, e evoke.Event) ShippingState {
	if e.Type == EventItemShipped {
		s.Shipped = true
	}
	return s
}

// CustomerState is the state of one customer.
type CustomerState struct {
	// Notifications counts the customer's notifications.
	Notifications int `json:"notifications"`
}

// Customer is the "customer" aggregate: notify_customer emits
// CustomerNotified. It never rejects a well-formed command.
type Customer struct{}

var _ evoke.Aggregate[CustomerState] = Customer{}

// Execute decides on notify_customer.
func (Customer) Execute(_ CustomerState, cmd evoke.Command) ([]evoke.Event, error) {
	if cmd.Type != CommandNotifyCustomer {
		return nil, fmt.Errorf("%s: unknown command %q", AggregateCustomer, cmd.Type)
	}
	var p NotifyCustomer
	if err := cmd.Decode(&p); err != nil {
		return nil, err
	}
	if p.CustomerID == "" {
		p.CustomerID = cmd.AggregateID
	}
	return []evoke.Event{evoke.NewEvent(EventCustomerNotified, CustomerNotified(p))}, nil
}

// Apply counts CustomerNotified events.
func (Customer) Apply(s CustomerState, e evoke.Event) CustomerState {
	if e.Type == EventCustomerNotified {
		s.Notifications++
	}
	return s
}
