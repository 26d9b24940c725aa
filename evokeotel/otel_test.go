package evokeotel_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokeotel"
	"github.com/evoke-go/evoke/evokesqlite"
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
					lifetimes += p.Count
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
	ended := spans.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want one per stopped instance", len(ended))
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
	hooks.Telemetry(evoke.Telemetry{Kind: evoke.TelemetryPark, SystemTime: at, Name: "pm", ProcessID: "p1", EventType: "Bad", Attempt: 5, Err: "boom"})
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
}
