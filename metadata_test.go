package evoke_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// tenancy is a process manager of two hops: Opened asks the hopper
// aggregate for hop 1 (setting "user" over the event's and removing
// "drop"), the first Hopped for hop 2 (with no values of its own), the
// second completes it. An Opened with Reject asks for a command the
// hopper rejects: Compensate answers it with hop 9, and the $rejected
// event's tenant is kept in the state.
type tenancy struct{}

type tenancyState struct {
	Status         string `json:"status"`
	RejectedTenant string `json:"rejected_tenant,omitempty"`
}

type hopData struct {
	ID     string `json:"id"`
	Hop    int    `json:"hop,omitempty"`
	Reject bool   `json:"reject,omitempty"`
}

func (tenancy) Name() string                                     { return "tenancy" }
func (tenancy) InterestedIn() []string                           { return []string{"Opened", "Hopped"} }
func (tenancy) Apply(s tenancyState, _ evoke.Event) tenancyState { return s }
func (tenancy) Completed(s tenancyState) bool                    { return s.Status == "done" }

func (tenancy) Correlate(e evoke.Event) evoke.Correlation {
	if e.Type == "Opened" {
		return evoke.ByField(e, "id", evoke.Start)
	}
	return evoke.ByField(e, "id", evoke.Continue)
}

func (tenancy) Handle(s tenancyState, e evoke.Event) (tenancyState, []evoke.Command, error) {
	if e.Type == evoke.CommandRejectedEvent {
		s.Status, s.RejectedTenant = "done", e.Metadata.Values["tenant"]
		return s, nil, nil
	}
	var d hopData
	if err := e.Decode(&d); err != nil {
		return s, nil, err
	}
	switch {
	case e.Type == "Opened" && d.Reject:
		return s, []evoke.Command{evoke.NewCommand("refuse", "hopper", d.ID, hopData{ID: d.ID})}, nil
	case e.Type == "Opened":
		c := evoke.NewCommand("hop", "hopper", d.ID, hopData{ID: d.ID, Hop: 1})
		c.Metadata.Values = map[string]string{"user": "bob", "drop": ""}
		return s, []evoke.Command{c}, nil
	case d.Hop == 1:
		return s, []evoke.Command{evoke.NewCommand("hop", "hopper", d.ID, hopData{ID: d.ID, Hop: 2})}, nil
	}
	s.Status = "done"
	return s, nil, nil
}

// Compensate answers a rejected command with hop 9, which carries the
// rejected command's values.
func (tenancy) Compensate(_ tenancyState, f evoke.FailedCommand) ([]evoke.Command, bool) {
	id := f.Command.AggregateID
	return []evoke.Command{evoke.NewCommand("hop", "hopper", id, hopData{ID: id, Hop: 9})}, true
}

// hopper appends Hopped for a hop, with its own "stage" value; it rejects
// "refuse".
type hopper struct{}

func (hopper) Execute(_ struct{}, c evoke.Command) ([]evoke.Event, error) {
	var d hopData
	if err := c.Decode(&d); err != nil {
		return nil, err
	}
	if c.Type == "refuse" {
		return nil, fmt.Errorf("refused")
	}
	e := evoke.NewEvent("Hopped", d)
	e.Metadata.Values = map[string]string{"stage": fmt.Sprintf("hop-%d", d.Hop)}
	return []evoke.Event{e}, nil
}

func (hopper) Apply(s struct{}, _ evoke.Event) struct{} { return s }

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// A tenant and a trace context set on the event that starts a saga reach
// the aggregate's events two steps later, on the outbox path, inline and
// with chained steps; a command's own values are set over the ones it
// carries (and "" removes one), an aggregate's event's over its command's;
// a rejected command's values reach the $rejected event and Compensate's
// commands; a dispatched command's reach its events.
func TestMetadataFollowsTheWork(t *testing.T) {
	t.Parallel()
	modes := []struct {
		name  string
		queue bool
		chain int
	}{{"outbox", true, 0}, {"inline", false, -1}, {"chained", false, 8}}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st evokestore.Store) {
				ctx := context.Background()
				cfg := quietConfig()
				cfg.QueueCommands, cfg.ChainDepth = m.queue, m.chain
				rt := newRuntime(t, st, cfg)
				if err := evoke.RegisterAggregate(rt, "hopper", hopper{}); err != nil {
					t.Fatal(err)
				}
				if err := evoke.RegisterProcessManager(rt, tenancy{}, nil); err != nil {
					t.Fatal(err)
				}
				start(t, rt)
				opened := map[string]string{"tenant": "acme", "user": "alice", "drop": "x", evoke.TraceParentKey: testTraceParent}
				var batch []evoke.StreamAppend
				for _, d := range []hopData{{ID: "t1"}, {ID: "t2", Reject: true}} {
					e := evoke.NewEvent("Opened", d)
					e.Metadata.Values = maps.Clone(opened)
					batch = append(batch, evoke.StreamAppend{StreamID: "open-" + d.ID, ExpectedVersion: evoke.NoStream, Events: []evoke.Event{e}})
				}
				if _, err := rt.AppendBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
				evoketest.Eventually(t, 20*time.Second, "both sagas complete", func() bool { return rt.Stats().Completed == 2 })

				evs := readStream(t, st, evoke.StreamID("hopper", "t1"))
				if len(evs) != 2 {
					t.Fatalf("%d hopper events, want 2", len(evs))
				}
				for i, e := range evs {
					want := map[string]string{"tenant": "acme", "user": "bob", evoke.TraceParentKey: testTraceParent, "stage": fmt.Sprintf("hop-%d", i+1)}
					if got := values(t, e); !maps.Equal(got, want) {
						t.Fatalf("hop %d event values %v, want %v", i+1, got, want)
					}
				}
				inst, _ := instance(t, st, "tenancy", "t2")
				var s tenancyState
				if err := json.Unmarshal(inst.State, &s); err != nil {
					t.Fatal(err)
				}
				if s.RejectedTenant != "acme" {
					t.Fatalf("$rejected event tenant %q, want acme", s.RejectedTenant)
				}
				evoketest.Eventually(t, 20*time.Second, "the compensation's event", func() bool {
					return len(readStream(t, st, evoke.StreamID("hopper", "t2"))) == 1
				})
				evs = readStream(t, st, evoke.StreamID("hopper", "t2"))
				if want := map[string]string{"tenant": "acme", "user": "alice", "drop": "x", evoke.TraceParentKey: testTraceParent, "stage": "hop-9"}; !maps.Equal(values(t, evs[0]), want) {
					t.Fatalf("compensation's event values %v, want %v", values(t, evs[0]), want)
				}

				// A command dispatched from outside: its events carry its values.
				c := evoke.NewCommand("hop", "hopper", "t3", hopData{ID: "t3", Hop: 7})
				c.Metadata.Values = map[string]string{"tenant": "umbrella", "stage": "outside"}
				if _, err := rt.Dispatch(ctx, c); err != nil {
					t.Fatal(err)
				}
				evs = readStream(t, st, evoke.StreamID("hopper", "t3"))
				if want := map[string]string{"tenant": "umbrella", "stage": "hop-7"}; len(evs) != 1 || !maps.Equal(values(t, evs[0]), want) {
					t.Fatalf("dispatched command's events %+v, want one with values %v", evs, want)
				}
			})
		})
	}
}

// readStream returns the events of stream in st.
func readStream(t *testing.T, st evokestore.Store, stream string) []evokestore.Event {
	t.Helper()
	all, err := st.ReadLog(context.Background(), evokestore.LogQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var evs []evokestore.Event
	for _, e := range all {
		if e.StreamID == stream {
			evs = append(evs, e)
		}
	}
	return evs
}

// values decodes a stored event's metadata values.
func values(t *testing.T, e evokestore.Event) map[string]string {
	t.Helper()
	var v map[string]string
	if len(e.Values) > 0 {
		if err := json.Unmarshal(e.Values, &v); err != nil {
			t.Fatal(err)
		}
	}
	return v
}
