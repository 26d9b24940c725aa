package evoketest

import (
	"fmt"
	"strings"
	"sync"

	"github.com/evoke-go/evoke"
)

// Aggregate is an aggregate for FixtureOpts.Aggregates.
type Aggregate struct {
	register func(rt *evoke.Runtime, rec *recorder) error
}

// NewAggregate returns the aggregate agg under aggregateType, as
// evoke.RegisterAggregate registers it.
func NewAggregate[S any](aggregateType string, agg evoke.Aggregate[S]) Aggregate {
	return Aggregate{register: func(rt *evoke.Runtime, rec *recorder) error {
		return evoke.RegisterAggregate[S](rt, aggregateType, recording[S]{agg: agg, rec: rec})
	}}
}

// StubAggregate returns an aggregate of type aggregateType that accepts
// every command and emits no events: the process manager's commands to it
// are recorded and nothing flows back.
func StubAggregate(aggregateType string) Aggregate {
	return Aggregate{register: func(rt *evoke.Runtime, rec *recorder) error {
		return evoke.RegisterAggregate[struct{}](rt, aggregateType, recording[struct{}]{rec: rec})
	}}
}

// recording wraps an aggregate (nil for a stub) to record the commands it
// executes, by ID, with their payloads.
type recording[S any] struct {
	agg evoke.Aggregate[S]
	rec *recorder
}

func (r recording[S]) Execute(s S, cmd evoke.Command) ([]evoke.Event, error) {
	var evs []evoke.Event
	var err error
	if r.agg != nil {
		evs, err = r.agg.Execute(s, cmd)
	}
	r.rec.executed(cmd, err)
	return evs, err
}

func (r recording[S]) Apply(s S, e evoke.Event) S {
	if r.agg == nil {
		return s
	}
	return r.agg.Apply(s, e)
}

// recorder holds what the aggregates executed and what the runtime's
// telemetry reported.
type recorder struct {
	mu       sync.Mutex
	commands map[string]evoke.Command // by ID
	rejected map[string]string        // reason by command ID
	unknown  []string                 // aggregate types the runtime did not know
}

func (r *recorder) executed(cmd evoke.Command, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands[cmd.ID] = cmd
	if err != nil {
		r.rejected[cmd.ID] = err.Error()
	} else {
		delete(r.rejected, cmd.ID)
	}
}

// Telemetry notes compensations for commands to unknown aggregates.
func (r *recorder) Telemetry(t evoke.Telemetry) {
	if t.Kind != evoke.TelemetryCompensate || !strings.HasPrefix(t.Err, "unknown aggregate type") {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unknown = append(r.unknown, fmt.Sprintf("%s (%s)", t.FailedCommand, t.Err))
}
