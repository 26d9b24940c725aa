package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
	"github.com/evoke-go/evoke/internal/demo"
	"github.com/evoke-go/evoke/internal/engine"
)

// TestCrashRecovery is the crash test: the real `evoke demo`
// binary is killed with SIGKILL at least 20 times, each time at a random
// moment after it made progress, and restarted on the same file; in the end
// every saga completed, no aggregate applied a command twice, no event is
// missing or duplicated, and no instance stepped twice on one event.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	db := filepath.Join(t.TempDir(), "crash.db")
	crashTest(t, buildEvoke(t), db, nil, 10000, func() evokestore.Store {
		st, err := evokesqlite.Open(context.Background(), db, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// TestCrashRecoveryPostgres is the same crash test on PostgreSQL.
func TestCrashRecoveryPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	url, base, schema := pgSchema(t, "evoke_crash")
	// A killed run's partition leases hold the next run back until they
	// expire: keep them short.
	crashTest(t, buildEvoke(t), url, []string{"--lease", "300ms"}, 10000, func() evokestore.Store {
		st, err := evokepg.Open(context.Background(), base, &evokepg.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// crashTest kills `evoke demo --store store` at least 20 times mid-work,
// finishes the run, and verifies the store exactly.
func crashTest(t *testing.T, bin, store string, flags []string, orders int, open func() evokestore.Store) {
	// A torture run scales it up:
	// EVOKE_CRASH_ORDERS=20000 EVOKE_CRASH_KILLS=50 go test -run TestCrashRecovery ./internal/demo/
	minKills := envInt(t, "EVOKE_CRASH_KILLS", 20)
	orders = envInt(t, "EVOKE_CRASH_ORDERS", orders)
	child := func() *exec.Cmd {
		// --first-order makes the run resumable: a restart finishes the
		// same orders instead of placing new ones.
		args := append([]string{"demo", "--store", store, "--orders", fmt.Sprint(orders), "--first-order", "1", "--json"}, flags...)
		return exec.Command(bin, args...)
	}
	ctx := context.Background()
	watch := open() // the test's own view of the store
	defer watch.Close()
	head := func() int64 {
		h, err := watch.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var last int64
	kills := 0
	for kills < minKills {
		cmd := child()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// Wait until this run made progress, then kill it a random moment
		// later: during placing, stepping, dispatching or a commit.
		progressed, finished := false, false
		for !progressed && !finished {
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("the demo failed: %v", err)
				}
				finished = true
			case <-time.After(2 * time.Millisecond):
				if h := head(); h > last {
					progressed = true
				}
			}
		}
		if finished {
			// This machine is faster than the workload: add orders (the
			// resumed demo places the missing ones) and go on killing.
			orders *= 2
			t.Logf("the demo finished after %d kills; going on with %d orders", kills, orders)
			continue
		}
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		kills++
		last = head()
	}
	t.Logf("after %d kills: %d events in the log", kills, last)
	// A last run, not killed, finishes the work.
	out, err := child().Output()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	var sum demo.Summary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("final summary %q: %v", out, err)
	}
	if sum.Completed != orders {
		t.Fatalf("final run summary: %+v", sum)
	}
	verifyOrders(t, watch, orders)
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// verifyOrders checks a store after the order workload of orders 1..n:
// every event exactly once, every command took effect once, every saga
// completed with each step once, in order. It returns every order's history.
func verifyOrders(t *testing.T, st evokestore.Store, n int) map[string][]evokestore.HistoryRecord {
	t.Helper()
	ctx := context.Background()
	histories := make(map[string][]evokestore.HistoryRecord, n)

	// Every event exactly once: unique IDs, the expected count per type,
	// and at most one event per causing command.
	var all []evokestore.Event
	for after := int64(0); ; {
		evs, err := st.ReadLog(ctx, evokestore.LogQuery{After: after, Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Position
	}
	ids := map[string]bool{}
	byType := map[string]int{}
	byCause := map[string]int{}
	for i, e := range all {
		if ids[e.ID] {
			t.Errorf("event %s appears twice", e.ID)
		}
		ids[e.ID] = true
		if i > 0 && e.Position <= all[i-1].Position {
			t.Errorf("positions not increasing at %d", e.Position)
		}
		byType[e.Type]++
		if e.CausationID != "" {
			byCause[e.CausationID]++
		}
	}
	for _, typ := range []string{orderfulfillment.EventOrderPlaced, orderfulfillment.EventPaymentReceived, orderfulfillment.EventInventoryReserved, orderfulfillment.EventItemShipped} {
		if byType[typ] != n {
			t.Errorf("%d %s events, want %d", byType[typ], typ, n)
		}
	}
	if len(all) != 4*n {
		t.Errorf("%d events in the log, want %d", len(all), 4*n)
	}
	for cause, c := range byCause {
		if c > 1 {
			t.Errorf("command %s took effect %d times", cause, c)
		}
	}

	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Outcome records: only of commands executed from the outbox (an inline
	// command's events are its record; every command's outcome is checked
	// below).
	if stats.Commands > int64(3*n) || stats.Rejected != 0 || stats.Outbox != 0 {
		t.Errorf("command outcome records %d (rejected %d, outbox %d), want at most %d, none rejected or pending", stats.Commands, stats.Rejected, stats.Outbox, 3*n)
	}
	var cmds []evokestore.OutboxCommand

	// Every saga completed, each step once, in order.
	for k := 1; k <= n; k++ {
		id := demo.OrderID(k)
		insts, err := st.Instances(ctx, orderfulfillment.Name, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if len(insts) != 1 || insts[0].Status != evokestore.StatusCompleted || insts[0].Version != 4 {
			t.Fatalf("order %s: %+v, want completed at version 4", id, insts)
		}
		var s orderfulfillment.State
		if err := json.Unmarshal(insts[0].State, &s); err != nil || s.Status != orderfulfillment.StatusCompleted {
			t.Fatalf("order %s state %s: %v", id, insts[0].State, err)
		}
		hist, err := st.History(ctx, orderfulfillment.Name, id)
		if err != nil {
			t.Fatal(err)
		}
		histories[id] = hist
		if len(hist) != 4 {
			t.Fatalf("order %s: %d history records, want 4 steps", id, len(hist))
		}
		for v, h := range hist {
			if h.Kind != evokestore.KindStep || h.Version != int64(v+1) || (v > 0 && h.Position <= hist[v-1].Position) {
				t.Fatalf("order %s: history %d = %+v", id, v, h)
			}
			if v < 3 {
				cmd := evoke.CommandID(orderfulfillment.Name, id, evoke.Event{ID: h.EventID, Position: h.Position}, 0)
				if byCause[cmd] != 1 {
					t.Errorf("order %s: command %s caused %d events, want 1", id, cmd, byCause[cmd])
				}
				cmds = append(cmds, evokestore.OutboxCommand{ID: cmd, ProcessManager: orderfulfillment.Name, InstanceID: id})
			}
		}
	}
	// Every command's outcome, recorded or found by its events: accepted,
	// with its one event.
	for lo := 0; lo < len(cmds); lo += 500 {
		part := cmds[lo:min(lo+500, len(cmds))]
		outs, err := engine.Outcomes(ctx, st, part)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range part {
			if o, ok := outs[c.ID]; !ok || o.Status != evokestore.OutcomeAccepted || o.Events != 1 {
				t.Fatalf("command %s of %s: outcome %+v (found %v), want accepted with 1 event", c.ID, c.InstanceID, o, ok)
			}
		}
	}
	return histories
}
