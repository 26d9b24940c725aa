package evoke_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// evokeops acts from another process (here: a second handle on the same
// SQLite file, as `evoke retry` would open): Retry and Skip are picked up by
// the running runtime, which steps the held events; Cancel ends the
// instance at once.
func TestStoreOperatorActions(t *testing.T) {
	t.Parallel()
	hooks := &recorderHooks{}
	st, rt := startRecorders(t, nil, recorder{name: "rec", done: "Done", hooks: hooks})
	ctx := context.Background()
	other, err := evokesqlite.Open(ctx, st.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	// Retry: the fix is deployed, the operator asks for a retry.
	hooks.setPanic("r1", true)
	appendEvent(t, rt, "s", "Cont", recData{ID: "r1"})
	appendEvent(t, rt, "s", "Done", recData{ID: "r1"})
	waitStatus(t, st, "rec", "r1", evokestore.StatusParked)
	hooks.setPanic("r1", false)
	if err := evokeops.Retry(ctx, other, "rec", "r1"); err != nil {
		t.Fatal(err)
	}
	in := waitStatus(t, st, "rec", "r1", evokestore.StatusCompleted)
	if s := state(t, in); strings.Join(s.Seen, ",") != "Cont,Done" {
		t.Errorf("after retry: seen %v, want the held events in order", s.Seen)
	}
	if err := evokeops.Retry(ctx, other, "rec", "r1"); !errors.Is(err, evoke.ErrNotParked) {
		t.Errorf("Retry of a completed instance: %v", err)
	}
	hist, _ := st.History(ctx, "rec", "r1")
	kinds := []string{}
	for _, h := range hist {
		kinds = append(kinds, h.Kind)
	}
	if !strings.Contains(strings.Join(kinds, ","), "parked,retried,step,step") {
		t.Errorf("history kinds %v: the retry is not recorded before the steps", kinds)
	}

	// Skip: an event that always fails is dropped, the later one stepped.
	if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.Event{Type: "Bad", Data: []byte(`{"id":"s1","n":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	appendEvent(t, rt, "s", "Cont", recData{ID: "s1"})
	waitStatus(t, st, "rec", "s1", evokestore.StatusParked)
	if err := evokeops.Skip(ctx, other, "rec", "s1"); err != nil {
		t.Fatal(err)
	}
	in = waitStatus(t, st, "rec", "s1", evokestore.StatusRunning)
	if s := state(t, in); strings.Join(s.Seen, ",") != "Cont" {
		t.Errorf("after skip: seen %v, want only the later event", s.Seen)
	}
	hist, _ = st.History(ctx, "rec", "s1")
	found := false
	for _, h := range hist {
		found = found || (h.Kind == evokestore.KindSkipped && h.EventType == "Bad")
	}
	if !found {
		t.Errorf("history does not record the skipped event: %+v", hist)
	}

	// Skip of the only held event: running again, the failure gone.
	if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.Event{Type: "Bad", Data: []byte(`{"id":"s2","n":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, st, "rec", "s2", evokestore.StatusParked)
	if err := evokeops.Skip(ctx, other, "rec", "s2"); err != nil {
		t.Fatal(err)
	}
	in = waitStatus(t, st, "rec", "s2", evokestore.StatusRunning)
	if in.LastError != "" || !in.NextAttemptAt.IsZero() || in.Attempts != 0 {
		t.Errorf("after skip: last error %q, next attempt %v, attempts %d; want none", in.LastError, in.NextAttemptAt, in.Attempts)
	}

	// Cancel: a parked instance becomes a tombstone; its held events go,
	// and a later event is dropped.
	hooks.setPanic("c1", true)
	appendEvent(t, rt, "s", "Cont", recData{ID: "c1"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "c1"})
	waitStatus(t, st, "rec", "c1", evokestore.StatusParked)
	if err := evokeops.Cancel(ctx, other, "rec", "c1"); err != nil {
		t.Fatal(err)
	}
	hooks.setPanic("c1", false)
	appendEvent(t, rt, "s", "Cont", recData{ID: "c1"})
	evoketest.WaitIdle(t, rt, 0)
	in, _ = instance(t, st, "rec", "c1")
	if in.Status != evokestore.StatusCancelled || in.Outcome != evokestore.EndCancelled {
		t.Errorf("cancelled instance is %s, outcome %q", in.Status, in.Outcome)
	}
	if held, _ := st.Held(ctx, "rec", "c1"); len(held) != 0 {
		t.Errorf("held after cancel: %+v", held)
	}
	if err := evokeops.Cancel(ctx, other, "rec", "nobody"); !errors.Is(err, evoke.ErrNotFound) {
		t.Errorf("Cancel of a missing instance: %v", err)
	}
	if err := evokeops.Skip(ctx, other, "rec", "r1"); !errors.Is(err, evoke.ErrNotParked) {
		t.Errorf("Skip of a completed instance: %v", err)
	}

	// An event whose Correlate panicked is parked for the process manager;
	// SkipEvent drops it, recording it under no instance.
	bad := appendEvent(t, rt, "s", "PanicCorrelate", recData{ID: "x"})
	evoketest.Eventually(t, 0, "the event is parked for rec", func() bool {
		held, _ := evokeops.ParkedEvents(ctx, other, "rec")
		return len(held) == 1 && held[0].Position == bad.Position
	})
	if err := evokeops.SkipEvent(ctx, other, "rec", bad.Position); err != nil {
		t.Fatal(err)
	}
	if held, _ := evokeops.ParkedEvents(ctx, other, "rec"); len(held) != 0 {
		t.Errorf("still parked: %+v", held)
	}
	hist, _ = st.History(ctx, "rec", "")
	if len(hist) != 1 || hist[0].Kind != evokestore.KindSkipped || hist[0].EventType != "PanicCorrelate" {
		t.Errorf("history under no instance: %+v", hist)
	}
	if err := evokeops.SkipEvent(ctx, other, "rec", bad.Position); !errors.Is(err, evoke.ErrNotParked) {
		t.Errorf("second SkipEvent: %v", err)
	}
}

// Cancel moves the version on: a step that read the instance before the
// cancel cannot commit over it.
func TestStoreCancelFencesASteppingRuntime(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	in := evokestore.Instance{ProcessManager: "pm", ID: "x", Version: 3, Status: evokestore.StatusRunning}
	if err := evokestore.WithTx(ctx, st, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: in, PrevVersion: -1}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := evokeops.Cancel(ctx, st, "pm", "x"); err != nil {
		t.Fatal(err)
	}
	stepped := in
	stepped.Version = 4
	err := evokestore.WithTx(ctx, st, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: stepped, PrevVersion: 3}})
	})
	if !errors.Is(err, evokestore.ErrFenced) {
		t.Fatalf("a step from version 3 after the cancel: %v, want ErrFenced", err)
	}
}
