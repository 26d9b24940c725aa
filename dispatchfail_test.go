package evoke_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// refusingStore is fault injection: while refuse is set, appending the
// events of the note for instance "stuck" (or, if set, of the notes whose
// data holds needle) fails, as a store that times out or refuses them would
// — a transient error, not the aggregate's rejection.
type refusingStore struct {
	evokestore.Store
	refuse atomic.Bool
	needle string
}

func (s *refusingStore) Begin(ctx context.Context) (evokestore.Tx, error) {
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &refusingTx{Tx: tx, s: s}, nil
}

type refusingTx struct {
	evokestore.Tx
	s *refusingStore
}

// InstanceDeadlines keeps the stores' optional reader, without which the
// runtime caches no instances (and parks without moving the version).
func (s *refusingStore) InstanceDeadlines(ctx context.Context, pm string, ids []string) ([]evokestore.Deadline, error) {
	return s.Store.(evokestore.DeadlinesReader).InstanceDeadlines(ctx, pm, ids)
}

func (t *refusingTx) InstanceDeadlines(ctx context.Context, pm string, ids []string) ([]evokestore.Deadline, error) {
	return t.Tx.(evokestore.DeadlinesReader).InstanceDeadlines(ctx, pm, ids)
}

func (t *refusingTx) AppendEvents(ctx context.Context, evs []evokestore.NewEvent) ([]evokestore.Event, error) {
	if t.s.refuse.Load() {
		needle := t.s.needle
		if needle == "" {
			needle = `"instance":"stuck"`
		}
		for _, e := range evs {
			if e.Type == "Noted" && strings.Contains(string(e.Data), needle) {
				return nil, errors.New("store refused the events (injected)")
			}
		}
	}
	return t.Tx.AppendEvents(ctx, evs)
}

// A transient dispatch error is retried with backoff, then parks
// the instance; the instance's later events wait, every other instance goes
// on, and Retry after the fault is gone dispatches the command once.
func TestTransientDispatchErrorParksTheInstance(t *testing.T) {
	t.Parallel()
	st := &refusingStore{Store: openStore(t)}
	st.refuse.Store(true)
	rt := newRuntime(t, st, nil)
	if err := evoke.RegisterProcessManager(rt, recorder{name: "rec"}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	appendEvent(t, rt, "s", "Cont", recData{ID: "stuck"})
	for _, id := range []string{"a", "b", "c"} {
		appendEvent(t, rt, "s", "Cont", recData{ID: id})
	}
	in := waitStatus(t, st, "rec", "stuck", evokestore.StatusParked)
	if !strings.Contains(in.LastError, "dispatch of command") || !strings.Contains(in.LastError, "store refused") {
		t.Errorf("last error %q does not say which command failed and why", in.LastError)
	}
	hist, _ := st.History(ctx, "rec", "stuck")
	if last := hist[len(hist)-1]; last.Kind != evokestore.KindParked || last.EventType != "$dispatch" {
		t.Errorf("history does not record the park: %+v", last)
	}
	for _, id := range []string{"a", "b", "c"} {
		evoketest.Eventually(t, 0, id+"'s command dispatched", func() bool { return len(ledgerNotes(t, st, "rec", id)) == 1 })
	}
	// A later event of the parked instance is held, in order.
	appendEvent(t, rt, "s", "Cont", recData{ID: "stuck"})
	evoketest.Eventually(t, 0, "the later event is held", func() bool {
		held, _ := st.Held(ctx, "rec", "stuck")
		return len(held) == 1
	})
	if n := len(ledgerNotes(t, st, "rec", "stuck")); n != 0 {
		t.Fatalf("%d notes of the parked instance went through", n)
	}

	st.refuse.Store(false) // the fault is gone
	if err := rt.Retry(ctx, "rec", "stuck"); err != nil {
		t.Fatal(err)
	}
	evoketest.Eventually(t, 0, "both commands of the retried instance dispatched", func() bool {
		return len(ledgerNotes(t, st, "rec", "stuck")) == 2
	})
	evoketest.WaitIdle(t, rt, 0)
	notes := ledgerNotes(t, st, "rec", "stuck")
	if len(notes) != 2 || notes[0].Seen != 1 || notes[1].Seen != 2 {
		t.Fatalf("notes after retry %+v, want the two in order, once each", notes)
	}
	// Versions: the first step (1), the park (2: a park moves the version,
	// so that the runtime, which had the instance cached as running when
	// the later event came, could not step it over the park), the held
	// event's step on retry (3).
	in, _ = instance(t, st, "rec", "stuck")
	if in.Status != evokestore.StatusRunning || in.Version != 3 {
		t.Errorf("after retry: %s at version %d", in.Status, in.Version)
	}
}

// timedRecorder is a recorder with an inactivity timeout.
type timedRecorder struct{ recorder }

func (timedRecorder) Timeout() time.Duration { return time.Hour }

// A park moves the instance's version, and its deadlines with it: once
// retried, the instance's timeout still fires.
func TestParkedThenRetriedInstanceKeepsItsTimeout(t *testing.T) {
	t.Parallel()
	clock := evoketest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := &refusingStore{Store: openStore(t)}
	st.refuse.Store(true)
	cfg := quietConfig()
	cfg.Clock = clock
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterProcessManager(rt, timedRecorder{recorder{name: "rec"}}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	appendEvent(t, rt, "s", "Cont", recData{ID: "stuck"})
	evoketest.Eventually(t, 0, "the instance parked", func() bool {
		clock.Advance(10 * time.Millisecond) // the dispatcher's backoff
		in, _ := instance(t, st, "rec", "stuck")
		return in.Status == evokestore.StatusParked
	})
	in, _ := instance(t, st, "rec", "stuck")
	dls, err := st.InstanceDeadlines(ctx, "rec", []string{"stuck"})
	if err != nil || len(dls) != 1 || dls[0].Version != in.Version || in.Version != 2 {
		t.Fatalf("parked at v%d with deadlines %+v (%v), want its timeout at v2", in.Version, dls, err)
	}
	st.refuse.Store(false)
	if err := rt.Retry(ctx, "rec", "stuck"); err != nil {
		t.Fatal(err)
	}
	evoketest.WaitIdle(t, rt, 0)
	clock.Advance(2 * time.Hour)
	evoketest.Eventually(t, 0, "the timeout fired", func() bool {
		in, _ := instance(t, st, "rec", "stuck")
		return slices.Contains(state(t, in).Seen, evoke.TimeoutEvent)
	})
}

// Instances parked for a dispatch failure hold back their own commands
// only: however many of them sit at the head of the outbox, more than a
// dispatch batch here, the commands behind them are dispatched.
func TestParkedCommandsDoNotStarveTheOutbox(t *testing.T) {
	t.Parallel()
	st := &refusingStore{Store: openStore(t), needle: `"instance":"stuck-`}
	st.refuse.Store(true)
	cfg := quietConfig()
	cfg.QueueCommands, cfg.DispatchBatchSize = true, 2
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterProcessManager(rt, recorder{name: "rec"}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	for i := range 5 {
		id := fmt.Sprintf("stuck-%d", i)
		appendEvent(t, rt, "s", "Cont", recData{ID: id})
		waitStatus(t, st, "rec", id, evokestore.StatusParked)
	}
	appendEvent(t, rt, "s", "Cont", recData{ID: "ok"})
	evoketest.Eventually(t, 0, "the command behind five parked instances' is dispatched", func() bool {
		return len(ledgerNotes(t, st, "rec", "ok")) == 1
	})
}

// An instance parked because its command could not be dispatched keeps
// that command back across a restart, even once the fault is gone, until
// an operator retries it; meanwhile the runtime counts as idle.
func TestDispatchParkHoldsAcrossARestart(t *testing.T) {
	t.Parallel()
	st := &refusingStore{Store: openStore(t)}
	st.refuse.Store(true)
	cfg := quietConfig()
	cfg.QueueCommands = true
	run := func() *evoke.Runtime {
		rt := newRuntime(t, st, cfg)
		if err := evoke.RegisterProcessManager(rt, recorder{name: "rec"}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		return rt
	}
	rt := run()
	appendEvent(t, rt, "s", "Cont", recData{ID: "stuck"})
	waitStatus(t, st, "rec", "stuck", evokestore.StatusParked)
	evoketest.WaitIdle(t, rt, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	st.refuse.Store(false)
	rt = run()
	appendEvent(t, rt, "s", "Cont", recData{ID: "other"})
	evoketest.WaitIdle(t, rt, 0)
	if n := len(ledgerNotes(t, st, "rec", "other")); n != 1 {
		t.Fatalf("other instance: %d notes, want 1", n)
	}
	if n := len(ledgerNotes(t, st, "rec", "stuck")); n != 0 {
		t.Fatalf("the parked instance's command went through after a restart (%d notes) without an operator", n)
	}
	if err := rt.Retry(ctx, "rec", "stuck"); err != nil {
		t.Fatal(err)
	}
	evoketest.Eventually(t, 0, "the retried instance's command is dispatched", func() bool {
		return len(ledgerNotes(t, st, "rec", "stuck")) == 1
	})
}
