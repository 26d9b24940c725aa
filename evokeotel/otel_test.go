package evokeotel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokeotel"
	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// One clean and one declined order through a real runtime: the metrics and
// spans say what happened.
func TestHooksReportOrders(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	hooks, err := evokeotel.New(&evokeotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	st, err := evokesqlite.Open(ctx, filepath.Join(t.TempDir(), "otel.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Hooks: hooks, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		of.Register(rt, of.Fulfillment{}),
		rt.Start(ctx),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []of.OrderPlaced{
		{OrderID: "order-1", Items: []of.Item{{SKU: "a", Qty: 1}}, Amount: 100},
		{OrderID: "order-2", Items: []of.Item{{SKU: "a", Qty: 1}}, Amount: 100, DeclinePayment: true},
	} {
		if _, err := rt.Append(ctx, o.OrderID, evoke.NoStream, evoke.NewEvent(of.EventOrderPlaced, o)); err != nil {
			t.Fatal(err)
		}
	}
	stopObserving, err := evokeotel.ObserveRuntime(rt, &evokeotel.Options{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	evoketest.Eventually(t, 0, "both orders stopped", func() bool { return rt.Stats().Completed == 2 })
	evoketest.WaitIdle(t, rt, 0)
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	secs := map[string]float64{}
	byType := map[string]int64{}
	var lifetimes uint64
	steps := map[string]uint64{} // step durations by event type
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
					if v, ok := p.Attributes.Value(evokeotel.AttrCommandType); ok {
						byType[v.AsString()] += p.Value
					}
					if v, ok := p.Attributes.Value(evokeotel.AttrFailedCommand); ok {
						byType["failed:"+v.AsString()] += p.Value
					}
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					secs[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					switch m.Name {
					case "evoke.process_manager.lifetime":
						lifetimes += p.Count
					case "evoke.process_manager.step.duration":
						if v, ok := p.Attributes.Value(evokeotel.AttrEventType); ok {
							steps[v.AsString()] += p.Count
						}
					}
				}
			}
		}
	}
	for name, want := range map[string]int64{
		"evoke.process_manager.starts":        2,
		"evoke.process_manager.stops":         2,
		"evoke.process_manager.commands":      4, // 3 for the clean order, 1 for the declined one
		"evoke.process_manager.compensations": 1,
		"evoke.process_manager.parks":         0,
	} {
		if sums[name] != want {
			t.Errorf("%s = %d, want %d", name, sums[name], want)
		}
	}
	// ObserveRuntime: the runtime's counters as they stood, and the
	// routers' time (some batches were written, which took time).
	stats := rt.Stats()
	for name, want := range map[string]int64{
		"evoke.runtime.steps":     stats.Steps,
		"evoke.runtime.completed": 2,
		"evoke.runtime.chained":   stats.Chained,
		"evoke.router.writes":     stats.Writes,
	} {
		if sums[name] != want {
			t.Errorf("%s = %d, want %d", name, sums[name], want)
		}
	}
	if stats.Steps == 0 || stats.Writes == 0 || secs["evoke.router.write.time"] <= 0 || secs["evoke.router.prepare.time"] <= 0 ||
		secs["evoke.router.write.time"] != stats.WriteTime.Seconds() {
		t.Errorf("router time %v, stats %+v", secs, stats)
	}
	if err := stopObserving(); err != nil {
		t.Fatal(err)
	}
	rm = metricdata.ResourceMetrics{}
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if strings.HasPrefix(m.Name, "evoke.runtime.") || strings.HasPrefix(m.Name, "evoke.router.") {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && len(sum.DataPoints) > 0 {
					t.Errorf("%s still observed after stop", m.Name)
				}
			}
		}
	}
	if byType[of.CommandProcessPayment] != 2 || byType[of.CommandShipItem] != 1 || byType["failed:"+of.CommandProcessPayment] != 1 {
		t.Errorf("by type: %v", byType)
	}
	if lifetimes != 2 {
		t.Errorf("%d lifetimes recorded, want 2", lifetimes)
	}
	if steps[of.EventOrderPlaced] != 2 || steps[of.EventItemShipped] != 1 {
		t.Errorf("step durations by event type %v, want two OrderPlaced and one ItemShipped", steps)
	}
	var ended []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if strings.HasPrefix(s.Name(), "evoke.process ") {
			ended = append(ended, s)
		}
	}
	if len(ended) != 2 {
		t.Fatalf("%d process spans, want one per stopped instance", len(ended))
	}
	ids := map[string]bool{}
	for _, s := range ended {
		if s.Name() != "evoke.process "+of.Name || s.EndTime().Before(s.StartTime()) {
			t.Errorf("span %s from %v to %v", s.Name(), s.StartTime(), s.EndTime())
		}
		for _, a := range s.Attributes() {
			if a.Key == evokeotel.AttrProcessID {
				ids[a.Value.AsString()] = true
			}
		}
	}
	if !ids["order-1"] || !ids["order-2"] {
		t.Errorf("spans for %v, want order-1 and order-2", ids)
	}
}

// A park is a span with an error status naming the stuck instance.
func TestParkIsAnErrorSpan(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	hooks, err := evokeotel.New(&evokeotel.Options{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		MeterProvider:  sdkmetric.NewMeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	stack := "goroutine 7 [running]:\nexample.com/app.pm.Handle(...)\n\t/app/pm.go:12 +0x1d"
	hooks.Telemetry(evoke.Telemetry{Kind: evoke.TelemetryPark, SystemTime: at, Name: "pm", ProcessID: "p1", EventType: "Bad", Attempt: 5, Err: "boom", Stack: stack})
	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans", len(ended))
	}
	s := ended[0]
	if s.Name() != "evoke.park pm" || s.Status().Code != codes.Error || s.Status().Description != "boom" {
		t.Errorf("span %s status %+v", s.Name(), s.Status())
	}
	want := map[attribute.Key]string{evokeotel.AttrProcessID: "p1", evokeotel.AttrEventType: "Bad", evokeotel.AttrAttempt: "5"}
	for _, a := range s.Attributes() {
		if w, ok := want[a.Key]; ok && a.Value.Emit() != w {
			t.Errorf("%s = %s, want %s", a.Key, a.Value.Emit(), w)
		}
		delete(want, a.Key)
	}
	if len(want) != 0 {
		t.Errorf("span lacks %v", want)
	}
	if ev := s.Events(); len(ev) != 1 || ev[0].Name != "exception" || !slices.Contains(ev[0].Attributes, attribute.String("exception.stacktrace", stack)) ||
		!slices.Contains(ev[0].Attributes, attribute.String("exception.message", "boom")) {
		t.Errorf("span events %+v, want an exception with the message and the stack", ev)
	}
}

// stores returns a fresh SQLite store and, with EVOKE_TEST_POSTGRES_URL
// set, a store on a fresh PostgreSQL schema.
func stores(t *testing.T) map[string]evokestore.Store {
	t.Helper()
	ctx := context.Background()
	lite, err := evokesqlite.Open(ctx, filepath.Join(t.TempDir(), "otel.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	out := map[string]evokestore.Store{"sqlite": lite}
	url := os.Getenv("EVOKE_TEST_POSTGRES_URL")
	if url == "" {
		t.Log("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run on PostgreSQL too")
		return out
	}
	schema := fmt.Sprintf("evoke_otel_%d", time.Now().UnixNano())
	pg, err := evokepg.Open(ctx, url, &evokepg.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pg.Close()
		if conn, err := pgx.Connect(ctx, url); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	out["postgres"] = pg
	return out
}

// The trace context injected into the event that starts an order reaches
// every command and event the order causes, up to the aggregates' last
// events, and the spans of its steps and commands are children of the
// span that placed the order.
func TestTraceSpansTheSaga(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			hooks, err := evokeotel.New(&evokeotel.Options{TracerProvider: tp, MeterProvider: sdkmetric.NewMeterProvider()})
			if err != nil {
				t.Fatal(err)
			}
			rt, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Hooks: hooks, PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := of.Register(rt, of.Fulfillment{}); err != nil {
				t.Fatal(err)
			}
			if err := rt.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer rt.Stop(ctx)

			octx, root := tp.Tracer("shop").Start(ctx, "place order")
			e := evoke.NewEvent(of.EventOrderPlaced, of.OrderPlaced{OrderID: "order-1", Items: []of.Item{{SKU: "a", Qty: 1}}, Amount: 100})
			e.Metadata.Values = map[string]string{"tenant": "acme"}
			evokeotel.Inject(octx, &e.Metadata)
			root.End()
			if _, err := rt.Append(ctx, "order-1", evoke.NoStream, e); err != nil {
				t.Fatal(err)
			}
			evoketest.Eventually(t, 0, "the order completes", func() bool { return rt.Stats().Completed == 1 })
			if err := rt.Stop(ctx); err != nil {
				t.Fatal(err)
			}

			sc := root.SpanContext()
			evs, err := st.ReadLog(ctx, evokestore.LogQuery{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			types := map[string]bool{}
			for _, ev := range evs {
				var v map[string]string
				_ = json.Unmarshal(ev.Values, &v)
				got := trace.SpanContextFromContext(evokeotel.Extract(ctx, v))
				if got.TraceID() != sc.TraceID() || v["tenant"] != "acme" {
					t.Errorf("event %s (%s) has values %v, want the tenant and the trace %s", ev.ID, ev.Type, v, sc.TraceID())
				}
				types[ev.Type] = true
			}
			if !types[of.EventItemShipped] {
				t.Fatalf("the log lacks %s: %v", of.EventItemShipped, types)
			}
			kinds := map[string]int{}
			for _, s := range spans.Ended() {
				if s.Name() == "place order" {
					continue
				}
				kinds[strings.Fields(s.Name())[0]]++
				if s.SpanContext().TraceID() != sc.TraceID() || s.Parent().SpanID() != sc.SpanID() {
					t.Errorf("span %s in trace %s under %s, want a child of %s", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID(), sc.SpanID())
				}
			}
			if kinds["evoke.step"] != 4 || kinds["evoke.command"] != 3 || kinds["evoke.process"] != 1 {
				t.Errorf("spans by kind %v, want 4 steps, 3 commands and the process", kinds)
			}
		})
	}
}

// Inject writes the current span's trace context into an event's
// metadata before it is appended.
func ExampleInject() {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	e := evoke.NewEvent("OrderPlaced", map[string]any{"order_id": "order-1"})
	evokeotel.Inject(ctx, &e.Metadata)
	fmt.Println(e.Metadata.Values[evoke.TraceParentKey])
	// Output: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}
