package evoke_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// tallyWithStatus reports a phase the recorded steps did not.
type tallyWithStatus struct{ tallyV2 }

func (tallyWithStatus) Phase(s tallyState2) string {
	if s.Closed {
		return "closed"
	}
	return "open"
}

// tallyDoneEarly completes a tally at its first tick.
type tallyDoneEarly struct{ tallyV2 }

func (tallyDoneEarly) Completed(s tallyState2) bool { return s.Total > 0 }

func TestReplayReportsAnotherCompletion(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	runTally(t, st, tallyV2{}, [2]string{"Tick", "a"}, [2]string{"Tick", "b"}, [2]string{"Close", "a"})
	rep, err := evoke.Replay(context.Background(), st, tallyDoneEarly{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a 2 Close completion", "b 1 Tick completion"}
	var got []string
	for _, d := range rep.Differences {
		got = append(got, fmt.Sprintf("%s %d %s %s", d.InstanceID, d.Step, d.EventType, d.What))
	}
	if !slices.Equal(got, want) {
		t.Errorf("differences %q, want %q:\n%s", got, want, rep)
	}
}

func TestReplayOnEachStore(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		runTally(t, st, tallyV2{}, [2]string{"Tick", "a"}, [2]string{"Tick", "b"}, [2]string{"Close", "a"})
		rep := evoketest.Replay(t, st, tallyV2{})
		if rep.Instances != 2 || rep.Steps != 3 {
			t.Errorf("replayed %d instances, %d steps; want 2 and 3", rep.Instances, rep.Steps)
		}
		// A store that does not read events by ID: by position.
		rep = evoketest.Replay(t, struct{ evokestore.Querier }{st}, tallyV2{})
		if rep.Instances != 2 || rep.Steps != 3 {
			t.Errorf("replayed %d instances, %d steps by position; want 2 and 3", rep.Instances, rep.Steps)
		}

		rep, err := evoke.Replay(context.Background(), st, tallyWithStatus{}, &evoke.ReplayOpts{Instances: []string{"b"}})
		if err != nil {
			t.Fatal(err)
		}
		want := evoke.ReplayDifference{InstanceID: "b", Step: 1, EventType: "Tick", What: "phase", Recorded: `""`, Replayed: `"open"`}
		if len(rep.Differences) != 1 || rep.Instances != 1 {
			t.Fatalf("report %s, want b to differ", rep)
		}
		if got := rep.Differences[0]; got.Position == 0 {
			t.Errorf("difference %+v has no position", got)
		} else if got.Position = 0; got != want {
			t.Errorf("difference %+v, want %+v", got, want)
		}
	})
}
