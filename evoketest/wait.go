package evoketest

import (
	"context"
	"testing"
	"time"
)

// Idler is what WaitIdle waits on; *evoke.Runtime implements it.
type Idler interface {
	Idle(ctx context.Context) (bool, error)
}

// WaitIdle waits until rt has nothing left to do (see evoke.Runtime.Idle),
// failing the test after timeout (0 means 15s). It polls the store; it does
// not wait for deadlines, which only fire when a virtual clock is advanced.
func WaitIdle(tb testing.TB, rt Idler, timeout time.Duration) {
	tb.Helper()
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		idle, err := rt.Idle(ctx)
		if err != nil && ctx.Err() == nil {
			tb.Fatalf("evoketest: idle check: %v", err)
		}
		if idle {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("evoketest: the runtime was still busy after %v", timeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
