package evoke

import "time"

// Clock tells the runtime the time and makes its timers. Tests inject a
// virtual clock (evoketest.Clock) so that deadlines fire when the test
// advances time, never by sleeping.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed on this
	// clock, and a function that stops the timer.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
