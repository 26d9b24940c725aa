// Package booking mirrors evoq's "Timeout Handling" section
// (booking_pm): a booking waits for confirmation, and when none comes within
// 15 minutes of inactivity the process manager cancels it.
//
// BookingRequested (appended by the application) starts a Process, which
// sends reserve to the Booking aggregate; the aggregate answers with
// SeatReserved, which the process manager ignores, so there is no loop.
// BookingConfirmed (from confirm) completes the process; an evoke.TimeoutEvent
// while awaiting confirmation sends cancel_booking, which Booking rejects if
// the booking was confirmed meanwhile.
package booking

import (
	"time"

	"github.com/evoke-go/evoke"
)

// Name is the process manager's name.
const Name = "booking"

// Timeout is evoq's timeout/0: 15 minutes.
const Timeout = 15 * time.Minute

// AggregateBooking is the aggregate type of Booking; its ID is the booking
// ID.
const AggregateBooking = "booking"

// Event types.
const (
	// EventBookingRequested starts a booking; its data is BookingRequested.
	EventBookingRequested = "BookingRequested"
	// EventSeatReserved is emitted by reserve; its data is SeatReserved.
	EventSeatReserved = "SeatReserved"
	// EventBookingConfirmed is emitted by confirm; its data is
	// BookingConfirmed.
	EventBookingConfirmed = "BookingConfirmed"
	// EventBookingCancelled is emitted by cancel_booking; its data is
	// BookingCancelled.
	EventBookingCancelled = "BookingCancelled"
)

// Command types, all for AggregateBooking.
const (
	// CommandReserve's payload is Reserve.
	CommandReserve = "reserve"
	// CommandConfirm's payload is Confirm.
	CommandConfirm = "confirm"
	// CommandCancelBooking's payload is CancelBooking.
	CommandCancelBooking = "cancel_booking"
)

// ReasonTimeout is the reason of the cancel_booking a timeout sends.
const ReasonTimeout = "timeout"

// Statuses of a booking process, in State.Status.
const (
	// StatusAwaitingConfirmation follows BookingRequested.
	StatusAwaitingConfirmation = "awaiting_confirmation"
	// StatusConfirmed follows BookingConfirmed; it is final.
	StatusConfirmed = "confirmed"
	// StatusTimedOut follows a timeout while awaiting confirmation; it is
	// final.
	StatusTimedOut = "timed_out"
)

// BookingRequested is the data of EventBookingRequested.
type BookingRequested struct {
	BookingID  string `json:"booking_id"`
	CustomerID string `json:"customer_id,omitempty"`
	Seat       string `json:"seat,omitempty"`
}

// SeatReserved is the data of EventSeatReserved.
type SeatReserved struct {
	BookingID string `json:"booking_id"`
	Seat      string `json:"seat,omitempty"`
}

// BookingConfirmed is the data of EventBookingConfirmed.
type BookingConfirmed struct {
	BookingID string `json:"booking_id"`
}

// BookingCancelled is the data of EventBookingCancelled.
type BookingCancelled struct {
	BookingID string `json:"booking_id"`
	Reason    string `json:"reason,omitempty"`
}

// Reserve is the payload of CommandReserve.
type Reserve struct {
	BookingID string `json:"booking_id"`
	Seat      string `json:"seat,omitempty"`
}

// Confirm is the payload of CommandConfirm.
type Confirm struct {
	BookingID string `json:"booking_id"`
}

// CancelBooking is the payload of CommandCancelBooking.
type CancelBooking struct {
	BookingID string `json:"booking_id"`
	Reason    string `json:"reason,omitempty"`
}

// State is the state of one booking process.
type State struct {
	BookingID  string `json:"booking_id"`
	CustomerID string `json:"customer_id,omitempty"`
	Seat       string `json:"seat,omitempty"`
	Status     string `json:"status"`
	// StartedAt is the RecordedAt of BookingRequested.
	StartedAt time.Time `json:"started_at"`
	// TimedOutAt is the RecordedAt of the timeout event, if one came.
	TimedOutAt time.Time `json:"timed_out_at,omitzero"`
}

// Process is the booking process manager. It is Strict: a
// BookingConfirmed without a running process is dropped.
type Process struct{}

var (
	_ evoke.ProcessManager[State] = Process{}
	_ evoke.Timeouter             = Process{}
	_ evoke.Completer[State]      = Process{}
	_ evoke.PhaseReporter[State]  = Process{}
	_ evoke.Strict                = Process{}
)

// Name returns "booking".
func (Process) Name() string { return Name }

// InterestedIn returns BookingRequested and BookingConfirmed.
func (Process) InterestedIn() []string {
	return []string{EventBookingRequested, EventBookingConfirmed}
}

// Correlate routes by booking_id: BookingRequested starts the process,
// BookingConfirmed continues it.
func (Process) Correlate(e evoke.Event) evoke.Correlation {
	if e.Type == EventBookingRequested {
		return evoke.ByField(e, "booking_id", evoke.Start)
	}
	return evoke.ByField(e, "booking_id", evoke.Continue)
}

// Apply records the request and its time on BookingRequested.
func (Process) Apply(s State, e evoke.Event) State {
	if e.Type != EventBookingRequested || s.Status != "" {
		return s
	}
	if d, err := evoke.Decode[BookingRequested](e); err == nil {
		s.BookingID, s.CustomerID, s.Seat = d.BookingID, d.CustomerID, d.Seat
		s.StartedAt = e.RecordedAt
	}
	return s
}

// Handle reserves on BookingRequested (awaiting_confirmation), completes on
// BookingConfirmed (confirmed) and, as evoq's
// handle(#{status := awaiting_confirmation}, timeout, _) does, cancels the
// booking with reason "timeout" on evoke.TimeoutEvent while awaiting
// confirmation (timed_out). Anything else changes nothing.
func (Process) Handle(s State, e evoke.Event) (State, []evoke.Command, error) {
	switch e.Type {
	case EventBookingRequested:
		if _, err := evoke.Decode[BookingRequested](e); err != nil {
			return s, nil, err
		}
		if s.Status != "" {
			return s, nil, nil // duplicate request: already reserving
		}
		s.Status = StatusAwaitingConfirmation
		return s, []evoke.Command{evoke.NewCommand(CommandReserve, AggregateBooking, s.BookingID,
			Reserve{BookingID: s.BookingID, Seat: s.Seat})}, nil
	case EventBookingConfirmed:
		if s.Status == StatusAwaitingConfirmation {
			s.Status = StatusConfirmed
		}
	case evoke.CommandRejectedEvent:
		// The aggregate took a confirmation before our cancellation:
		// the booking stands. The instance has completed already (timed
		// out); the runtime still delivers the rejection so the state
		// tells the truth.
		d, _ := evoke.Rejected(e) // the runtime's own event: it decodes
		if d.Command.Type == CommandCancelBooking && s.Status == StatusTimedOut {
			s.Status = StatusConfirmed
		}
	case evoke.TimeoutEvent:
		if s.Status == StatusAwaitingConfirmation {
			s.Status = StatusTimedOut
			s.TimedOutAt = e.RecordedAt
			return s, []evoke.Command{evoke.NewCommand(CommandCancelBooking, AggregateBooking, s.BookingID,
				CancelBooking{BookingID: s.BookingID, Reason: ReasonTimeout})}, nil
		}
	}
	return s, nil, nil
}

// Timeout returns 15 minutes.
func (Process) Timeout() time.Duration { return Timeout }

// Strict returns true.
func (Process) Strict() bool { return true }

// Completed reports whether the booking is confirmed or timed out.
func (Process) Completed(s State) bool {
	return s.Status == StatusConfirmed || s.Status == StatusTimedOut
}

// Status returns s.Status.
func (Process) Phase(s State) string { return s.Status }
