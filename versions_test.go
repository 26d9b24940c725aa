package evoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// tallyV1 counts Tick events per tally; its state is at version 1.
type tallyV1 struct{}

type tallyState1 struct {
	Count int `json:"count"`
}

func (tallyV1) Name() string           { return "tally" }
func (tallyV1) InterestedIn() []string { return []string{"Tick", "Close"} }
func (tallyV1) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "tally", evoke.Continue)
}
func (tallyV1) Apply(s tallyState1, e evoke.Event) tallyState1 { s.Count++; return s }
func (tallyV1) Handle(s tallyState1, e evoke.Event) (tallyState1, []evoke.Command, error) {
	return s, nil, nil
}

// tallyV2 renames the count to total and records who closed the tally: its
// state is at version 2, with an upcaster from version 1 unless noUpcaster.
type tallyV2 struct{ noUpcaster bool }

type tallyState2 struct {
	Total  int    `json:"total"`
	Closed bool   `json:"closed"`
	Status string `json:"status"`
}

func (tallyV2) Name() string           { return "tally" }
func (tallyV2) InterestedIn() []string { return []string{"Tick", "Close"} }
func (tallyV2) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "tally", evoke.Continue)
}
func (tallyV2) Apply(s tallyState2, e evoke.Event) tallyState2 {
	switch e.Type {
	case "Tick":
		s.Total++
	case "Close":
		s.Closed = true
	}
	return s
}
func (tallyV2) Handle(s tallyState2, e evoke.Event) (tallyState2, []evoke.Command, error) {
	return s, nil, nil
}
func (tallyV2) Completed(s tallyState2) bool { return s.Closed }
func (tallyV2) StateVersion() int            { return 2 }
func (t tallyV2) Upcasters() map[int]evoke.Upcaster {
	if t.noUpcaster {
		return nil
	}
	return map[int]evoke.Upcaster{1: func(old json.RawMessage) (json.RawMessage, error) {
		var v1 tallyState1
		if err := json.Unmarshal(old, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(tallyState2{Total: v1.Count, Status: "upcast"})
	}}
}

// runTally starts a runtime with pm on st, appends the tally events and
// waits until it is idle, then stops it.
func runTally[S any](t *testing.T, st evokestore.Store, pm evoke.ProcessManager[S], events ...[2]string) *evoke.Runtime {
	t.Helper()
	cfg := quietConfig()
	cfg.Partitions = 1
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterProcessManager(rt, pm, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		appendEvent(t, rt, "tally-"+e[1], e[0], map[string]string{"tally": e[1]})
	}
	evoketest.WaitIdle(t, rt, 30*time.Second)
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestVersionedStateIsUpcastAndWrittenBack(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		runTally(t, st, tallyV1{}, [2]string{"Tick", "a"}, [2]string{"Tick", "a"}, [2]string{"Tick", "b"})
		in, _ := instance(t, st, "tally", "a")
		if string(in.State) != `{"count":2}` {
			t.Fatalf("state at version 1 is stored as %s, want plain JSON", in.State)
		}

		rt := runTally(t, st, tallyV2{}, [2]string{"Tick", "a"}, [2]string{"Close", "a"}, [2]string{"Close", "b"})
		for id, total := range map[string]int{"a": 3, "b": 1} {
			got, err := evoke.ReadInstance(ctx, rt, tallyV2{}, id)
			if err != nil {
				t.Fatal(err)
			}
			want := tallyState2{Total: total, Closed: true, Status: "upcast"}
			if got.State != want || got.Status != evokestore.StatusCompleted {
				t.Errorf("tally %s: %+v, %s; want %+v, completed", id, got.State, got.Status, want)
			}
			in, _ := instance(t, st, "tally", id)
			if !strings.HasPrefix(string(in.State), `{"$version":2,"$state":{`) {
				t.Errorf("tally %s is stored as %s, want it at version 2", id, in.State)
			}
		}
	})
}

func TestStateWithoutUpcasterParksAtOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		runTally(t, st, tallyV1{}, [2]string{"Tick", "a"})
		rt := runTally(t, st, tallyV2{noUpcaster: true}, [2]string{"Tick", "a"}, [2]string{"Close", "a"})
		in, _ := instance(t, st, "tally", "a")
		if in.Status != evokestore.StatusParked || in.Attempts != 1 {
			t.Fatalf("instance is %s after %d attempts, want parked after 1", in.Status, in.Attempts)
		}
		const want = "state of tally at version 1 (code at version 2): no upcaster from version 1"
		if !strings.Contains(in.LastError, want) {
			t.Errorf("last error %q, want it to contain %q", in.LastError, want)
		}
		got, err := evoke.ReadInstance(ctx, rt, tallyV2{noUpcaster: true}, "a")
		var se *evoke.StateError
		if !errors.As(err, &se) || se.Version != 1 || got.StateErr == nil || got.Status != evokestore.StatusParked {
			t.Errorf("ReadInstance: %+v, %v; want the parked instance and a *StateError at version 1", got, err)
		}
		held, err := rt.HeldEvents(ctx, "tally", "a")
		if err != nil || len(held) != 2 || held[0].Event.Type != "Tick" || held[1].Event.Type != "Close" {
			t.Errorf("held events %+v, %v; want Tick and Close", held, err)
		}
	})
}

func TestStateNewerThanTheCodeParks(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	runTally(t, st, tallyV2{}, [2]string{"Tick", "a"})
	runTally(t, st, tallyV1{}, [2]string{"Tick", "a"})
	in, _ := instance(t, st, "tally", "a")
	if in.Status != evokestore.StatusParked || !strings.Contains(in.LastError, "stored at a version newer than the code") {
		t.Errorf("instance %s: %q; want parked for a version newer than the code", in.Status, in.LastError)
	}
}

func TestUndecodableStateParksAtOnce(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	runTally(t, st, tallyV1{}, [2]string{"Tick", "a"})
	// Code whose state no longer decodes from the stored JSON.
	rt := runTally(t, st, tallyStrings{}, [2]string{"Tick", "a"})
	in, _ := instance(t, st, "tally", "a")
	if in.Status != evokestore.StatusParked || in.Attempts != 1 || !strings.Contains(in.LastError, "decode: json: cannot unmarshal number") {
		t.Errorf("instance %s after %d attempts: %q; want parked at once for a state that does not decode", in.Status, in.Attempts, in.LastError)
	}
	list, err := evoke.ListInstances(context.Background(), rt, tallyStrings{}, &evoke.ListOpts{Status: evokestore.StatusParked})
	if err != nil || len(list) != 1 || list[0].ID != "a" || list[0].StateErr == nil {
		t.Errorf("ListInstances parked: %+v, %v; want a with its StateErr", list, err)
	}
}

// tallyStrings keeps its count as a string, which a stored number does not
// decode into.
type tallyStrings struct{}

func (tallyStrings) Name() string           { return "tally" }
func (tallyStrings) InterestedIn() []string { return []string{"Tick", "Close"} }
func (tallyStrings) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "tally", evoke.Continue)
}
func (tallyStrings) Apply(s struct {
	Count string `json:"count"`
}, e evoke.Event) struct {
	Count string `json:"count"`
} {
	return s
}
func (tallyStrings) Handle(s struct {
	Count string `json:"count"`
}, e evoke.Event) (struct {
	Count string `json:"count"`
}, []evoke.Command, error) {
	return s, nil, nil
}

func TestStateVersionBelowOneIsRefused(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, openStore(t), nil)
	err := evoke.RegisterProcessManager(rt, tallyV0{}, nil)
	if !errors.Is(err, evoke.ErrInvalid) || !strings.Contains(err.Error(), "StateVersion 0") {
		t.Errorf("RegisterProcessManager: %v; want ErrInvalid naming StateVersion 0", err)
	}
}

type tallyV0 struct{ tallyV1 }

func (tallyV0) StateVersion() int                 { return 0 }
func (tallyV0) Upcasters() map[int]evoke.Upcaster { return nil }
