package booking_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/examples/booking"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func event(typ string, data any, at time.Time) evoke.Event {
	e := evoke.NewEvent(typ, data)
	e.RecordedAt = at
	return e
}

func requested() evoke.Event {
	return event(booking.EventBookingRequested,
		booking.BookingRequested{BookingID: "bk-1", CustomerID: "cust-1", Seat: "12A"}, t0)
}

func handle(t *testing.T, s booking.State, e evoke.Event) (booking.State, []evoke.Command) {
	t.Helper()
	pm := booking.Process{}
	s = pm.Apply(s, e)
	s, cmds, err := pm.Handle(s, e)
	if err != nil {
		t.Fatalf("Handle(%s): %v", e.Type, err)
	}
	return s, cmds
}

func TestProcessDeclaration(t *testing.T) {
	t.Parallel()
	pm := booking.Process{}
	if pm.Name() != "booking" || pm.Timeout() != 15*time.Minute || !pm.Strict() {
		t.Fatalf("Name %q, Timeout %v, Strict %v", pm.Name(), pm.Timeout(), pm.Strict())
	}
	if got := pm.InterestedIn(); !reflect.DeepEqual(got, []string{"BookingRequested", "BookingConfirmed"}) {
		t.Fatalf("InterestedIn = %v", got)
	}
	for _, tc := range []struct {
		e    evoke.Event
		kind evoke.CorrelationKind
	}{
		{requested(), evoke.KindStart},
		{event(booking.EventBookingConfirmed, booking.BookingConfirmed{BookingID: "bk-1"}, t0), evoke.KindContinue},
	} {
		if c := pm.Correlate(tc.e); c.Kind() != tc.kind || c.ID() != "bk-1" {
			t.Errorf("Correlate(%s) = %v", tc.e.Type, c)
		}
	}
}

// newFixture runs the process manager from t0, with a stub booking
// aggregate.
func newFixture(t *testing.T) *evoketest.Fixture[booking.State] {
	return evoketest.NewFixture(t, booking.Process{}, &evoketest.FixtureOpts{
		Aggregates: []evoketest.Aggregate{evoketest.StubAggregate(booking.AggregateBooking)},
		Start:      t0,
	})
}

func TestConfirmedWorkflow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.When(requested()).
		ThenCommands(evoke.NewCommand("reserve", booking.AggregateBooking, "bk-1", booking.Reserve{BookingID: "bk-1", Seat: "12A"})).
		ThenState(booking.State{BookingID: "bk-1", CustomerID: "cust-1", Seat: "12A", Status: booking.StatusAwaitingConfirmation, StartedAt: t0}).
		ThenDeadlines(evoke.Deadline{Name: evoke.TimeoutEvent, At: t0.Add(booking.Timeout)})
	f.AdvanceTime(time.Minute).
		When(evoke.NewEvent(booking.EventBookingConfirmed, booking.BookingConfirmed{BookingID: "bk-1"})).
		ThenCommands().ThenPhase(booking.StatusConfirmed).ThenStatus(evokestore.StatusCompleted).ThenDeadlines()
}

func TestDuplicateRequestReservesOnce(t *testing.T) {
	t.Parallel()
	s, _ := handle(t, booking.State{}, requested())
	later := requested()
	later.RecordedAt = t0.Add(time.Hour)
	s2, cmds := handle(t, s, later)
	if len(cmds) != 0 || s2 != s {
		t.Fatalf("state %+v, commands %v", s2, cmds)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.When(requested())
	f.AdvanceTime(booking.Timeout - time.Second).ThenCommands().ThenPhase(booking.StatusAwaitingConfirmation)
	f.AdvanceTime(time.Second).
		ThenCommands(evoke.NewCommand("cancel_booking", booking.AggregateBooking, "bk-1", booking.CancelBooking{BookingID: "bk-1", Reason: "timeout"})).
		ThenPhase(booking.StatusTimedOut).ThenStatus(evokestore.StatusCompleted)
	if s := f.State(); !s.TimedOutAt.Equal(t0.Add(booking.Timeout)) {
		t.Errorf("timed out at %v", s.TimedOutAt)
	}

	// A timeout in any other status does nothing.
	timeout := evoke.Event{Type: evoke.TimeoutEvent, RecordedAt: t0.Add(booking.Timeout)}
	for _, status := range []string{"", booking.StatusConfirmed, booking.StatusTimedOut} {
		before := booking.State{BookingID: "bk-1", Status: status}
		after, cmds := handle(t, before, timeout)
		if after != before || len(cmds) != 0 {
			t.Errorf("timeout in %q: state %+v, commands %v", status, after, cmds)
		}
	}
}

func TestBookingAggregate(t *testing.T) {
	t.Parallel()
	cmd := func(typ string) evoke.Command {
		return evoke.NewCommand(typ, booking.AggregateBooking, "bk-1", booking.CancelBooking{BookingID: "bk-1", Reason: "timeout"})
	}
	for _, tc := range []struct {
		name    string
		cmds    []string
		want    string
		wantErr error
	}{
		{"reserve", []string{"reserve"}, booking.EventSeatReserved, nil},
		{"confirm", []string{"reserve", "confirm"}, booking.EventBookingConfirmed, nil},
		{"cancel", []string{"reserve", "cancel_booking"}, booking.EventBookingCancelled, nil},
		{"cancel unreserved", []string{"cancel_booking"}, booking.EventBookingCancelled, nil},
		{"reserve twice", []string{"reserve", "reserve"}, "", booking.ErrAlreadyReserved},
		{"confirm unreserved", []string{"confirm"}, "", booking.ErrNotReserved},
		{"confirm twice", []string{"reserve", "confirm", "confirm"}, "", booking.ErrAlreadyConfirmed},
		{"cancel confirmed", []string{"reserve", "confirm", "cancel_booking"}, "", booking.ErrAlreadyConfirmed},
		{"confirm cancelled", []string{"reserve", "cancel_booking", "confirm"}, "", booking.ErrCancelled},
		{"cancel twice", []string{"cancel_booking", "cancel_booking"}, "", booking.ErrCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			agg := booking.Booking{}
			var s booking.BookingState
			var evs []evoke.Event
			var err error
			for _, typ := range tc.cmds {
				if evs, err = agg.Execute(s, cmd(typ)); err != nil {
					break
				}
				for _, e := range evs {
					s = agg.Apply(s, e)
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(evs) != 1 || evs[0].Type != tc.want {
				t.Fatalf("events %+v, err %v; want %s", evs, err, tc.want)
			}
			// Every event names its booking; only BookingConfirmed reaches
			// the process manager, and SeatReserved does not restart it.
			if id, err := evoke.Field(evs[0], "booking_id"); err != nil || id != "bk-1" {
				t.Fatalf("booking_id = %q, %v", id, err)
			}
		})
	}
	if _, err := (booking.Booking{}).Execute(booking.BookingState{}, cmd("refund")); err == nil {
		t.Fatal("accepted an unknown command")
	}
}
