package orderstatemachine_test

import (
	"errors"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	sm "github.com/evoke-go/evoke/examples/orderstatemachine"
)

func placed() evoke.Event {
	return evoke.NewEvent(sm.EventOrderPlaced, sm.OrderPlaced{OrderID: "order-1", CustomerID: "cust-1", Amount: 900})
}

func ev(typ string) evoke.Event {
	switch typ {
	case sm.EventOrderPlaced:
		return placed()
	case sm.EventPaymentFailed:
		return evoke.NewEvent(typ, sm.PaymentFailed{OrderID: "order-1", Reason: "declined"})
	}
	return evoke.NewEvent(typ, map[string]any{"order_id": "order-1"})
}

func handle(t *testing.T, s sm.State, e evoke.Event) (sm.State, []evoke.Command) {
	t.Helper()
	m := sm.Machine{}
	s = m.Apply(s, e)
	s, cmds, err := m.Handle(s, e)
	if err != nil {
		t.Fatalf("Handle(%s): %v", e.Type, err)
	}
	return s, cmds
}

func newFixture(t *testing.T) *evoketest.Fixture[sm.State] {
	return evoketest.NewFixture(t, sm.Machine{}, &evoketest.FixtureOpts{Aggregates: []evoketest.Aggregate{
		evoketest.StubAggregate(sm.AggregatePayment), evoketest.StubAggregate(sm.AggregateShipping), evoketest.StubAggregate(sm.AggregateCustomer),
	}})
}

// TestFullWorkflow steps a whole order with plain Apply/Handle calls: placed, paid, shipped.
func TestFullWorkflow(t *testing.T) {
	t.Parallel()
	if s := (sm.Machine{}).Phase(sm.State{}); s != "new" {
		t.Fatalf("zero status = %q", s)
	}
	f := newFixture(t)
	f.When(placed()).
		ThenCommands(evoke.NewCommand(sm.CommandProcessPayment, sm.AggregatePayment, "order-1", sm.ProcessPayment{OrderID: "order-1", Amount: 900})).
		ThenPhase(sm.StatusAwaitingPayment)
	f.When(ev(sm.EventPaymentReceived)).
		ThenCommands(evoke.Command{Type: sm.CommandShipOrder, AggregateType: sm.AggregateShipping, AggregateID: "order-1"}).
		ThenPhase(sm.StatusAwaitingShipment)
	f.When(ev(sm.EventItemShipped)).ThenCommands().ThenPhase(sm.StatusCompleted).ThenStatus(evokestore.StatusCompleted)
}

func TestPaymentFailedWorkflow(t *testing.T) {
	t.Parallel()
	f := newFixture(t).Given(placed())
	f.When(ev(sm.EventPaymentFailed)).
		ThenCommands(evoke.NewCommand(sm.CommandNotifyCustomer, sm.AggregateCustomer, "cust-1",
			sm.NotifyCustomer{CustomerID: "cust-1", OrderID: "order-1", Message: "order cancelled: declined"})).
		ThenPhase(sm.StatusCancelled).ThenStatus(evokestore.StatusCompleted)
	if s := f.State(); s.FailureReason != "declined" {
		t.Errorf("failure reason %q", s.FailureReason)
	}
}

// TestTransitions checks every (status, event) pair: four are transitions,
// all others are invalid and ignored.
func TestTransitions(t *testing.T) {
	t.Parallel()
	type pair struct{ status, event string }
	valid := map[pair]struct {
		next    string
		command string
	}{
		{"new", sm.EventOrderPlaced}:                  {sm.StatusAwaitingPayment, sm.CommandProcessPayment},
		{"awaiting_payment", sm.EventPaymentReceived}: {sm.StatusAwaitingShipment, sm.CommandShipOrder},
		{"awaiting_payment", sm.EventPaymentFailed}:   {sm.StatusCancelled, sm.CommandNotifyCustomer},
		{"awaiting_shipment", sm.EventItemShipped}:    {sm.StatusCompleted, ""},
	}
	m := sm.Machine{}
	for _, status := range []string{sm.StatusNew, sm.StatusAwaitingPayment, sm.StatusAwaitingShipment, sm.StatusCancelled, sm.StatusCompleted} {
		for _, typ := range append(m.InterestedIn(), "Unrelated") {
			t.Run(status+"/"+typ, func(t *testing.T) {
				t.Parallel()
				before := sm.State{OrderID: "order-1", Amount: 900}
				if status != sm.StatusNew {
					before.Status = status
				}
				after, cmds := handle(t, before, ev(typ))
				want, ok := valid[pair{status, typ}]
				if !ok {
					if m.Phase(after) != status || len(cmds) != 0 {
						t.Fatalf("invalid transition changed state: %q, commands %v", m.Phase(after), cmds)
					}
					return
				}
				if m.Phase(after) != want.next {
					t.Fatalf("status = %q, want %q", m.Phase(after), want.next)
				}
				if want.command == "" {
					if len(cmds) != 0 {
						t.Fatalf("commands = %v", cmds)
					}
				} else if len(cmds) != 1 || cmds[0].Type != want.command {
					t.Fatalf("commands = %+v, want %s", cmds, want.command)
				}
			})
		}
	}
}

func TestCorrelate(t *testing.T) {
	t.Parallel()
	m := sm.Machine{}
	for typ, want := range map[string]evoke.CorrelationKind{
		sm.EventOrderPlaced:      evoke.KindStart,
		sm.EventPaymentReceived:  evoke.KindContinue,
		sm.EventPaymentFailed:    evoke.KindContinue,
		sm.EventItemShipped:      evoke.KindContinue,
		sm.EventOrderCancelled:   evoke.KindStop,
		sm.EventCustomerNotified: evoke.KindIgnore,
	} {
		c := m.Correlate(ev(typ))
		if c.Kind() != want || (want != evoke.KindIgnore && c.ID() != "order-1") {
			t.Errorf("Correlate(%s) = %v, want %v(order-1)", typ, c, want)
		}
	}
	if c := m.Correlate(evoke.NewEvent(sm.EventOrderPlaced, map[string]int{"amount": 1})); c.Kind() != evoke.KindError {
		t.Errorf("OrderPlaced without order_id: %v", c)
	}
}

func TestAggregates(t *testing.T) {
	t.Parallel()
	payment := func(amount int64, decline bool) evoke.Command {
		return evoke.NewCommand(sm.CommandProcessPayment, sm.AggregatePayment, "order-1",
			sm.ProcessPayment{OrderID: "order-1", Amount: amount, Decline: decline})
	}
	run := func(agg evoke.Aggregate[sm.PaymentState], cmds ...evoke.Command) ([]evoke.Event, error) {
		var s sm.PaymentState
		var evs []evoke.Event
		var err error
		for _, c := range cmds {
			if evs, err = agg.Execute(s, c); err != nil {
				return nil, err
			}
			for _, e := range evs {
				s = agg.Apply(s, e)
			}
		}
		return evs, nil
	}
	for _, tc := range []struct {
		name    string
		cmds    []evoke.Command
		want    string
		wantErr error
	}{
		{"paid", []evoke.Command{payment(900, false)}, sm.EventPaymentReceived, nil},
		{"declined", []evoke.Command{payment(900, true)}, sm.EventPaymentFailed, nil},
		{"zero amount", []evoke.Command{payment(0, false)}, sm.EventPaymentFailed, nil},
		{"paid twice", []evoke.Command{payment(900, false), payment(900, false)}, "", sm.ErrAlreadyPaid},
		{"retry after failure", []evoke.Command{payment(900, true), payment(900, false)}, "", sm.ErrAlreadyPaid},
	} {
		evs, err := run(sm.Payment{}, tc.cmds...)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: err = %v", tc.name, err)
			}
			continue
		}
		if err != nil || len(evs) != 1 || evs[0].Type != tc.want {
			t.Errorf("%s: events %+v, err %v", tc.name, evs, err)
			continue
		}
		if c := (sm.Machine{}).Correlate(evs[0]); c.ID() != "order-1" {
			t.Errorf("%s: Correlate = %v", tc.name, c)
		}
	}

	ship := evoke.NewCommand(sm.CommandShipOrder, sm.AggregateShipping, "order-1", sm.ShipOrder{OrderID: "order-1"})
	evs, err := sm.Shipping{}.Execute(sm.ShippingState{}, ship)
	if err != nil || len(evs) != 1 || evs[0].Type != sm.EventItemShipped {
		t.Fatalf("ship_order: %+v, %v", evs, err)
	}
	shipped := sm.Shipping{}.Apply(sm.ShippingState{}, evs[0])
	if _, err := (sm.Shipping{}).Execute(shipped, ship); !errors.Is(err, sm.ErrAlreadyShipped) {
		t.Fatalf("ship_order twice: %v", err)
	}

	notify := evoke.NewCommand(sm.CommandNotifyCustomer, sm.AggregateCustomer, "cust-1", sm.NotifyCustomer{OrderID: "order-1", Message: "hi"})
	evs, err = sm.Customer{}.Execute(sm.CustomerState{}, notify)
	if err != nil || len(evs) != 1 || evs[0].Type != sm.EventCustomerNotified {
		t.Fatalf("notify_customer: %+v, %v", evs, err)
	}
	if d, _ := evoke.Decode[sm.CustomerNotified](evs[0]); d.CustomerID != "cust-1" {
		t.Fatalf("CustomerNotified = %+v", d)
	}
	for _, agg := range []func() error{
		func() error { _, err := (sm.Payment{}).Execute(sm.PaymentState{}, ship); return err },
		func() error { _, err := (sm.Shipping{}).Execute(sm.ShippingState{}, notify); return err },
		func() error { _, err := (sm.Customer{}).Execute(sm.CustomerState{}, ship); return err },
	} {
		if agg() == nil {
			t.Error("accepted an unknown command")
		}
	}
}
