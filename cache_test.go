package evoke_test

import (
	"context"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// A running instance is cached between batches (Config.InstanceCache).
// Cancelling it, through the runtime or from another process, must hold
// all the same: a later event is dropped at the tombstone, never stepped
// on the cached running state.
func TestCancelOfACachedRunningInstance(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"runtime", "evokeops"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			st, rt := startRecorders(t, nil, recorder{name: "rec"})
			ctx := context.Background()
			appendEvent(t, rt, "s", "Cont", recData{ID: "x"})
			evoketest.WaitIdle(t, rt, 0)
			in, _ := instance(t, st, "rec", "x")
			if in.Status != evokestore.StatusRunning || in.Version != 1 {
				t.Fatalf("before the cancel: %s v%d", in.Status, in.Version)
			}
			var err error
			if how == "runtime" {
				err = rt.Cancel(ctx, "rec", "x")
			} else {
				err = evokeops.Cancel(ctx, st, "rec", "x")
			}
			if err != nil {
				t.Fatal(err)
			}
			dropped := rt.Stats().DroppedCompleted
			appendEvent(t, rt, "s", "Cont", recData{ID: "x"})
			evoketest.WaitIdle(t, rt, 0)
			in, _ = instance(t, st, "rec", "x")
			if in.Status != evokestore.StatusCancelled || len(state(t, in).Seen) != 1 {
				t.Fatalf("after the cancel and a later event: %s, seen %v", in.Status, state(t, in).Seen)
			}
			if n := rt.Stats().DroppedCompleted - dropped; n != 1 {
				t.Errorf("%d events dropped at the tombstone, want 1", n)
			}
			if n := len(ledgerNotes(t, st, "rec", "x")); n != 1 {
				t.Errorf("%d commands of x executed, want the first step's only", n)
			}
		})
	}
}

// With the cache off, the runtime reads every instance; the same run ends
// the same.
func TestInstanceCacheOff(t *testing.T) {
	t.Parallel()
	cfg := quietConfig()
	cfg.InstanceCache = -1
	st, rt := startRecorders(t, cfg, recorder{name: "rec", done: "Done"})
	for _, typ := range []string{"Cont", "Cont", "Done"} {
		appendEvent(t, rt, "s", typ, recData{ID: "x"})
		evoketest.WaitIdle(t, rt, 0)
	}
	in, _ := instance(t, st, "rec", "x")
	if in.Status != evokestore.StatusCompleted || in.Version != 3 || len(ledgerNotes(t, st, "rec", "x")) != 3 {
		t.Fatalf("without the cache: %s v%d", in.Status, in.Version)
	}
	if _, err := evoke.New(st, &evoke.Config{InstanceCache: -5}); err != nil {
		t.Fatalf("a negative InstanceCache is refused: %v", err)
	}
}
