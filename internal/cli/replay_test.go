package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
)

// evoke replay after evoke demo finds nothing that differs (exit 0); a
// stored state the code would not reach is reported (exit 1).
func TestReplayAfterDemo(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")
	if code, _, errs := run(t, "demo", "--store", db, "--orders", "60", "--fail-rate", "0.2", "--timeout-rate", "0.2"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	code, out, errs := run(t, "replay", "--store", db, "--pm", "order_fulfillment", "--json")
	if code != 0 {
		t.Fatalf("replay: exit %d: %s %s", code, out, errs)
	}
	var rep struct {
		Instances   int   `json:"instances"`
		Steps       int   `json:"steps"`
		Differences []any `json:"differences"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Instances != 60 || rep.Steps < 120 || len(rep.Differences) != 0 {
		t.Errorf("replay report %s (%v): want 60 instances and no differences", out, err)
	}
	if !strings.Contains(errs, "progress: 60/60") {
		t.Errorf("stderr %q: want a progress line", errs)
	}

	// An instance whose stored state its steps do not give.
	ctx := context.Background()
	st, err := evokesqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := st.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: "order_fulfillment", Limit: 1})
	if err != nil || len(ins) != 1 {
		t.Fatalf("list: %v %v", ins, err)
	}
	in := ins[0]
	in.State = []byte(`{"order_id":"tampered"}`)
	err = evokestore.WithTx(ctx, st, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: in, PrevVersion: in.Version}})
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, "replay", "--store", db, "--pm", "order_fulfillment")
	if code != 1 || !strings.Contains(out, in.ID+": final state differs") || !strings.Contains(out, `recorded: {"amount":0,"customer_id":"","items":null,"order_id":"tampered","status":""}`) ||
		!strings.Contains(errs, "1 of 60 instances") {
		t.Errorf("replay of a changed state: exit %d, stdout %q, stderr %q; want exit 1 naming %s", code, out, errs, in.ID)
	}

	if code, _, errs := run(t, "replay", "--store", db, "--pm", "booking"); code != 1 || !strings.Contains(errs, "has the code of order_fulfillment only") {
		t.Errorf("replay of an unknown process manager: exit %d, %q", code, errs)
	}
	if code, _, errs := run(t, "replay", "--store", db); code != 2 || !strings.Contains(errs, "--pm is required") {
		t.Errorf("replay without --pm: exit %d, %q", code, errs)
	}
}
