// Package remotetest holds a process manager and helpers for the tests of
// sources and sinks: its commands go to an aggregate type that lives
// elsewhere, and its events may come from an external source.
package remotetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// Names the process manager uses.
const (
	Name      = "remote_order"
	Aggregate = "remote"
	// EventOrdered starts an instance, which sends CommandDo.
	EventOrdered = "Ordered"
	// EventTick adds its N to the instance's Sum, once per event.
	EventTick = "Tick"
	// EventDone completes the instance.
	EventDone = "Done"
	// CommandDo asks the remote side to do the order's work; its Verdict
	// says how a test receiver answers.
	CommandDo = "do"
	// CommandUndo is the compensation of a rejected CommandDo.
	CommandUndo = "undo"
)

// Verdicts a test receiver answers with.
const (
	Accept = "accept"
	Reject = "reject"
	Fail   = "fail"
)

// Data is the data of every event of the process manager, and the
// payload of its commands.
type Data struct {
	ID      string `json:"id"`
	Verdict string `json:"verdict,omitempty"`
	N       int    `json:"n,omitempty"`
}

// State is an instance's state.
type State struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Ticks  int    `json:"ticks"`
	Sum    int    `json:"sum"`
}

// PM is the process manager.
type PM struct{}

// Name names it.
func (PM) Name() string { return Name }

// InterestedIn lists its events.
func (PM) InterestedIn() []string { return []string{EventOrdered, EventTick, EventDone} }

// Correlate routes by the id field.
func (PM) Correlate(e evoke.Event) evoke.Correlation {
	if e.Type == EventOrdered {
		return evoke.ByField(e, "id", evoke.Start)
	}
	return evoke.ByField(e, "id", evoke.Continue)
}

// Apply counts ticks.
func (PM) Apply(s State, e evoke.Event) State {
	var d Data
	_ = e.Decode(&d)
	switch e.Type {
	case EventOrdered:
		s.ID, s.Status = d.ID, "ordered"
	case EventTick:
		s.Ticks++
		s.Sum += d.N
	case EventDone:
		s.Status = "done"
	}
	if _, ok := evoke.Rejected(e); ok {
		s.Status = "rejected"
	}
	return s
}

// Handle sends CommandDo on EventOrdered.
func (PM) Handle(s State, e evoke.Event) (State, []evoke.Command, error) {
	if e.Type != EventOrdered {
		return s, nil, nil
	}
	var d Data
	if err := e.Decode(&d); err != nil {
		return s, nil, err
	}
	return s, []evoke.Command{evoke.NewCommand(CommandDo, Aggregate, d.ID, d)}, nil
}

// Compensate undoes a rejected CommandDo.
func (PM) Compensate(s State, failed evoke.FailedCommand) ([]evoke.Command, bool) {
	return []evoke.Command{evoke.NewCommand(CommandUndo, Aggregate, s.ID, Data{ID: s.ID, Verdict: Accept})}, true
}

// Completed is true once done or rejected.
func (PM) Completed(s State) bool { return s.Status == "done" || s.Status == "rejected" }

// Status is the state's status.
func (PM) Phase(s State) string { return s.Status }

// Receiver answers commands by their verdict and remembers what it got.
type Receiver struct {
	mu  sync.Mutex
	got []evoke.Command
}

// Answer records cmd and returns nil, a rejection made by evoke.Reject,
// or a transient error, by cmd's verdict.
func (r *Receiver) Answer(cmd evoke.Command) error {
	r.mu.Lock()
	r.got = append(r.got, cmd)
	r.mu.Unlock()
	var d Data
	if err := cmd.Decode(&d); err != nil {
		return err
	}
	switch d.Verdict {
	case Reject:
		return evoke.Reject("no stock for " + d.ID)
	case Fail:
		return errors.New("service unavailable")
	}
	return nil
}

// Got returns the commands received, in order.
func (r *Receiver) Got() []evoke.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]evoke.Command(nil), r.got...)
}

// StartRuntime starts a runtime on st with PM and a sink that accepts every
// command of Aggregate: the runtime a source test ingests for. It stops
// when the test ends.
func StartRuntime(t testing.TB, st evokestore.Store) *evoke.Runtime {
	t.Helper()
	rt, err := evoke.New(st, Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterSink(rt, Aggregate, evoke.SinkFunc(func(context.Context, evoke.Command) error { return nil })); err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterProcessManager(rt, PM{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background()) })
	return rt
}

// Config is a runtime configuration for quick tests: MaxAttempts 3 and
// short backoffs.
func Config() *evoke.Config {
	return &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 20 * time.Millisecond, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 3}
}

// WaitStatus waits until the instance id has status want.
func WaitStatus(t testing.TB, st evokestore.Store, id string, want evokestore.InstanceStatus) evokestore.Instance {
	t.Helper()
	var in evokestore.Instance
	evoketest.Eventually(t, 30*time.Second, fmt.Sprintf("instance %s %s", id, want), func() bool {
		insts, err := st.Instances(context.Background(), Name, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if len(insts) == 1 {
			in = insts[0]
		}
		return len(insts) == 1 && in.Status == want
	})
	return in
}

// Outcome waits for the recorded outcome of the command that the instance
// id sent on its EventOrdered event.
func Outcome(t testing.TB, rt *evoke.Runtime, commandID string) evokestore.CommandOutcome {
	t.Helper()
	var o evokestore.CommandOutcome
	evoketest.Eventually(t, 30*time.Second, "outcome of "+commandID, func() bool {
		m, err := rt.CommandOutcomes(context.Background(), commandID)
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		o, ok = m[commandID]
		return ok
	})
	return o
}

// RunSink checks a sink end to end on rt (unstarted, on st, with the sink
// registered for Aggregate and PM not yet registered): an accepted
// command is recorded accepted and the instance completes on EventDone;
// a rejected one compensates (CommandUndo goes to the sink) and completes
// rejected; a transient failure parks the instance. got returns the
// commands the receiver behind the sink received.
func RunSink(t *testing.T, rt *evoke.Runtime, st evokestore.Store, got func() []evoke.Command) {
	t.Helper()
	ctx := context.Background()
	if err := evoke.RegisterProcessManager(rt, PM{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background()) })
	order := func(id, verdict string) evoke.Event {
		evs, err := rt.Append(ctx, "order-"+id, evoke.AnyVersion, evoke.NewEvent(EventOrdered, Data{ID: id, Verdict: verdict}))
		if err != nil {
			t.Fatal(err)
		}
		return evs[0]
	}
	ok, no, down := order("a", Accept), order("r", Reject), order("f", Fail)

	okID := evoke.CommandID(Name, "a", ok, 0)
	if o := Outcome(t, rt, okID); o.Status != evokestore.OutcomeAccepted {
		t.Fatalf("accepted command: outcome %+v", o)
	}
	if _, err := rt.Append(ctx, "order-a", evoke.AnyVersion, evoke.NewEvent(EventDone, Data{ID: "a"})); err != nil {
		t.Fatal(err)
	}
	WaitStatus(t, st, "a", evokestore.StatusCompleted)

	noID := evoke.CommandID(Name, "r", no, 0)
	if o := Outcome(t, rt, noID); o.Status != evokestore.OutcomeRejected || o.Error != "no stock for r" {
		t.Fatalf("rejected command: outcome %+v", o)
	}
	if in := WaitStatus(t, st, "r", evokestore.StatusCompleted); in.Phase != "rejected" {
		t.Fatalf("rejected instance: %+v", in)
	}

	in := WaitStatus(t, st, "f", evokestore.StatusParked)
	downID := evoke.CommandID(Name, "f", down, 0)
	if m, _ := rt.CommandOutcomes(ctx, downID); len(m) != 0 {
		t.Fatalf("failing command has an outcome: %+v", m)
	}
	t.Logf("parked: %s", in.LastError)

	evoketest.Eventually(t, 30*time.Second, "the compensation sent", func() bool {
		for _, c := range got() {
			if c.Type == CommandUndo && c.AggregateID == "r" {
				return true
			}
		}
		return false
	})
	sent := map[string]int{}
	for _, c := range got() {
		sent[c.ID]++
	}
	if sent[okID] != 1 || sent[noID] != 1 || sent[downID] < 3 {
		t.Fatalf("sent %v; want %s and %s once, %s at least 3 times", sent, okID, noID, downID)
	}
}
