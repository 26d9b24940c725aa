// Package evokeotel reports evoke's telemetry to OpenTelemetry. It is
// middleware around the runtime, in the manner of rivercontrib's otelriver:
// set a *Hooks as evoke.Config.Hooks.
//
// Every telemetry event becomes a metric: counters of instance starts and
// stops, commands (by command type), compensations (by failed command),
// retries, parks, timeouts and status transitions (by from and to status),
// and a histogram of instance lifetimes. Each instance that stops also
// becomes a span covering its whole life (start to stop, across restarts and
// nodes), and each park a span with an error status, so that traces show
// which business processes ran and which got stuck.
//
// Each committed step becomes a span (evoke.step) and a sample of the
// histogram evoke.process_manager.step.duration (the time Apply and Handle
// took, by process manager and event type), each command a span
// (evoke.command), and each failed step a span with an error status
// (evoke.retry, or evoke.park for the last attempt) holding an exception
// event, with the stack of a recovered panic as exception.stacktrace.
//
// One trace spans a business process end to end: Inject writes the
// current span's W3C trace context into an event's metadata before it is
// appended, the runtime carries it onto every command and event the
// process causes (see evoke.Metadata), and the spans above are children of
// the trace context they find in the metadata of their event or command.
//
// ObserveRuntime adds the runtime's own counters (evoke.Stats) as
// observable metrics, among them the routers' prepare and write time: the
// rate of evoke.router.write.time is how busy the store's writer is.
package evokeotel

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/evoke-go/evoke"
)

// scope is the instrumentation scope name.
const scope = "github.com/evoke-go/evoke/evokeotel"

// Attribute keys.
const (
	AttrProcessManager = attribute.Key("evoke.process_manager")
	AttrProcessID      = attribute.Key("evoke.process_id")
	AttrCommandType    = attribute.Key("evoke.command_type")
	AttrFailedCommand  = attribute.Key("evoke.failed_command")
	AttrFromPhase      = attribute.Key("evoke.from_phase")
	AttrToPhase        = attribute.Key("evoke.to_phase")
	AttrEventType      = attribute.Key("evoke.event_type")
	AttrAttempt        = attribute.Key("evoke.attempt")
	AttrCommandID      = attribute.Key("evoke.command_id")
)

// Keys of the exception event on a failed step's span (OpenTelemetry's
// semantic conventions for exceptions).
const (
	attrExceptionType       = attribute.Key("exception.type")
	attrExceptionMessage    = attribute.Key("exception.message")
	attrExceptionStacktrace = attribute.Key("exception.stacktrace")
)

// traceContext reads and writes the W3C trace context.
var traceContext = propagation.TraceContext{}

// Inject writes the trace context of ctx's span into md.Values, under
// evoke.TraceParentKey and evoke.TraceStateKey, so that the spans of the
// work an event (or a dispatched command) causes join that trace. Call it
// on an event before appending it. Without a valid span context in ctx it
// writes nothing.
func Inject(ctx context.Context, md *evoke.Metadata) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	if md.Values == nil {
		md.Values = make(map[string]string, 2)
	}
	traceContext.Inject(ctx, propagation.MapCarrier(md.Values))
}

// Extract returns ctx with the remote span context found in metadata
// values (evoke.Metadata.Values, evoke.Telemetry.Values), if any, as the
// parent of the spans started from it.
func Extract(ctx context.Context, values map[string]string) context.Context {
	if values[evoke.TraceParentKey] == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier(values))
}

// Options configure Hooks; nil means the defaults.
type Options struct {
	// TracerProvider makes the spans. Defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the metrics. Defaults to otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// Hooks implements evoke.Hooks with OpenTelemetry.
type Hooks struct {
	tracer trace.Tracer

	starts, stops, commands, compensations, retries, parks, timeouts, transitions metric.Int64Counter
	lifetime, stepDuration                                                        metric.Float64Histogram
}

var _ evoke.Hooks = (*Hooks)(nil)

// New returns Hooks reporting to the providers in opts.
func New(opts *Options) (*Hooks, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	m := o.MeterProvider.Meter(scope)
	h := &Hooks{tracer: o.TracerProvider.Tracer(scope)}
	var err error
	counter := func(dst *metric.Int64Counter, name, desc string) {
		if err == nil {
			*dst, err = m.Int64Counter(name, metric.WithDescription(desc))
		}
	}
	counter(&h.starts, "evoke.process_manager.starts", "Process-manager instances started.")
	counter(&h.stops, "evoke.process_manager.stops", "Process-manager instances completed or cancelled.")
	counter(&h.commands, "evoke.process_manager.commands", "Commands process managers produced.")
	counter(&h.compensations, "evoke.process_manager.compensations", "Rejected commands handed to Compensate.")
	counter(&h.retries, "evoke.process_manager.retries", "Failed steps to be retried.")
	counter(&h.parks, "evoke.process_manager.parks", "Instances parked after their last attempt.")
	counter(&h.timeouts, "evoke.process_manager.timeouts", "Timeouts and deadlines delivered.")
	counter(&h.transitions, "evoke.process_manager.transitions", "Phase transitions of instances.")
	if err == nil {
		h.lifetime, err = m.Float64Histogram("evoke.process_manager.lifetime",
			metric.WithDescription("Time from an instance's start to its stop."), metric.WithUnit("s"))
	}
	if err == nil {
		h.stepDuration, err = m.Float64Histogram("evoke.process_manager.step.duration",
			metric.WithDescription("Time a process manager's Apply and Handle took on one event."), metric.WithUnit("s"))
	}
	if err != nil {
		return nil, fmt.Errorf("evokeotel: %w", err)
	}
	return h, nil
}

// TimesSteps implements evoke.StepHooks: the hooks record every step's
// duration.
func (h *Hooks) TimesSteps() bool { return true }

// Telemetry implements evoke.Hooks.
func (h *Hooks) Telemetry(t evoke.Telemetry) {
	ctx := context.Background()
	pm := AttrProcessManager.String(t.Name)
	switch t.Kind {
	case evoke.TelemetryStart:
		h.starts.Add(ctx, 1, metric.WithAttributes(pm))
	case evoke.TelemetryStop:
		h.stops.Add(ctx, 1, metric.WithAttributes(pm))
		h.lifetime.Record(ctx, t.Duration.Seconds(), metric.WithAttributes(pm))
		_, span := h.tracer.Start(Extract(ctx, t.Values), "evoke.process "+t.Name,
			trace.WithTimestamp(t.SystemTime.Add(-t.Duration)),
			trace.WithAttributes(pm, AttrProcessID.String(t.ProcessID)))
		span.End(trace.WithTimestamp(t.SystemTime))
	case evoke.TelemetryStep:
		h.stepDuration.Record(ctx, t.Duration.Seconds(), metric.WithAttributes(pm, AttrEventType.String(t.EventType)))
		_, span := h.tracer.Start(Extract(ctx, t.Values), "evoke.step "+t.Name,
			trace.WithTimestamp(t.SystemTime.Add(-t.Duration)),
			trace.WithAttributes(pm, AttrProcessID.String(t.ProcessID), AttrEventType.String(t.EventType)))
		span.End(trace.WithTimestamp(t.SystemTime))
	case evoke.TelemetryCommand:
		h.commands.Add(ctx, 1, metric.WithAttributes(pm, AttrCommandType.String(t.CommandType)))
		_, span := h.tracer.Start(Extract(ctx, t.Values), "evoke.command "+t.CommandType, trace.WithTimestamp(t.SystemTime),
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(pm, AttrProcessID.String(t.ProcessID), AttrCommandType.String(t.CommandType), AttrCommandID.String(t.CommandID)))
		span.End(trace.WithTimestamp(t.SystemTime))
	case evoke.TelemetryCompensate:
		h.compensations.Add(ctx, 1, metric.WithAttributes(pm, AttrFailedCommand.String(t.FailedCommand)))
	case evoke.TelemetryRetry:
		h.retries.Add(ctx, 1, metric.WithAttributes(pm))
		h.failureSpan(ctx, "evoke.retry ", t)
	case evoke.TelemetryPark:
		h.parks.Add(ctx, 1, metric.WithAttributes(pm))
		h.failureSpan(ctx, "evoke.park ", t)
	case evoke.TelemetryTimeout:
		h.timeouts.Add(ctx, 1, metric.WithAttributes(pm))
	case evoke.TelemetryTransition:
		h.transitions.Add(ctx, 1, metric.WithAttributes(pm, AttrFromPhase.String(t.FromPhase), AttrToPhase.String(t.ToPhase)))
	}
}

// failureSpan records a failed step t (retry or park) as a span with an
// error status and an exception event, with the panic's stack if any.
func (h *Hooks) failureSpan(ctx context.Context, name string, t evoke.Telemetry) {
	_, span := h.tracer.Start(Extract(ctx, t.Values), name+t.Name, trace.WithTimestamp(t.SystemTime),
		trace.WithAttributes(AttrProcessManager.String(t.Name), AttrProcessID.String(t.ProcessID), AttrEventType.String(t.EventType), AttrAttempt.Int(t.Attempt)))
	attrs := []attribute.KeyValue{attrExceptionMessage.String(t.Err)}
	if t.Stack != "" {
		attrs = append(attrs, attrExceptionType.String("panic"), attrExceptionStacktrace.String(t.Stack))
	}
	span.AddEvent("exception", trace.WithTimestamp(t.SystemTime), trace.WithAttributes(attrs...))
	span.SetStatus(codes.Error, t.Err)
	span.End(trace.WithTimestamp(t.SystemTime))
}

// stat is one of the evoke.Stats ObserveRuntime reports.
type stat[T int64 | float64] struct {
	name, desc string
	get        func(evoke.Stats) T
}

// ObserveRuntime reports rt's counters (evoke.Stats) as observable metrics,
// read whenever the meter provider in opts collects: steps, batches,
// commands, dispatches and so on as counters named evoke.runtime.*, and the
// routers' time (evoke.router.prepare.time, .write.wait and .write.time, in
// seconds, and evoke.router.writes). The rate of evoke.router.write.time is
// the share of the time the store's single writer was busy: near 1, it is
// what limits the throughput (docs/benchmarks.md). The returned function
// stops the reporting.
func ObserveRuntime(rt *evoke.Runtime, opts *Options) (stop func() error, err error) {
	mp := otel.GetMeterProvider()
	if opts != nil && opts.MeterProvider != nil {
		mp = opts.MeterProvider
	}
	m := mp.Meter(scope)
	counts := []stat[int64]{
		{"evoke.runtime.steps", "Steps committed.", func(s evoke.Stats) int64 { return s.Steps }},
		{"evoke.runtime.batches", "Batches of steps committed.", func(s evoke.Stats) int64 { return s.Batches }},
		{"evoke.runtime.commands", "Commands produced.", func(s evoke.Stats) int64 { return s.Commands }},
		{"evoke.runtime.dispatched", "Commands executed against their aggregates.", func(s evoke.Stats) int64 { return s.Dispatched }},
		{"evoke.runtime.rejected", "Commands their aggregates rejected.", func(s evoke.Stats) int64 { return s.Rejected }},
		{"evoke.runtime.failures", "Failed steps.", func(s evoke.Stats) int64 { return s.Failures }},
		{"evoke.runtime.parked", "Instances parked.", func(s evoke.Stats) int64 { return s.Parked }},
		{"evoke.runtime.completed", "Instances completed.", func(s evoke.Stats) int64 { return s.Completed }},
		{"evoke.runtime.lease_lost", "Transactions fenced off by a lost partition lease.", func(s evoke.Stats) int64 { return s.LeaseLost }},
		{"evoke.runtime.conflicts", "Transactions the store failed for a conflict with another and that ran again.", func(s evoke.Stats) int64 { return s.Conflicts }},
		{"evoke.runtime.chained", "Steps committed in the transaction that appended their events.", func(s evoke.Stats) int64 { return s.Chained }},
		{"evoke.runtime.chain_fallbacks", "Batches written again without their chained steps.", func(s evoke.Stats) int64 { return s.ChainFallbacks }},
		{"evoke.router.writes", "Batches the routers wrote.", func(s evoke.Stats) int64 { return s.Writes }},
	}
	times := []stat[float64]{
		{"evoke.router.prepare.time", "Time the routers spent preparing batches.", func(s evoke.Stats) float64 { return s.PrepareTime.Seconds() }},
		{"evoke.router.write.wait", "Time prepared batches waited for the batch before them to be written.", func(s evoke.Stats) float64 { return s.WriteWait.Seconds() }},
		{"evoke.router.write.time", "Time the routers spent writing batches; its rate is how busy the store's writer is.", func(s evoke.Stats) float64 { return s.WriteTime.Seconds() }},
	}
	ints := make([]metric.Int64ObservableCounter, len(counts))
	floats := make([]metric.Float64ObservableCounter, len(times))
	var obs []metric.Observable
	for i, c := range counts {
		if ints[i], err = m.Int64ObservableCounter(c.name, metric.WithDescription(c.desc)); err != nil {
			return nil, fmt.Errorf("evokeotel: %w", err)
		}
		obs = append(obs, ints[i])
	}
	for i, c := range times {
		if floats[i], err = m.Float64ObservableCounter(c.name, metric.WithDescription(c.desc), metric.WithUnit("s")); err != nil {
			return nil, fmt.Errorf("evokeotel: %w", err)
		}
		obs = append(obs, floats[i])
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := rt.Stats()
		for i, c := range counts {
			o.ObserveInt64(ints[i], c.get(s))
		}
		for i, c := range times {
			o.ObserveFloat64(floats[i], c.get(s))
		}
		return nil
	}, obs...)
	if err != nil {
		return nil, fmt.Errorf("evokeotel: %w", err)
	}
	return reg.Unregister, nil
}
