package booking_test

// End-to-end tests: the booking Process and the Booking aggregate run
// through the evoke runtime on a real SQLite file, with a virtual clock so
// that the 15-minute timeout fires when a test advances time, never by
// sleeping. Each test has its own store and runs in parallel.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/examples/booking"
)

var e2eT0 = time.Date(2025, 7, 1, 9, 0, 0, 0, time.UTC)

// e2eHarness is one test's runtime on a store file of its own, with a
// virtual clock (evoketest.Harness), and the booking's helpers.
type e2eHarness struct {
	*evoketest.Harness
}

func e2eOpen(t *testing.T) *e2eHarness {
	t.Helper()
	h := evoketest.NewHarness(t, func(rt *evoke.Runtime) error {
		if err := evoke.RegisterAggregate(rt, booking.AggregateBooking, booking.Booking{}); err != nil {
			return err
		}
		return evoke.RegisterProcessManager(rt, booking.Process{}, nil)
	}, &evoketest.HarnessOpts{Start: e2eT0})
	return &e2eHarness{Harness: h}
}

func (h *e2eHarness) request(id string) {
	h.TB.Helper()
	if _, err := h.Runtime.Append(context.Background(), "requests-"+id, evoke.NoStream,
		evoke.NewEvent(booking.EventBookingRequested, booking.BookingRequested{BookingID: id, CustomerID: "c-" + id, Seat: "12A"})); err != nil {
		h.TB.Fatal(err)
	}
}

// confirm dispatches confirm to the aggregate, which appends
// BookingConfirmed; it reports whether the aggregate accepted it.
func (h *e2eHarness) confirm(id string) (bool, error) {
	_, err := h.Runtime.Dispatch(context.Background(), evoke.NewCommand(booking.CommandConfirm, booking.AggregateBooking, id, booking.Confirm{BookingID: id}))
	var re *evoke.RejectedError
	if errors.As(err, &re) {
		return false, nil
	}
	return err == nil, err
}

func (h *e2eHarness) stream(id string) []evokestore.Event {
	h.TB.Helper()
	return h.Stream(evoke.StreamID(booking.AggregateBooking, id))
}

func (h *e2eHarness) waitReserved(ids ...string) {
	h.TB.Helper()
	for _, id := range ids {
		evoketest.Eventually(h.TB, evoketest.HarnessWait, "booking "+id+" is reserved", func() bool {
			return evoketest.Count(h.stream(id), booking.EventSeatReserved) == 1
		})
	}
	h.Idle()
}

func (h *e2eHarness) instance(id string) (evokestore.Instance, bool) {
	h.TB.Helper()
	return h.Instance(booking.Name, id)
}

func (h *e2eHarness) waitDone(id string) evokestore.Instance {
	h.TB.Helper()
	return h.WaitDone(booking.Name, id)
}

// commands returns the types of the commands the instance's steps produced,
// and how many steps handled a deadline.
func (h *e2eHarness) commands(id string) (cmds []string, deadlineSteps int) {
	cmds, deadlineSteps, _ = h.history(id)
	return cmds, deadlineSteps
}

// history is commands plus the log position of the last deadline step.
func (h *e2eHarness) history(id string) (cmds []string, deadlineSteps int, deadlinePos int64) {
	h.TB.Helper()
	hist, err := h.Store.History(context.Background(), booking.Name, id)
	if err != nil {
		h.TB.Fatal(err)
	}
	for _, r := range hist {
		if r.Kind != evokestore.KindStep {
			continue
		}
		if r.EventType == evoke.TimeoutEvent {
			deadlineSteps++
			deadlinePos = r.Position
		}
		if len(r.Commands) == 0 {
			continue
		}
		var refs []struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(r.Commands, &refs); err != nil {
			h.TB.Fatalf("history commands %s: %v", r.Commands, err)
		}
		for _, c := range refs {
			cmds = append(cmds, c.Type)
		}
	}
	return cmds, deadlineSteps, deadlinePos
}

func e2eCountString(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// checkTimedOut checks that the booking timed out once: one timeout step,
// one cancel_booking, one BookingCancelled.
func (h *e2eHarness) checkTimedOut(id string, at time.Time) {
	h.TB.Helper()
	in, _ := h.instance(id)
	if in.Status != evokestore.StatusCompleted || in.Phase != booking.StatusTimedOut {
		h.TB.Fatalf("%s: %s/%s, want completed/timed_out", id, in.Status, in.Phase)
	}
	cmds, deadlines := h.commands(id)
	if deadlines != 1 || e2eCountString(cmds, booking.CommandCancelBooking) != 1 {
		h.TB.Errorf("%s: %d timeout steps, commands %v; want one timeout and one cancel_booking", id, deadlines, cmds)
	}
	if n := evoketest.Count(h.stream(id), booking.EventBookingCancelled); n != 1 {
		h.TB.Errorf("%s: %d BookingCancelled, want 1", id, n)
	}
	var s booking.State
	if err := json.Unmarshal(in.State, &s); err != nil {
		h.TB.Fatal(err)
	}
	if !at.IsZero() && !s.TimedOutAt.Equal(at) {
		h.TB.Errorf("%s: timed out at %v, want %v", id, s.TimedOutAt, at)
	}
}

// afterMoreTime advances the clock far and checks that nothing happens to
// the (completed) booking.
func (h *e2eHarness) afterMoreTime(id string) {
	h.TB.Helper()
	before, _ := h.instance(id)
	n := len(h.stream(id))
	for range 3 {
		h.Clock.Advance(time.Hour)
		h.Idle()
	}
	after, _ := h.instance(id)
	if after.Version != before.Version || after.Phase != before.Phase || len(h.stream(id)) != n {
		h.TB.Errorf("%s changed with more time: %s v%d -> %s v%d, %d -> %d booking events",
			id, before.Phase, before.Version, after.Phase, after.Version, n, len(h.stream(id)))
	}
	if _, ok, _ := h.Store.NextDeadline(context.Background()); ok {
		h.TB.Errorf("%s: a deadline is left after completion", id)
	}
}

func TestE2ETimeoutFiresOnceAfter15Minutes(t *testing.T) {
	t.Parallel()
	h := e2eOpen(t)
	h.request("b1")
	h.waitReserved("b1")
	d, ok, err := h.Store.NextDeadline(context.Background())
	if err != nil || !ok || !d.DueAt.Equal(e2eT0.Add(booking.Timeout)) {
		t.Fatalf("deadline %+v %v %v, want one at %v", d, ok, err, e2eT0.Add(booking.Timeout))
	}
	h.Clock.Advance(booking.Timeout - time.Second)
	h.Idle()
	if in, _ := h.instance("b1"); in.Phase != booking.StatusAwaitingConfirmation || in.Status.Done() {
		t.Fatalf("before 15 minutes: %s/%s", in.Status, in.Phase)
	}
	h.Clock.Advance(time.Second)
	h.waitDone("b1")
	h.checkTimedOut("b1", e2eT0.Add(booking.Timeout))
	h.afterMoreTime("b1")
}

func TestE2ETimeoutSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := e2eOpen(t)
	h.request("b2")
	h.waitReserved("b2")
	h.Restart(nil)
	if in, _ := h.instance("b2"); in.Phase != booking.StatusAwaitingConfirmation {
		t.Fatalf("after the restart: %s", in.Phase)
	}
	h.Clock.Advance(booking.Timeout + time.Second)
	h.waitDone("b2")
	h.checkTimedOut("b2", e2eT0.Add(booking.Timeout+time.Second))
	h.afterMoreTime("b2")
}

// The deadline passes while no runtime runs; the next one fires it.
func TestE2EOverdueTimeoutFiresAfterRestart(t *testing.T) {
	t.Parallel()
	h := e2eOpen(t)
	h.request("b3")
	h.waitReserved("b3")
	h.Restart(func() { h.Clock.Advance(booking.Timeout + 5*time.Minute) })
	h.waitDone("b3")
	h.checkTimedOut("b3", e2eT0.Add(booking.Timeout+5*time.Minute))
	h.afterMoreTime("b3")
}

func TestE2EConfirmationBeatsTimeout(t *testing.T) {
	t.Parallel()
	h := e2eOpen(t)
	h.request("b4")
	h.waitReserved("b4")
	h.Clock.Advance(booking.Timeout - time.Second)
	h.Idle()
	if ok, err := h.confirm("b4"); !ok || err != nil {
		t.Fatalf("confirm: %v %v", ok, err)
	}
	in := h.waitDone("b4")
	if in.Status != evokestore.StatusCompleted || in.Phase != booking.StatusConfirmed {
		t.Fatalf("%s/%s, want completed/confirmed", in.Status, in.Phase)
	}
	h.Clock.Advance(10 * booking.Timeout)
	h.Idle()
	h.afterMoreTime("b4")
	if n := evoketest.Count(h.stream("b4"), booking.EventBookingCancelled); n != 0 {
		t.Errorf("%d BookingCancelled after a confirmation", n)
	}
	cmds, deadlines := h.commands("b4")
	if deadlines != 0 || e2eCountString(cmds, booking.CommandCancelBooking) != 0 {
		t.Errorf("timeout reached Handle after the confirmation: %d timeout steps, commands %v", deadlines, cmds)
	}
	if in, _ := h.instance("b4"); in.Phase != booking.StatusConfirmed {
		t.Errorf("status %s, want confirmed", in.Phase)
	}
}

// Confirmations race the clock: each booking ends with exactly one
// outcome, never both a cancellation and a confirmation.
func TestE2EConfirmationRacesTimeout(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			t.Parallel()
			e2eRace(t, 20)
		})
	}
}

func e2eRace(t *testing.T, n int) {
	h := e2eOpen(t)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%02d", i)
		h.request(ids[i])
		h.Clock.Advance(time.Second) // booking i is due at t0 + 15m + i s
	}
	h.waitReserved(ids...)
	// Just before the first deadline.
	h.Clock.Set(e2eT0.Add(booking.Timeout - 3*time.Second))
	h.Idle()

	var wg sync.WaitGroup
	accepted := make([]bool, n)
	wg.Go(func() {
		for range n + 6 {
			h.Clock.Advance(time.Second)
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		}
	})
	for i, k := range rand.Perm(n) {
		wg.Go(func() {
			time.Sleep(time.Duration(i)*time.Millisecond + time.Duration(rand.IntN(2000))*time.Microsecond)
			ok, err := h.confirm(ids[k])
			if err != nil {
				t.Errorf("confirm %s: %v", ids[k], err)
			}
			accepted[k] = ok
		})
	}
	wg.Wait()
	h.Idle()
	h.Clock.Advance(2 * time.Hour)
	h.Idle()

	var confirmed, cancelled, lateConfirm int
	for k, id := range ids {
		in, ok := h.instance(id)
		if !ok || in.Status != evokestore.StatusCompleted {
			t.Errorf("%s: %+v, want completed", id, in)
			continue
		}
		evs := h.stream(id)
		nCancelled, nConfirmed := evoketest.Count(evs, booking.EventBookingCancelled), evoketest.Count(evs, booking.EventBookingConfirmed)
		cmds, deadlines, deadlinePos := h.history(id)
		nCancel := e2eCountString(cmds, booking.CommandCancelBooking)
		if nCancelled+nConfirmed != 1 {
			t.Errorf("%s: %d BookingCancelled and %d BookingConfirmed, want exactly one outcome", id, nCancelled, nConfirmed)
		}
		if (nConfirmed == 1) != accepted[k] {
			t.Errorf("%s: confirm accepted %v but %d BookingConfirmed", id, accepted[k], nConfirmed)
		}
		switch in.Phase {
		case booking.StatusConfirmed:
			if nCancel == 0 {
				confirmed++
				if nCancelled != 0 || deadlines != 0 {
					t.Errorf("%s: confirmed, yet %d BookingCancelled, %d timeout steps", id, nCancelled, deadlines)
				}
				break
			}
			// The process timed out, but the aggregate took the
			// confirmation first and rejected the cancellation; the
			// rejection reached the (completed) instance, which now
			// says confirmed. The timeout came first in the log.
			lateConfirm++
			if nCancel != 1 || deadlines != 1 || nCancelled != 0 || nConfirmed != 1 {
				t.Errorf("%s: late confirmation with %d cancel_booking, %d timeout steps, %d BookingCancelled, %d BookingConfirmed",
					id, nCancel, deadlines, nCancelled, nConfirmed)
			}
			for _, e := range evs {
				if e.Type == booking.EventBookingConfirmed && e.Position < deadlinePos {
					t.Errorf("%s: timed out on a deadline at position %d, after BookingConfirmed at %d", id, deadlinePos, e.Position)
				}
			}
		case booking.StatusTimedOut:
			cancelled++
			if nCancel != 1 || deadlines != 1 || nCancelled != 1 {
				t.Errorf("%s: timed out with %d cancel_booking, %d timeout steps, %d BookingCancelled, want 1 each", id, nCancel, deadlines, nCancelled)
			}
		default:
			t.Errorf("%s: status %s, want confirmed or timed_out", id, in.Phase)
		}
	}
	t.Logf("%d confirmed, %d timed out and cancelled, %d timed out but confirmed first by the aggregate; stats %+v",
		confirmed, cancelled, lateConfirm, h.Runtime.Stats())
	if s := h.Runtime.Stats(); s.Failures != 0 || s.Parked != 0 {
		t.Errorf("stats %+v", s)
	}
}
