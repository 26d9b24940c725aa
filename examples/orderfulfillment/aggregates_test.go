package orderfulfillment_test

import (
	"errors"
	"testing"

	"github.com/evoke-go/evoke"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

// execute runs cmd against the aggregate whose state is rebuilt from past
// commands, and returns the new events, the state after them and the error.
func execute[S any](agg evoke.Aggregate[S], cmds ...evoke.Command) ([]evoke.Event, S, error) {
	var s S
	var evs []evoke.Event
	var err error
	for _, c := range cmds {
		evs, err = agg.Execute(s, c)
		if err != nil {
			return nil, s, err
		}
		for _, e := range evs {
			s = agg.Apply(s, e)
		}
	}
	return evs, s, nil
}

func cmd(typ, agg string, payload any) evoke.Command {
	return evoke.NewCommand(typ, agg, "order-1", payload)
}

func pay(amount int64) evoke.Command {
	return cmd(of.CommandProcessPayment, of.AggregatePayment, of.ProcessPayment{OrderID: "order-1", Amount: amount})
}

func refund() evoke.Command {
	return cmd(of.CommandRefundPayment, of.AggregatePayment, of.RefundPayment{OrderID: "order-1", Reason: "test"})
}

func reserve(items ...of.Item) evoke.Command {
	return cmd(of.CommandReserveInventory, of.AggregateInventory, of.ReserveInventory{OrderID: "order-1", Items: items})
}

func ship(lost bool) evoke.Command {
	return cmd(of.CommandShipItem, of.AggregateShipping, of.ShipItem{OrderID: "order-1", Lost: lost})
}

// wantEvent checks the single event's type and that Fulfillment
// correlates it to the order.
func wantEvent(t *testing.T, evs []evoke.Event, typ string) {
	t.Helper()
	if len(evs) != 1 || evs[0].Type != typ {
		t.Fatalf("events = %+v, want one %s", evs, typ)
	}
	if c := (of.Fulfillment{}).Correlate(evs[0]); c.Kind() != evoke.KindContinue || c.ID() != "order-1" {
		t.Fatalf("Correlate(%s) = %v", typ, c)
	}
}

func TestPayment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cmds    []evoke.Command
		wantErr error
		want    string
	}{
		{"pay", []evoke.Command{pay(4200)}, nil, of.EventPaymentReceived},
		{"zero amount", []evoke.Command{pay(0)}, of.ErrAmountNotPositive, ""},
		{"negative amount", []evoke.Command{pay(-1)}, of.ErrAmountNotPositive, ""},
		{"declined", []evoke.Command{cmd(of.CommandProcessPayment, of.AggregatePayment,
			of.ProcessPayment{OrderID: "order-1", Amount: 1, Decline: true})}, of.ErrPaymentDeclined, ""},
		{"paid twice", []evoke.Command{pay(1), pay(1)}, of.ErrAlreadyPaid, ""},
		{"refund", []evoke.Command{pay(1), refund()}, nil, of.EventPaymentRefunded},
		{"refund unpaid", []evoke.Command{refund()}, of.ErrNotPaid, ""},
		{"refund twice", []evoke.Command{pay(1), refund(), refund()}, of.ErrAlreadyRefunded, ""},
		{"unknown command", []evoke.Command{cmd("ship_item", of.AggregatePayment, nil)}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs, _, err := execute[of.PaymentState](of.Payment{}, tc.cmds...)
			switch {
			case tc.want != "":
				if err != nil {
					t.Fatal(err)
				}
				wantEvent(t, evs, tc.want)
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			default:
				if err == nil {
					t.Fatal("accepted")
				}
			}
		})
	}
}

func TestPaymentEvents(t *testing.T) {
	t.Parallel()
	evs, s, err := execute[of.PaymentState](of.Payment{}, pay(4200))
	if err != nil {
		t.Fatal(err)
	}
	d, err := evoke.Decode[of.PaymentReceived](evs[0])
	if err != nil || d != (of.PaymentReceived{OrderID: "order-1", Amount: 4200}) {
		t.Fatalf("PaymentReceived = %+v, %v", d, err)
	}
	if s != (of.PaymentState{Paid: true, Amount: 4200}) {
		t.Fatalf("state = %+v", s)
	}
	evs, s, err = execute[of.PaymentState](of.Payment{}, pay(4200), refund())
	if err != nil {
		t.Fatal(err)
	}
	r, err := evoke.Decode[of.PaymentRefunded](evs[0])
	if err != nil || r != (of.PaymentRefunded{OrderID: "order-1", Amount: 4200, Reason: "test"}) {
		t.Fatalf("PaymentRefunded = %+v, %v", r, err)
	}
	if !s.Refunded {
		t.Fatalf("state = %+v", s)
	}
}

func TestInventory(t *testing.T) {
	t.Parallel()
	item := of.Item{SKU: "sku-1", Qty: 1}
	evs, s, err := execute[of.InventoryState](of.Inventory{}, reserve(item))
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, evs, of.EventInventoryReserved)
	if !s.Reserved || len(s.Items) != 1 {
		t.Fatalf("state = %+v", s)
	}
	for name, tc := range map[string]struct {
		cmds []evoke.Command
		want error
	}{
		"no items":      {[]evoke.Command{reserve()}, of.ErrNothingToReserve},
		"zero quantity": {[]evoke.Command{reserve(of.Item{SKU: "sku-1"})}, of.ErrNothingToReserve},
		"twice":         {[]evoke.Command{reserve(item), reserve(item)}, of.ErrAlreadyReserved},
	} {
		if _, _, err := execute[of.InventoryState](of.Inventory{}, tc.cmds...); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

func TestShipping(t *testing.T) {
	t.Parallel()
	evs, s, err := execute[of.ShippingState](of.Shipping{}, ship(false))
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, evs, of.EventItemShipped)
	if !s.Shipped {
		t.Fatalf("state = %+v", s)
	}
	if _, _, err := execute[of.ShippingState](of.Shipping{}, ship(false), ship(false)); !errors.Is(err, of.ErrAlreadyShipped) {
		t.Fatalf("shipped twice: err = %v", err)
	}
	evs, s, err = execute[of.ShippingState](of.Shipping{}, ship(true))
	if err != nil || len(evs) != 0 || s.Shipped {
		t.Fatalf("lost shipment: events %v, state %+v, err %v", evs, s, err)
	}
}
