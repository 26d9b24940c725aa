package evoketest_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evoketest"
)

// fatalTB records a Fatalf and ends its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a fatalTB on its own goroutine and returns what it
// failed with ("" if it returned).
func run(fn func(tb testing.TB)) string {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	evoketest.Eventually(t, time.Second, "the third call", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestEventuallyFailsAfterTheTimeout(t *testing.T) {
	start := time.Now()
	msg := run(func(tb testing.TB) {
		evoketest.Eventually(tb, 20*time.Millisecond, "pigs fly", func() bool { return false })
	})
	if msg != "timed out waiting until pigs fly" {
		t.Fatalf("failed with %q", msg)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", waited)
	}
}
