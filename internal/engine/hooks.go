package engine

import "time"

// Telemetry kinds, evoq's table plus retry, park, skip and timeout.
const (
	TelemetryStart      = "start"
	TelemetryStop       = "stop"
	TelemetryCommand    = "command"
	TelemetryCompensate = "compensate"
	TelemetryRetry      = "retry"
	TelemetryPark       = "park"
	TelemetryTimeout    = "timeout"
	TelemetryTransition = "transition"
	TelemetrySkip       = "skip"
	TelemetryStep       = "step" // a committed step, with its duration
)

// Telemetry is one telemetry event, emitted after the transaction that made
// it true has committed.
type Telemetry struct {
	Kind           string
	SystemTime     time.Time
	Duration       time.Duration
	ProcessManager string
	InstanceID     string
	FinalState     []byte
	CommandType    string
	CommandID      string
	FailedCommand  string
	FromPhase      string
	ToPhase        string
	EventType      string
	Attempt        int
	Err            string
	// Stack is the trimmed stack of a recovered panic that failed a step
	// (retry, park).
	Stack string
	// Values are the metadata values (JSON) of the event stepped (step,
	// transition, stop, retry, park) or of the command produced (command).
	Values []byte
}

// Hooks receives telemetry. Implementations must be fast and safe for
// concurrent use; they run on the engine's goroutines.
type Hooks interface {
	Telemetry(t Telemetry)
}

// NopHooks discards telemetry.
type NopHooks struct{}

// Telemetry implements Hooks.
func (NopHooks) Telemetry(Telemetry) {}
