package natsorders_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/examples/natsorders"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
	"github.com/evoke-go/evoke/internal/remotetest"
)

// Orders placed on JetStream run to completion with their commands
// answered over NATS; a declined payment compensates.
func TestOrdersOverNATS(t *testing.T) {
	url := remotetest.ServiceURL(t, "EVOKE_TEST_NATS_URL", "nats://127.0.0.1:4222")
	ctx := context.Background()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	unique := fmt.Sprintf("t%d", time.Now().UnixNano())
	cfg := natsorders.Config{Stream: "ORDERS_" + unique, Prefix: "orders-" + unique}
	if err := natsorders.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(ctx, cfg.Stream)

	svc, err := natsorders.StartService(nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()

	st, err := evokesqlite.Open(ctx, filepath.Join(t.TempDir(), "orders.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	src, err := natsorders.Register(rt, nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Stop(ctx)

	const n = 20
	var ids []string
	for k := range n {
		id := fmt.Sprintf("order-%d", k)
		ids = append(ids, id)
		e := evoke.NewEvent(orderfulfillment.EventOrderPlaced, orderfulfillment.OrderPlaced{
			OrderID: id, CustomerID: "c", Items: []orderfulfillment.Item{{SKU: "book", Qty: 1}}, Amount: 100, DeclinePayment: k%5 == 0,
		})
		if err := natsorders.Publish(ctx, js, cfg, e, id+"-placed"); err != nil {
			t.Fatal(err)
		}
	}
	evoketest.Eventually(t, 60*time.Second, "every order finished", func() bool {
		insts, err := st.Instances(ctx, orderfulfillment.Name, ids)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, in := range insts {
			if in.Status.Done() {
				done++
			}
		}
		return done == n
	})
	insts, _ := st.Instances(ctx, orderfulfillment.Name, ids)
	for _, in := range insts {
		var k int
		fmt.Sscanf(in.ID, "order-%d", &k)
		want := orderfulfillment.StatusCompleted
		if k%5 == 0 {
			want = orderfulfillment.StatusPaymentFailed
		}
		if in.Phase != want {
			t.Errorf("%s: %s, want %s", in.ID, in.Phase, want)
		}
	}
}
