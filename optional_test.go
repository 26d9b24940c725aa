package evoke_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
)

type optState struct{ N int }

// optBase is a process manager without optional methods; the types below
// add one with a wrong signature each.
type optBase struct{}

func (optBase) Name() string                              { return "opt" }
func (optBase) InterestedIn() []string                    { return []string{"E"} }
func (optBase) Correlate(e evoke.Event) evoke.Correlation { return evoke.Continue("x") }
func (optBase) Apply(s optState, e evoke.Event) optState  { return s }
func (optBase) Handle(s optState, e evoke.Event) (optState, []evoke.Command, error) {
	return s, nil, nil
}

type (
	badCompensate struct{ optBase }
	badTimeout    struct{ optBase }
	badDeadlines  struct{ optBase }
	badCompleted  struct{ optBase }
	badPhase      struct{ optBase }
	badStrict     struct{ optBase }
	ptrPhase      struct{ optBase }
	badVersion    struct{ optBase }
	badUpcasters  struct{ optBase }
	onlyVersion   struct{ optBase }
	badOnFailure  struct{ optBase }
	badDiscard    struct{ optBase }
	goodOptional  struct{ optBase }
)

func (badCompensate) Compensate(s optState, failed evoke.Command) ([]evoke.Command, bool) {
	return nil, false
}
func (badTimeout) Timeout() int                       { return 5 }
func (badDeadlines) Deadlines(s optState) []time.Time { return nil }
func (badCompleted) Completed(s *optState) bool       { return false }
func (badPhase) Phase(s optState) (string, error)     { return "", nil }
func (badStrict) Strict()                             {}
func (*ptrPhase) Phase(s optState) string             { return "" }
func (badVersion) StateVersion() int64                { return 2 }
func (badVersion) Upcasters() map[int]evoke.Upcaster  { return nil }
func (badUpcasters) StateVersion() int                { return 2 }
func (badUpcasters) Upcasters() map[int]func([]byte) []byte {
	return nil
}

func (onlyVersion) StateVersion() int { return 2 }

func (badOnFailure) OnFailure(err error) evoke.FailureAction              { return evoke.FailureAction{} }
func (badDiscard) DiscardPending(rejected evoke.Command, why string) bool { return true }

func (goodOptional) Compensate(s optState, failed evoke.FailedCommand) ([]evoke.Command, bool) {
	return nil, false
}
func (goodOptional) Timeout() time.Duration                { return time.Hour }
func (goodOptional) Deadlines(s optState) []evoke.Deadline { return nil }
func (goodOptional) Completed(s optState) bool             { return false }
func (goodOptional) Phase(s optState) string               { return "" }
func (goodOptional) Strict() bool                          { return true }
func (goodOptional) StateVersion() int                     { return 1 }
func (goodOptional) Upcasters() map[int]evoke.Upcaster     { return nil }
func (goodOptional) OnFailure(f evoke.Failure) evoke.FailureAction {
	return f.RetryWithBackoff()
}
func (goodOptional) DiscardPending(rejected evoke.FailedCommand) bool { return false }

func TestRegistrationRefusesAWrongOptionalMethod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		pm   evoke.ProcessManager[optState]
		want string
	}{
		{"Compensate", badCompensate{}, "want Compensate(state evoke_test.optState, failed evoke.FailedCommand) ([]evoke.Command, bool)"},
		{"Timeout", badTimeout{}, "method Timeout is Timeout() int, want Timeout() time.Duration"},
		{"Deadlines", badDeadlines{}, "want Deadlines(state evoke_test.optState) []evoke.Deadline"},
		{"Completed", badCompleted{}, "method Completed is Completed(*evoke_test.optState) bool, want Completed(state evoke_test.optState) bool"},
		{"Phase", badPhase{}, "want Phase(state evoke_test.optState) string"},
		{"Strict", badStrict{}, "method Strict is Strict(), want Strict() bool"},
		{"StateVersion", badVersion{}, "method StateVersion is StateVersion() int64, want StateVersion() int"},
		{"Upcasters", badUpcasters{}, "want Upcasters() map[int]evoke.Upcaster"},
		{"StateVersion alone", onlyVersion{}, "method StateVersion without the other methods of evoke.Versioned"},
		{"OnFailure", badOnFailure{}, "method OnFailure is OnFailure(error) evoke.FailureAction, want OnFailure(f evoke.Failure) evoke.FailureAction"},
		{"DiscardPending", badDiscard{}, "want DiscardPending(rejected evoke.FailedCommand) bool"},
		{"pointer receiver", ptrPhase{}, "Phase has a pointer receiver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt, err := evoke.New(openStore(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = evoke.RegisterProcessManager(rt, tc.pm, nil)
			if !errors.Is(err, evoke.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RegisterProcessManager = %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
}

func TestRegistrationTakesRightOptionalMethods(t *testing.T) {
	t.Parallel()
	for _, pm := range []evoke.ProcessManager[optState]{optBase{}, goodOptional{}, &ptrPhase{}} {
		rt, err := evoke.New(openStore(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := evoke.RegisterProcessManager(rt, pm, nil); err != nil {
			t.Errorf("RegisterProcessManager(%T) = %v", pm, err)
		}
	}
}

func TestSyntheticEventHelpers(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rejected := evoke.NewEvent(evoke.CommandRejectedEvent, map[string]string{"command_type": "pay", "reason": "declined"})
	deadline := evoke.NewEvent(evoke.DeadlineEvent, evoke.Deadline{Name: "remind", At: at})
	timeout := evoke.Event{Type: evoke.TimeoutEvent}
	other := evoke.Event{Type: "E", Data: json.RawMessage(`{}`)}

	if d, ok := evoke.Rejected(rejected); !ok || d.Command.Type != "pay" || d.Reason != "declined" {
		t.Errorf("Rejected($rejected) = %+v, %v", d, ok)
	}
	if d, ok := evoke.DeadlineOf(deadline); !ok || d.Name != "remind" || !d.At.Equal(at) {
		t.Errorf("DeadlineOf($deadline) = %+v, %v", d, ok)
	}
	if !evoke.IsTimeout(timeout) || evoke.IsTimeout(other) {
		t.Error("IsTimeout mistakes an event")
	}
	for _, e := range []evoke.Event{other, timeout, deadline} {
		if _, ok := evoke.Rejected(e); ok {
			t.Errorf("Rejected(%s) reports a rejection", e.Type)
		}
	}
	for _, e := range []evoke.Event{other, timeout, rejected} {
		if _, ok := evoke.DeadlineOf(e); ok {
			t.Errorf("DeadlineOf(%s) reports a deadline", e.Type)
		}
	}
}
