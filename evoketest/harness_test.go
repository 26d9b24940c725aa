package evoketest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// A restart starts the runtime with what register adds then: here the
// process manager value the test switched to, on the same file and clock.
func TestHarnessRestartRegistersAgain(t *testing.T) {
	t.Parallel()
	var pm evoke.ProcessManager[signupState] = signup{}
	h := evoketest.NewHarness(t, func(rt *evoke.Runtime) error {
		if err := evoke.RegisterAggregate(rt, "mailer", mailer{}); err != nil {
			return err
		}
		return evoke.RegisterProcessManager(rt, pm, nil)
	}, nil)
	t0 := h.Clock.Now()
	harnessSignUp(h, "ann")
	if got := harnessRemind(h, "ann"); !got.Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("ann: reminder at %v, want a day after %v (signup)", got, t0)
	}

	pm = signupV2{}
	h.Restart(func() { h.Clock.Advance(time.Hour) })
	harnessSignUp(h, "bob")
	if got := harnessRemind(h, "bob"); !got.Equal(t0.Add(time.Hour + 48*time.Hour)) {
		t.Errorf("bob: reminder at %v, want two days after %v (signupV2)", got, t0.Add(time.Hour))
	}
	if n := evoketest.Count(h.Stream(evoke.StreamID("mailer", "bob")), "MailSent"); n != 1 {
		t.Errorf("bob: %d MailSent, want 1", n)
	}
}

func harnessSignUp(h *evoketest.Harness, user string) {
	h.TB.Helper()
	if _, err := h.Runtime.Append(context.Background(), "users-"+user, evoke.NoStream, signedUp(user)); err != nil {
		h.TB.Fatal(err)
	}
	h.Idle()
}

// harnessRemind returns when the user's signup instance reminds them.
func harnessRemind(h *evoketest.Harness, user string) time.Time {
	h.TB.Helper()
	in, ok := evoketest.Instance(h.TB, h.Store, "signup", user)
	if !ok {
		h.TB.Fatalf("no signup instance for %s", user)
	}
	var s signupState
	if err := json.Unmarshal(in.State, &s); err != nil {
		h.TB.Fatal(err)
	}
	return s.Remind
}

func newSignupHarness(tb testing.TB) *evoketest.Harness {
	return evoketest.NewHarness(tb, func(rt *evoke.Runtime) error {
		if err := evoke.RegisterAggregate(rt, "mailer", mailer{}); err != nil {
			return err
		}
		return evoke.RegisterProcessManager(rt, signup{}, nil)
	}, nil)
}

// WaitDone returns the instance as it ended, and fails the test at once,
// with the instance's error, when it parks instead.
func TestHarnessWaitDone(t *testing.T) {
	t.Parallel()
	h := newSignupHarness(t)
	harnessSignUp(h, "ann")
	if _, err := h.Runtime.Append(context.Background(), "users-ann", evoke.AnyVersion, evoke.NewEvent("Verified", userData{"ann"})); err != nil {
		t.Fatal(err)
	}
	if in := h.WaitDone("signup", "ann"); in.Status != evokestore.StatusCompleted || in.Phase != "verified" {
		t.Errorf("ann ended %s in phase %q, want completed in verified", in.Status, in.Phase)
	}

	got := fail(t, func(tb testing.TB) {
		h := newSignupHarness(tb)
		if _, err := h.Runtime.Append(context.Background(), "users-boom", evoke.NoStream, signedUp("boom")); err != nil {
			tb.Fatal(err)
		}
		h.WaitDone("signup", "boom")
		tb.Errorf("WaitDone returned for an instance that cannot complete")
	})
	if !strings.Contains(got, "evoketest: signup boom is ") || !strings.Contains(got, "cannot sign up boom") || strings.Contains(got, "returned") {
		t.Errorf("WaitDone on a failing instance reported %q, want it failing or parked with its error", got)
	}
}
