package orderfulfillment

import (
	"errors"
	"fmt"

	"github.com/evoke-go/evoke"
)

// Rejection errors of the aggregates of this package.
var (
	// ErrAmountNotPositive rejects a payment of zero or less.
	ErrAmountNotPositive = errors.New("amount must be positive")
	// ErrPaymentDeclined rejects a payment whose payload asks to decline.
	ErrPaymentDeclined = errors.New("payment declined")
	// ErrAlreadyPaid rejects a second payment of one order.
	ErrAlreadyPaid = errors.New("already paid")
	// ErrNotPaid rejects a refund of an unpaid order.
	ErrNotPaid = errors.New("not paid")
	// ErrAlreadyRefunded rejects a second refund of one order.
	ErrAlreadyRefunded = errors.New("already refunded")
	// ErrNothingToReserve rejects a reservation without items or with an
	// item quantity of zero or less.
	ErrNothingToReserve = errors.New("nothing to reserve")
	// ErrAlreadyReserved rejects a second reservation of one order.
	ErrAlreadyReserved = errors.New("already reserved")
	// ErrAlreadyShipped rejects a second shipment of one order.
	ErrAlreadyShipped = errors.New("already shipped")
)

// unknownCommand rejects a command an aggregate does not handle.
func unknownCommand(aggregate string, cmd evoke.Command) error {
	return fmt.Errorf("%s: unknown command %q", aggregate, cmd.Type)
}

// orderID returns the payload's order ID, or else the aggregate ID.
func orderID(payloadID string, cmd evoke.Command) string {
	if payloadID != "" {
		return payloadID
	}
	return cmd.AggregateID
}

// PaymentState is the state of one order's payment.
type PaymentState struct {
	Paid     bool  `json:"paid"`
	Amount   int64 `json:"amount"`
	Refunded bool  `json:"refunded"`
}

// Payment is the "payment" aggregate, one per order. process_payment emits
// PaymentReceived; it is rejected when the amount is not positive, when the
// payload has "decline": true, or when the order is paid already.
// refund_payment emits PaymentRefunded; it is rejected when the order is not
// paid or refunded already.
type Payment struct{}

var _ evoke.Aggregate[PaymentState] = Payment{}

// Execute decides on process_payment and refund_payment.
func (Payment) Execute(s PaymentState, cmd evoke.Command) ([]evoke.Event, error) {
	switch cmd.Type {
	case CommandProcessPayment:
		var p ProcessPayment
		if err := cmd.Decode(&p); err != nil {
			return nil, err
		}
		switch {
		case s.Paid:
			return nil, ErrAlreadyPaid
		case p.Amount <= 0:
			return nil, ErrAmountNotPositive
		case p.Decline:
			return nil, ErrPaymentDeclined
		}
		return []evoke.Event{evoke.NewEvent(EventPaymentReceived,
			PaymentReceived{OrderID: orderID(p.OrderID, cmd), Amount: p.Amount})}, nil
	case CommandRefundPayment:
		var p RefundPayment
		if err := cmd.Decode(&p); err != nil {
			return nil, err
		}
		switch {
		case !s.Paid:
			return nil, ErrNotPaid
		case s.Refunded:
			return nil, ErrAlreadyRefunded
		}
		return []evoke.Event{evoke.NewEvent(EventPaymentRefunded,
			PaymentRefunded{OrderID: orderID(p.OrderID, cmd), Amount: s.Amount, Reason: p.Reason})}, nil
	}
	return nil, unknownCommand(AggregatePayment, cmd)
}

// Apply evolves the payment from PaymentReceived and PaymentRefunded.
func (Payment) Apply(s PaymentState, e evoke.Event) PaymentState {
	switch e.Type {
	case EventPaymentReceived:
		if d, err := evoke.Decode[PaymentReceived](e); err == nil {
			s.Paid, s.Amount = true, d.Amount
		}
	case EventPaymentRefunded:
		s.Refunded = true
	}
	return s
}

// InventoryState is the state of one order's reservation.
type InventoryState struct {
	Reserved bool   `json:"reserved"`
	Items    []Item `json:"items,omitempty"`
}

// Inventory is the "inventory" aggregate, one per order. reserve_inventory
// emits InventoryReserved; it is rejected when there is nothing to reserve
// (no items, or a quantity of zero or less: use it to demo compensation) or
// when the order is reserved already.
type Inventory struct{}

var _ evoke.Aggregate[InventoryState] = Inventory{}

// Execute decides on reserve_inventory.
func (Inventory) Execute(s InventoryState, cmd evoke.Command) ([]evoke.Event, error) {
	if cmd.Type != CommandReserveInventory {
		return nil, unknownCommand(AggregateInventory, cmd)
	}
	var p ReserveInventory
	if err := cmd.Decode(&p); err != nil {
		return nil, err
	}
	if s.Reserved {
		return nil, ErrAlreadyReserved
	}
	if len(p.Items) == 0 {
		return nil, ErrNothingToReserve
	}
	for _, it := range p.Items {
		if it.Qty <= 0 {
			return nil, fmt.Errorf("%w: %s has quantity %d", ErrNothingToReserve, it.SKU, it.Qty)
		}
	}
	return []evoke.Event{evoke.NewEvent(EventInventoryReserved,
		reservedData{OrderID: orderID(p.OrderID, cmd), Items: p.Items})}, nil
}

// reservedData is what Inventory records: InventoryReserved plus the items.
type reservedData struct {
	OrderID string `json:"order_id"`
	Items   []Item `json:"items"`
}

// Apply evolves the reservation from InventoryReserved.
func (Inventory) Apply(s InventoryState, e evoke.Event) InventoryState {
	if e.Type == EventInventoryReserved {
		s.Reserved = true
		if d, err := evoke.Decode[reservedData](e); err == nil {
			s.Items = d.Items
		}
	}
	return s
}

// ShippingState is the state of one order's shipment.
type ShippingState struct {
	Shipped bool `json:"shipped"`
}

// Shipping is the "shipping" aggregate, one per order. ship_item emits
// ItemShipped; it is rejected when the order is shipped already. A payload
// with "lost": true is accepted and emits nothing: the shipment never
// arrives, so the fulfillment times out.
type Shipping struct{}

var _ evoke.Aggregate[ShippingState] = Shipping{}

// Execute decides on ship_item.
func (Shipping) Execute(s ShippingState, cmd evoke.Command) ([]evoke.Event, error) {
	if cmd.Type != CommandShipItem {
		return nil, unknownCommand(AggregateShipping, cmd)
	}
	var p ShipItem
	if err := cmd.Decode(&p); err != nil {
		return nil, err
	}
	if s.Shipped {
		return nil, ErrAlreadyShipped
	}
	if p.Lost {
		return nil, nil
	}
	return []evoke.Event{evoke.NewEvent(EventItemShipped, ItemShipped{OrderID: orderID(p.OrderID, cmd)})}, nil
}

// Apply evolves the shipment from ItemShipped.
func (Shipping) Apply(s ShippingState, e evoke.Event) ShippingState {
	if e.Type == EventItemShipped {
		s.Shipped = true
	}
	return s
}
