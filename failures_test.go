package evoke_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

func waitStatus(t *testing.T, st evokestore.Store, pm, id string, want evokestore.InstanceStatus) evokestore.Instance {
	t.Helper()
	var in evokestore.Instance
	evoketest.Eventually(t, 0, fmt.Sprintf("%s/%s is %s", pm, id, want), func() bool {
		var ok bool
		in, ok = instance(t, st, pm, id)
		return ok && in.Status == want
	})
	return in
}

// An event whose data does not decode fails its instance only,
// with a clear error; the instance is retried, then parked.
func TestUndecodableEventParksOnlyItsInstance(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "rec"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "bad"})
	if _, err := rt.Append(context.Background(), "s", evoke.AnyVersion, evoke.Event{Type: "Bad", Data: []byte(`{"id":"bad","n":"not a number"}`)}); err != nil {
		t.Fatal(err)
	}
	appendEvent(t, rt, "s", "Cont", recData{ID: "bad"})
	for i := range 20 {
		appendEvent(t, rt, "s", "Cont", recData{ID: fmt.Sprint("ok", i)})
	}
	in := waitStatus(t, st, "rec", "bad", evokestore.StatusParked)
	if !strings.Contains(in.LastError, "decode event") || !strings.Contains(in.LastError, "Bad") {
		t.Errorf("last error %q does not say which event failed to decode", in.LastError)
	}
	if in.Attempts != 3 || in.Version != 1 {
		t.Errorf("parked after %d attempts at version %d, want 3 attempts at version 1", in.Attempts, in.Version)
	}
	held, err := st.Held(context.Background(), "rec", "bad")
	if err != nil || len(held) != 2 {
		t.Fatalf("held %+v %v, want the bad event and the one after it", held, err)
	}
	evoketest.WaitIdle(t, rt, 0)
	for i := range 20 {
		if in, _ := instance(t, st, "rec", fmt.Sprint("ok", i)); in.Version != 1 || in.Status != evokestore.StatusRunning {
			t.Errorf("ok%d = %+v, want stepped once", i, in)
		}
	}
	hist, _ := st.History(context.Background(), "rec", "bad")
	kinds := []string{}
	for _, h := range hist {
		kinds = append(kinds, h.Kind)
	}
	if strings.Join(kinds, ",") != "step,failed,failed,parked" {
		t.Errorf("history kinds %v", kinds)
	}
}

// A Correlate that panics parks that event for the process
// manager, with the panic's stack, and the process manager goes on; the
// event can be skipped.
func TestCorrelatePanicParksTheEvent(t *testing.T) {
	t.Parallel()
	st, rt := startRecorders(t, nil, recorder{name: "rec"})
	ctx := context.Background()
	poison := appendEvent(t, rt, "s", "PanicCorrelate", recData{ID: "x"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "after"})
	evoketest.WaitIdle(t, rt, 0)
	if _, ok := instance(t, st, "rec", "after"); !ok {
		t.Fatal("the process manager stopped after a Correlate panic")
	}
	held, err := st.Held(ctx, "rec", "")
	if err != nil || len(held) != 1 || held[0].Position != poison.Position || !strings.Contains(held[0].Error, "panic in rec.Correlate") {
		t.Fatalf("parked events %+v %v", held, err)
	}
	if !strings.Contains(held[0].Error, "\n\ngoroutine ") {
		t.Errorf("the parked event's error has no stack: %q", held[0].Error)
	}
	if got := rt.Stats().CorrelateErrors; got != 1 {
		t.Errorf("CorrelateErrors = %d", got)
	}
	// Retrying a still-panicking correlate keeps it parked.
	if err := rt.RetryEvent(ctx, "rec", poison.Position); err == nil {
		t.Error("RetryEvent of a still-failing correlate succeeded")
	}
	if err := rt.SkipEvent(ctx, "rec", poison.Position); err != nil {
		t.Fatal(err)
	}
	if held, _ := st.Held(ctx, "rec", ""); len(held) != 0 {
		t.Errorf("after SkipEvent: %+v", held)
	}
	if err := rt.SkipEvent(ctx, "rec", poison.Position); !errors.Is(err, evoke.ErrNotParked) {
		t.Errorf("second SkipEvent: %v, want ErrNotParked", err)
	}
}

// A poison instance is parked after the retry limit while 1,000
// other instances complete; after Retry with the bug fixed it completes,
// its held events applied in order.
func TestPoisonInstanceParkedThenRetried(t *testing.T) {
	t.Parallel()
	hooks := &recorderHooks{}
	hooks.setPanic("poison", true)
	st, rt := startRecorders(t, nil, recorder{name: "rec", done: "Done", hooks: hooks})
	ctx := context.Background()
	appendEvent(t, rt, "p", "Cont", recData{ID: "poison"})
	const others = 1000
	batch := make([]evoke.StreamAppend, 0, others)
	for i := range others {
		batch = append(batch, evoke.StreamAppend{StreamID: fmt.Sprint("o", i), ExpectedVersion: evoke.NoStream, Events: []evoke.Event{
			evoke.NewEvent("Cont", recData{ID: fmt.Sprint("other", i)}),
			evoke.NewEvent("Done", recData{ID: fmt.Sprint("other", i)}),
		}})
	}
	if _, err := rt.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	appendEvent(t, rt, "p", "Cont", recData{ID: "poison"})
	appendEvent(t, rt, "p", "Done", recData{ID: "poison"})
	in := waitStatus(t, st, "rec", "poison", evokestore.StatusParked)
	if !strings.Contains(in.LastError, "handle exploded on poison") {
		t.Errorf("last error %q", in.LastError)
	}
	evoketest.WaitIdle(t, rt, 0)
	all, err := st.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: "rec", Status: evokestore.StatusCompleted, Limit: 2 * others})
	if err != nil || len(all) != others {
		t.Fatalf("%d others completed (%v), want %d", len(all), err, others)
	}
	if err := rt.Retry(ctx, "rec", "other1"); !errors.Is(err, evoke.ErrNotParked) {
		t.Errorf("Retry of a completed instance: %v", err)
	}

	hooks.setPanic("poison", false) // the fix is deployed
	if err := rt.Retry(ctx, "rec", "poison"); err != nil {
		t.Fatal(err)
	}
	in = waitStatus(t, st, "rec", "poison", evokestore.StatusCompleted)
	if s := state(t, in); strings.Join(s.Seen, ",") != "Cont,Cont,Done" || in.Version != 3 {
		t.Fatalf("after retry: version %d seen %v, want the held events in order", in.Version, s.Seen)
	}
	if held, _ := st.Held(ctx, "rec", "poison"); len(held) != 0 {
		t.Errorf("held after retry: %+v", held)
	}
	evoketest.WaitIdle(t, rt, 0)
	notes := ledgerNotes(t, st, "rec", "poison")
	if len(notes) != 3 || notes[0].Seen != 1 || notes[2].Event != "Done" {
		t.Errorf("commands after retry: %+v", notes)
	}
}

// Skip drops the poison event and runs the rest; Cancel makes a tombstone.
func TestSkipAndCancel(t *testing.T) {
	t.Parallel()
	hooks := &recorderHooks{}
	st, rt := startRecorders(t, nil, recorder{name: "rec", hooks: hooks})
	ctx := context.Background()

	// An event that always fails: skip it.
	if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.Event{Type: "Bad", Data: []byte(`{"id":"s1","n":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	appendEvent(t, rt, "s", "Cont", recData{ID: "s1"})
	waitStatus(t, st, "rec", "s1", evokestore.StatusParked)
	if err := rt.Skip(ctx, "rec", "s1"); err != nil {
		t.Fatal(err)
	}
	in := waitStatus(t, st, "rec", "s1", evokestore.StatusRunning)
	if s := state(t, in); strings.Join(s.Seen, ",") != "Cont" {
		t.Errorf("after skip: seen %v, want only the later event", s.Seen)
	}
	hist, _ := st.History(ctx, "rec", "s1")
	if last := hist[len(hist)-2]; last.Kind != evokestore.KindSkipped || last.EventType != "Bad" {
		t.Errorf("history does not record the skip: %+v", hist)
	}

	// Skipping its only held event leaves the instance running with
	// nothing of the failure left: no last error, no next attempt.
	if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.Event{Type: "Bad", Data: []byte(`{"id":"s2","n":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, st, "rec", "s2", evokestore.StatusParked)
	if err := rt.Skip(ctx, "rec", "s2"); err != nil {
		t.Fatal(err)
	}
	in = waitStatus(t, st, "rec", "s2", evokestore.StatusRunning)
	if in.LastError != "" || !in.NextAttemptAt.IsZero() || in.Attempts != 0 {
		t.Errorf("after skip: last error %q, next attempt %v, attempts %d; want none", in.LastError, in.NextAttemptAt, in.Attempts)
	}

	// A parked instance cancelled: a tombstone that drops later events.
	hooks.setPanic("c1", true)
	appendEvent(t, rt, "s", "Cont", recData{ID: "c1"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "c1"})
	waitStatus(t, st, "rec", "c1", evokestore.StatusParked)
	if err := rt.Cancel(ctx, "rec", "c1"); err != nil {
		t.Fatal(err)
	}
	hooks.setPanic("c1", false)
	appendEvent(t, rt, "s", "Cont", recData{ID: "c1"})
	evoketest.WaitIdle(t, rt, 0)
	in, _ = instance(t, st, "rec", "c1")
	if in.Status != evokestore.StatusCancelled || in.Version != 0 || in.Outcome != evokestore.EndCancelled {
		t.Errorf("cancelled instance = %s v%d, outcome %q", in.Status, in.Version, in.Outcome)
	}
	if held, _ := st.Held(ctx, "rec", "c1"); len(held) != 0 {
		t.Errorf("held after cancel: %+v", held)
	}
	if err := rt.Cancel(ctx, "rec", "nobody"); !errors.Is(err, evoke.ErrNotFound) {
		t.Errorf("Cancel of a missing instance: %v", err)
	}
}
