package orderfulfillment_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func event(typ string, data any) evoke.Event {
	e := evoke.NewEvent(typ, data)
	e.ID = typ + "-1"
	e.RecordedAt = t0
	return e
}

func orderPlaced() of.OrderPlaced {
	return of.OrderPlaced{
		OrderID:    "order-1",
		CustomerID: "cust-1",
		Items:      []of.Item{{SKU: "sku-1", Qty: 2}},
		Amount:     4200,
	}
}

// step is one Correlate/Apply/Handle round, as evoq's
// full_workflow_test does by hand.
func step(t *testing.T, pm of.Fulfillment, s of.State, e evoke.Event) (of.State, []evoke.Command) {
	t.Helper()
	c := pm.Correlate(e)
	if c.Kind() != evoke.KindContinue || c.ID() != "order-1" {
		t.Fatalf("Correlate(%s) = %v, want continue(order-1)", e.Type, c)
	}
	s = pm.Apply(s, e)
	s, cmds, err := pm.Handle(s, e)
	if err != nil {
		t.Fatalf("Handle(%s): %v", e.Type, err)
	}
	return s, cmds
}

func payload[T any](t *testing.T, c evoke.Command) T {
	t.Helper()
	var v T
	if err := c.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func oneCommand(t *testing.T, cmds []evoke.Command, typ, aggType, aggID string) evoke.Command {
	t.Helper()
	if len(cmds) != 1 {
		t.Fatalf("got %d commands, want 1: %+v", len(cmds), cmds)
	}
	c := cmds[0]
	if c.Type != typ || c.AggregateType != aggType || c.AggregateID != aggID {
		t.Fatalf("command = %s to %s/%s, want %s to %s/%s", c.Type, c.AggregateType, c.AggregateID, typ, aggType, aggID)
	}
	return c
}

func TestFullWorkflow(t *testing.T) {
	t.Parallel()
	pm := of.Fulfillment{}
	if pm.Name() != "order_fulfillment" {
		t.Fatalf("Name = %q", pm.Name())
	}
	want := []string{"OrderPlaced", "PaymentReceived", "InventoryReserved", "ItemShipped"}
	if got := pm.InterestedIn(); !reflect.DeepEqual(got, want) {
		t.Fatalf("InterestedIn = %v, want %v", got, want)
	}
	if pm.Timeout() != 0 {
		t.Fatalf("zero Fulfillment has timeout %v", pm.Timeout())
	}

	var s of.State
	placed := event(of.EventOrderPlaced, orderPlaced())

	s = pm.Apply(s, placed)
	if s.Status != of.StatusStarted || s.OrderID != "order-1" || s.CustomerID != "cust-1" || s.Amount != 4200 || len(s.Items) != 1 {
		t.Fatalf("after Apply(OrderPlaced): %+v", s)
	}
	s, cmds, err := pm.Handle(s, placed)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != of.StatusAwaitingPayment {
		t.Fatalf("status = %q", s.Status)
	}
	pay := payload[of.ProcessPayment](t, oneCommand(t, cmds, "process_payment", "payment", "order-1"))
	if pay != (of.ProcessPayment{OrderID: "order-1", Amount: 4200}) {
		t.Fatalf("process_payment payload = %+v", pay)
	}

	s, cmds = step(t, pm, s, event(of.EventPaymentReceived, of.PaymentReceived{OrderID: "order-1", Amount: 4200}))
	if s.Status != of.StatusAwaitingInventory {
		t.Fatalf("status = %q", s.Status)
	}
	res := payload[of.ReserveInventory](t, oneCommand(t, cmds, "reserve_inventory", "inventory", "order-1"))
	if res.OrderID != "order-1" || !reflect.DeepEqual(res.Items, []of.Item{{SKU: "sku-1", Qty: 2}}) {
		t.Fatalf("reserve_inventory payload = %+v", res)
	}

	s, cmds = step(t, pm, s, event(of.EventInventoryReserved, of.InventoryReserved{OrderID: "order-1"}))
	if s.Status != of.StatusAwaitingShipment {
		t.Fatalf("status = %q", s.Status)
	}
	ship := payload[of.ShipItem](t, oneCommand(t, cmds, "ship_item", "shipping", "order-1"))
	if ship != (of.ShipItem{OrderID: "order-1"}) {
		t.Fatalf("ship_item payload = %+v", ship)
	}
	if pm.Completed(s) {
		t.Fatal("completed before shipping")
	}

	s, cmds = step(t, pm, s, event(of.EventItemShipped, of.ItemShipped{OrderID: "order-1"}))
	if s.Status != of.StatusCompleted || len(cmds) != 0 {
		t.Fatalf("status = %q, commands %v", s.Status, cmds)
	}
	if !pm.Completed(s) || pm.Phase(s) != "completed" {
		t.Fatalf("Completed = %v, Status = %q", pm.Completed(s), pm.Phase(s))
	}

	// The state survives a JSON round trip, as the runtime stores it.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back of.State
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func TestDemoFlagsReachCommands(t *testing.T) {
	t.Parallel()
	pm := of.Fulfillment{}
	d := orderPlaced()
	d.DeclinePayment, d.LoseShipment = true, true
	s, cmds := step(t, pm, of.State{}, event(of.EventOrderPlaced, d))
	if p := payload[of.ProcessPayment](t, cmds[0]); !p.Decline {
		t.Fatalf("process_payment payload = %+v, want decline", p)
	}
	s, _ = step(t, pm, s, event(of.EventPaymentReceived, of.PaymentReceived{OrderID: "order-1"}))
	_, cmds = step(t, pm, s, event(of.EventInventoryReserved, of.InventoryReserved{OrderID: "order-1"}))
	if p := payload[of.ShipItem](t, cmds[0]); !p.Lost {
		t.Fatalf("ship_item payload = %+v, want lost", p)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	pm := of.Fulfillment{TimeoutAfter: time.Hour}
	if pm.Timeout() != time.Hour {
		t.Fatalf("Timeout = %v", pm.Timeout())
	}
	timeout := evoke.Event{Type: evoke.TimeoutEvent, RecordedAt: t0}
	for _, tc := range []struct {
		status   string
		want     string
		commands int
	}{
		{of.StatusAwaitingPayment, of.StatusAwaitingPayment, 0},
		{of.StatusAwaitingInventory, of.StatusAwaitingInventory, 0},
		{of.StatusAwaitingShipment, of.StatusTimedOut, 1},
	} {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			s := of.State{OrderID: "order-1", Status: tc.status}
			s = pm.Apply(s, timeout)
			s, cmds, err := pm.Handle(s, timeout)
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != tc.want || len(cmds) != tc.commands {
				t.Fatalf("status %q, commands %v", s.Status, cmds)
			}
			if tc.commands == 0 {
				return
			}
			r := payload[of.RefundPayment](t, oneCommand(t, cmds, "refund_payment", "payment", "order-1"))
			if r != (of.RefundPayment{OrderID: "order-1", Reason: of.ReasonShipmentTimeout}) {
				t.Fatalf("refund payload = %+v", r)
			}
			if !pm.Completed(s) {
				t.Fatal("timed_out is not final")
			}
		})
	}
}

func TestCompensate(t *testing.T) {
	t.Parallel()
	pm := of.Fulfillment{}
	s := of.State{OrderID: "order-1", Status: of.StatusAwaitingInventory}

	cmds, ok := pm.Compensate(s, evoke.FailedCommand{
		Command: evoke.NewCommand(of.CommandProcessPayment, of.AggregatePayment, "order-1", nil),
		Reason:  "payment declined",
	})
	if ok || cmds != nil {
		t.Fatalf("process_payment rejection: %v, %v; want skip", cmds, ok)
	}

	cmds, ok = pm.Compensate(s, evoke.FailedCommand{
		Command: evoke.NewCommand(of.CommandReserveInventory, of.AggregateInventory, "order-1", nil),
		Reason:  "nothing to reserve",
	})
	if !ok {
		t.Fatal("reserve_inventory rejection skipped")
	}
	r := payload[of.RefundPayment](t, oneCommand(t, cmds, "refund_payment", "payment", "order-1"))
	if r.Reason != of.ReasonInventoryUnavailable {
		t.Fatalf("refund payload = %+v", r)
	}
}

func TestCompleted(t *testing.T) {
	t.Parallel()
	pm := of.Fulfillment{}
	for status, want := range map[string]bool{
		"": false, of.StatusStarted: false, of.StatusAwaitingPayment: false,
		of.StatusAwaitingInventory: false, of.StatusAwaitingShipment: false,
		of.StatusCompleted: true, of.StatusTimedOut: true, of.StatusPaymentFailed: true,
	} {
		if got := pm.Completed(of.State{Status: status}); got != want {
			t.Errorf("Completed(%q) = %v, want %v", status, got, want)
		}
	}
}

func TestCorrelateWithoutOrderID(t *testing.T) {
	t.Parallel()
	c := of.Fulfillment{}.Correlate(event(of.EventItemShipped, map[string]string{"id": "x"}))
	if c.Kind() != evoke.KindError || !errors.Is(c.Err(), evoke.ErrInvalid) {
		t.Fatalf("Correlate = %v", c)
	}
}

func TestHandleBadData(t *testing.T) {
	t.Parallel()
	e := evoke.Event{Type: of.EventOrderPlaced, Data: json.RawMessage(`{"order_id": 7, "items": "x"}`)}
	pm := of.Fulfillment{}
	if _, _, err := pm.Handle(pm.Apply(of.State{}, e), e); err == nil {
		t.Fatal("Handle accepted undecodable data")
	}
}
