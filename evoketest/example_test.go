package evoketest_test

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evoketest"
)

// signup welcomes a new user by mail, reminds them after a day unless they
// verified their address, and tells an admin when the welcome bounces.
type signup struct{}

type signupState struct {
	User   string    `json:"user"`
	Status string    `json:"status"`
	Remind time.Time `json:"remind,omitzero"`
}

type userData struct {
	User string `json:"user"`
}

func (signup) Name() string           { return "signup" }
func (signup) InterestedIn() []string { return []string{"SignedUp", "Verified"} }
func (signup) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "user", evoke.Continue)
}
func (signup) Apply(s signupState, e evoke.Event) signupState { return s }

func (signup) Handle(s signupState, e evoke.Event) (signupState, []evoke.Command, error) {
	switch e.Type {
	case "SignedUp":
		d, err := evoke.Decode[userData](e)
		if err != nil || d.User == "boom" {
			return s, nil, errors.New("cannot sign up boom")
		}
		s.User, s.Status, s.Remind = d.User, "welcomed", e.RecordedAt.Add(24*time.Hour)
		return s, []evoke.Command{evoke.NewCommand("send_welcome", "mailer", d.User, userData{d.User})}, nil
	case "Verified":
		s.Status, s.Remind = "verified", time.Time{}
	case evoke.DeadlineEvent:
		s.Status, s.Remind = "reminded", time.Time{}
		return s, []evoke.Command{evoke.NewCommand("send_reminder", "mailer", s.User, userData{s.User})}, nil
	case evoke.CommandRejectedEvent:
		if d, ok := evoke.Rejected(e); ok && d.Command.Type == "send_welcome" {
			s.Status = "bounced"
		}
	}
	return s, nil, nil
}

func (signup) Compensate(s signupState, failed evoke.FailedCommand) ([]evoke.Command, bool) {
	if failed.Command.Type != "send_welcome" {
		return nil, false
	}
	return []evoke.Command{evoke.NewCommand("notify_admin", "admin", "admins", userData{failed.Command.AggregateID})}, true
}

func (signup) Deadlines(s signupState) []evoke.Deadline {
	if s.Remind.IsZero() {
		return nil
	}
	return []evoke.Deadline{{Name: "remind", At: s.Remind}}
}

func (signup) Completed(s signupState) bool { return s.Status == "verified" }
func (signup) Phase(s signupState) string   { return s.Status }

// mailer rejects mail to the user "bounce" and records what it sends.
type mailer struct{}

func (mailer) Execute(n int, cmd evoke.Command) ([]evoke.Event, error) {
	if cmd.AggregateID == "bounce" {
		return nil, errors.New("mailbox unavailable")
	}
	return []evoke.Event{evoke.NewEvent("MailSent", map[string]any{"to": cmd.AggregateID, "n": n + 1})}, nil
}
func (mailer) Apply(n int, e evoke.Event) int { return n + 1 }

// printTB stands in for the *testing.T of a test: it prints what the
// fixture reports.
type printTB struct {
	testing.TB
	cleanups []func()
}

func (p *printTB) Helper()                        {}
func (p *printTB) Errorf(format string, a ...any) { fmt.Printf(format+"\n", a...) }
func (p *printTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (p *printTB) Cleanup(f func())               { p.cleanups = append(p.cleanups, f) }
func (p *printTB) TempDir() string {
	dir, err := os.MkdirTemp("", "evoketest")
	if err != nil {
		panic(err)
	}
	p.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
func (p *printTB) cleanup() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
}

func ExampleFixture() {
	t := &printTB{} // in a test, its *testing.T
	defer t.cleanup()

	f := evoketest.NewFixture(t, signup{}, &evoketest.FixtureOpts{
		Aggregates: []evoketest.Aggregate{evoketest.StubAggregate("mailer"), evoketest.StubAggregate("admin")},
	})
	f.When(evoke.NewEvent("SignedUp", map[string]string{"user": "ann"})).
		ThenCommands(evoke.NewCommand("send_welcome", "mailer", "ann", map[string]string{"user": "ann"})).
		ThenPhase("welcomed")
	f.AdvanceTime(24 * time.Hour).
		ThenCommands(evoke.NewCommand("send_reminder", "mailer", "ann", map[string]string{"user": "Ann"}))
	// Output:
	// evoketest: after AdvanceTime(24h0m0s): commands differ (-want +got):
	// - send_reminder -> mailer/ann {"user":"Ann"}
	// + send_reminder -> mailer/ann {"user":"ann"}
}

// signupV2 reminds a new user after two days instead of one, and greets
// them by name.
type signupV2 struct{ signup }

func (p signupV2) Handle(s signupState, e evoke.Event) (signupState, []evoke.Command, error) {
	s, cmds, err := p.signup.Handle(s, e)
	if e.Type == "SignedUp" && err == nil {
		s.Remind = e.RecordedAt.Add(48 * time.Hour)
		cmds[0].Payload = []byte(`{"user":"` + s.User + `","greeting":"Welcome, ` + s.User + `!"}`)
	}
	return s, cmds, err
}

// A replay of what a fixture recorded: the unchanged process manager
// repeats it, the changed one is reported at the step that differs.
func ExampleReplay() {
	t := &printTB{} // in a test, its *testing.T
	defer t.cleanup()

	f := evoketest.NewFixture(t, signup{}, &evoketest.FixtureOpts{
		Aggregates: []evoketest.Aggregate{evoketest.StubAggregate("mailer"), evoketest.StubAggregate("admin")},
	})
	f.Given(evoke.NewEvent("SignedUp", map[string]string{"user": "ann"})).AdvanceTime(24 * time.Hour)
	store := f.Runtime().Store()

	rep := evoketest.Replay(t, store, signup{})
	fmt.Println(rep.Instances, "instance,", rep.Steps, "steps: differ:", rep.Differ())
	evoketest.Replay(t, store, signupV2{})
	// Output:
	// 1 instance, 2 steps: differ: false
	// evoketest: the replay of signup differs from its record:
	// signup: 1 instances, 1 steps replayed, 1 differ
	// ann: step 1 (SignedUp at 1): commands differ
	//   recorded: send_welcome to mailer ann {"user":"ann"}
	//   replayed: send_welcome to mailer ann {"greeting":"Welcome, ann!","user":"ann"}
}
