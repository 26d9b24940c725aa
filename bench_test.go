package evoke_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
)

// The micro-benchmarks run on a real SQLite file (synchronous=FULL, as in
// production) in b.TempDir(). See docs/benchmarks.md for figures.

// benchRuntime returns a runtime on a fresh SQLite file with the counter
// aggregate registered, stopped and closed when b ends.
func benchRuntime(b *testing.B) *evoke.Runtime {
	b.Helper()
	st, err := evokesqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	rt, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Retention: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := evoke.RegisterAggregate(rt, "counter", counter{}); err != nil {
		b.Fatal(err)
	}
	return rt
}

// counter is a trivial aggregate: "count" emits Counted.
type counter struct{}

type counterState struct{ N int }

func (counter) Execute(s counterState, c evoke.Command) ([]evoke.Event, error) {
	return []evoke.Event{evoke.NewEvent("Counted", map[string]int{"n": s.N + 1})}, nil
}

func (counter) Apply(s counterState, e evoke.Event) counterState {
	s.N++
	return s
}

// ticker is a process manager that counts Ticked events per instance
// (correlated by the "id" field) and, with commands set, sends one "count"
// command to the counter aggregate per step.
type ticker struct{ commands bool }

type tickState struct{ Ticks int }

func (ticker) Name() string           { return "ticker" }
func (ticker) InterestedIn() []string { return []string{"Ticked"} }
func (ticker) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "id", evoke.Continue)
}
func (ticker) Apply(s tickState, e evoke.Event) tickState { s.Ticks++; return s }
func (t ticker) Handle(s tickState, e evoke.Event) (tickState, []evoke.Command, error) {
	if !t.commands {
		return s, nil, nil
	}
	id, _ := evoke.Field(e, "id")
	return s, []evoke.Command{evoke.NewCommand("count", "counter", id, nil)}, nil
}

// BenchmarkStep measures the router's step path (correlate → load → apply →
// handle → commit): b.N Ticked events over 1000 instances are appended in
// batches of 500 while the runtime runs, and the clock stops when all were
// stepped (and, with commands=1, their commands dispatched to the counter
// aggregate).
func BenchmarkStep(b *testing.B) {
	for _, cmds := range []bool{false, true} {
		n := 0
		if cmds {
			n = 1
		}
		b.Run(fmt.Sprintf("commands=%d", n), func(b *testing.B) {
			rt := benchRuntime(b)
			if err := evoke.RegisterProcessManager(rt, ticker{commands: cmds}, nil); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := rt.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { rt.Stop(context.Background()) })
			b.ReportAllocs()
			b.ResetTimer()
			const chunk = 500
			for lo := 0; lo < b.N; lo += chunk {
				batch := make([]evoke.StreamAppend, 0, chunk)
				for i := lo; i < min(lo+chunk, b.N); i++ {
					batch = append(batch, evoke.StreamAppend{StreamID: "tick-" + strconv.Itoa(i), ExpectedVersion: evoke.NoStream,
						Events: []evoke.Event{evoke.NewEvent("Ticked", map[string]string{"id": "inst-" + strconv.Itoa(i%1000)})}})
				}
				if _, err := rt.AppendBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			deadline := time.Now().Add(time.Minute)
			for {
				s := rt.Stats()
				if s.Steps >= int64(b.N) && (!cmds || s.Dispatched >= int64(b.N)) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("stepped %d, dispatched %d of %d after a minute", s.Steps, s.Dispatched, b.N)
				}
				time.Sleep(200 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}

// BenchmarkDispatch measures Runtime.Dispatch: one command, one
// transaction, to a new counter aggregate each time (no history to load).
func BenchmarkDispatch(b *testing.B) {
	rt := benchRuntime(b)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := rt.Dispatch(ctx, evoke.NewCommand("count", "counter", "c-"+strconv.Itoa(i), nil)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkAggregateExecute measures the aggregate path through Dispatch
// on streams that have history: 1000 counter aggregates get `history`
// events each up front, then commands go round-robin to them (each loads
// its stream, applies it, executes, appends). Each aggregate grows by one
// event per 1000 iterations.
func BenchmarkAggregateExecute(b *testing.B) {
	for _, history := range []int{10, 100} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			rt := benchRuntime(b)
			ctx := context.Background()
			const aggs = 1000
			for lo := 0; lo < aggs; lo += 50 {
				var batch []evoke.StreamAppend
				for a := lo; a < lo+50; a++ {
					evs := make([]evoke.Event, history)
					for k := range evs {
						evs[k] = evoke.NewEvent("Counted", map[string]int{"n": k + 1})
					}
					batch = append(batch, evoke.StreamAppend{StreamID: evoke.StreamID("counter", "c-"+strconv.Itoa(a)), ExpectedVersion: evoke.NoStream, Events: evs})
				}
				if _, err := rt.AppendBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				res, err := rt.Dispatch(ctx, evoke.NewCommand("count", "counter", "c-"+strconv.Itoa(i%aggs), nil))
				if err != nil {
					b.Fatal(err)
				}
				if i < aggs && (len(res.Events) != 1 || res.Events[0].StreamVersion != int64(history+1)) {
					b.Fatalf("dispatch %d: %+v", i, res.Events)
				}
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "commands/s")
		})
	}
}
