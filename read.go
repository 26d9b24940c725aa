package evoke

import (
	"context"
	"fmt"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// Instance is a typed read of one process-manager instance.
type Instance[S any] struct {
	ProcessManager string
	ID             string
	// State is the instance's state, upgraded to the process manager's
	// state version (see Versioned). It is the zero S when Stepped is false
	// or StateErr is set.
	State S
	// Stepped reports whether the instance has committed a step. An
	// instance whose first event failed exists (failing or parked, holding
	// that event) but has no state yet.
	Stepped bool
	// StateErr is a *StateError when the stored state does not load under
	// the current code.
	StateErr error
	// Phase is the phase its PhaseReporter reported after the last step
	// ("" without one).
	Phase string
	// Status is where the runtime has the instance: running,
	// compensating, failing, parked, completed or cancelled (the STATUS of
	// evoke list, evokestore.Instance.Status).
	Status evokestore.InstanceStatus
	// Outcome is how a done instance ended: completed, compensated,
	// timed_out or cancelled; "" while it runs.
	Outcome evokestore.InstanceOutcome
	// Version counts the committed steps.
	Version int64
	// Attempts and LastError describe the failing step of a failing or
	// parked instance.
	Attempts  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
	// CompletedAt is when it completed or was cancelled.
	CompletedAt time.Time
}

// ReadInstance reads instance id of pm from rt's store. It fails with
// ErrNotFound for an instance the store does not hold (never created, or
// purged), and returns the instance with the *StateError of a state that
// does not load.
func ReadInstance[S any](ctx context.Context, rt *Runtime, pm ProcessManager[S], id string) (Instance[S], error) {
	ins, err := rt.store.Instances(ctx, pm.Name(), []string{id})
	if err != nil {
		return Instance[S]{}, fmt.Errorf("read instance %s: %w", id, err)
	}
	if len(ins) == 0 {
		return Instance[S]{}, fmt.Errorf("%w: instance %s of %s", ErrNotFound, id, pm.Name())
	}
	in := typedInstance(newStateCodec(pm), &ins[0])
	return in, in.StateErr
}

// ListOpts selects the instances ListInstances returns; nil lists all.
type ListOpts struct {
	// Status, if set, lists only the instances where the runtime has
	// them so (Instance.Status).
	Status evokestore.InstanceStatus
	// Outcome, if set, lists only the done instances that ended so.
	Outcome evokestore.InstanceOutcome
	// Limit caps the number of instances. Defaults to 100.
	Limit int
	// AfterID pages on: only instances whose ID sorts after it are listed.
	AfterID string
}

// ListInstances lists the instances of pm in ID order. An instance whose
// state does not load is listed with its StateErr.
func ListInstances[S any](ctx context.Context, rt *Runtime, pm ProcessManager[S], opts *ListOpts) ([]Instance[S], error) {
	var o ListOpts
	if opts != nil {
		o = *opts
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	q := evokestore.InstanceQuery{ProcessManager: pm.Name(), Status: o.Status, Outcome: o.Outcome, Limit: o.Limit}
	if o.AfterID != "" {
		q.AfterProcessManager, q.AfterID = pm.Name(), o.AfterID
	}
	ins, err := rt.store.ListInstances(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list instances of %s: %w", pm.Name(), err)
	}
	codec := newStateCodec(pm)
	out := make([]Instance[S], len(ins))
	for i := range ins {
		out[i] = typedInstance(codec, &ins[i])
	}
	return out, nil
}

func typedInstance[S any](codec stateCodec[S], in *evokestore.Instance) Instance[S] {
	out := Instance[S]{
		ProcessManager: in.ProcessManager, ID: in.ID, Stepped: len(in.State) > 0,
		Phase: in.Phase, Status: in.Status, Outcome: in.FinalOutcome(), Version: in.Version, Attempts: in.Attempts, LastError: in.LastError,
		CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt, CompletedAt: in.CompletedAt,
	}
	if s, err := codec.decode(in.State); err != nil {
		out.StateErr = err
	} else {
		out.State = s
	}
	return out
}

// HeldEvent is an event held for an instance that is failing or parked (or
// for a process manager whose Correlate failed on it), with the error of
// the step or correlation that held it ("" for the events behind it).
type HeldEvent struct {
	Event Event
	Error string
}

// HeldEvents returns the events instance id of processManager holds, in
// log order: the event its failing step is stuck on, and those that
// arrived since.
func (rt *Runtime) HeldEvents(ctx context.Context, processManager, id string) ([]HeldEvent, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty instance id", ErrInvalid)
	}
	return rt.held(ctx, processManager, id)
}

// ParkedEvents returns the events parked for processManager because its
// Correlate failed on them, in log order (RetryEvent and SkipEvent act on
// them by position).
func (rt *Runtime) ParkedEvents(ctx context.Context, processManager string) ([]HeldEvent, error) {
	return rt.held(ctx, processManager, "")
}

func (rt *Runtime) held(ctx context.Context, pm, id string) ([]HeldEvent, error) {
	hs, err := rt.store.Held(ctx, pm, id)
	if err != nil {
		return nil, fmt.Errorf("held events of %s %s: %w", pm, id, err)
	}
	positions := make([]int64, len(hs))
	for i, h := range hs {
		positions[i] = h.Position
	}
	evs, err := eventsAt(ctx, rt.store, positions)
	if err != nil {
		return nil, fmt.Errorf("held events of %s %s: %w", pm, id, err)
	}
	out := make([]HeldEvent, 0, len(hs))
	for _, h := range hs {
		if e, ok := evs[h.Position]; ok {
			out = append(out, HeldEvent{Event: fromRecord(e), Error: h.Error})
		}
	}
	return out, nil
}

// History returns the history of instance id of processManager, oldest
// first: its steps (with the event, the status before and after, and the
// commands issued), failures, parks and operator actions.
func (rt *Runtime) History(ctx context.Context, processManager, id string) ([]evokestore.HistoryRecord, error) {
	h, err := rt.store.History(ctx, processManager, id)
	if err != nil {
		return nil, fmt.Errorf("history of %s %s: %w", processManager, id, err)
	}
	return h, nil
}

// eventsAt reads the events at the given log positions, by position.
func eventsAt(ctx context.Context, q evokestore.Querier, positions []int64) (map[int64]*evokestore.Event, error) {
	out := make(map[int64]*evokestore.Event, len(positions))
	for _, p := range positions {
		if _, ok := out[p]; ok || p <= 0 {
			continue
		}
		evs, err := q.ReadLog(ctx, evokestore.LogQuery{After: p - 1, Until: p, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(evs) == 1 && evs[0].Position == p {
			out[p] = &evs[0]
		}
	}
	return out, nil
}
