package evoke

import (
	"time"

	"github.com/evoke-go/evoke/internal/engine"
)

// TelemetryKind names a telemetry event.
type TelemetryKind string

// Telemetry kinds: evoq's start, stop, command and compensate, and
// evoke's retry, park, skip, timeout and transition. A failed step is a
// retry, a park or a skip (as OnFailure decided; a stop is a stop with
// Err set).
const (
	TelemetryStart      TelemetryKind = engine.TelemetryStart
	TelemetryStop       TelemetryKind = engine.TelemetryStop
	TelemetryCommand    TelemetryKind = engine.TelemetryCommand
	TelemetryCompensate TelemetryKind = engine.TelemetryCompensate
	TelemetryRetry      TelemetryKind = engine.TelemetryRetry
	TelemetryPark       TelemetryKind = engine.TelemetryPark
	TelemetryTimeout    TelemetryKind = engine.TelemetryTimeout
	TelemetryTransition TelemetryKind = engine.TelemetryTransition
	TelemetrySkip       TelemetryKind = engine.TelemetrySkip
	// TelemetryStep is emitted for every step an instance commits (to
	// StepHooks only), with
	// Duration the time its Apply and Handle took and EventType the event
	// as Handle saw it.
	TelemetryStep TelemetryKind = engine.TelemetryStep
)

// Telemetry is one telemetry event. It is emitted after the transaction that
// made it true committed. Which fields are set depends on Kind: start
// (SystemTime; Name, ProcessID), stop (Duration, the instance's lifetime;
// Name, ProcessID, FinalState, Values), command (SystemTime; Name,
// CommandType, CommandID, Values), compensate (SystemTime; Name,
// FailedCommand), step (Duration, the time Apply and Handle took; Name,
// ProcessID, EventType, Values), retry and park (Name, ProcessID,
// EventType, Attempt, Err, Stack, Values), transition (FromPhase,
// ToPhase, EventType, Values).
type Telemetry struct {
	Kind       TelemetryKind
	SystemTime time.Time
	Duration   time.Duration
	// Name is the process manager's name.
	Name string
	// ProcessID is the instance ID.
	ProcessID string
	// FinalState is the JSON state an instance stopped with.
	FinalState    []byte
	CommandType   string
	CommandID     string
	FailedCommand string
	// FromPhase and ToPhase are a transition's phases (PhaseReporter).
	FromPhase, ToPhase string
	EventType          string
	Attempt            int
	Err                string
	// Stack is the stack of a recovered panic (PanicError) that failed the
	// step, trimmed to the frames from the panicking function on (retry,
	// park).
	Stack string
	// Values are the metadata values of the event stepped or of the
	// command produced, among them the trace context (TraceParentKey) that
	// evokeotel makes its spans children of.
	Values map[string]string
}

// StepHooks is implemented by Hooks that want a TelemetryStep event for
// every committed step, with the time its Apply and Handle took
// (evokeotel's step-duration histogram does). Steps are the most frequent
// telemetry: the runtime times them, and sends those events, only to hooks
// whose TimesSteps returns true.
type StepHooks interface {
	Hooks
	TimesSteps() bool
}

// Hooks receives telemetry; evokeotel implements it with OpenTelemetry.
// Telemetry runs on the runtime's goroutines: keep it fast and safe for
// concurrent use.
type Hooks interface {
	Telemetry(t Telemetry)
}

// hooksAdapter converts engine telemetry to the public type.
type hooksAdapter struct{ h Hooks }

func (a hooksAdapter) Telemetry(t engine.Telemetry) {
	pt := Telemetry{
		Kind: TelemetryKind(t.Kind), SystemTime: t.SystemTime, Duration: t.Duration, Name: t.ProcessManager,
		ProcessID: t.InstanceID, FinalState: t.FinalState, CommandType: t.CommandType, CommandID: t.CommandID,
		FailedCommand: t.FailedCommand, FromPhase: t.FromPhase, ToPhase: t.ToPhase, EventType: t.EventType,
		Attempt: t.Attempt, Err: t.Err, Stack: t.Stack, Values: decodeValues(t.Values),
	}
	a.h.Telemetry(pt)
}
