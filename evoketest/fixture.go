package evoketest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
)

// FixtureOpts configures a Fixture; nil means the defaults.
type FixtureOpts struct {
	// Aggregates receive the process manager's commands, made with
	// NewAggregate (the real aggregate: its events and rejections flow
	// back) or StubAggregate (every command accepted, no events). A command
	// to an aggregate type not listed is rejected by the runtime as in
	// production, and the fixture fails the test saying which type is
	// missing. Defaults to none.
	Aggregates []Aggregate
	// Start is the virtual clock's time when the fixture starts. Defaults
	// to 2025-01-01T00:00:00Z.
	Start time.Time
}

// Fixture tests one process manager in isolation, given/when/then: given
// events (or an instance's state, GivenState), when an event arrives or
// time passes, then the commands it
// issued, its state, status, outcome and deadlines are as expected.
//
// A Fixture runs a real evoke.Runtime on a SQLite file in the test's
// temporary directory, with a virtual Clock: Given and When append events
// and wait until the runtime is idle, AdvanceTime moves the clock and waits
// likewise, and the Then methods read the results back from the store. The
// events are stepped by the runtime's own code, so a fixture test and
// production cannot disagree. The Then methods check the instance the last
// Given or When event correlated to (or GivenState named) (by the process manager's Correlate)
// and the commands issued since the last When or AdvanceTime, in the order
// the instance's steps issued them, cascades through the aggregates and
// compensations included. They report a mismatch with Errorf and return f,
// so that checks chain; a failure of the fixture itself is reported with
// Fatalf.
type Fixture[S any] struct {
	tb    testing.TB
	pm    evoke.ProcessManager[S]
	rt    *evoke.Runtime
	store *evokesqlite.Store
	clock *Clock
	rec   *recorder

	instance string // the instance the Then methods check
	step     string // what the Then methods check the outcome of, for messages
	since    int64  // history records after this ID are the step's
}

// NewFixture returns a fixture running pm, started, and stopped when the
// test ends. opts may be nil for the defaults.
func NewFixture[S any](tb testing.TB, pm evoke.ProcessManager[S], opts *FixtureOpts) *Fixture[S] {
	tb.Helper()
	var o FixtureOpts
	if opts != nil {
		o = *opts
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	ctx := context.Background()
	st, err := evokesqlite.Open(ctx, filepath.Join(tb.TempDir(), "evoke.db"), nil)
	if err != nil {
		tb.Fatalf("evoketest: open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	f := &Fixture[S]{tb: tb, pm: pm, store: st, clock: NewClock(o.Start), step: "Given",
		rec: &recorder{commands: map[string]evoke.Command{}, rejected: map[string]string{}}}
	f.rt, err = evoke.New(st, &evoke.Config{
		Logger:       slog.New(slog.DiscardHandler),
		Clock:        f.clock,
		Hooks:        f.rec,
		PollInterval: 10 * time.Millisecond,
		MaxAttempts:  1, // a failing step parks at once: no backoff to wait for
		Partitions:   1,
	})
	if err == nil {
		err = evoke.RegisterProcessManager(f.rt, pm, nil)
	}
	for _, a := range o.Aggregates {
		if err == nil {
			err = a.register(f.rt, f.rec)
		}
	}
	if err == nil {
		err = f.rt.Start(ctx)
	}
	if err != nil {
		tb.Fatalf("evoketest: start runtime: %v", err)
	}
	tb.Cleanup(func() { f.rt.Stop(context.Background()) })
	return f
}

// Runtime returns the runtime the fixture drives.
func (f *Fixture[S]) Runtime() *evoke.Runtime { return f.rt }

// Given appends events and waits until the runtime has handled them and
// what they caused; the Then methods check what follows. An event without
// a StreamID goes to the stream "evoketest", and without a RecordedAt is
// recorded at the virtual clock's time.
func (f *Fixture[S]) Given(events ...evoke.Event) *Fixture[S] {
	f.tb.Helper()
	f.append("Given", events)
	f.since = f.lastRecord()
	return f
}

// GivenState makes instance id exist with state, as if a step had left it
// there, at the process manager's state version (see evoke.Versioned): running, in the phase its evoke.PhaseReporter reports. It
// writes the instance to the store directly (the fixture's runtime has a
// single partition), so no deadline is set: a timeout or deadline starts
// with the instance's next step.
func (f *Fixture[S]) GivenState(id string, state S) *Fixture[S] {
	f.tb.Helper()
	f.step = "GivenState(" + id + ")"
	b, err := json.Marshal(state)
	if v, ok := f.pm.(evoke.Versioned); ok && err == nil && v.StateVersion() > 1 {
		b, err = json.Marshal(struct {
			Version int             `json:"$version"`
			State   json.RawMessage `json:"$state"`
		}{v.StateVersion(), b})
	}
	if err != nil {
		f.tb.Fatalf("evoketest: %s: encode state: %v", f.step, err)
	}
	phase := ""
	if sr, ok := f.pm.(evoke.PhaseReporter[S]); ok {
		phase = evokestore.Text(sr.Phase(state))
	}
	ctx, now := context.Background(), f.clock.Now()
	err = evokestore.WithTx(ctx, f.store, func(tx evokestore.Tx) error {
		head, err := tx.Head(ctx)
		if err != nil {
			return err
		}
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: -1, Instance: evokestore.Instance{
			ProcessManager: f.pm.Name(), ID: id, State: b, Version: 1, Status: evokestore.StatusRunning,
			Phase: phase, LastPosition: head, CreatedAt: now, UpdatedAt: now,
		}}})
	})
	if err != nil {
		f.tb.Fatalf("evoketest: %s: %v", f.step, err)
	}
	f.instance = id
	f.since = f.lastRecord()
	return f
}

// When appends events, waits until the runtime has handled them and what
// they caused, and makes the Then methods check the outcome.
func (f *Fixture[S]) When(events ...evoke.Event) *Fixture[S] {
	f.tb.Helper()
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	f.since = f.lastRecord()
	f.append("When("+strings.Join(types, ", ")+")", events)
	return f
}

// AdvanceTime moves the virtual clock forward by d, waits until the
// deadlines and timeouts now due have been handled, and makes the Then
// methods check the outcome.
func (f *Fixture[S]) AdvanceTime(d time.Duration) *Fixture[S] {
	f.tb.Helper()
	f.since = f.lastRecord()
	f.step = fmt.Sprintf("AdvanceTime(%v)", d)
	f.clock.Advance(d)
	f.waitIdle()
	return f
}

func (f *Fixture[S]) append(step string, events []evoke.Event) {
	f.tb.Helper()
	f.step = step
	for _, e := range events {
		stream := e.StreamID
		if stream == "" {
			stream = "evoketest"
		}
		got, err := f.rt.Append(context.Background(), stream, evoke.AnyVersion, e)
		if err != nil {
			f.tb.Fatalf("evoketest: %s: %v", step, err)
		}
		switch c := f.pm.Correlate(got[0]); c.Kind() {
		case evoke.KindStart, evoke.KindContinue, evoke.KindStop:
			f.instance = c.ID()
		}
	}
	f.waitIdle()
}

func (f *Fixture[S]) waitIdle() {
	f.tb.Helper()
	WaitIdle(f.tb, f.rt, 0)
	f.rec.mu.Lock()
	unknown := f.rec.unknown
	f.rec.mu.Unlock()
	if len(unknown) > 0 {
		f.tb.Fatalf("evoketest: %s: the runtime rejected %s: list the aggregate in FixtureOpts.Aggregates (NewAggregate or StubAggregate)",
			f.step, strings.Join(unknown, ", "))
	}
}

// history returns the instance's history records.
func (f *Fixture[S]) history() []evokestore.HistoryRecord {
	f.tb.Helper()
	if f.instance == "" {
		return nil
	}
	recs, err := f.store.History(context.Background(), f.pm.Name(), f.instance)
	if err != nil {
		f.tb.Fatalf("evoketest: read history: %v", err)
	}
	return recs
}

func (f *Fixture[S]) lastRecord() int64 {
	f.tb.Helper()
	recs := f.history()
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].ID
}

// Commands returns the commands the instance issued since the last When or
// AdvanceTime (since the last Given before any), with their IDs, payloads
// and metadata, in the order its steps issued them.
func (f *Fixture[S]) Commands() []evoke.Command {
	f.tb.Helper()
	var out []evoke.Command
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	for _, r := range f.history() {
		if r.ID <= f.since || r.Kind != evokestore.KindStep || len(r.Commands) == 0 {
			continue
		}
		var refs []struct {
			ID            string `json:"id"`
			Type          string `json:"type"`
			AggregateType string `json:"aggregate_type"`
			AggregateID   string `json:"aggregate_id"`
			Suppressed    bool   `json:"suppressed"`
		}
		if err := json.Unmarshal(r.Commands, &refs); err != nil {
			f.tb.Fatalf("evoketest: read history record %d: %v", r.ID, err)
		}
		for _, c := range refs {
			if cmd, ok := f.rec.commands[c.ID]; ok && !c.Suppressed {
				out = append(out, cmd)
				continue
			}
			out = append(out, evoke.Command{ID: c.ID, Type: c.Type, AggregateType: c.AggregateType, AggregateID: c.AggregateID})
		}
	}
	return out
}

// ThenCommands checks the commands issued since the last When or
// AdvanceTime: their types, aggregate types and IDs, and payloads (as
// JSON values), in order. A want without a Payload matches any payload;
// IDs and metadata are not compared. Without arguments it checks that none
// was issued.
func (f *Fixture[S]) ThenCommands(want ...evoke.Command) *Fixture[S] {
	f.tb.Helper()
	got := f.Commands()
	match := len(got) == len(want)
	for i := 0; match && i < len(want); i++ {
		w, g := want[i], got[i]
		match = w.Type == g.Type && w.AggregateType == g.AggregateType && w.AggregateID == g.AggregateID &&
			(w.Payload == nil || canonical(w.Payload) == canonical(g.Payload))
	}
	if match {
		return f
	}
	wl, gl := make([]string, len(want)), make([]string, len(got))
	for i, c := range want {
		wl[i] = commandLine(c)
	}
	var notes []string
	f.rec.mu.Lock()
	for i, c := range got {
		gl[i] = commandLine(c)
		if reason, ok := f.rec.rejected[c.ID]; ok {
			notes = append(notes, fmt.Sprintf("\n%s was rejected: %s", c.Type, reason))
		}
	}
	f.rec.mu.Unlock()
	f.tb.Errorf("evoketest: after %s: commands differ (-want +got):\n%s%s", f.step, diff(wl, gl), strings.Join(notes, ""))
	return f
}

// commandLine shows a command as "type -> aggregate/id payload".
func commandLine(c evoke.Command) string {
	p := "<any payload>"
	if c.Payload != nil {
		p = canonical(c.Payload)
	}
	return fmt.Sprintf("%s -> %s/%s %s", c.Type, c.AggregateType, c.AggregateID, p)
}

// canonical returns JSON with its object keys sorted and no spaces, so that
// equal values read alike.
func canonical(raw []byte) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// read reads the instance the Then methods check.
func (f *Fixture[S]) read() (evokestore.Instance, bool) {
	f.tb.Helper()
	if f.instance == "" {
		f.tb.Errorf("evoketest: after %s: no event correlated to an instance of %s", f.step, f.pm.Name())
		return evokestore.Instance{}, false
	}
	in, ok := Instance(f.tb, f.store, f.pm.Name(), f.instance)
	if !ok {
		f.tb.Errorf("evoketest: after %s: %s has no instance %s", f.step, f.pm.Name(), f.instance)
	}
	return in, ok
}

// State returns the instance's state, as the runtime stored it and
// evoke.ReadInstance reads it (upgraded to the state version); the zero S
// for an instance that has not stepped yet.
func (f *Fixture[S]) State() S {
	f.tb.Helper()
	var s S
	if f.instance == "" {
		f.tb.Errorf("evoketest: after %s: no event correlated to an instance of %s", f.step, f.pm.Name())
		return s
	}
	in, err := evoke.ReadInstance(context.Background(), f.rt, f.pm, f.instance)
	if err != nil {
		f.tb.Fatalf("evoketest: after %s: %v", f.step, err)
	}
	return in.State
}

// ThenState checks the instance's state, compared as JSON.
func (f *Fixture[S]) ThenState(want S) *Fixture[S] {
	f.tb.Helper()
	if _, ok := f.read(); !ok {
		return f
	}
	wb, err := json.Marshal(want)
	if err != nil {
		f.tb.Fatalf("evoketest: encode state: %v", err)
	}
	gb, err := json.Marshal(f.State())
	if err != nil {
		f.tb.Fatalf("evoketest: encode state: %v", err)
	}
	w, g := indent(wb), indent(gb)
	if w != g {
		f.tb.Errorf("evoketest: after %s: state of %s differs (-want +got):\n%s", f.step, f.instance,
			diff(strings.Split(w, "\n"), strings.Split(g, "\n")))
	}
	return f
}

func indent(raw []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(canonical(raw)), "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

// ThenPhase checks the instance's phase (what its evoke.PhaseReporter
// reports).
func (f *Fixture[S]) ThenPhase(want string) *Fixture[S] {
	f.tb.Helper()
	if in, ok := f.read(); ok && in.Phase != want {
		f.tb.Errorf("evoketest: after %s: phase of %s is %q, want %q", f.step, f.instance, in.Phase, want)
	}
	return f
}

// ThenStatus checks where the runtime has the instance: running,
// compensating, failing, parked, completed or cancelled.
func (f *Fixture[S]) ThenStatus(want evokestore.InstanceStatus) *Fixture[S] {
	f.tb.Helper()
	if in, ok := f.read(); ok && in.Status != want {
		msg := fmt.Sprintf("evoketest: after %s: %s is %s, want %s", f.step, f.instance, in.Status, want)
		if in.LastError != "" {
			msg += ": " + in.LastError
		}
		f.tb.Errorf("%s", msg)
	}
	return f
}

// ThenOutcome checks how the instance ended: completed, compensated,
// timed_out or cancelled (evokestore.Outcomes); "" checks that it has not
// ended.
func (f *Fixture[S]) ThenOutcome(want evokestore.InstanceOutcome) *Fixture[S] {
	f.tb.Helper()
	if in, ok := f.read(); ok && in.FinalOutcome() != want {
		f.tb.Errorf("evoketest: after %s: %s ended %q (%s), want %q", f.step, f.instance, in.FinalOutcome(), in.Status, want)
	}
	return f
}

// ThenDeadlines checks the instance's pending deadlines, in any order. The
// inactivity timeout of an evoke.Timeouter is one named evoke.TimeoutEvent.
func (f *Fixture[S]) ThenDeadlines(want ...evoke.Deadline) *Fixture[S] {
	f.tb.Helper()
	if f.instance == "" {
		f.tb.Fatalf("evoketest: no instance to check deadlines of: no event correlated to one yet")
	}
	got, err := f.store.InstanceDeadlines(context.Background(), f.pm.Name(), []string{f.instance})
	if err != nil {
		f.tb.Fatalf("evoketest: read deadlines: %v", err)
	}
	wl, gl := make([]string, len(want)), make([]string, len(got))
	for i, d := range want {
		wl[i] = d.Name + " at " + d.At.UTC().Format(time.RFC3339Nano)
	}
	for i, d := range got {
		gl[i] = d.Name + " at " + d.DueAt.UTC().Format(time.RFC3339Nano)
	}
	slices.Sort(wl)
	slices.Sort(gl)
	if !slices.Equal(wl, gl) {
		f.tb.Errorf("evoketest: after %s: deadlines of %s differ (-want +got):\n%s", f.step, f.instance, diff(wl, gl))
	}
	return f
}
