package evoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/internal/engine"
)

func ledgerNotes(t *testing.T, st evokestore.Store, pm, id string) []note {
	t.Helper()
	evs, err := st.ReadStream(context.Background(), evoke.StreamID("ledger", pm+"/"+id), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]note, len(evs))
	for i, e := range evs {
		if err := json.Unmarshal(e.Data, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func state(t *testing.T, in evokestore.Instance) recState {
	t.Helper()
	var s recState
	if err := json.Unmarshal(in.State, &s); err != nil {
		t.Fatalf("state %q: %v", in.State, err)
	}
	return s
}

// A duplicate start is not a second instance.
func TestStartTwiceGoesToTheSameInstance(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "rec"})
	appendEvent(t, rt, "s1", "Start", recData{ID: "a"})
	appendEvent(t, rt, "s1", "Start", recData{ID: "a"})
	evoketest.WaitIdle(t, rt, 0)
	in, ok := instance(t, st, "rec", "a")
	if !ok {
		t.Fatal("instance a missing")
	}
	if in.Version != 2 || len(state(t, in).Seen) != 2 {
		t.Fatalf("instance a: version %d, seen %v; want both starts in one instance", in.Version, state(t, in).Seen)
	}
	all, err := st.ListInstances(context.Background(), evokestore.InstanceQuery{ProcessManager: "rec"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d instances, want 1", len(all))
	}
}

// Continue creates; a strict process manager drops and counts.
func TestContinueCreatesUnlessStrict(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "loose"}, recorder{name: "strict", strict: true})
	appendEvent(t, rt, "s", "Cont", recData{ID: "x"})
	evoketest.WaitIdle(t, rt, 0)
	if _, ok := instance(t, st, "loose", "x"); !ok {
		t.Error("continue did not create the instance of a loose process manager")
	}
	if _, ok := instance(t, st, "strict", "x"); ok {
		t.Error("continue created an instance of a strict process manager")
	}
	if got := rt.Stats().DroppedStrict; got != 1 {
		t.Errorf("DroppedStrict = %d, want 1", got)
	}
	// Started, a strict instance takes continues.
	appendEvent(t, rt, "s", "Start", recData{ID: "y"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "y"})
	evoketest.WaitIdle(t, rt, 0)
	in, ok := instance(t, st, "strict", "y")
	if !ok || in.Version != 2 {
		t.Fatalf("strict instance y: %+v, want version 2", in)
	}
}

// Stop handles then completes; later events and stops
// for missing instances are dropped and counted; tombstones never resurrect.
func TestStopCompletesAndLeavesATombstone(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "rec"})
	appendEvent(t, rt, "s", "Start", recData{ID: "a"})
	appendEvent(t, rt, "s", "Stop", recData{ID: "a"})
	appendEvent(t, rt, "s", "Stop", recData{ID: "ghost"})
	evoketest.WaitIdle(t, rt, 0)
	in, _ := instance(t, st, "rec", "a")
	if in.Status != evokestore.StatusCompleted || in.Version != 2 {
		t.Fatalf("after stop: status %s version %d, want completed at 2", in.Status, in.Version)
	}
	notes := ledgerNotes(t, st, "rec", "a")
	if len(notes) != 2 || notes[1].Event != "Stop" {
		t.Fatalf("ledger %+v: the stop's command was not dispatched", notes)
	}
	if _, ok := instance(t, st, "rec", "ghost"); ok {
		t.Error("a stop created an instance")
	}
	if got := rt.Stats().DroppedStop; got != 1 {
		t.Errorf("DroppedStop = %d, want 1", got)
	}
	appendEvent(t, rt, "s", "Cont", recData{ID: "a"})
	appendEvent(t, rt, "s", "Start", recData{ID: "a"})
	evoketest.WaitIdle(t, rt, 0)
	in2, _ := instance(t, st, "rec", "a")
	if in2.Version != 2 || in2.Status != evokestore.StatusCompleted {
		t.Fatalf("tombstone resurrected: %+v", in2)
	}
	if got := rt.Stats().DroppedCompleted; got != 2 {
		t.Errorf("DroppedCompleted = %d, want 2", got)
	}
	if n := len(ledgerNotes(t, st, "rec", "a")); n != 2 {
		t.Errorf("%d ledger notes after the tombstone, want 2", n)
	}
}

// Ignore does nothing; an instance completes from Handle through
// Completer.
func TestIgnoreAndCompleteFromHandle(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "rec", done: "Done"})
	appendEvent(t, rt, "s", "Ignore", recData{ID: "i"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "c"})
	appendEvent(t, rt, "s", "Done", recData{ID: "c"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "c"})
	evoketest.WaitIdle(t, rt, 0)
	if _, ok := instance(t, st, "rec", "i"); ok {
		t.Error("an ignored event created an instance")
	}
	in, _ := instance(t, st, "rec", "c")
	if in.Status != evokestore.StatusCompleted || in.Version != 2 || in.Phase != "done" {
		t.Fatalf("instance c = %s v%d %q, want completed at v2 with status done", in.Status, in.Version, in.Phase)
	}
}

// Two process managers never share instances.
func TestInstanceKeyIncludesProcessManager(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "one", done: "Done"}, recorder{name: "two", done: "Done"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "same"})
	evoketest.WaitIdle(t, rt, 0)
	appendEvent(t, rt, "s", "Done", recData{ID: "same"})
	evoketest.WaitIdle(t, rt, 0)
	for _, n := range []string{"one", "two"} {
		in, ok := instance(t, st, n, "same")
		if !ok || in.Version != 2 || in.Status != evokestore.StatusCompleted {
			t.Errorf("%s/same = %+v, want its own instance, completed at version 2", n, in)
		}
		if got := len(ledgerNotes(t, st, n, "same")); got != 2 {
			t.Errorf("%s: %d commands, want 2", n, got)
		}
	}
}

// Apply runs before Handle, and Handle receives Apply's result
// (the recorder's Handle errs otherwise).
func TestApplyBeforeHandle(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "rec"})
	for range 5 {
		appendEvent(t, rt, "s", "Cont", recData{ID: "a"})
	}
	evoketest.WaitIdle(t, rt, 0)
	in, _ := instance(t, st, "rec", "a")
	s := state(t, in)
	if in.Status != evokestore.StatusRunning || s.Applied != 5 || len(s.Seen) != 5 {
		t.Fatalf("instance = %s %+v (last error %q), want 5 applied and handled", in.Status, s, in.LastError)
	}
}

// Start from now, and catch up without dispatching.
func TestStartFromNowAndSuppressedCatchup(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seed := newRuntime(t, st, nil)
	appendEvent(t, seed, "s", "Cont", recData{ID: "old"})

	rt := newRuntime(t, st, nil)
	if err := evoke.RegisterProcessManager(rt, recorder{name: "now"}, &evoke.ProcessManagerOpts{StartFrom: evoke.FromNow}); err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterProcessManager(rt, recorder{name: "quiet"}, &evoke.ProcessManagerOpts{SuppressCatchupCommands: true}); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	appendEvent(t, rt, "s", "Cont", recData{ID: "new"})
	evoketest.WaitIdle(t, rt, 0)
	if _, ok := instance(t, st, "now", "old"); ok {
		t.Error("a FromNow process manager stepped an old event")
	}
	if _, ok := instance(t, st, "now", "new"); !ok {
		t.Error("a FromNow process manager missed a new event")
	}
	old, ok := instance(t, st, "quiet", "old")
	if !ok || old.Version != 1 {
		t.Fatalf("catch-up did not rebuild the old instance: %+v", old)
	}
	if n := len(ledgerNotes(t, st, "quiet", "old")); n != 0 {
		t.Errorf("catch-up dispatched %d commands, want 0", n)
	}
	if n := len(ledgerNotes(t, st, "quiet", "new")); n != 1 {
		t.Errorf("after catch-up, %d commands for a new event, want 1", n)
	}
	if got := rt.Stats().Suppressed; got != 1 {
		t.Errorf("Suppressed = %d, want 1", got)
	}
}

// Events in log order, each changing state once across
// restarts; commands with deterministic IDs, in order per instance.
func TestOrderAndExactlyOnceAcrossRestarts(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	const instances, perInstance = 20, 6
	run := func() *evoke.Runtime {
		rt := newRuntime(t, st, func() *evoke.Config { c := quietConfig(); c.BatchSize = 7; return c }())
		if err := evoke.RegisterProcessManager(rt, recorder{name: "rec"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	rt := run()
	var appended []evoke.Event
	for k := range perInstance {
		for i := range instances {
			if k == perInstance/2 && i == 0 {
				// Restart midway: what committed is never redone.
				if err := rt.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				rt = run()
			}
			appended = append(appended, appendEvent(t, rt, "s", "Cont", recData{ID: string(rune('a' + i))}))
		}
	}
	evoketest.WaitIdle(t, rt, 0)
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range instances {
		id := string(rune('a' + i))
		in, _ := instance(t, st, "rec", id)
		if in.Version != perInstance || len(state(t, in).Seen) != perInstance {
			t.Errorf("%s: version %d seen %d, want %d", id, in.Version, len(state(t, in).Seen), perInstance)
		}
		hist, err := st.History(ctx, "rec", id)
		if err != nil {
			t.Fatal(err)
		}
		var want []evoke.Event
		for _, e := range appended {
			if f, _ := evoke.Field(e, "id"); f == id {
				want = append(want, e)
			}
		}
		if len(hist) != len(want) {
			t.Fatalf("%s: %d history records, want %d", id, len(hist), len(want))
		}
		for k, h := range hist {
			if h.Position != want[k].Position || h.Version != int64(k+1) {
				t.Errorf("%s step %d: position %d version %d, want %d and %d", id, k, h.Position, h.Version, want[k].Position, k+1)
			}
		}
		notes := ledgerNotes(t, st, "rec", id)
		if len(notes) != perInstance {
			t.Fatalf("%s: %d commands took effect, want %d", id, len(notes), perInstance)
		}
		for k, n := range notes {
			if n.Seen != k+1 {
				t.Errorf("%s: command %d carried seen=%d: out of order", id, k, n.Seen)
			}
		}
		first := evoke.CommandID("rec", id, want[0], 0)
		outs, err := engine.Outcomes(ctx, st, []evokestore.OutboxCommand{{ID: first}})
		if o := outs[first]; err != nil || o.Status != evokestore.OutcomeAccepted || o.Events != 1 {
			t.Errorf("%s: outcome of the deterministic first command id: %+v %v", id, outs, err)
		}
	}
}

// Aggregates deduplicate by command ID.
func TestDispatchDeduplicatesByCommandID(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	rt := newRuntime(t, st, nil)
	ctx := context.Background()
	cmd := evoke.NewCommand("note", "ledger", "x", note{Instance: "x", Event: "e"})
	cmd.ID = "cmd-1"
	r1, err := rt.Dispatch(ctx, cmd)
	if err != nil || r1.Duplicate || len(r1.Events) != 1 {
		t.Fatalf("first dispatch: %+v %v", r1, err)
	}
	r2, err := rt.Dispatch(ctx, cmd)
	if err != nil || !r2.Duplicate || len(r2.Events) != 0 {
		t.Fatalf("second dispatch: %+v %v, want a duplicate with no events", r2, err)
	}
	evs, _ := st.ReadStream(ctx, evoke.StreamID("ledger", "x"), 0)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	rej := evoke.NewCommand("reject", "ledger", "x", nil)
	_, err = rt.Dispatch(ctx, rej)
	var re *evoke.RejectedError
	if !errors.As(err, &re) || re.Reason != "rejected on purpose" {
		t.Fatalf("reject: %v, want a RejectedError", err)
	}
	_, err = rt.Dispatch(ctx, evoke.NewCommand("explode", "ledger", "x", nil))
	if !errors.As(err, &re) {
		t.Fatalf("a panicking aggregate gave %v, want a RejectedError", err)
	}
	_, err = rt.Dispatch(ctx, evoke.NewCommand("note", "nope", "x", nil))
	if !errors.Is(err, evoke.ErrUnknownAggregate) {
		t.Fatalf("unknown aggregate: %v", err)
	}
}

// Lineage from event to command to the aggregate's event.
func TestLineage(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "rec"})
	ctx := context.Background()
	withCorr := evoke.NewEvent("Cont", recData{ID: "a"})
	withCorr.Metadata.CorrelationID = "corr-1"
	evs, err := rt.Append(ctx, "s", evoke.AnyVersion, withCorr)
	if err != nil {
		t.Fatal(err)
	}
	plain := appendEvent(t, rt, "s", "Cont", recData{ID: "b"})
	evoketest.WaitIdle(t, rt, 0)
	for _, c := range []struct {
		id    string
		event evoke.Event
		corr  string
	}{{"a", evs[0], "corr-1"}, {"b", plain, plain.ID}} {
		noted, _ := st.ReadStream(ctx, evoke.StreamID("ledger", "rec/"+c.id), 0)
		if len(noted) != 1 {
			t.Fatalf("%s: %d ledger events", c.id, len(noted))
		}
		cmdID := evoke.CommandID("rec", c.id, c.event, 0)
		if noted[0].CausationID != cmdID {
			t.Errorf("%s: aggregate event causation %q, want the command id %q", c.id, noted[0].CausationID, cmdID)
		}
		if noted[0].CorrelationID != c.corr {
			t.Errorf("%s: aggregate event correlation %q, want %q", c.id, noted[0].CorrelationID, c.corr)
		}
		outs, err := engine.Outcomes(ctx, st, []evokestore.OutboxCommand{{ID: cmdID}})
		if o, ok := outs[cmdID]; err != nil || !ok || o.Status != evokestore.OutcomeAccepted || o.Events != 1 {
			t.Fatalf("%s: command %s has no outcome: %+v %v", c.id, cmdID, outs, err)
		}
	}
}
