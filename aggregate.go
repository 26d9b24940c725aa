package evoke

// Aggregate decides on commands for one aggregate type over a state of type
// S rebuilt from the aggregate's stream. The zero S is a new aggregate's
// state.
//
// Execute returns the events the command causes, or an error to reject the
// command (a business error, passed to the issuing process manager's
// Compensate). The runtime records each command's outcome under its ID, in
// the same transaction as the events, so a command delivered twice takes
// effect once.
type Aggregate[S any] interface {
	Execute(state S, cmd Command) ([]Event, error)
	Apply(state S, e Event) S
}
