package booking_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
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

func oneCommand(t *testing.T, cmds []evoke.Command, typ string) evoke.Command {
	t.Helper()
	if len(cmds) != 1 || cmds[0].Type != typ || cmds[0].AggregateType != "booking" || cmds[0].AggregateID != "bk-1" {
		t.Fatalf("commands = %+v, want one %s to booking/bk-1", cmds, typ)
	}
	return cmds[0]
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

func TestConfirmedWorkflow(t *testing.T) {
	t.Parallel()
	pm := booking.Process{}
	s, cmds := handle(t, booking.State{}, requested())
	if s.Status != booking.StatusAwaitingConfirmation || !s.StartedAt.Equal(t0) || s.Seat != "12A" {
		t.Fatalf("state = %+v", s)
	}
	var r booking.Reserve
	if err := oneCommand(t, cmds, "reserve").Decode(&r); err != nil || r != (booking.Reserve{BookingID: "bk-1", Seat: "12A"}) {
		t.Fatalf("reserve payload = %+v, %v", r, err)
	}
	if pm.Completed(s) {
		t.Fatal("completed while awaiting confirmation")
	}

	s, cmds = handle(t, s, event(booking.EventBookingConfirmed, booking.BookingConfirmed{BookingID: "bk-1"}, t0.Add(time.Minute)))
	if s.Status != booking.StatusConfirmed || len(cmds) != 0 || !pm.Completed(s) || pm.Status(s) != "confirmed" {
		t.Fatalf("state %+v, commands %v", s, cmds)
	}
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
	timeout := evoke.Event{Type: evoke.TimeoutEvent, RecordedAt: t0.Add(booking.Timeout)}
	pm := booking.Process{}

	s, _ := handle(t, booking.State{}, requested())
	s, cmds := handle(t, s, timeout)
	if s.Status != booking.StatusTimedOut || !pm.Completed(s) || !s.TimedOutAt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("state = %+v", s)
	}
	var c booking.CancelBooking
	if err := oneCommand(t, cmds, "cancel_booking").Decode(&c); err != nil || c != (booking.CancelBooking{BookingID: "bk-1", Reason: "timeout"}) {
		t.Fatalf("cancel_booking payload = %+v, %v", c, err)
	}

	// A timeout in any other status does nothing.
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
