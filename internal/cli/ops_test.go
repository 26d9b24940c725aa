package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
)

// evoke retry, skip and cancel change a store's parked instances for the
// runtime to pick up (the runtime's side is TestStoreOperatorActions).
func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "ops.db")
	st, err := evokesqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ws []evokestore.InstanceWrite
	for _, id := range []string{"a", "b", "c", "done"} {
		status := evokestore.StatusParked
		if id == "done" {
			status = evokestore.StatusCompleted
		}
		ws = append(ws, evokestore.InstanceWrite{PrevVersion: -1, Instance: evokestore.Instance{ProcessManager: "pm", ID: id, Version: 2,
			Status: status, Attempts: 5, LastError: "boom"}})
	}
	if err := tx.PutInstances(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if err := tx.Hold(ctx, []evokestore.HeldEvent{{ProcessManager: "pm", Position: 3, Error: "correlate failed"}, {ProcessManager: "pm", InstanceID: "b", Position: 7, Error: "boom"},
		{ProcessManager: "pm", InstanceID: "b", Position: 9}, {ProcessManager: "pm", InstanceID: "c", Position: 8}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, c := range []struct{ cmd, id, want string }{
		{"retry", "a", "pm a: retry requested"},
		{"skip", "b", "pm b: skip requested"},
		{"cancel", "c", "pm c cancelled"},
	} {
		code, out, errs := run(t, c.cmd, "--store", db, "--pm", "pm", c.id)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%s %s: exit %d, %q %q", c.cmd, c.id, code, out, errs)
		}
	}
	if code, _, errs := run(t, "retry", "--store", db, "--pm", "pm", "done"); code != 1 || !strings.Contains(errs, "not failing or parked") {
		t.Errorf("retry of a completed instance: exit %d, %q", code, errs)
	}
	if code, _, errs := run(t, "cancel", "--store", db, "--pm", "pm", "nobody"); code != 1 || !strings.Contains(errs, "no such instance") {
		t.Errorf("cancel of a missing instance: exit %d, %q", code, errs)
	}
	if code, _, _ := run(t, "skip", "--store", db, "b"); code != 2 {
		t.Errorf("skip without --pm: exit %d, want 2", code)
	}
	if code, out, _ := run(t, "list", "--store", db, "--pm", "pm"); code != 0 || !strings.Contains(out, "events parked for pm") || !strings.Contains(out, "position 3: correlate failed") {
		t.Errorf("list does not show the parked event: exit %d\n%s", code, out)
	}
	if code, out, errs := run(t, "skip", "--store", db, "--pm", "pm", "--event", "3"); code != 0 || !strings.Contains(out, "event 3 parked for pm skipped") {
		t.Errorf("skip --event: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := run(t, "skip", "--store", db, "--pm", "pm", "--event", "3"); code != 1 || !strings.Contains(errs, "no event parked at position 3") {
		t.Errorf("second skip --event: exit %d, %q", code, errs)
	}

	st, err = evokesqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	insts, err := st.Instances(ctx, "pm", []string{"a", "b", "c"})
	if err != nil || len(insts) != 3 {
		t.Fatal(insts, err)
	}
	for _, in := range insts[:2] {
		if in.Status != evokestore.StatusFailing || in.Attempts != 0 || in.NextAttemptAt.IsZero() || in.Version != 2 {
			t.Errorf("%s after retry/skip: %+v, want failing, due now, attempts reset", in.ID, in)
		}
	}
	if c := insts[2]; c.Status != evokestore.StatusCancelled || c.Version != 3 || c.CompletedAt.IsZero() {
		t.Errorf("c after cancel: %+v", c)
	}
	if held, _ := st.Held(ctx, "pm", "b"); len(held) != 1 || held[0].Position != 9 {
		t.Errorf("b holds %+v after skip, want only position 9", held)
	}
	if held, _ := st.Held(ctx, "pm", "c"); len(held) != 0 {
		t.Errorf("c holds %+v after cancel", held)
	}
	hist, _ := st.History(ctx, "pm", "b")
	if len(hist) != 1 || hist[0].Kind != evokestore.KindSkipped || hist[0].Position != 7 || hist[0].Error != "boom" {
		t.Errorf("b's history %+v, want the skip of position 7", hist)
	}
}
