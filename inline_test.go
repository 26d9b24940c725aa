package evoke_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// queueCounter counts the commands written to the outbox.
type queueCounter struct {
	evokestore.Store
	queued atomic.Int64
}

func (s *queueCounter) Begin(ctx context.Context) (evokestore.Tx, error) {
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &queueCounterTx{Tx: tx, s: s}, nil
}

type queueCounterTx struct {
	evokestore.Tx
	s *queueCounter
}

func (t *queueCounterTx) InsertOutbox(ctx context.Context, cmds []evokestore.OutboxCommand) error {
	t.s.queued.Add(int64(len(cmds)))
	return t.Tx.InsertOutbox(ctx, cmds)
}

// startCounted starts a runtime running recorder rec with cfg on a store
// that counts the commands queued.
func startCounted(t *testing.T, cfg *evoke.Config) (*queueCounter, *evoke.Runtime) {
	t.Helper()
	st := &queueCounter{Store: openStore(t)}
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterProcessManager(rt, recorder{name: "rec"}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	return st, rt
}

// A step's commands run in the step's transaction; with one event per
// batch, each batch is prepared while the one before it commits, and every
// command of the run goes to one aggregate: each batch must see that
// aggregate as the batch before it leaves it, or its events would clash
// with that batch's and fall back to the outbox.
func TestInlineDispatchChainsBatchesOnOneAggregate(t *testing.T) {
	t.Parallel()
	cfg := quietConfig()
	cfg.BatchSize = 1
	st, rt := startCounted(t, cfg)
	const n = 100
	evs := []evoke.Event{evoke.NewEvent("Start", recData{ID: "x"})}
	for range n - 1 {
		evs = append(evs, evoke.NewEvent("Cont", recData{ID: "x"}))
	}
	if _, err := rt.Append(context.Background(), "s", evoke.AnyVersion, evs...); err != nil {
		t.Fatal(err)
	}
	evoketest.WaitIdle(t, rt, 0)
	notes := ledgerNotes(t, st, "rec", "x")
	if len(notes) != n {
		t.Fatalf("%d notes, want %d", len(notes), n)
	}
	for i, nt := range notes {
		if nt.Seen != i+1 {
			t.Fatalf("note %d has seen %d: out of order", i, nt.Seen)
		}
	}
	if st.queued.Load() != 0 {
		t.Errorf("%d commands queued: want every command dispatched with its step", st.queued.Load())
	}
	// The router counts a batch just after its commit lands.
	evoketest.Eventually(t, 0, "every command counted", func() bool {
		s := rt.Stats()
		return s.Dispatched == n && s.Batches >= n
	})
	if s := rt.Stats(); s.InlineFallbacks != 0 {
		t.Errorf("stats %+v: a batch fell back to the outbox", s)
	}
}

// Commands in order per instance: once an instance has a command
// waiting in the outbox, its later commands queue behind it instead of
// running with their steps.
func TestInlineDispatchQueuesBehindWaitingCommands(t *testing.T) {
	t.Parallel()
	// Only the first note of "stuck" is refused: were the second run with
	// its step, it would overtake the first.
	st := &refusingStore{Store: openStore(t), needle: `"instance":"stuck","event":"Cont","seen":1}`}
	st.refuse.Store(true)
	cfg := quietConfig()
	cfg.MaxAttempts = 1 << 20 // retried, never parked
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterProcessManager(rt, recorder{name: "rec"}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	appendEvent(t, rt, "s", "Cont", recData{ID: "stuck"})
	outbox := func() []evokestore.OutboxCommand {
		cmds, err := st.Outbox(ctx, evokestore.OutboxQuery{ProcessManager: "rec", Instances: []string{"stuck"}})
		if err != nil {
			t.Fatal(err)
		}
		return cmds
	}
	evoketest.Eventually(t, 0, "the refused command waits in the outbox", func() bool { return len(outbox()) == 1 })
	if rt.Stats().InlineFallbacks == 0 {
		t.Error("no fallback counted for the refused batch")
	}
	appendEvent(t, rt, "s", "Cont", recData{ID: "stuck"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "free"})
	evoketest.Eventually(t, 0, "the second step committed", func() bool {
		in, ok := instance(t, st, "rec", "stuck")
		return ok && in.Version == 2
	})
	if got := outbox(); len(got) != 2 {
		t.Fatalf("outbox of stuck holds %d commands, want both", len(got))
	}
	if notes := ledgerNotes(t, st, "rec", "stuck"); len(notes) != 0 {
		t.Fatalf("notes %+v went through while the first was refused", notes)
	}
	evoketest.Eventually(t, 0, "the other instance is not held up", func() bool { return len(ledgerNotes(t, st, "rec", "free")) == 1 })

	st.refuse.Store(false)
	evoketest.WaitIdle(t, rt, 0)
	notes := ledgerNotes(t, st, "rec", "stuck")
	if len(notes) != 2 || notes[0].Seen != 1 || notes[1].Seen != 2 {
		t.Fatalf("notes %+v, want the two in order, once each", notes)
	}
}

// Config.QueueCommands sends every command through the outbox.
func TestQueueCommands(t *testing.T) {
	t.Parallel()
	cfg := quietConfig()
	cfg.QueueCommands = true
	st, rt := startCounted(t, cfg)
	for _, id := range []string{"a", "b"} {
		appendEvent(t, rt, "s", "Start", recData{ID: id})
		appendEvent(t, rt, "s", "Cont", recData{ID: id})
	}
	evoketest.WaitIdle(t, rt, 0)
	for _, id := range []string{"a", "b"} {
		if notes := ledgerNotes(t, st, "rec", id); len(notes) != 2 || notes[0].Seen != 1 || notes[1].Seen != 2 {
			t.Errorf("notes of %s: %+v", id, notes)
		}
	}
	if st.queued.Load() != 4 {
		t.Errorf("%d commands queued: want all 4 through the outbox", st.queued.Load())
	}
	// The dispatcher counts a batch just after its commit.
	evoketest.Eventually(t, 0, "4 commands counted as dispatched", func() bool {
		s := rt.Stats()
		return s.Dispatched == 4 && s.Commands == 4
	})
}

// A batch whose commands fall back to the outbox while the batches after it
// are already prepared (on the assumption that it commits as prepared):
// those are dropped and prepared again, and nothing is lost or doubled.
func TestFallbackDropsThePreparedBatchesAfterIt(t *testing.T) {
	t.Parallel()
	st := &refusingStore{Store: openStore(t), needle: `"instance":"stuck","event":"Cont","seen":1}`}
	st.refuse.Store(true)
	cfg := quietConfig()
	cfg.BatchSize = 1 // a batch per event: several in flight
	cfg.MaxAttempts = 1 << 20
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterProcessManager(rt, recorder{name: "rec"}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	evs := []evoke.Event{evoke.NewEvent("Start", recData{ID: "x"})}
	for i := range 20 {
		if i == 10 {
			evs = append(evs, evoke.NewEvent("Cont", recData{ID: "stuck"}))
		}
		evs = append(evs, evoke.NewEvent("Cont", recData{ID: "x"}))
	}
	if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evs...); err != nil {
		t.Fatal(err)
	}
	evoketest.Eventually(t, 0, "x stepped 21 times", func() bool {
		in, ok := instance(t, st, "rec", "x")
		return ok && in.Version == 21
	})
	notes := ledgerNotes(t, st, "rec", "x")
	if len(notes) != 21 {
		t.Fatalf("x has %d notes, want 21", len(notes))
	}
	for i, n := range notes {
		if n.Seen != i+1 {
			t.Fatalf("x's note %d has seen %d: lost or doubled across the fallback", i, n.Seen)
		}
	}
	if rt.Stats().InlineFallbacks == 0 {
		t.Error("no fallback counted")
	}
	st.refuse.Store(false)
	evoketest.WaitIdle(t, rt, 0)
	if notes := ledgerNotes(t, st, "rec", "stuck"); len(notes) != 1 {
		t.Errorf("stuck has %d notes after the fault, want 1", len(notes))
	}
	if s := state(t, mustInstance(t, st, "rec", "x")); len(s.Seen) != 21 {
		t.Errorf("x saw %d events, want 21", len(s.Seen))
	}
}

func mustInstance(t *testing.T, st evokestore.Store, pm, id string) evokestore.Instance {
	t.Helper()
	in, ok := instance(t, st, pm, id)
	if !ok {
		t.Fatalf("no instance %s %s", pm, id)
	}
	return in
}
