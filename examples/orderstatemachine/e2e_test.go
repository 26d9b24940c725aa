package orderstatemachine_test

// End-to-end tests: the order state Machine and the Payment, Shipping and
// Customer aggregates run through the evoke runtime on a real SQLite file.
// Each test has its own store and runs in parallel.

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	sm "github.com/evoke-go/evoke/examples/orderstatemachine"
)

// e2eHarness is one test's runtime on a store file of its own
// (evoketest.Harness), and the machine's helpers.
type e2eHarness struct {
	*evoketest.Harness
}

func e2eStart(t *testing.T) *e2eHarness {
	t.Helper()
	h := evoketest.NewHarness(t, func(rt *evoke.Runtime) error {
		for _, err := range []error{
			evoke.RegisterAggregate(rt, sm.AggregatePayment, sm.Payment{}),
			evoke.RegisterAggregate(rt, sm.AggregateShipping, sm.Shipping{}),
			evoke.RegisterAggregate(rt, sm.AggregateCustomer, sm.Customer{}),
			evoke.RegisterProcessManager(rt, sm.Machine{}, nil),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	}, nil)
	return &e2eHarness{Harness: h}
}

// appendOrder appends events to the order's stream in one transaction.
func (h *e2eHarness) appendOrder(orderID string, evs ...evoke.Event) {
	h.TB.Helper()
	if _, err := h.Runtime.Append(context.Background(), "order-"+orderID, evoke.AnyVersion, evs...); err != nil {
		h.TB.Fatal(err)
	}
}

func (h *e2eHarness) instance(id string) (evokestore.Instance, bool) {
	h.TB.Helper()
	return h.Instance(sm.Name, id)
}

func (h *e2eHarness) waitDone(id string) evokestore.Instance {
	h.TB.Helper()
	return h.WaitDone(sm.Name, id)
}

func (h *e2eHarness) stream(aggType, id string) []evokestore.Event {
	h.TB.Helper()
	return h.Stream(evoke.StreamID(aggType, id))
}

func (h *e2eHarness) types(aggType, id string) []string {
	h.TB.Helper()
	var out []string
	for _, e := range h.stream(aggType, id) {
		out = append(out, e.Type)
	}
	return out
}

// commands returns the types of the commands the instance's steps produced.
func (h *e2eHarness) commands(id string) []string {
	h.TB.Helper()
	hist, err := h.Store.History(context.Background(), sm.Name, id)
	if err != nil {
		h.TB.Fatal(err)
	}
	var out []string
	for _, r := range hist {
		if r.Kind != evokestore.KindStep || len(r.Commands) == 0 {
			continue
		}
		var refs []struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(r.Commands, &refs); err != nil {
			h.TB.Fatal(err)
		}
		for _, c := range refs {
			out = append(out, c.Type)
		}
	}
	return out
}

func e2eEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (h *e2eHarness) noFailures() {
	h.TB.Helper()
	if s := h.Runtime.Stats(); s.Failures != 0 || s.Parked != 0 || s.CorrelateErrors != 0 || s.Rejected != 0 {
		h.TB.Errorf("stats %+v: want no failures, rejections, parked instances or correlate errors", s)
	}
}

func TestE2EHappyPath(t *testing.T) {
	t.Parallel()
	h := e2eStart(t)
	h.appendOrder("o1", evoke.NewEvent(sm.EventOrderPlaced, sm.OrderPlaced{OrderID: "o1", CustomerID: "c1", Amount: 1500}))
	in := h.waitDone("o1")
	if in.Status != evokestore.StatusCompleted || in.Phase != sm.StatusCompleted || in.Version != 3 {
		t.Fatalf("o1: %s/%s v%d, want completed/completed at 3", in.Status, in.Phase, in.Version)
	}
	if got := h.types(sm.AggregatePayment, "o1"); !e2eEqual(got, []string{sm.EventPaymentReceived}) {
		t.Errorf("payment stream %v", got)
	}
	if got := h.types(sm.AggregateShipping, "o1"); !e2eEqual(got, []string{sm.EventItemShipped}) {
		t.Errorf("shipping stream %v", got)
	}
	if got := h.types(sm.AggregateCustomer, "c1"); len(got) != 0 {
		t.Errorf("customer notified on the happy path: %v", got)
	}
	if got := h.commands("o1"); !e2eEqual(got, []string{sm.CommandProcessPayment, sm.CommandShipOrder}) {
		t.Errorf("commands %v", got)
	}
	h.noFailures()
}

func TestE2EDeclinedPaymentCancels(t *testing.T) {
	t.Parallel()
	h := e2eStart(t)
	h.appendOrder("o2", evoke.NewEvent(sm.EventOrderPlaced, sm.OrderPlaced{OrderID: "o2", CustomerID: "c2", Amount: 1500, DeclinePayment: true}))
	in := h.waitDone("o2")
	if in.Status != evokestore.StatusCompleted || in.Phase != sm.StatusCancelled {
		t.Fatalf("o2: %s/%s, want completed/cancelled", in.Status, in.Phase)
	}
	if got := h.types(sm.AggregatePayment, "o2"); !e2eEqual(got, []string{sm.EventPaymentFailed}) {
		t.Errorf("payment stream %v", got)
	}
	if got := h.types(sm.AggregateShipping, "o2"); len(got) != 0 {
		t.Errorf("shipped a cancelled order: %v", got)
	}
	notes := h.stream(sm.AggregateCustomer, "c2")
	if len(notes) != 1 || notes[0].Type != sm.EventCustomerNotified {
		t.Fatalf("customer stream %v, want one CustomerNotified", notes)
	}
	var n sm.CustomerNotified
	if err := json.Unmarshal(notes[0].Data, &n); err != nil || n.OrderID != "o2" || n.Message != "order cancelled: "+sm.ReasonDeclined {
		t.Errorf("notification %s (%v)", notes[0].Data, err)
	}
	if got := h.commands("o2"); !e2eEqual(got, []string{sm.CommandProcessPayment, sm.CommandNotifyCustomer}) {
		t.Errorf("commands %v, want one notify_customer", got)
	}
	h.noFailures()
}

func TestE2EOrderCancelledStopsTheInstance(t *testing.T) {
	t.Parallel()
	h := e2eStart(t)
	// Placed and cancelled in one append: the cancellation precedes the
	// payment's PaymentReceived in the log, so it stops the instance while
	// it awaits payment.
	h.appendOrder("o3",
		evoke.NewEvent(sm.EventOrderPlaced, sm.OrderPlaced{OrderID: "o3", CustomerID: "c3", Amount: 1500}),
		evoke.NewEvent(sm.EventOrderCancelled, sm.OrderCancelled{OrderID: "o3"}))
	in := h.waitDone("o3")
	if in.Status != evokestore.StatusCompleted || in.Phase != sm.StatusAwaitingPayment || in.Version != 2 {
		t.Fatalf("o3: %s/%s v%d, want completed while awaiting payment, at version 2", in.Status, in.Phase, in.Version)
	}
	// The payment dispatched before the stop still took effect; its event
	// reached a tombstone and nothing was shipped.
	evoketest.Eventually(t, evoketest.HarnessWait, "the payment is recorded", func() bool { return len(h.stream(sm.AggregatePayment, "o3")) == 1 })
	h.Idle()
	if got := h.types(sm.AggregateShipping, "o3"); len(got) != 0 {
		t.Errorf("shipped a cancelled order: %v", got)
	}
	if got := h.commands("o3"); !e2eEqual(got, []string{sm.CommandProcessPayment}) {
		t.Errorf("commands %v, want only process_payment", got)
	}
	after, _ := h.instance("o3")
	if after.Version != 2 {
		t.Errorf("the tombstone took PaymentReceived: version %d", after.Version)
	}
	if got := h.Runtime.Stats().DroppedCompleted; got != 1 {
		t.Errorf("DroppedCompleted = %d, want 1 (PaymentReceived)", got)
	}

	// A cancellation of a completed order is dropped; of an unknown one,
	// dropped and counted, creating nothing.
	h.appendOrder("o3", evoke.NewEvent(sm.EventOrderCancelled, sm.OrderCancelled{OrderID: "o3"}))
	h.appendOrder("ghost", evoke.NewEvent(sm.EventOrderCancelled, sm.OrderCancelled{OrderID: "ghost"}))
	h.Idle()
	if _, ok := h.instance("ghost"); ok {
		t.Error("a cancellation created an instance")
	}
	if s := h.Runtime.Stats(); s.DroppedStop != 1 || s.DroppedCompleted != 2 {
		t.Errorf("DroppedStop %d, DroppedCompleted %d; want 1 and 2", s.DroppedStop, s.DroppedCompleted)
	}
	if in, _ := h.instance("o3"); in.Version != 2 {
		t.Errorf("o3 changed after completion: version %d", in.Version)
	}
	h.noFailures()
}
