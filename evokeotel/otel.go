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
package evokeotel

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
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
	AttrFromStatus     = attribute.Key("evoke.from_status")
	AttrToStatus       = attribute.Key("evoke.to_status")
	AttrEventType      = attribute.Key("evoke.event_type")
	AttrAttempt        = attribute.Key("evoke.attempt")
)

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
	lifetime                                                                      metric.Float64Histogram
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
	counter(&h.transitions, "evoke.process_manager.transitions", "Status transitions of instances.")
	if err == nil {
		h.lifetime, err = m.Float64Histogram("evoke.process_manager.lifetime",
			metric.WithDescription("Time from an instance's start to its stop."), metric.WithUnit("s"))
	}
	if err != nil {
		return nil, fmt.Errorf("evokeotel: %w", err)
	}
	return h, nil
}

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
		_, span := h.tracer.Start(ctx, "evoke.process "+t.Name,
			trace.WithTimestamp(t.SystemTime.Add(-t.Duration)),
			trace.WithAttributes(pm, AttrProcessID.String(t.ProcessID)))
		span.End(trace.WithTimestamp(t.SystemTime))
	case evoke.TelemetryCommand:
		h.commands.Add(ctx, 1, metric.WithAttributes(pm, AttrCommandType.String(t.CommandType)))
	case evoke.TelemetryCompensate:
		h.compensations.Add(ctx, 1, metric.WithAttributes(pm, AttrFailedCommand.String(t.FailedCommand)))
	case evoke.TelemetryRetry:
		h.retries.Add(ctx, 1, metric.WithAttributes(pm))
	case evoke.TelemetryPark:
		h.parks.Add(ctx, 1, metric.WithAttributes(pm))
		_, span := h.tracer.Start(ctx, "evoke.park "+t.Name, trace.WithTimestamp(t.SystemTime),
			trace.WithAttributes(pm, AttrProcessID.String(t.ProcessID), AttrEventType.String(t.EventType), AttrAttempt.Int(t.Attempt)))
		span.SetStatus(codes.Error, t.Err)
		span.End(trace.WithTimestamp(t.SystemTime))
	case evoke.TelemetryTimeout:
		h.timeouts.Add(ctx, 1, metric.WithAttributes(pm))
	case evoke.TelemetryTransition:
		h.transitions.Add(ctx, 1, metric.WithAttributes(pm, AttrFromStatus.String(t.FromStatus), AttrToStatus.String(t.ToStatus)))
	}
}
