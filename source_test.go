package evoke_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/internal/remotetest"
)

// sourced returns the messages at positions from..to of a source: an
// Ordered event for instance id at position 1, Ticks of N = position after.
func sourced(id string, from, to int64) []evoke.SourcedEvent {
	var out []evoke.SourcedEvent
	for p := from; p <= to; p++ {
		e := evoke.NewEvent(remotetest.EventTick, remotetest.Data{ID: id, N: int(p)})
		if p == 1 {
			e = evoke.NewEvent(remotetest.EventOrdered, remotetest.Data{ID: id, Verdict: remotetest.Accept})
		}
		out = append(out, evoke.SourcedEvent{Position: p, StreamID: "order-" + id, Event: e})
	}
	return out
}

// The log holds each message of a source once, however often it is
// ingested, and the source's position is stored with the events.
func TestIngestAppendsEachMessageOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		rt, err := evoke.New(st, remotetest.Config())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := rt.SourcePosition(ctx, "orders", 0); ok {
			t.Fatal("a position before the first ingest")
		}
		for _, step := range []struct {
			from, to int64
			want     int
		}{{1, 10, 10}, {1, 10, 0}, {5, 15, 5}, {15, 15, 0}, {16, 16, 1}} {
			n, err := rt.Ingest(ctx, "orders", 0, sourced("x", step.from, step.to))
			if err != nil {
				t.Fatal(err)
			}
			if n != step.want {
				t.Fatalf("ingest %d..%d appended %d, want %d", step.from, step.to, n, step.want)
			}
		}
		pos, ok, err := rt.SourcePosition(ctx, "orders", 0)
		if err != nil || !ok || pos != 16 {
			t.Fatalf("position %d %v %v, want 16", pos, ok, err)
		}
		evs, err := st.ReadStream(ctx, "order-x", 0)
		if err != nil || len(evs) != 16 {
			t.Fatalf("stream holds %d events (%v), want 16", len(evs), err)
		}
		// An event ID the log holds already (an ingester whose position
		// lagged) is dropped too.
		again := sourced("x", 17, 18)
		again[0].Event.ID = evs[3].ID
		if n, err := rt.Ingest(ctx, "orders", 0, again); err != nil || n != 1 {
			t.Fatalf("ingest with a known event id: %d, %v", n, err)
		}
		if _, err := rt.Ingest(ctx, "orders", 0, sourced("x", 30, 29)); err != nil {
			t.Fatal(err)
		}
		bad := sourced("x", 40, 41)
		bad[1].Position = 40
		if _, err := rt.Ingest(ctx, "orders", 0, bad); !errors.Is(err, evoke.ErrInvalid) {
			t.Fatalf("positions out of order: %v", err)
		}
	})
}

// Two ingesters of one source partition, as on two nodes of one store,
// append each message once, and the process manager steps each once.
func TestTwoIngestersAppendOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		const n = 120
		var wg sync.WaitGroup
		total := make([]int, 2)
		for k := range 2 {
			rt, err := evoke.New(st, remotetest.Config())
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				all := sourced("x", 1, n)
				for i := 0; i < n; i += 7 + k {
					got, err := rt.Ingest(ctx, "orders", 0, all[i:min(i+7+k, n)])
					if err != nil {
						t.Error(err)
						return
					}
					total[k] += got
				}
			})
		}
		wg.Wait()
		if total[0]+total[1] != n {
			t.Fatalf("appended %v, want %d in all", total, n)
		}
		rt, err := evoke.New(st, remotetest.Config())
		if err != nil {
			t.Fatal(err)
		}
		if err := evoke.RegisterSink(rt, remotetest.Aggregate, evoke.SinkFunc(func(context.Context, evoke.Command) error { return nil })); err != nil {
			t.Fatal(err)
		}
		if err := evoke.RegisterProcessManager(rt, remotetest.PM{}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		evoketest.Eventually(t, 30*time.Second, "every tick stepped", func() bool {
			in, ok := instance(t, st, remotetest.Name, "x")
			return ok && in.Version == n
		})
		in, _ := instance(t, st, remotetest.Name, "x")
		want := fmt.Sprintf(`{"id":"x","status":"ordered","ticks":%d,"sum":%d}`, n-1, n*(n+1)/2-1)
		if string(in.State) != want {
			t.Fatalf("state %s, want %s", in.State, want)
		}
	})
}

// A process manager's name cannot take the prefix that names sources'
// positions.
func TestSourcePrefixIsReserved(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, openStore(t), nil)
	err := evoke.RegisterProcessManager(rt, recorder{name: evoke.SourcePrefix + "orders"}, nil)
	if !errors.Is(err, evoke.ErrInvalid) {
		t.Fatalf("registered a process manager named like a source: %v", err)
	}
}
