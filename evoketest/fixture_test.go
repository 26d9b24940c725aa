package evoketest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

var fixtureT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newSignup(tb testing.TB, aggs ...evoketest.Aggregate) *evoketest.Fixture[signupState] {
	tb.Helper()
	if aggs == nil {
		aggs = []evoketest.Aggregate{evoketest.StubAggregate("mailer"), evoketest.StubAggregate("admin")}
	}
	return evoketest.NewFixture(tb, signup{}, &evoketest.FixtureOpts{Aggregates: aggs})
}

func signedUp(user string) evoke.Event { return evoke.NewEvent("SignedUp", userData{user}) }

func TestFixtureFollowsAnInstance(t *testing.T) {
	t.Parallel()
	f := newSignup(t)
	f.When(signedUp("ann")).
		ThenCommands(evoke.NewCommand("send_welcome", "mailer", "ann", userData{"ann"})).
		ThenPhase("welcomed").
		ThenStatus(evokestore.StatusRunning).
		ThenOutcome("").
		ThenState(signupState{User: "ann", Status: "welcomed", Remind: fixtureT0.Add(24 * time.Hour)}).
		ThenDeadlines(evoke.Deadline{Name: "remind", At: fixtureT0.Add(24 * time.Hour)})

	f.AdvanceTime(23 * time.Hour).ThenCommands().ThenPhase("welcomed")
	f.AdvanceTime(time.Hour).
		ThenCommands(evoke.Command{Type: "send_reminder", AggregateType: "mailer", AggregateID: "ann"}).
		ThenPhase("reminded").
		ThenDeadlines()
	f.When(evoke.NewEvent("Verified", userData{"ann"})).
		ThenCommands().
		ThenStatus(evokestore.StatusCompleted).
		ThenOutcome(evokestore.EndCompleted)
	if s := f.State(); s.Status != "verified" {
		t.Errorf("State() = %+v", s)
	}
}

func TestFixtureGivenIsNotChecked(t *testing.T) {
	t.Parallel()
	f := newSignup(t)
	f.Given(signedUp("bob")).ThenCommands().ThenPhase("welcomed")
	f.When(evoke.NewEvent("Verified", userData{"bob"})).ThenCommands().ThenPhase("verified")
}

func TestFixtureGivenState(t *testing.T) {
	t.Parallel()
	f := newSignup(t).GivenState("cy", signupState{User: "cy", Status: "welcomed"})
	f.ThenPhase("welcomed").ThenStatus(evokestore.StatusRunning).ThenDeadlines()
	f.When(evoke.NewEvent("Verified", userData{"cy"})).
		ThenCommands().
		ThenState(signupState{User: "cy", Status: "verified"}).
		ThenStatus(evokestore.StatusCompleted)
}

func TestFixtureRejectionFlowsBack(t *testing.T) {
	t.Parallel()
	f := newSignup(t, evoketest.NewAggregate("mailer", mailer{}), evoketest.StubAggregate("admin"))
	f.When(signedUp("bounce")).
		ThenCommands(
			evoke.NewCommand("send_welcome", "mailer", "bounce", userData{"bounce"}),
			evoke.NewCommand("notify_admin", "admin", "admins", userData{"bounce"}),
		).
		ThenPhase("bounced").
		ThenStatus(evokestore.StatusCompensating)
	cmds := f.Commands()
	if len(cmds) != 2 || cmds[1].Metadata.CausationID == "" || cmds[0].ID == "" {
		t.Errorf("Commands() = %+v, want two with IDs and lineage", cmds)
	}
}

func TestFixtureParksAFailingStep(t *testing.T) {
	t.Parallel()
	f := newSignup(t)
	f.When(signedUp("boom")).ThenCommands().ThenStatus(evokestore.StatusParked)
}

// recordingTB records what a test reports; Fatalf ends its goroutine, as
// testing.T's does. Its temporary directories and cleanups are the real
// test's.
type recordingTB struct {
	testing.TB
	errors []string
	fatal  string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fail runs fn with a recordingTB on its own goroutine and returns what it
// reported, errors and fatal failure alike.
func fail(t *testing.T, fn func(tb testing.TB)) string {
	tb := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return strings.Join(append(tb.errors, tb.fatal), "\n")
}

func TestFixtureFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fn   func(tb testing.TB)
		want []string
	}{
		{"commands", func(tb testing.TB) {
			newSignup(tb).When(signedUp("ann")).ThenCommands(
				evoke.NewCommand("send_welcome", "mailer", "ann", userData{"anne"}),
				evoke.NewCommand("send_gift", "mailer", "ann", nil))
		}, []string{
			"after When(SignedUp): commands differ (-want +got):",
			`- send_welcome -> mailer/ann {"user":"anne"}`,
			`- send_gift -> mailer/ann {}`,
			`+ send_welcome -> mailer/ann {"user":"ann"}`,
		}},
		{"no commands", func(tb testing.TB) {
			newSignup(tb).When(signedUp("ann")).ThenCommands()
		}, []string{`+ send_welcome -> mailer/ann {"user":"ann"}`}},
		{"rejected command", func(tb testing.TB) {
			newSignup(tb, evoketest.NewAggregate("mailer", mailer{}), evoketest.StubAggregate("admin")).
				When(signedUp("bounce")).ThenCommands()
		}, []string{"send_welcome was rejected: mailbox unavailable"}},
		{"phase", func(tb testing.TB) {
			newSignup(tb).When(signedUp("ann")).ThenPhase("verified")
		}, []string{`after When(SignedUp): phase of ann is "welcomed", want "verified"`}},
		{"state", func(tb testing.TB) {
			newSignup(tb).When(signedUp("ann")).ThenState(signupState{User: "ann", Status: "welcomed"})
		}, []string{"state of ann differs (-want +got):", `+   "remind": "2025-01-02T00:00:00Z",`, `    "status": "welcomed",`}},
		{"status", func(tb testing.TB) {
			newSignup(tb).When(signedUp("boom")).ThenStatus(evokestore.StatusRunning)
		}, []string{"after When(SignedUp): boom is parked, want running: ", "cannot sign up boom"}},
		{"outcome", func(tb testing.TB) {
			newSignup(tb).When(signedUp("ann")).ThenOutcome(evokestore.EndCompleted)
		}, []string{`after When(SignedUp): ann ended "" (running), want "completed"`}},
		{"deadlines", func(tb testing.TB) {
			newSignup(tb).When(signedUp("ann")).AdvanceTime(time.Minute).ThenDeadlines()
		}, []string{"after AdvanceTime(1m0s): deadlines of ann differ (-want +got):", "+ remind at 2025-01-02T00:00:00Z"}},
		{"existing instance", func(tb testing.TB) {
			newSignup(tb).When(signedUp("ann")).GivenState("ann", signupState{})
		}, []string{"GivenState(ann): "}},
		{"no instance", func(tb testing.TB) {
			newSignup(tb).ThenPhase("welcomed")
		}, []string{"after Given: no event correlated to an instance of signup"}},
		{"missing aggregate", func(tb testing.TB) {
			newSignup(tb, evoketest.NewAggregate("mailer", mailer{})).When(signedUp("bounce"))
		}, []string{"the runtime rejected notify_admin", "list the aggregate in FixtureOpts.Aggregates"}},
		{"bad event", func(tb testing.TB) {
			newSignup(tb).When(evoke.NewEvent("SignedUp", func() {}))
		}, []string{"When(SignedUp): append to \"evoketest\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := fail(t, tc.fn)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("reported:\n%s\nwant it to contain %q", got, w)
				}
			}
		})
	}
}
