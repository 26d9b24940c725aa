package evoke_test

import (
	"context"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evoketest"
)

// Tombstones and completed history are purged after the
// retention; running instances and recent tombstones stay.
func TestRetentionPurgesOldTombstones(t *testing.T) {
	t.Parallel()
	clock := evoketest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := quietConfig()
	cfg.Clock = clock
	cfg.Retention = 24 * time.Hour
	cfg.PurgeInterval = time.Hour
	// From the outbox, so that every command has an outcome record (one
	// executed inline with its step has none: its events are its record).
	cfg.QueueCommands = true
	st, rt := startRecorders(t, cfg, recorder{name: "rec", done: "Done"})
	ctx := context.Background()
	appendEvent(t, rt, "s", "Done", recData{ID: "old"})
	appendEvent(t, rt, "s", "Cont", recData{ID: "running"})
	evoketest.WaitIdle(t, rt, 0)
	clock.Advance(20 * time.Hour)
	appendEvent(t, rt, "s", "Done", recData{ID: "recent"})
	evoketest.WaitIdle(t, rt, 0)

	clock.Advance(5 * time.Hour) // "old" is 25h old, "recent" 5h
	if err := rt.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := instance(t, st, "rec", "old"); ok {
		t.Error("a tombstone older than the retention was kept")
	}
	if h, _ := st.History(ctx, "rec", "old"); len(h) != 0 {
		t.Errorf("purged instance kept %d history records", len(h))
	}
	for _, id := range []string{"running", "recent"} {
		if _, ok := instance(t, st, "rec", id); !ok {
			t.Errorf("%s was purged", id)
		}
	}
	if got := rt.Stats().Purged; got != 1 {
		t.Errorf("Purged = %d, want 1", got)
	}
	stats, _ := st.Stats(ctx)
	// Command records go by age alone: only the one recorded 5h ago stays.
	if stats.Commands != 1 {
		t.Errorf("%d command outcomes left, want the 1 recorded within the retention", stats.Commands)
	}
}
