package evoke_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
)

// flakyStore is fault injection: while down, every transaction fails to
// begin and every commit fails, as when the database goes away.
type flakyStore struct {
	evokestore.Store
	down atomic.Bool
}

var errStoreDown = errors.New("store unavailable (injected)")

func (f *flakyStore) Begin(ctx context.Context) (evokestore.Tx, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	tx, err := f.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyTx{Tx: tx, s: f}, nil
}

type flakyTx struct {
	evokestore.Tx
	s *flakyStore
}

func (t *flakyTx) Commit() error {
	if t.s.down.Load() {
		_ = t.Tx.Rollback()
		return errStoreDown
	}
	return t.Tx.Commit()
}

// Bad input: a store that goes away. While it is down, transactions fail
// to begin or to commit; the runtime retries with backoff, loses nothing
// and does nothing twice once the store is back.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	st := &flakyStore{Store: openStore(t)}
	cfg := quietConfig()
	cfg.BatchSize, cfg.DispatchBatchSize = 16, 16 // many transactions, so outages hit every kind
	rt, err := evoke.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := orderfulfillment.Register(rt, orderfulfillment.Fulfillment{}); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	const orders = 300
	var batch []evoke.StreamAppend
	for i := range orders {
		id := fmt.Sprintf("order-%d", i)
		batch = append(batch, evoke.StreamAppend{StreamID: id, ExpectedVersion: evoke.NoStream, Events: []evoke.Event{
			evoke.NewEvent(orderfulfillment.EventOrderPlaced, orderfulfillment.OrderPlaced{
				OrderID: id, Items: []orderfulfillment.Item{{SKU: "s", Qty: 1}}, Amount: 100}),
		}})
	}
	if _, err := rt.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Outages of 20 to 80 ms, ten times, while the orders run.
	for i := range 10 {
		time.Sleep(10 * time.Millisecond)
		st.down.Store(true)
		time.Sleep(time.Duration(20+6*i) * time.Millisecond)
		st.down.Store(false)
	}
	evoketest.WaitIdle(t, rt, 30*time.Second)
	for i := range orders {
		id := fmt.Sprintf("order-%d", i)
		in, _ := evoketest.Instance(t, st, orderfulfillment.Name, id)
		if in.Status != evokestore.StatusCompleted || in.Version != 4 {
			t.Fatalf("%s = %s at version %d (last error %q), want completed after 4 steps", id, in.Status, in.Version, in.LastError)
		}
		for _, agg := range []string{orderfulfillment.AggregatePayment, orderfulfillment.AggregateInventory, orderfulfillment.AggregateShipping} {
			evs, err := st.ReadStream(ctx, evoke.StreamID(agg, id), 0)
			if err != nil || len(evs) != 1 {
				t.Fatalf("%s: %d %s events (%v), want exactly 1", id, len(evs), agg, err)
			}
		}
	}
	if s := rt.Stats(); s.Parked != 0 || s.Failures != 0 {
		t.Errorf("an outage of the store was blamed on instances: %+v", s)
	}
}
