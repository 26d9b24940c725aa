package evoke_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// gatedStore is fault injection: once armed, the next transaction begun
// through it waits at Begin until the gate opens, and reports that it
// waits on blocked. Writes made on the wrapped store directly pass.
type gatedStore struct {
	evokestore.Store
	armed   chan struct{} // holds a token while armed
	blocked chan struct{}
	gate    chan struct{}
}

func newGatedStore(st evokestore.Store) *gatedStore {
	return &gatedStore{Store: st, armed: make(chan struct{}, 1), blocked: make(chan struct{}), gate: make(chan struct{})}
}

func (s *gatedStore) Begin(ctx context.Context) (evokestore.Tx, error) {
	select {
	case <-s.armed:
		close(s.blocked)
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	default:
	}
	return s.Store.Begin(ctx)
}

// appendRaw commits a Begin of relay id on st itself, past any wrapper.
func appendRaw(t *testing.T, st evokestore.Store, id string) {
	t.Helper()
	ctx := context.Background()
	data, _ := json.Marshal(relayData{ID: id})
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "begin-" + id, StreamID: "begin-" + id, StreamVersion: 1, Type: "Begin", Data: data, RecordedAt: time.Now()}}); err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Events committed while the router's batches are being written are
// prepared at once, not after the batch in flight landed: with the first
// relay's batch held at Begin, the second relay's Begin is read, stepped
// and its hops executed ahead (PrepareTime grows), and both complete once
// the first write goes on.
func TestPreparesWhileAWriteIsInFlight(t *testing.T) {
	t.Parallel()
	raw := openStore(t)
	st := newGatedStore(raw)
	cfg := quietConfig()
	cfg.Retention = -1 // no purge: the first transaction begun is the router's
	rt := startRelay(t, st, cfg)

	st.armed <- struct{}{}
	appendRaw(t, raw, "a")
	select {
	case <-st.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the router never began writing the first batch")
	}
	first := rt.Stats().PrepareTime
	if first == 0 {
		t.Fatal("the batch in flight was not counted as prepared")
	}
	appendRaw(t, raw, "b")
	evoketest.Eventually(t, 10*time.Second, "the second batch is prepared while the first is held", func() bool {
		return rt.Stats().PrepareTime > first
	})
	if s := rt.Stats(); s.Completed != 0 || s.Writes != 0 {
		t.Fatalf("something landed while the first write was held: %+v", s)
	}
	close(st.gate)
	evoketest.Eventually(t, 10*time.Second, "both relays complete", func() bool { return rt.Stats().Completed == 2 })
	verifyRelay(t, raw, "a", []string{"Begin", "Relayed", "Relayed", "Relayed"})
	verifyRelay(t, raw, "b", []string{"Begin", "Relayed", "Relayed", "Relayed"})
}

// headCounter counts the reads of the log's head made through it: each
// look of a router at the log starts with one.
type headCounter struct {
	evokestore.Store
	heads atomic.Int64
}

func (s *headCounter) Head(ctx context.Context) (int64, error) {
	s.heads.Add(1)
	return s.Store.Head(ctx)
}

// A router looks at the log when events are committed, not when a batch
// of its own lands: each relay's Begin wakes it (the look that steps the
// relay and chains its hops) and so does the commit of that batch (the
// look that passes over the chained events), and nothing else does; the
// landings in between find nothing new (each look is a round trip on
// PostgreSQL).
func TestLooksAtTheLogWhenEventsAreCommitted(t *testing.T) {
	t.Parallel()
	raw := openStore(t)
	st := &headCounter{Store: raw}
	cfg := quietConfig()
	cfg.PollInterval = time.Hour // wake-ups only
	cfg.Retention = -1
	rt := startRelay(t, st, cfg)
	evoketest.Eventually(t, 10*time.Second, "the runtime is idle after starting", func() bool {
		idle, err := rt.Idle(context.Background())
		return err == nil && idle
	})
	base := st.heads.Load() // Idle reads the head too
	const n = 20
	for i := range n {
		appendRaw(t, raw, fmt.Sprint("r", i))
		evoketest.Eventually(t, 10*time.Second, "the relay completes", func() bool { return rt.Stats().Completed == int64(i+1) })
	}
	looks := st.heads.Load() - base
	t.Logf("%d looks at the log for %d relays", looks, n)
	// Two a relay; a wake-up that arrives while the router is between a
	// landing and its next look can add one now and then, never one a relay.
	if looks < 2*n || looks > 2*n+n/4 {
		t.Errorf("%d looks at the log for %d relays, each committed on its own: want 2 a relay (and a few more at most)", looks, n)
	}
	for i := range n {
		verifyRelay(t, raw, fmt.Sprint("r", i), []string{"Begin", "Relayed", "Relayed", "Relayed"})
	}
}
