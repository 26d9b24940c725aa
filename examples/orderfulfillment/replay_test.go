package orderfulfillment_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

// recordOrders runs the order-fulfilment process on a fresh SQLite file:
// order-1 and order-2 complete, order-3's payment is declined and
// order-4's inventory reservation is rejected (its payment refunded).
func recordOrders(t *testing.T) evokestore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := evokesqlite.Open(ctx, filepath.Join(t.TempDir(), "evoke.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.DiscardHandler), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := of.Register(rt, of.Fulfillment{}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)
	items := []of.Item{{SKU: "book", Qty: 1}}
	for _, o := range []of.OrderPlaced{
		{OrderID: "order-1", Items: items, Amount: 100},
		{OrderID: "order-2", Items: items, Amount: 250},
		{OrderID: "order-3", Items: items, Amount: 100, DeclinePayment: true},
		{OrderID: "order-4", Items: []of.Item{{SKU: "book", Qty: 0}}, Amount: 100},
	} {
		if _, err := rt.Append(ctx, "order-"+o.OrderID, evoke.NoStream, evoke.NewEvent(of.EventOrderPlaced, o)); err != nil {
			t.Fatal(err)
		}
	}
	evoketest.WaitIdle(t, rt, evoketest.HarnessWait)
	return st
}

// shipExpress changes the process: ship_item asks for express delivery
// (a changed command payload) of orders over 200.
type shipExpress struct{ of.Fulfillment }

func (p shipExpress) Handle(s of.State, e evoke.Event) (of.State, []evoke.Command, error) {
	s, cmds, err := p.Fulfillment.Handle(s, e)
	if e.Type == of.EventInventoryReserved && s.Amount > 200 {
		cmds[0].Payload, _ = json.Marshal(map[string]any{"order_id": s.OrderID, "express": true})
	}
	return s, cmds, err
}

// confirmPayment changes the process: a received payment is confirmed to
// the customer (a new step's command) before the inventory is reserved.
type confirmPayment struct{ of.Fulfillment }

func (p confirmPayment) Handle(s of.State, e evoke.Event) (of.State, []evoke.Command, error) {
	s, cmds, err := p.Fulfillment.Handle(s, e)
	if e.Type == of.EventPaymentReceived {
		cmds = append([]evoke.Command{evoke.NewCommand("send_receipt", "mailer", s.OrderID, map[string]string{"order_id": s.OrderID})}, cmds...)
	}
	return s, cmds, err
}

func TestReplayOfUnchangedCodeFindsNothing(t *testing.T) {
	t.Parallel()
	st := recordOrders(t)
	rep := evoketest.Replay(t, st, of.Fulfillment{})
	if rep.Instances != 4 || rep.Steps != 13 {
		t.Errorf("replayed %d instances, %d steps; want 4 and 13", rep.Instances, rep.Steps)
	}
}

func TestReplayNamesTheChangedInstancesAndStep(t *testing.T) {
	t.Parallel()
	st := recordOrders(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func() (evoke.ReplayReport, error)
		want []evoke.ReplayDifference
	}{
		{"changed payload", func() (evoke.ReplayReport, error) {
			return evoke.Replay(ctx, st, shipExpress{}, nil)
		}, []evoke.ReplayDifference{{
			InstanceID: "order-2", Step: 3, EventType: of.EventInventoryReserved, What: "commands",
			Recorded: `ship_item to shipping order-2 {"order_id":"order-2"}`,
			Replayed: `ship_item to shipping order-2 {"express":true,"order_id":"order-2"}`,
		}}},
		{"new step", func() (evoke.ReplayReport, error) {
			return evoke.Replay(ctx, st, confirmPayment{}, nil)
		}, []evoke.ReplayDifference{
			{InstanceID: "order-1", Step: 2, EventType: of.EventPaymentReceived, What: "commands",
				Recorded: `reserve_inventory to inventory order-1 {"items":[{"qty":1,"sku":"book"}],"order_id":"order-1"}`,
				Replayed: `send_receipt to mailer order-1 {"order_id":"order-1"}; reserve_inventory to inventory order-1 {"items":[{"qty":1,"sku":"book"}],"order_id":"order-1"}`},
			{InstanceID: "order-2", Step: 2, EventType: of.EventPaymentReceived, What: "commands"},
			{InstanceID: "order-4", Step: 2, EventType: of.EventPaymentReceived, What: "commands"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := tc.run()
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Differences) != len(tc.want) {
				t.Fatalf("%d instances differ, want %d:\n%s", len(rep.Differences), len(tc.want), rep)
			}
			for i, w := range tc.want {
				g := rep.Differences[i]
				if g.InstanceID != w.InstanceID || g.Step != w.Step || g.EventType != w.EventType || g.What != w.What ||
					(w.Recorded != "" && (g.Recorded != w.Recorded || g.Replayed != w.Replayed)) {
					t.Errorf("difference %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}
