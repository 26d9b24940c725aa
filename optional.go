package evoke

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// optionalMethod is a method of an optional interface of ProcessManager[S].
type optionalMethod struct {
	name  string
	iface reflect.Type // the interface, with S instantiated
	sig   string       // its signature, with %s for the state type
}

// optionalMethods lists the optional interfaces' methods for the state type
// S, so that a method named like one with another signature, which would
// silently not implement it, is refused at registration.
func optionalMethods[S any]() []optionalMethod {
	return []optionalMethod{
		{"Compensate", reflect.TypeFor[Compensator[S]](), "Compensate(state %s, failed evoke.FailedCommand) ([]evoke.Command, bool)"},
		{"Timeout", reflect.TypeFor[Timeouter](), "Timeout() time.Duration"},
		{"Deadlines", reflect.TypeFor[Deadliner[S]](), "Deadlines(state %s) []evoke.Deadline"},
		{"Completed", reflect.TypeFor[Completer[S]](), "Completed(state %s) bool"},
		{"Phase", reflect.TypeFor[PhaseReporter[S]](), "Phase(state %s) string"},
		{"Strict", reflect.TypeFor[Strict](), "Strict() bool"},
		{"OnFailure", reflect.TypeFor[FailureHandler](), "OnFailure(f evoke.Failure) evoke.FailureAction"},
		{"DiscardPending", reflect.TypeFor[Discarder](), "DiscardPending(rejected evoke.FailedCommand) bool"},
		{"StateVersion", reflect.TypeFor[Versioned](), "StateVersion() int"},
		{"Upcasters", reflect.TypeFor[Versioned](), "Upcasters() map[int]evoke.Upcaster"},
	}
}

// checkOptional refuses a process manager with a method named like an
// optional interface's that does not implement it: a wrong signature, or a
// pointer receiver on a process manager registered by value.
func checkOptional[S any](pm ProcessManager[S]) error {
	t := reflect.TypeOf(pm)
	state := reflect.TypeFor[S]().String()
	for _, o := range optionalMethods[S]() {
		want := strings.ReplaceAll(o.sig, "%s", state)
		m, ok := t.MethodByName(o.name)
		if !ok {
			if t.Kind() != reflect.Pointer {
				if _, onPtr := reflect.PointerTo(t).MethodByName(o.name); onPtr {
					return fmt.Errorf("%w: process manager %q: %s has a pointer receiver, so %s does not have it: register a *%s",
						ErrInvalid, pm.Name(), o.name, t, t)
				}
			}
			continue
		}
		im, _ := o.iface.MethodByName(o.name)
		if !sameSignature(m.Type, im.Type) {
			return fmt.Errorf("%w: process manager %q: method %s is %s, want %s (%s)",
				ErrInvalid, pm.Name(), o.name, methodSig(m), want, o.iface)
		}
	}
	for _, o := range optionalMethods[S]() {
		if _, ok := t.MethodByName(o.name); ok && !t.Implements(o.iface) {
			return fmt.Errorf("%w: process manager %q: method %s without the other methods of %s", ErrInvalid, pm.Name(), o.name, o.iface)
		}
	}
	return nil
}

// sameSignature reports whether method type m (receiver first) has the
// signature of interface method type im.
func sameSignature(m, im reflect.Type) bool {
	if m.NumIn() != im.NumIn()+1 || m.NumOut() != im.NumOut() || m.IsVariadic() != im.IsVariadic() {
		return false
	}
	for i := range im.NumIn() {
		if m.In(i+1) != im.In(i) {
			return false
		}
	}
	for i := range im.NumOut() {
		if m.Out(i) != im.Out(i) {
			return false
		}
	}
	return true
}

// methodSig shows a method's signature without its receiver.
func methodSig(m reflect.Method) string {
	ft := m.Type
	in := make([]string, 0, ft.NumIn())
	for i := 1; i < ft.NumIn(); i++ { // skip the receiver
		in = append(in, ft.In(i).String())
	}
	out := make([]string, 0, ft.NumOut())
	for i := range ft.NumOut() {
		out = append(out, ft.Out(i).String())
	}
	s := fmt.Sprintf("%s(%s)", m.Name, strings.Join(in, ", "))
	switch len(out) {
	case 0:
	case 1:
		s += " " + out[0]
	default:
		s += " (" + strings.Join(out, ", ") + ")"
	}
	return s
}

// Rejected returns the command a CommandRejectedEvent reports rejected, with
// the aggregate's reason (as Compensate receives it, metadata aside), and
// false for any other event.
func Rejected(e Event) (FailedCommand, bool) {
	var d rejectedData
	if e.Type != CommandRejectedEvent || json.Unmarshal(e.Data, &d) != nil {
		return FailedCommand{}, false
	}
	return FailedCommand{Reason: d.Reason, Command: Command{ID: d.CommandID, Type: d.CommandType,
		AggregateType: d.AggregateType, AggregateID: d.AggregateID, Payload: d.Payload}}, true
}

// DeadlineOf returns the deadline a DeadlineEvent reports as passed, and
// false for any other event.
func DeadlineOf(e Event) (Deadline, bool) {
	var d Deadline
	if e.Type != DeadlineEvent || json.Unmarshal(e.Data, &d) != nil {
		return Deadline{}, false
	}
	return d, true
}

// IsTimeout reports whether e is a TimeoutEvent.
func IsTimeout(e Event) bool { return e.Type == TimeoutEvent }
