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
)

// Telemetry is one telemetry event. It is emitted after the transaction that
// made it true committed. Which fields are set depends on Kind, following the
// seed's table: start (SystemTime; Name, ProcessID), stop (Duration; Name,
// ProcessID, FinalState), command (SystemTime; Name, CommandType), compensate
// (SystemTime; Name, FailedCommand).
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
	// FromStatus and ToStatus are a transition's user-level statuses.
	FromStatus, ToStatus string
	EventType            string
	Attempt              int
	Err                  string
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
	a.h.Telemetry(Telemetry{
		Kind: TelemetryKind(t.Kind), SystemTime: t.SystemTime, Duration: t.Duration, Name: t.ProcessManager,
		ProcessID: t.InstanceID, FinalState: t.FinalState, CommandType: t.CommandType, CommandID: t.CommandID,
		FailedCommand: t.FailedCommand, FromStatus: t.FromPhase, ToStatus: t.ToPhase, EventType: t.EventType,
		Attempt: t.Attempt, Err: t.Err,
	})
}
