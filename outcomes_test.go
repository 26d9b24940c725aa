package evoke_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/internal/engine"
)

// outc issues one "do" command per Go event, to the multi aggregate, whose
// payload says what the aggregate does with it.
type outc struct{}

type outcData struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // "two" events, "none", or "reject"
}

func (outc) Name() string                                                     { return "outc" }
func (outc) InterestedIn() []string                                           { return []string{"Go"} }
func (outc) Strict() bool                                                     { return false }
func (outc) Apply(s struct{}, _ evoke.Event) struct{}                         { return s }
func (outc) Correlate(e evoke.Event) evoke.Correlation                        { return evoke.ByField(e, "id", evoke.Start) }
func (outc) Completed(struct{}) bool                                          { return false }
func (outc) Phase(struct{}) string                                            { return "" }
func (outc) Compensate(struct{}, evoke.FailedCommand) ([]evoke.Command, bool) { return nil, true }

func (outc) Handle(s struct{}, e evoke.Event) (struct{}, []evoke.Command, error) {
	if e.Type != "Go" {
		return s, nil, nil
	}
	d, err := evoke.Decode[outcData](e)
	if err != nil {
		return s, nil, err
	}
	return s, []evoke.Command{evoke.NewCommand("do", "multi", d.ID, d)}, nil
}

type multi struct{}

func (multi) Apply(s struct{}, _ evoke.Event) struct{} { return s }

func (multi) Execute(_ struct{}, c evoke.Command) ([]evoke.Event, error) {
	var d outcData
	if err := c.Decode(&d); err != nil {
		return nil, err
	}
	switch d.Kind {
	case "two":
		return []evoke.Event{evoke.NewEvent("Did", d), evoke.NewEvent("DidMore", d)}, nil
	case "reject":
		return nil, errors.New("refused on purpose")
	}
	return nil, nil
}

// A command executed inline, with the step that issued it, records its
// outcome in its events: it has an outcome record only when it appended
// nothing. Its outcome is still found by its ID (the inspection tools'
// engine.Outcomes), and Runtime.Dispatch of the same ID is a duplicate
// that runs nothing again.
func TestInlineOutcomesAreTheirEvents(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	rt := newRuntime(t, st, nil)
	if err := evoke.RegisterAggregate(rt, "multi", multi{}); err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterProcessManager(rt, outc{}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	cmds := map[string]evokestore.OutboxCommand{}
	for _, kind := range []string{"two", "none", "reject"} {
		ev := appendEvent(t, rt, "go-"+kind, "Go", outcData{ID: kind, Kind: kind})
		cmds[kind] = evokestore.OutboxCommand{ID: evoke.CommandID("outc", kind, ev, 0), Type: "do", AggregateType: "multi", AggregateID: kind,
			ProcessManager: "outc", InstanceID: kind}
	}
	evoketest.WaitIdle(t, rt, 0)
	if s := rt.Stats(); s.Dispatched != 3 || s.InlineFallbacks != 0 {
		t.Fatalf("want the 3 commands executed inline: %+v", s)
	}

	ids := []string{cmds["two"].ID, cmds["none"].ID, cmds["reject"].ID}
	recorded, err := st.CommandOutcomes(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 1 || recorded[0].CommandID != cmds["none"].ID {
		t.Fatalf("outcome records %+v, want only the command that appended nothing", recorded)
	}

	outs, err := engine.Outcomes(ctx, st, []evokestore.OutboxCommand{cmds["two"], cmds["none"], cmds["reject"], {ID: "never-issued"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 {
		t.Errorf("%d outcomes, want 3 (none for a command never executed): %+v", len(outs), outs)
	}
	if o := outs[cmds["two"].ID]; o.Status != evokestore.OutcomeAccepted || o.Events != 2 || o.Type != "do" || o.AggregateID != "two" ||
		o.ProcessManager != "outc" || o.InstanceID != "two" || o.RecordedAt.IsZero() {
		t.Errorf("two events: %+v", o)
	}
	if o := outs[cmds["none"].ID]; o.Status != evokestore.OutcomeAccepted || o.Events != 0 {
		t.Errorf("no event: %+v", o)
	}
	if o := outs[cmds["reject"].ID]; o.Status != evokestore.OutcomeRejected || o.Error != "refused on purpose" || o.Events != 0 || o.RecordedAt.IsZero() {
		t.Errorf("rejected: %+v", o)
	}

	// A store without evokestore.EventsReader: found through the streams.
	plain, err := engine.Outcomes(ctx, struct{ evokestore.Querier }{st}, []evokestore.OutboxCommand{cmds["two"], cmds["none"], cmds["reject"], {ID: "never-issued"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plain, outs) {
		t.Errorf("without EventsReader:\n%+v\nwant\n%+v", plain, outs)
	}

	// The same through the runtime, by ID alone.
	byID, err := rt.CommandOutcomes(ctx, cmds["two"].ID, cmds["reject"].ID, "never-issued")
	if err != nil {
		t.Fatal(err)
	}
	if o := byID[cmds["two"].ID]; len(byID) != 2 || o.Status != evokestore.OutcomeAccepted || o.Events != 2 ||
		byID[cmds["reject"].ID].Error != "refused on purpose" {
		t.Errorf("Runtime.CommandOutcomes: %+v", byID)
	}

	// Dispatched again by ID: nothing runs twice.
	res, err := rt.Dispatch(ctx, evoke.Command{ID: cmds["two"].ID, Type: "do", AggregateType: "multi", AggregateID: "two", Payload: []byte(`{"id":"two","kind":"two"}`)})
	if err != nil || !res.Duplicate || len(res.Events) != 0 {
		t.Errorf("Dispatch of an inline command's ID: %+v %v, want a duplicate", res, err)
	}
	if evs, _ := st.ReadStream(ctx, evoke.StreamID("multi", "two"), 0); len(evs) != 2 {
		t.Errorf("the aggregate holds %d events, want the 2 of the one execution", len(evs))
	}
	res, err = rt.Dispatch(ctx, evoke.Command{ID: cmds["reject"].ID, Type: "do", AggregateType: "multi", AggregateID: "reject", Payload: []byte(`{"id":"reject","kind":"two"}`)})
	var rej *evoke.RejectedError
	if !res.Duplicate || !errors.As(err, &rej) || rej.Reason != "refused on purpose" {
		t.Errorf("Dispatch of a rejected inline command's ID: %+v %v, want a duplicate rejection", res, err)
	}
	if evs, _ := st.ReadStream(ctx, evoke.StreamID("multi", "reject"), 0); len(evs) != 0 {
		t.Errorf("the rejecting aggregate holds %d events, want none", len(evs))
	}
}
