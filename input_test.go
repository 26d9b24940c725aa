package evoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// startWith starts a runtime on st (with cfg, nil for quietConfig) that
// runs pm and the ledger aggregate.
func startWith[S any](t *testing.T, st evokestore.Store, cfg *evoke.Config, pm evoke.ProcessManager[S]) *evoke.Runtime {
	t.Helper()
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterProcessManager(rt, pm, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	return rt
}

// errorCounter is a slog handler that counts the records at level Error.
type errorCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h errorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

// An instance ID no store can hold (here a NUL, from the valid JSON string
// "job-\u0000") costs its own event only: the event is held for the process
// manager with an error naming the ID, the event after it is stepped, and
// the runtime settles instead of retrying the batch.
func TestBadInstanceIDParksOnlyItsEvent(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		cfg := quietConfig()
		var errs atomic.Int64
		cfg.Logger = slog.New(errorCounter{slog.NewTextHandler(io.Discard, nil), &errs})
		rt := startWith(t, st, cfg, recorder{name: "rec"})
		bad, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.Event{Type: "Cont", Data: json.RawMessage(`{"id":"job-\u0000"}`)})
		if err != nil {
			t.Fatalf("append an event whose data escapes a NUL: %v", err)
		}
		appendEvent(t, rt, "s", "Cont", recData{ID: "job-1"})
		evoketest.WaitIdle(t, rt, 10*time.Second)

		if in, ok := instance(t, st, "rec", "job-1"); !ok || in.Version != 1 {
			t.Fatalf("job-1 = %+v (found %v), want stepped once", in, ok)
		}
		held, err := st.Held(ctx, "rec", "")
		if err != nil || len(held) != 1 || held[0].Position != bad[0].Position {
			t.Fatalf("held for the process manager: %+v %v, want the event with the bad id", held, err)
		}
		if e := held[0].Error; !strings.Contains(e, `instance id "job-\x00"`) || !strings.Contains(e, "NUL") {
			t.Errorf("held event's error %q does not name the bad instance id", e)
		}
		list, err := st.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: "rec"})
		if err != nil || len(list) != 1 {
			t.Errorf("instances %+v %v, want job-1 alone", list, err)
		}
		if s := rt.Stats(); s.CorrelateErrors != 1 {
			t.Errorf("%d correlate errors, want 1", s.CorrelateErrors)
		}
		// Idle, the runtime stays quiet: it does not retry the event.
		time.Sleep(5 * cfg.PollInterval)
		if n := errs.Load(); n != 1 {
			t.Errorf("%d errors logged, want the one parked event's", n)
		}
	})
}

// forwarder is a process manager whose Handle issues, for each event {"id",
// "agg"}, a note command to the ledger aggregate instance "agg".
type forwarder struct{}

type forwarderData struct {
	ID  string `json:"id"`
	Agg string `json:"agg"`
}

func (forwarder) Name() string           { return "fwd" }
func (forwarder) InterestedIn() []string { return []string{"Forward"} }
func (forwarder) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "id", evoke.Continue)
}
func (forwarder) Apply(s int, e evoke.Event) int { return s + 1 }
func (forwarder) Handle(s int, e evoke.Event) (int, []evoke.Command, error) {
	d, err := evoke.Decode[forwarderData](e)
	return s, []evoke.Command{evoke.NewCommand("note", "ledger", d.Agg, note{Instance: d.ID})}, err
}

// A command outside the input contract from Handle fails that step like
// an error from Handle: its instance is retried, then parked, and the
// others go on.
func TestBadCommandFromHandleParksOnlyItsInstance(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		rt := startWith(t, st, nil, forwarder{})
		if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.Event{Type: "Forward", Data: json.RawMessage(`{"id":"a","agg":"x\u0000"}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.NewEvent("Forward", forwarderData{ID: "b", Agg: "fine"})); err != nil {
			t.Fatal(err)
		}
		in := waitStatus(t, st, "fwd", "a", evokestore.StatusParked)
		if !strings.Contains(in.LastError, `aggregate id "x\x00" contains a NUL byte`) {
			t.Errorf("a's last error %q does not name the bad aggregate id", in.LastError)
		}
		evoketest.WaitIdle(t, rt, 10*time.Second)
		if evs, err := st.ReadStream(ctx, evoke.StreamID("ledger", "fine"), 0); err != nil || len(evs) != 1 {
			t.Errorf("b's command appended %d events (%v), want 1", len(evs), err)
		}
	})
}

// echo is an aggregate that appends one event of the type its command's
// payload names.
type echo struct{}

func (echo) Execute(s int, c evoke.Command) ([]evoke.Event, error) {
	var p struct{ Type string }
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	return []evoke.Event{evoke.NewEvent(p.Type, nil)}, nil
}
func (echo) Apply(s int, e evoke.Event) int { return s + 1 }

// An event outside the input contract from an aggregate's Execute rejects
// its command, as an error from Execute does.
func TestBadEventFromExecuteRejectsTheCommand(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		rt := newRuntime(t, st, nil)
		if err := evoke.RegisterAggregate(rt, "echo", echo{}); err != nil {
			t.Fatal(err)
		}
		_, err := rt.Dispatch(ctx, evoke.NewCommand("say", "echo", "e1", json.RawMessage(`{"Type":"T\u0000"}`)))
		var re *evoke.RejectedError
		if !errors.As(err, &re) || !strings.Contains(re.Reason, `event type "T\x00"`) {
			t.Fatalf("Dispatch = %v, want a rejection naming the event type", err)
		}
		if _, err := rt.Dispatch(ctx, evoke.NewCommand("say", "echo", "e1", map[string]string{"Type": "Said"})); err != nil {
			t.Fatalf("the aggregate's next command: %v", err)
		}
		if evs, _ := st.ReadStream(ctx, evoke.StreamID("echo", "e1"), 0); len(evs) != 1 || evs[0].Type != "Said" {
			t.Errorf("stream %+v, want the one Said event", evs)
		}
	})
}

// Data that is not valid UTF-8, raw or encoded by NewEvent or NewCommand,
// is refused: otherwise the correlation fields u\xff and u\xfe would both
// read as u\uFFFD, one instance for two sagas.
func TestInvalidUTF8IsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		rt := newRuntime(t, st, nil)
		for _, data := range []string{"{\"id\":\"u\xff\"}", "{\"id\":\"u\xfe\"}", `{"id":"\ud800"}`} {
			_, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.Event{Type: "Cont", Data: json.RawMessage(data)})
			if !errors.Is(err, evoke.ErrInvalid) {
				t.Errorf("append data %q: %v, want ErrInvalid", data, err)
			}
		}
		for _, id := range []string{"u\xff", "u\xfe"} {
			if _, err := rt.Append(ctx, "s", evoke.AnyVersion, evoke.NewEvent("Cont", recData{ID: id})); !errors.Is(err, evoke.ErrInvalid) {
				t.Errorf("append NewEvent with id %q: %v, want ErrInvalid", id, err)
			}
			if _, err := rt.Dispatch(ctx, evoke.NewCommand("note", "ledger", "x", note{Instance: id})); !errors.Is(err, evoke.ErrInvalid) {
				t.Errorf("dispatch NewCommand with instance %q: %v, want ErrInvalid", id, err)
			}
		}
		if head, err := st.Head(ctx); err != nil || head != 0 {
			t.Errorf("head %d (%v), want nothing appended", head, err)
		}
	})
}

// Both stores refuse the same input with ErrInvalid at every edge, and
// write nothing.
func TestStoresRefuseTheSameInput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", evokestore.MaxIDLen+1)
	event := func(edit func(e *evoke.Event)) evoke.Event {
		e := evoke.NewEvent("Cont", recData{ID: "a"})
		edit(&e)
		return e
	}
	command := func(edit func(c *evoke.Command)) evoke.Command {
		c := evoke.NewCommand("note", "ledger", "x", note{Instance: "a"})
		edit(&c)
		return c
	}
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		rt := newRuntime(t, st, nil)
		appends := map[string]struct {
			stream string
			event  evoke.Event
		}{
			"stream not UTF-8":       {"s\xff", event(func(*evoke.Event) {})},
			"stream with NUL":        {"s\x00", event(func(*evoke.Event) {})},
			"stream too long":        {long, event(func(*evoke.Event) {})},
			"type not UTF-8":         {"s", event(func(e *evoke.Event) { e.Type = "Cont\xff" })},
			"id with NUL":            {"s", event(func(e *evoke.Event) { e.ID = "e\x00" })},
			"correlation not UTF-8":  {"s", event(func(e *evoke.Event) { e.Metadata.CorrelationID = "c\xfe" })},
			"causation too long":     {"s", event(func(e *evoke.Event) { e.Metadata.CausationID = long })},
			"metadata key with NUL":  {"s", event(func(e *evoke.Event) { e.Metadata.Values = map[string]string{"k\x00": "v"} })},
			"metadata value invalid": {"s", event(func(e *evoke.Event) { e.Metadata.Values = map[string]string{"k": "v\xff"} })},
		}
		for name, a := range appends {
			if _, err := rt.Append(ctx, a.stream, evoke.AnyVersion, a.event); !errors.Is(err, evoke.ErrInvalid) {
				t.Errorf("append, %s: %v, want ErrInvalid", name, err)
			}
		}
		dispatches := map[string]evoke.Command{
			"aggregate id not UTF-8":   command(func(c *evoke.Command) { c.AggregateID = "x\xff" }),
			"aggregate id with NUL":    command(func(c *evoke.Command) { c.AggregateID = "x\x00" }),
			"stream too long":          command(func(c *evoke.Command) { c.AggregateID = long[:evokestore.MaxIDLen] }),
			"command id with NUL":      command(func(c *evoke.Command) { c.ID = "c\x00" }),
			"payload not UTF-8":        command(func(c *evoke.Command) { c.Payload = json.RawMessage("{\"k\":\"\xff\"}") }),
			"correlation id with NUL":  command(func(c *evoke.Command) { c.Metadata.CorrelationID = "c\x00" }),
			"metadata value not UTF-8": command(func(c *evoke.Command) { c.Metadata.Values = map[string]string{"k": "\xff"} }),
		}
		for name, c := range dispatches {
			if _, err := rt.Dispatch(ctx, c); !errors.Is(err, evoke.ErrInvalid) {
				t.Errorf("dispatch, %s: %v, want ErrInvalid", name, err)
			}
		}
		if err := evoke.RegisterProcessManager(rt, recorder{name: "rec\x00"}, nil); !errors.Is(err, evoke.ErrInvalid) {
			t.Errorf("register a process manager named with a NUL: %v, want ErrInvalid", err)
		}
		if err := evoke.RegisterProcessManager(rt, oddInterest{recorder{name: "odd"}}, nil); !errors.Is(err, evoke.ErrInvalid) {
			t.Errorf("register a process manager interested in an event type with invalid UTF-8: %v, want ErrInvalid", err)
		}
		if err := evoke.RegisterAggregate(rt, "agg\xff", ledger{}); !errors.Is(err, evoke.ErrInvalid) {
			t.Errorf("register an aggregate type with invalid UTF-8: %v, want ErrInvalid", err)
		}
		if head, err := st.Head(ctx); err != nil || head != 0 {
			t.Errorf("head %d (%v), want nothing appended", head, err)
		}
		if s, err := st.Stats(ctx); err != nil || s.Commands != 0 {
			t.Errorf("%d command outcomes (%v), want none", s.Commands, err)
		}
	})
}

// grumpy is a process manager whose error texts and phase hold a NUL and
// invalid UTF-8: Correlate fails on Lost, Handle on Grr.
type grumpy struct{}

func (grumpy) Name() string           { return "grumpy" }
func (grumpy) InterestedIn() []string { return []string{"Fine", "Grr", "Lost"} }
func (grumpy) Correlate(e evoke.Event) evoke.Correlation {
	if e.Type == "Lost" {
		return evoke.CorrelationFailed(errors.New("lost \x00"))
	}
	return evoke.ByField(e, "id", evoke.Continue)
}
func (grumpy) Apply(s string, e evoke.Event) string { return s }
func (grumpy) Handle(s string, e evoke.Event) (string, []evoke.Command, error) {
	if e.Type == "Grr" {
		return s, nil, errors.New("grr \x00 \xff")
	}
	return "fine\x00", nil, nil
}
func (grumpy) Phase(s string) string { return s }

// Error texts and phases from user code are stored as text, with invalid
// UTF-8 and NUL replaced, so that recording a failure cannot fail itself.
func TestErrorTextsAreStoredAsText(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		rt := startWith(t, st, nil, grumpy{})
		for _, e := range []struct{ typ, id string }{{"Fine", "a"}, {"Grr", "b"}, {"Lost", "x"}, {"Fine", "c"}} {
			appendEvent(t, rt, "s", e.typ, recData{ID: e.id})
		}
		in := waitStatus(t, st, "grumpy", "b", evokestore.StatusParked)
		if in.LastError != "grumpy.Handle(Grr): grr \uFFFD \uFFFD" {
			t.Errorf("b's last error %q, want the error as text", in.LastError)
		}
		evoketest.WaitIdle(t, rt, 10*time.Second)
		for _, id := range []string{"a", "c"} {
			if in, _ := instance(t, st, "grumpy", id); in.Version != 1 || in.Phase != "fine\uFFFD" {
				t.Errorf("%s = %+v, want stepped once in phase fine\uFFFD", id, in)
			}
		}
		held, err := st.Held(ctx, "grumpy", "")
		if err != nil || len(held) != 1 || held[0].Error != "lost \uFFFD" {
			t.Errorf("held for the process manager: %+v %v, want the Lost event with its error as text", held, err)
		}
	})
}

// oddInterest is a recorder interested in an event type no store holds.
type oddInterest struct{ recorder }

func (oddInterest) InterestedIn() []string { return []string{"Cont", "Cont\xff"} }

func TestKeyIsInjective(t *testing.T) {
	t.Parallel()
	lists := [][]string{{}, {""}, {"", ""}, {"a"}, {"a", ""}, {"", "a"}, {"a|"}, {"a", "b"}, {"a|b"}, {"%-"}, {"a%"}, {"|"}, {"", "|"}}
	seen := map[string][]string{}
	for _, parts := range lists {
		k := evoke.Key(parts...)
		if prev, ok := seen[k]; ok {
			t.Errorf("Key(%q) = Key(%q) = %q", parts, prev, k)
		}
		seen[k] = parts
	}
	for want, parts := range map[string][]string{"": {}, "%-": {""}, "a|b": {"a", "b"}, "a%7Cb": {"a|b"}, "a|%-": {"a", ""}} {
		if k := evoke.Key(parts...); k != want {
			t.Errorf("Key(%q) = %q, want %q", parts, k, want)
		}
	}
}

// A string that holds the text \ufffd (a backslash, then "ufffd") or the
// rune U+FFFD is valid UTF-8: NewEvent takes it; only invalid bytes, which
// encoding/json would write as the escape \ufffd, are refused.
func TestNewEventTakesReplacementCharacterText(t *testing.T) {
	for _, s := range []string{`C:\ufffd`, `a\\ufffd`, "\uFFFD", `\\\ufffd`} {
		if e := evoke.NewEvent("T", map[string]string{"path": s}); e.Decode(new(map[string]string)) != nil {
			t.Fatalf("NewEvent(%q) made undecodable data", s)
		}
		if c := evoke.NewCommand("c", "a", "1", map[string]string{"path": s}); c.Payload == nil {
			t.Fatalf("NewCommand(%q) refused valid text", s)
		}
	}
	if c := evoke.NewCommand("c", "a", "1", map[string]string{"path": "u\xff"}); c.Payload != nil {
		t.Fatalf("NewCommand took invalid UTF-8: %s", c.Payload)
	}
}
