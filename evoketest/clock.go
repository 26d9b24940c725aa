// Package evoketest helps test process managers and code built on evoke.
//
// Fixture tests one process manager given/when/then:
//
//	f := evoketest.NewFixture(t, orderfulfillment.Fulfillment{}, &evoketest.FixtureOpts{
//		Aggregates: []evoketest.Aggregate{evoketest.NewAggregate("payment", orderfulfillment.Payment{})},
//	})
//	f.Given(evoke.NewEvent("OrderPlaced", placed))
//	f.When(evoke.NewEvent("PaymentReceived", paid)).
//		ThenCommands(evoke.NewCommand("reserve_inventory", "inventory", "order-1", reserve)).
//		ThenStatus("awaiting_inventory")
//	f.AdvanceTime(15 * time.Minute).ThenCommands(refund)
//
// It drives a real evoke.Runtime on a SQLite file in the test's temporary
// directory with a virtual clock, so the events are stepped by the same
// code as in production: correlation, Apply and Handle, compensation of
// rejected commands, timeouts and deadlines, completion. Aggregates are
// either real (NewAggregate: their events and rejections flow back to the
// process manager) or stubs that accept every command (StubAggregate). A
// fixture starts in tens of milliseconds and a When takes a few, so that
// fixture tests run as unit tests; Apply and Handle remain plain functions
// for tests that call them directly.
//
// The rest are building blocks for tests of a runtime of one's own: a
// virtual Clock that moves only when the test says so, so deadlines fire
// without sleeping; WaitIdle, which waits until a runtime has nothing left
// to do; Eventually; and Instance, which reads an instance from a store.
package evoketest

import (
	"sync"
	"time"
)

// Clock is a virtual clock implementing evoke.Clock. Its time only moves
// with Advance or Set, and timers fire when it passes their due time. It is
// safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*timer]struct{}
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, timers: map[*timer]struct{}{}}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a channel that receives when the clock reaches now+d, and
// a function that stops the timer (reporting whether it was pending).
func (c *Clock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t.ch, func() bool { return false }
	}
	c.timers[t] = struct{}{}
	return t.ch, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.timers[t]
		delete(c.timers, t)
		return pending
	}
}

// Advance moves the clock forward by d and fires the timers now due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(c.now.Add(d))
}

// Set moves the clock to t (never backwards) and fires the timers now due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.set(t)
	}
}

// Timers returns how many timers are pending, so a test can wait until the
// code under test is waiting on the clock before advancing it.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *Clock) set(t time.Time) {
	c.now = t
	for tm := range c.timers {
		if !tm.at.After(t) {
			tm.ch <- t
			delete(c.timers, tm)
		}
	}
}
