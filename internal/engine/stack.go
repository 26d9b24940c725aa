package engine

import (
	"errors"
	"strings"

	"github.com/evoke-go/evoke/evokestore"
)

// StackTracer is an error that carries the stack of a recovered panic
// (evoke.PanicError is one). The runtime keeps the stack with the
// instance's last error and its history, logs it, and passes it to
// telemetry.
type StackTracer interface {
	StackTrace() []byte
}

// MaxStackLen bounds a stack kept with an error text, in bytes.
const MaxStackLen = 8 << 10

// PanicStack returns the stack err carries (see StackTracer), trimmed
// (TrimStack), or "".
func PanicStack(err error) string {
	var st StackTracer
	if !errors.As(err, &st) {
		return ""
	}
	return TrimStack(st.StackTrace())
}

// ErrorText returns err's text as the runtime stores it: its message and,
// for a recovered panic, a blank line and the trimmed stack.
func ErrorText(err error) string {
	msg := err.Error()
	if s := PanicStack(err); s != "" {
		msg += "\n\n" + s
	}
	return evokestore.Text(msg)
}

// TrimStack returns a goroutine's stack as runtime/debug.Stack writes it,
// without the frames of the recovery itself (those before the call to
// panic) and cut at a line to at most MaxStackLen bytes.
func TrimStack(stack []byte) string {
	s := string(stack)
	header, rest, found := strings.Cut(s, "\n")
	if !found {
		return evokestore.Text(s)
	}
	if i := strings.Index(rest, "\npanic("); i >= 0 {
		// Skip the panic call and its file line.
		after := rest[i+1:]
		if _, frames, ok := strings.Cut(after, "\n"); ok {
			if _, frames, ok = strings.Cut(frames, "\n"); ok {
				rest = frames
			}
		}
	} else if strings.HasPrefix(rest, "panic(") {
		if _, frames, ok := strings.Cut(rest, "\n"); ok {
			if _, frames, ok = strings.Cut(frames, "\n"); ok {
				rest = frames
			}
		}
	}
	s = header + "\n" + strings.TrimRight(rest, "\n")
	if len(s) > MaxStackLen {
		cut := strings.LastIndexByte(s[:MaxStackLen], '\n')
		if cut < 0 {
			cut = MaxStackLen
		}
		s = s[:cut] + "\n\t..."
	}
	return evokestore.Text(s)
}

// errorAttrs returns the log attributes of an error text as ErrorText
// makes it: "err" with its message and, for a recovered panic, "stack".
func errorAttrs(text string) []any {
	if i := strings.Index(text, "\n\ngoroutine "); i >= 0 {
		return []any{"err", text[:i], "stack", text[i+2:]}
	}
	return []any{"err", text}
}
