package orderfulfillment_test

// End-to-end tests: the Fulfillment process manager and the Payment,
// Inventory and Shipping aggregates run through the evoke runtime on a real
// SQLite file. Each test has its own store and runs in parallel.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

var e2eT0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// e2eTelemetry counts telemetry by kind and instance.
type e2eTelemetry struct {
	mu sync.Mutex
	n  map[string]int // kind + "/" + instance
}

func (h *e2eTelemetry) Telemetry(t evoke.Telemetry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[string(t.Kind)+"/"+t.ProcessID]++
}

func (h *e2eTelemetry) count(kind evoke.TelemetryKind, id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[string(kind)+"/"+id]
}

// e2eHarness is one test's runtime on a store file of its own
// (evoketest.Harness), its telemetry, and the order process's helpers.
type e2eHarness struct {
	*evoketest.Harness
	tel *e2eTelemetry
}

func e2eStart(t *testing.T, pm of.Fulfillment, clock *evoketest.Clock) *e2eHarness {
	t.Helper()
	tel := &e2eTelemetry{}
	h := evoketest.NewHarness(t, func(rt *evoke.Runtime) error { return of.Register(rt, pm) }, &evoketest.HarnessOpts{
		Clock: clock,
		Config: &evoke.Config{
			Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
			PollInterval: 20 * time.Millisecond,
			BackoffBase:  time.Millisecond,
			BackoffMax:   5 * time.Millisecond,
			MaxAttempts:  3,
			Hooks:        tel,
		},
	})
	return &e2eHarness{Harness: h, tel: tel}
}

func (h *e2eHarness) place(orders ...of.OrderPlaced) {
	h.TB.Helper()
	batch := make([]evoke.StreamAppend, len(orders))
	for i, o := range orders {
		batch[i] = evoke.StreamAppend{StreamID: "order-" + o.OrderID, ExpectedVersion: evoke.NoStream,
			Events: []evoke.Event{evoke.NewEvent(of.EventOrderPlaced, o)}}
	}
	if _, err := h.Runtime.AppendBatch(context.Background(), batch); err != nil {
		h.TB.Fatal(err)
	}
}

func (h *e2eHarness) instance(id string) (evokestore.Instance, bool) {
	h.TB.Helper()
	return h.Instance(of.Name, id)
}

// waitDone waits until the instance completed and the runtime is idle.
func (h *e2eHarness) waitDone(id string) evokestore.Instance {
	h.TB.Helper()
	return h.WaitDone(of.Name, id)
}

func (h *e2eHarness) stream(aggType, id string) []evokestore.Event {
	h.TB.Helper()
	return h.Stream(evoke.StreamID(aggType, id))
}

// commands returns the types of the commands the instance's steps produced,
// from its history, in order.
func (h *e2eHarness) commands(id string) []string {
	h.TB.Helper()
	hist, err := h.Store.History(context.Background(), of.Name, id)
	if err != nil {
		h.TB.Fatal(err)
	}
	var out []string
	for _, r := range hist {
		if r.Kind != evokestore.KindStep || len(r.Commands) == 0 {
			continue
		}
		var refs []struct {
			Type       string `json:"type"`
			Suppressed bool   `json:"suppressed"`
		}
		if err := json.Unmarshal(r.Commands, &refs); err != nil {
			h.TB.Fatalf("history commands %s: %v", r.Commands, err)
		}
		for _, c := range refs {
			out = append(out, c.Type)
		}
	}
	return out
}

func (h *e2eHarness) noFailures() {
	h.TB.Helper()
	if s := h.Runtime.Stats(); s.Failures != 0 || s.Parked != 0 || s.CorrelateErrors != 0 {
		h.TB.Errorf("stats %+v: want no failures, parked instances or correlate errors", s)
	}
}

func e2eOrder(id string) of.OrderPlaced {
	return of.OrderPlaced{OrderID: id, CustomerID: "cust-" + id, Items: []of.Item{{SKU: "sku-" + id, Qty: 1}}, Amount: 1999}
}

func TestE2EManyOrdersComplete(t *testing.T) {
	t.Parallel()
	h := e2eStart(t, of.Fulfillment{}, nil)
	const n = 200
	orders := make([]of.OrderPlaced, n)
	for i := range orders {
		orders[i] = e2eOrder(fmt.Sprintf("o%03d", i))
	}
	// Half in one batch, then the rest one by one while the runtime works.
	h.place(orders[:n/2]...)
	for _, o := range orders[n/2:] {
		h.place(o)
	}
	ctx := context.Background()
	evoketest.Eventually(t, evoketest.HarnessWait, fmt.Sprintf("%d instances complete", n), func() bool {
		done, err := h.Store.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: of.Name, Status: evokestore.StatusCompleted, Limit: 2 * n})
		if err != nil {
			t.Fatal(err)
		}
		return len(done) == n
	})
	h.Idle()
	all, err := h.Store.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: of.Name, Limit: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("%d instances, want %d", len(all), n)
	}
	for _, o := range orders {
		in, _ := h.instance(o.OrderID)
		if in.Status != evokestore.StatusCompleted || in.Phase != of.StatusCompleted || in.Version != 4 || in.Outcome != evokestore.EndCompleted {
			t.Errorf("%s: %s/%s at version %d, outcome %q; want completed/completed at 4, outcome completed", o.OrderID, in.Status, in.Phase, in.Version, in.Outcome)
		}
		for _, s := range []struct{ agg, typ string }{
			{of.AggregatePayment, of.EventPaymentReceived},
			{of.AggregateInventory, of.EventInventoryReserved},
			{of.AggregateShipping, of.EventItemShipped},
		} {
			evs := h.stream(s.agg, o.OrderID)
			if len(evs) != 1 || evs[0].Type != s.typ {
				t.Errorf("%s: %s stream holds %d events (%v), want exactly one %s", o.OrderID, s.agg, len(evs), evs, s.typ)
			}
		}
	}
	if s := h.Runtime.Stats(); s.Rejected != 0 || s.Completed != n {
		t.Errorf("stats: rejected %d, completed %d; want 0 and %d", s.Rejected, s.Completed, n)
	}
	// The store's tally counts every command, those executed with their
	// step included (they have no outcome record).
	if tl, err := h.Store.Tally(ctx, nil); err != nil || tl.Executed != 3*n || tl.Rejected != 0 || tl.Outcomes[of.Name][evokestore.EndCompleted] != n {
		t.Errorf("tally %+v, %v; want %d executed, none rejected, %d completed", tl, err, 3*n, n)
	}
	h.noFailures()
}

func TestE2EDeclinedPayment(t *testing.T) {
	t.Parallel()
	h := e2eStart(t, of.Fulfillment{}, nil)
	o := e2eOrder("declined")
	o.DeclinePayment = true
	h.place(o, e2eOrder("fine")) // a neighbour is unaffected
	in := h.waitDone("declined")
	if in.Status != evokestore.StatusCompleted || in.Phase != of.StatusPaymentFailed {
		t.Fatalf("declined: %s/%s, want completed/payment_failed", in.Status, in.Phase)
	}
	if in.Outcome != evokestore.EndCompensated {
		t.Errorf("declined: outcome %q, want compensated (it stepped the payment's rejection)", in.Outcome)
	}
	if got := h.commands("declined"); len(got) != 1 || got[0] != of.CommandProcessPayment {
		t.Errorf("declined: commands %v, want only process_payment (no inventory command)", got)
	}
	for _, agg := range []string{of.AggregatePayment, of.AggregateInventory, of.AggregateShipping} {
		if evs := h.stream(agg, "declined"); len(evs) != 0 {
			t.Errorf("declined: %s stream holds %v, want nothing", agg, evs)
		}
	}
	fine := h.waitDone("fine")
	if fine.Phase != of.StatusCompleted {
		t.Errorf("neighbour: %s, want completed", fine.Phase)
	}
	if s := h.Runtime.Stats(); s.Rejected != 1 {
		t.Errorf("Rejected = %d, want 1", s.Rejected)
	}
	if tl, err := h.Store.Tally(context.Background(), nil); err != nil || tl.Executed != 4 || tl.Rejected != 1 {
		t.Errorf("tally %+v, %v; want 4 executed (3 of fine's), 1 rejected", tl, err)
	}
	h.noFailures()
}

func TestE2EInventoryRejectedIsCompensated(t *testing.T) {
	t.Parallel()
	h := e2eStart(t, of.Fulfillment{}, nil)
	o := e2eOrder("empty")
	o.Items = nil
	h.place(o)
	in := h.waitDone("empty")
	if in.Status != evokestore.StatusCompleted || in.Phase != of.StatusInventoryFailed {
		t.Fatalf("%s/%s, want completed/inventory_failed", in.Status, in.Phase)
	}
	if in.Outcome != evokestore.EndCompensated {
		t.Errorf("outcome %q, want compensated", in.Outcome)
	}
	want := []string{of.CommandProcessPayment, of.CommandReserveInventory, of.CommandRefundPayment}
	if got := h.commands("empty"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("commands %v, want %v (refund_payment exactly once)", got, want)
	}
	pay := h.stream(of.AggregatePayment, "empty")
	if len(pay) != 2 || evoketest.Count(pay, of.EventPaymentReceived) != 1 || evoketest.Count(pay, of.EventPaymentRefunded) != 1 {
		t.Fatalf("payment stream %v, want one PaymentReceived and one PaymentRefunded", pay)
	}
	var r of.PaymentRefunded
	if err := json.Unmarshal(pay[1].Data, &r); err != nil || r.Reason != of.ReasonInventoryUnavailable || r.Amount != o.Amount {
		t.Errorf("refund %s (%v), want %d refunded for %s", pay[1].Data, err, o.Amount, of.ReasonInventoryUnavailable)
	}
	if evs := h.stream(of.AggregateInventory, "empty"); len(evs) != 0 {
		t.Errorf("inventory stream %v, want nothing", evs)
	}
	if got := h.tel.count(evoke.TelemetryCompensate, "empty"); got != 1 {
		t.Errorf("%d compensate telemetry events, want 1", got)
	}
	if s := h.Runtime.Stats(); s.Rejected != 1 {
		t.Errorf("Rejected = %d, want 1", s.Rejected)
	}
	h.noFailures()
}

func TestE2ELostShipmentTimesOut(t *testing.T) {
	t.Parallel()
	clock := evoketest.NewClock(e2eT0)
	h := e2eStart(t, of.Fulfillment{TimeoutAfter: time.Second}, clock)
	o := e2eOrder("lost")
	o.LoseShipment = true
	h.place(o)
	ctx := context.Background()
	evoketest.Eventually(t, evoketest.HarnessWait, "the shipment command is executed", func() bool {
		in, _ := h.instance("lost")
		return in.Phase == of.StatusAwaitingShipment
	})
	h.Idle()
	if evs := h.stream(of.AggregateShipping, "lost"); len(evs) != 0 {
		t.Fatalf("shipping stream %v, want nothing (lost)", evs)
	}
	d, ok, err := h.Store.NextDeadline(ctx)
	if err != nil || !ok || !d.DueAt.Equal(e2eT0.Add(time.Second)) {
		t.Fatalf("next deadline %+v %v %v, want the timeout at %v", d, ok, err, e2eT0.Add(time.Second))
	}

	// Not yet.
	clock.Advance(999 * time.Millisecond)
	h.Idle()
	if in, _ := h.instance("lost"); in.Phase != of.StatusAwaitingShipment || in.Status.Done() {
		t.Fatalf("before the timeout: %s/%s", in.Status, in.Phase)
	}
	if got := evoketest.Count(h.stream(of.AggregatePayment, "lost"), of.EventPaymentRefunded); got != 0 {
		t.Fatalf("%d refunds before the timeout", got)
	}

	clock.Advance(2 * time.Millisecond)
	in := h.waitDone("lost")
	if in.Status != evokestore.StatusCompleted || in.Phase != of.StatusTimedOut {
		t.Fatalf("after the timeout: %s/%s, want completed/timed_out", in.Status, in.Phase)
	}
	if in.Outcome != evokestore.EndTimedOut {
		t.Errorf("outcome %q, want timed_out", in.Outcome)
	}
	refunds := func() []evokestore.Event {
		var out []evokestore.Event
		for _, e := range h.stream(of.AggregatePayment, "lost") {
			if e.Type == of.EventPaymentRefunded {
				out = append(out, e)
			}
		}
		return out
	}
	if r := refunds(); len(r) != 1 {
		t.Fatalf("%d refunds, want 1", len(r))
	} else {
		var d of.PaymentRefunded
		if err := json.Unmarshal(r[0].Data, &d); err != nil || d.Reason != of.ReasonShipmentTimeout {
			t.Errorf("refund %s, want reason %s", r[0].Data, of.ReasonShipmentTimeout)
		}
	}
	if got := h.tel.count(evoke.TelemetryTimeout, "lost"); got != 1 {
		t.Errorf("%d timeout telemetry events, want 1", got)
	}

	// Further time changes nothing.
	version := in.Version
	for range 3 {
		clock.Advance(time.Hour)
		h.Idle()
	}
	after, _ := h.instance("lost")
	if after.Version != version || after.Phase != of.StatusTimedOut {
		t.Errorf("after more time: version %d phase %s, want %d and timed_out", after.Version, after.Phase, version)
	}
	if r := refunds(); len(r) != 1 {
		t.Errorf("%d refunds after more time, want 1", len(r))
	}
	if _, ok, _ := h.Store.NextDeadline(ctx); ok {
		t.Error("a completed instance still has a deadline")
	}
	if got := h.commands("lost"); fmt.Sprint(got) != fmt.Sprint([]string{of.CommandProcessPayment, of.CommandReserveInventory, of.CommandShipItem, of.CommandRefundPayment}) {
		t.Errorf("commands %v", got)
	}
	h.noFailures()
}
