package demo_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/demo"
)

// A run on a store shared with another node counts the orders it placed
// from the store, whichever node stepped them: it ends when they all
// finished, and its summary and error agree.
func TestRunOnASharedStore(t *testing.T) {
	_, base, schema := pgSchema(t, "evoke_shared")
	ctx := context.Background()
	open := func() *evokepg.Store {
		s, err := evokepg.Open(ctx, base, &evokepg.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	cfg := evoke.Config{LeaseTTL: time.Second, PollInterval: 100 * time.Millisecond}
	wcfg := cfg
	wcfg.Logger = slog.New(slog.DiscardHandler)
	worker := startNode(t, open(), &wcfg)
	defer worker.Stop(ctx)
	sum, err := demo.Run(ctx, open(), demo.Options{Orders: 400, Stall: 5 * time.Second, Config: cfg})
	if err != nil {
		t.Fatalf("run: %v (summary: %+v)", err, sum)
	}
	if sum.Completed != 400 || sum.InFlight != 0 {
		t.Fatalf("summary: %d completed, %d in flight; want 400 and 0", sum.Completed, sum.InFlight)
	}
	if st := worker.Stats(); st.Completed == 0 {
		t.Logf("the other node completed none of the orders: the test shows nothing (%+v)", st)
	}
}

// startNode starts a runtime of the order-fulfilment process manager, with
// no inactivity timeout, on st.
func startNode(t *testing.T, st evokestore.Store, cfg *evoke.Config) *evoke.Runtime {
	t.Helper()
	rt, err := evoke.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Register(rt, 0); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rt
}
