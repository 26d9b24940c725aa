package booking

import (
	"errors"
	"fmt"

	"github.com/evoke-go/evoke"
)

// Rejection errors of Booking.
var (
	// ErrAlreadyReserved rejects a second reserve.
	ErrAlreadyReserved = errors.New("already reserved")
	// ErrNotReserved rejects a confirm before reserve.
	ErrNotReserved = errors.New("not reserved")
	// ErrAlreadyConfirmed rejects a second confirm, and a cancel_booking
	// after confirm.
	ErrAlreadyConfirmed = errors.New("already confirmed")
	// ErrCancelled rejects reserve, confirm and cancel_booking on a
	// cancelled booking.
	ErrCancelled = errors.New("booking cancelled")
)

// BookingState is the state of one booking.
type BookingState struct {
	Reserved  bool `json:"reserved"`
	Confirmed bool `json:"confirmed"`
	Cancelled bool `json:"cancelled"`
}

// Booking is the "booking" aggregate:
//
//	reserve        -> SeatReserved     (rejected if reserved or cancelled)
//	confirm        -> BookingConfirmed (rejected unless reserved, or if confirmed or cancelled)
//	cancel_booking -> BookingCancelled (rejected if confirmed or cancelled)
type Booking struct{}

var _ evoke.Aggregate[BookingState] = Booking{}

// Execute decides on reserve, confirm and cancel_booking.
func (Booking) Execute(s BookingState, cmd evoke.Command) ([]evoke.Event, error) {
	var p CancelBooking // a superset of every payload's booking_id
	if err := cmd.Decode(&p); err != nil {
		return nil, err
	}
	id := p.BookingID
	if id == "" {
		id = cmd.AggregateID
	}
	if s.Cancelled {
		return nil, ErrCancelled
	}
	switch cmd.Type {
	case CommandReserve:
		if s.Reserved {
			return nil, ErrAlreadyReserved
		}
		var r Reserve
		if err := cmd.Decode(&r); err != nil {
			return nil, err
		}
		return []evoke.Event{evoke.NewEvent(EventSeatReserved, SeatReserved{BookingID: id, Seat: r.Seat})}, nil
	case CommandConfirm:
		switch {
		case s.Confirmed:
			return nil, ErrAlreadyConfirmed
		case !s.Reserved:
			return nil, ErrNotReserved
		}
		return []evoke.Event{evoke.NewEvent(EventBookingConfirmed, BookingConfirmed{BookingID: id})}, nil
	case CommandCancelBooking:
		if s.Confirmed {
			return nil, ErrAlreadyConfirmed
		}
		return []evoke.Event{evoke.NewEvent(EventBookingCancelled, BookingCancelled{BookingID: id, Reason: p.Reason})}, nil
	}
	return nil, fmt.Errorf("%s: unknown command %q", AggregateBooking, cmd.Type)
}

// Apply evolves the booking from its events.
func (Booking) Apply(s BookingState, e evoke.Event) BookingState {
	switch e.Type {
	case EventSeatReserved:
		s.Reserved = true
	case EventBookingConfirmed:
		s.Confirmed = true
	case EventBookingCancelled:
		s.Cancelled = true
	}
	return s
}
