package evoketest

import (
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds, failing the
// test with "timed out waiting until what" after timeout (0 means 15s). It
// is for waiting on a runtime's background work; a deadline never fires by
// waiting here when the runtime runs on a virtual Clock: advance the clock.
// cond runs on the calling goroutine, so it may call tb.Fatal.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
