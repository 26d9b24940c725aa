package evoke_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// openStore opens a real SQLite file in the test's temp dir.
func openStore(t *testing.T) *evokesqlite.Store {
	t.Helper()
	st, err := evokesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "evoke.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openPGStore opens a store on a fresh schema of the test PostgreSQL
// (EVOKE_TEST_POSTGRES_URL; CI sets it), or skips the test.
func openPGStore(t *testing.T) *evokepg.Store {
	t.Helper()
	url := os.Getenv("EVOKE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("evoke_root_%d", time.Now().UnixNano())
	st, err := evokepg.Open(ctx, url, &evokepg.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		dropSchema(url, schema)
	})
	return st
}

// dropSchema drops a test's PostgreSQL schema.
func dropSchema(url, schema string) {
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, url); err == nil {
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		_ = conn.Close(ctx)
	}
}

func quietConfig() *evoke.Config {
	return &evoke.Config{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		PollInterval: 20 * time.Millisecond,
		BackoffBase:  time.Millisecond,
		BackoffMax:   5 * time.Millisecond,
		MaxAttempts:  3,
	}
}

// newRuntime returns an unstarted runtime on st with the ledger aggregate.
func newRuntime(t *testing.T, st evokestore.Store, cfg *evoke.Config) *evoke.Runtime {
	t.Helper()
	if cfg == nil {
		cfg = quietConfig()
	}
	rt, err := evoke.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterAggregate(rt, "ledger", ledger{}); err != nil {
		t.Fatal(err)
	}
	return rt
}

// startRecorders opens a store, registers the recorders on a runtime with
// cfg (nil: quietConfig) and starts it.
func startRecorders(t *testing.T, cfg *evoke.Config, pms ...recorder) (*evokesqlite.Store, *evoke.Runtime) {
	t.Helper()
	st := openStore(t)
	rt := newRuntime(t, st, cfg)
	for _, pm := range pms {
		if err := evoke.RegisterProcessManager(rt, pm, nil); err != nil {
			t.Fatal(err)
		}
	}
	start(t, rt)
	return st, rt
}

func start(t *testing.T, rt *evoke.Runtime) {
	t.Helper()
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
}

func appendEvent(t *testing.T, rt *evoke.Runtime, stream, typ string, data any) evoke.Event {
	t.Helper()
	evs, err := rt.Append(context.Background(), stream, evoke.AnyVersion, evoke.NewEvent(typ, data))
	if err != nil {
		t.Fatal(err)
	}
	return evs[0]
}

// instance reads pm's instance id from st.
func instance(t *testing.T, st evokestore.Store, pm, id string) (evokestore.Instance, bool) {
	t.Helper()
	return evoketest.Instance(t, st, pm, id)
}

// ledger is a test aggregate: "note" records the command, "reject" is
// rejected, "explode" panics.
type ledger struct{}

type ledgerState struct{ Notes []string }

type note struct {
	Instance string `json:"instance"`
	Event    string `json:"event"`
	Seen     int    `json:"seen,omitempty"`
}

func (ledger) Execute(s ledgerState, c evoke.Command) ([]evoke.Event, error) {
	switch c.Type {
	case "note":
		var n note
		if err := c.Decode(&n); err != nil {
			return nil, err
		}
		return []evoke.Event{evoke.NewEvent("Noted", n)}, nil
	case "reject":
		return nil, errors.New("rejected on purpose")
	case "explode":
		panic("aggregate exploded")
	}
	return nil, fmt.Errorf("unknown command %s", c.Type)
}

func (ledger) Apply(s ledgerState, e evoke.Event) ledgerState {
	var n note
	_ = e.Decode(&n)
	s.Notes = append(slices.Clip(s.Notes), n.Event)
	return s
}

// recorder is a configurable test process manager. Events carry {"id": ...};
// Correlate is by event type: Start*, Cont*, Stop*, Ignore*; state records
// every event seen, and Handle notes each on the ledger.
type recorder struct {
	name   string
	strict bool
	// done completes the instance when Handle sees this event type.
	done string
	// apply marks the state in Apply, to show Handle sees Apply's result.
	hooks *recorderHooks
}

type recorderHooks struct {
	mu sync.Mutex
	// handlePanic makes Handle panic for events whose id matches.
	handlePanic map[string]bool
}

func (h *recorderHooks) shouldPanic(id string) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handlePanic[id]
}

func (h *recorderHooks) setPanic(id string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.handlePanic == nil {
		h.handlePanic = map[string]bool{}
	}
	h.handlePanic[id] = on
}

type recState struct {
	Seen    []string `json:"seen"`
	Applied int      `json:"applied"`
	Status  string   `json:"status"`
}

type recData struct {
	ID string `json:"id"`
}

func (r recorder) Name() string { return r.name }
func (r recorder) InterestedIn() []string {
	return []string{"Start", "Cont", "Stop", "Ignore", "Done", "Bad", "PanicCorrelate"}
}
func (r recorder) Strict() bool { return r.strict }

func (r recorder) Correlate(e evoke.Event) evoke.Correlation {
	switch e.Type {
	case "Ignore":
		return evoke.Ignore()
	case "PanicCorrelate":
		panic("correlate exploded")
	case "Start":
		return evoke.ByField(e, "id", evoke.Start)
	case "Stop":
		return evoke.ByField(e, "id", evoke.Stop)
	}
	return evoke.ByField(e, "id", evoke.Continue)
}

func (r recorder) Apply(s recState, e evoke.Event) recState {
	s.Applied++
	return s
}

func (r recorder) Handle(s recState, e evoke.Event) (recState, []evoke.Command, error) {
	if e.Type == "Bad" {
		var v struct {
			N int `json:"n"`
		}
		if err := e.Decode(&v); err != nil {
			return s, nil, err
		}
	}
	id, _ := evoke.Field(e, "id")
	if r.hooks.shouldPanic(id) {
		panic("handle exploded on " + id)
	}
	if s.Applied != len(s.Seen)+1 {
		return s, nil, fmt.Errorf("handle before apply: applied %d, seen %d", s.Applied, len(s.Seen))
	}
	s.Seen = append(slices.Clip(s.Seen), e.Type)
	s.Status = "seen-" + e.Type
	if e.Type == r.done {
		s.Status = "done"
	}
	return s, []evoke.Command{evoke.NewCommand("note", "ledger", r.name+"/"+id, note{Instance: id, Event: e.Type, Seen: len(s.Seen)})}, nil
}

func (r recorder) Completed(s recState) bool { return s.Status == "done" }
func (r recorder) Phase(s recState) string   { return s.Status }

// eachStore runs f as a parallel subtest on a fresh SQLite file and on a
// fresh PostgreSQL schema (skipped without EVOKE_TEST_POSTGRES_URL).
func eachStore(t *testing.T, f func(t *testing.T, st evokestore.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); f(t, openStore(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); f(t, openPGStore(t)) })
}
