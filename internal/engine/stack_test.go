package engine

import (
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
)

type stacked struct{ stack []byte }

func (e *stacked) Error() string      { return "panic in pm.Handle: boom" }
func (e *stacked) StackTrace() []byte { return e.stack }

func explode() { panic("boom") }

// The stored text of a recovered panic holds its message and the frames
// from the panicking function on, without the recovery's own frames.
func TestErrorTextHasTrimmedStack(t *testing.T) {
	t.Parallel()
	var err error
	func() {
		defer func() {
			if recover() != nil {
				err = &stacked{stack: debug.Stack()}
			}
		}()
		explode()
	}()
	text := ErrorText(fmt.Errorf("step: %w", err))
	msg, stack, ok := strings.Cut(text, "\n\n")
	if !ok || msg != "step: panic in pm.Handle: boom" {
		t.Fatalf("text %q: want the message, a blank line and the stack", text)
	}
	if !strings.HasPrefix(stack, "goroutine ") || !strings.Contains(stack, "engine.explode") ||
		strings.Contains(stack, "runtime/debug.Stack") || strings.Contains(stack, "\npanic(") {
		t.Fatalf("stack %q: want the goroutine and the frames from explode on", stack)
	}
	if ErrorText(fmt.Errorf("plain")) != "plain" {
		t.Fatal("an error without a stack is its message")
	}
	long := "goroutine 1 [running]:\n" + strings.Repeat("main.f()\n\t/x.go:1 +0x1\n", MaxStackLen/10)
	if got := TrimStack([]byte(long)); len(got) > MaxStackLen+5 || !strings.HasSuffix(got, "\n\t...") {
		t.Fatalf("a long stack is cut to %d bytes, ending %q", len(got), got[len(got)-10:])
	}
}
