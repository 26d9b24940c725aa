package evoketest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
)

// Harness runs a runtime on a SQLite file of the test's own, with a
// virtual clock, a quiet logger and fast polling and retries, and starts it
// again on the same file: end-to-end tests of process managers with their
// aggregates, across restarts. Where Fixture drives one process manager
// event by event, a Harness runs them as production does and the test
// waits for the runtime (Idle).
type Harness struct {
	// TB is the test the harness belongs to.
	TB testing.TB
	// Path is the SQLite file.
	Path string
	// Clock is the runtimes' clock; it keeps its time across restarts.
	Clock *Clock
	// Store and Runtime are the ones running now; Restart replaces both.
	Store   *evokesqlite.Store
	Runtime *evoke.Runtime

	register func(rt *evoke.Runtime) error
	cfg      evoke.Config
}

// HarnessOpts configures a Harness; nil means the defaults.
type HarnessOpts struct {
	// Clock is the runtimes' virtual clock. Defaults to a new one at Start.
	Clock *Clock
	// Start is the new clock's time. Defaults to 2025-01-01 00:00 UTC.
	Start time.Time
	// Config is the runtimes' configuration; its Clock is the harness's.
	// Defaults to a discarding Logger, PollInterval 20ms, BackoffBase 1ms,
	// BackoffMax 5ms and MaxAttempts 3.
	Config *evoke.Config
}

// HarnessWait bounds each of a Harness's waits for the runtime.
const HarnessWait = 30 * time.Second

// NewHarness opens a SQLite file in tb's temporary directory and starts a
// runtime on it with what register adds (process managers, aggregates,
// sinks). Every start calls register, the first one and each Restart's.
// The runtime is stopped and the store closed when the test ends.
func NewHarness(tb testing.TB, register func(rt *evoke.Runtime) error, opts *HarnessOpts) *Harness {
	tb.Helper()
	var o HarnessOpts
	if opts != nil {
		o = *opts
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	cfg := evoke.Config{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		PollInterval: 20 * time.Millisecond,
		BackoffBase:  time.Millisecond,
		BackoffMax:   5 * time.Millisecond,
		MaxAttempts:  3,
	}
	if o.Config != nil {
		cfg = *o.Config
	}
	if o.Clock == nil {
		o.Clock = NewClock(o.Start)
	}
	h := &Harness{TB: tb, Path: filepath.Join(tb.TempDir(), "evoke.db"), Clock: o.Clock, register: register, cfg: cfg}
	h.cfg.Clock = h.Clock
	h.open()
	h.start()
	return h
}

func (h *Harness) open() {
	h.TB.Helper()
	st, err := evokesqlite.Open(context.Background(), h.Path, nil)
	if err != nil {
		h.TB.Fatalf("evoketest: open %s: %v", h.Path, err)
	}
	h.TB.Cleanup(func() { st.Close() })
	h.Store = st
}

func (h *Harness) start() {
	h.TB.Helper()
	cfg := h.cfg
	rt, err := evoke.New(h.Store, &cfg)
	if err != nil {
		h.TB.Fatalf("evoketest: %v", err)
	}
	if err := h.register(rt); err != nil {
		h.TB.Fatalf("evoketest: register: %v", err)
	}
	if err := rt.Start(context.Background()); err != nil {
		h.TB.Fatalf("evoketest: start: %v", err)
	}
	h.TB.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			h.TB.Errorf("evoketest: stop: %v", err)
		}
	})
	h.Runtime = rt
}

// Restart stops the runtime, closes the store, runs between (if not nil:
// the clock may move while nothing runs), and starts a new runtime on the
// same file and clock, calling register again. To restart with a different
// process manager value (a test double that blocks in a handler until the
// runtime stops, then the plain one), have register read a variable that
// the test sets before Restart.
func (h *Harness) Restart(between func()) {
	h.TB.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Runtime.Stop(ctx); err != nil {
		h.TB.Fatalf("evoketest: stop: %v", err)
	}
	if err := h.Store.Close(); err != nil {
		h.TB.Fatalf("evoketest: close: %v", err)
	}
	if between != nil {
		between()
	}
	h.open()
	h.start()
}

// Idle waits until the runtime is idle (see evoke.Runtime.Idle), at most
// HarnessWait.
func (h *Harness) Idle() {
	h.TB.Helper()
	WaitIdle(h.TB, h.Runtime, HarnessWait)
}

// Instance reads instance id of processManager; false if the store does
// not hold it.
func (h *Harness) Instance(processManager, id string) (evokestore.Instance, bool) {
	h.TB.Helper()
	return Instance(h.TB, h.Store, processManager, id)
}

// WaitDone waits until instance id of processManager is done (completed or
// cancelled) and then until the runtime is idle, each at most HarnessWait,
// and returns the instance as it ended. An instance that fails or parks
// instead fails the test at once, with its last error.
func (h *Harness) WaitDone(processManager, id string) evokestore.Instance {
	h.TB.Helper()
	Eventually(h.TB, HarnessWait, processManager+" "+id+" is done", func() bool {
		in, ok := h.Instance(processManager, id)
		if ok && in.Status.Stuck() {
			h.TB.Fatalf("evoketest: %s %s is %s: %s", processManager, id, in.Status, in.LastError)
		}
		return ok && in.Status.Done()
	})
	h.Idle()
	in, _ := h.Instance(processManager, id)
	return in
}

// Stream reads a stream whole, failing the test if it cannot.
func (h *Harness) Stream(streamID string) []evokestore.Event {
	h.TB.Helper()
	evs, err := h.Store.ReadStream(context.Background(), streamID, 0)
	if err != nil {
		h.TB.Fatalf("evoketest: read stream %s: %v", streamID, err)
	}
	return evs
}

// Count returns how many of evs are of type typ.
func Count(evs []evokestore.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}
