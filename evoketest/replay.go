package evoketest

import (
	"context"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
)

// Replay replays the recorded steps of pm's instances in st through pm's
// current code (evoke.Replay) and fails the test with the report when an
// instance's commands, statuses, completion or final state differ. It returns the
// report, so that a test that expects differences can check them with
// evoke.Replay's report instead.
func Replay[S any](tb testing.TB, st evokestore.Querier, pm evoke.ProcessManager[S]) evoke.ReplayReport {
	tb.Helper()
	rep, err := evoke.Replay(context.Background(), st, pm, nil)
	if err != nil {
		tb.Fatalf("evoketest: %v", err)
	}
	if rep.Differ() {
		tb.Errorf("evoketest: the replay of %s differs from its record:\n%s", pm.Name(), rep)
	}
	return rep
}
