package evoke_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
)

type recordedHooks struct {
	mu  sync.Mutex
	got []evoke.Telemetry
}

func (h *recordedHooks) Telemetry(t evoke.Telemetry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, t)
}

// TimesSteps asks for the step events too (evoke.StepHooks).
func (h *recordedHooks) TimesSteps() bool { return true }

func (h *recordedHooks) of(kind evoke.TelemetryKind, id string) []evoke.Telemetry {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []evoke.Telemetry
	for _, t := range h.got {
		if t.Kind == kind && t.ProcessID == id {
			out = append(out, t)
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// evoq's telemetry table: start (system_time; name,
// process_id), stop (duration; name, process_id, final_state), command
// (system_time; name, command_type), compensate (system_time; name,
// failed_command); plus slog state-transition logs.
func TestTelemetryMatchesEvoqsTable(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	hooks := &recordedHooks{}
	logs := &syncBuffer{}
	cfg := quietConfig()
	cfg.Hooks = hooks
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	rt, err := evoke.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := orderfulfillment.Register(rt, orderfulfillment.Fulfillment{}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	start(t, rt)
	ctx := context.Background()
	place := func(id string, decline bool) {
		_, err := rt.Append(ctx, id, evoke.NoStream, evoke.NewEvent(orderfulfillment.EventOrderPlaced, orderfulfillment.OrderPlaced{
			OrderID: id, CustomerID: "c", Items: []orderfulfillment.Item{{SKU: "s", Qty: 1}}, Amount: 100, DeclinePayment: decline}))
		if err != nil {
			t.Fatal(err)
		}
	}
	place("order-1", false)
	place("order-2", true)
	for _, id := range []string{"order-1", "order-2"} {
		evoketest.Eventually(t, 0, id+" stops", func() bool { return len(hooks.of(evoke.TelemetryStop, id)) == 1 })
	}

	starts := hooks.of(evoke.TelemetryStart, "order-1")
	if len(starts) != 1 || starts[0].Name != orderfulfillment.Name || starts[0].SystemTime.Before(before) {
		t.Errorf("start telemetry %+v, want one with system_time, name and process_id", starts)
	}
	var types []string
	for _, c := range hooks.of(evoke.TelemetryCommand, "order-1") {
		if c.Name != orderfulfillment.Name || c.SystemTime.IsZero() {
			t.Errorf("command telemetry %+v lacks name or system_time", c)
		}
		types = append(types, c.CommandType)
	}
	if !slices.Equal(types, []string{"process_payment", "reserve_inventory", "ship_item"}) {
		t.Errorf("command telemetry types %v", types)
	}
	stop := hooks.of(evoke.TelemetryStop, "order-1")[0]
	var final orderfulfillment.State
	if err := json.Unmarshal(stop.FinalState, &final); err != nil || final.Status != orderfulfillment.StatusCompleted {
		t.Errorf("stop final_state %s (%v), want the completed state", stop.FinalState, err)
	}
	if stop.Duration < 0 || stop.Name != orderfulfillment.Name {
		t.Errorf("stop telemetry %+v", stop)
	}
	if c := hooks.of(evoke.TelemetryCompensate, "order-1"); len(c) != 0 {
		t.Errorf("a clean order compensated: %+v", c)
	}

	comp := hooks.of(evoke.TelemetryCompensate, "order-2")
	if len(comp) != 1 || comp[0].FailedCommand != "process_payment" || comp[0].Name != orderfulfillment.Name || comp[0].SystemTime.IsZero() {
		t.Errorf("compensate telemetry %+v, want one for the failed process_payment", comp)
	}
	in, _ := instance(t, st, orderfulfillment.Name, "order-2")
	if in.Status != evokestore.StatusCompleted || in.Phase != orderfulfillment.StatusPaymentFailed {
		t.Errorf("declined order = %s/%s, want completed as payment_failed", in.Status, in.Phase)
	}

	for _, want := range []string{
		"process order-1: (none) -> awaiting_payment on OrderPlaced",
		"process order-1: awaiting_payment -> awaiting_inventory on PaymentReceived",
		"process order-1: awaiting_shipment -> completed on ItemShipped",
		"process order-2: awaiting_payment -> payment_failed on $rejected",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

// spin works for at least a microsecond of CPU, so that a step that calls
// it takes measurable time on any machine.
func spin() int {
	n := 0
	for i := range 100000 {
		n += i % 7
	}
	return n
}

// spinner is tenancy with a Handle that spins first.
type spinner struct{ tenancy }

func (spinner) Name() string { return "spinner" }

func (p spinner) Handle(s tenancyState, e evoke.Event) (tenancyState, []evoke.Command, error) {
	if spin() < 0 {
		return s, nil, nil
	}
	return p.tenancy.Handle(s, e)
}

// Every committed step emits step telemetry with the time its Apply and
// Handle took, the event type and the event's metadata values.
func TestStepTelemetryHasDurations(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		hooks := &recordedHooks{}
		cfg := quietConfig()
		cfg.Hooks = hooks
		rt := newRuntime(t, st, cfg)
		if err := evoke.RegisterAggregate(rt, "hopper", hopper{}); err != nil {
			t.Fatal(err)
		}
		if err := evoke.RegisterProcessManager(rt, spinner{}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		e := evoke.NewEvent("Opened", hopData{ID: "s1"})
		e.Metadata.Values = map[string]string{"tenant": "acme"}
		if _, err := rt.Append(context.Background(), "open-s1", evoke.NoStream, e); err != nil {
			t.Fatal(err)
		}
		evoketest.Eventually(t, 0, "the saga stops", func() bool { return len(hooks.of(evoke.TelemetryStop, "s1")) == 1 })
		var types []string
		for _, s := range hooks.of(evoke.TelemetryStep, "s1") {
			if s.Name != "spinner" || s.Duration <= 0 || s.Values["tenant"] != "acme" {
				t.Errorf("step telemetry %+v, want the name, a duration and the tenant", s)
			}
			types = append(types, s.EventType)
		}
		if !slices.Equal(types, []string{"Opened", "Hopped", "Hopped"}) {
			t.Errorf("step telemetry for %v, want Opened, Hopped, Hopped", types)
		}
	})
}

// A panic's stack, from the panicking function on, is logged, kept after
// the message in the instance's last error and history, and passed to
// retry and park telemetry.
func TestPanicStackIsKept(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		hooks := &recordedHooks{}
		logs := &syncBuffer{}
		cfg := quietConfig()
		cfg.Hooks = hooks
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		rt := newRuntime(t, st, cfg)
		rh := &recorderHooks{}
		rh.setPanic("p1", true)
		if err := evoke.RegisterProcessManager(rt, recorder{name: "rec", hooks: rh}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		appendEvent(t, rt, "s-p1", "Start", recData{ID: "p1"})
		evoketest.Eventually(t, 0, "the instance parks", func() bool { return len(hooks.of(evoke.TelemetryPark, "p1")) == 1 })
		const frame = "evoke_test.recorder.Handle"
		in, _ := instance(t, st, "rec", "p1")
		msg, stack, _ := strings.Cut(in.LastError, "\n\n")
		if !strings.Contains(msg, "panic in rec.Handle: handle exploded on p1") || !strings.HasPrefix(stack, "goroutine ") ||
			!strings.Contains(stack, frame) || strings.Contains(stack, "runtime/debug.Stack") {
			t.Fatalf("last error %q: want the message, then the stack from Handle on", in.LastError)
		}
		for _, kind := range []evoke.TelemetryKind{evoke.TelemetryRetry, evoke.TelemetryPark} {
			for _, tel := range hooks.of(kind, "p1") {
				if !strings.Contains(tel.Stack, frame) || strings.Contains(tel.Err, "goroutine") {
					t.Fatalf("%s telemetry err %q, stack %q: want the message and the stack apart", kind, tel.Err, tel.Stack)
				}
			}
		}
		if !strings.Contains(logs.String(), `err="rec.Handle(Start): panic in rec.Handle: handle exploded on p1" stack="goroutine `) ||
			!strings.Contains(logs.String(), frame) {
			t.Fatalf("the log lacks the message and the stack apart: %s", logs.String())
		}
		// An aggregate's panic rejects its command with the same text.
		_, err := rt.Dispatch(context.Background(), evoke.NewCommand("explode", "ledger", "x", nil))
		var re *evoke.RejectedError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Reason, "panic in ledger.Execute(explode): aggregate exploded\n\ngoroutine ") ||
			!strings.Contains(re.Reason, "evoke_test.ledger.Execute") || strings.Contains(re.Reason, "runtime/debug.Stack") {
			t.Fatalf("explode: %v, want a rejection with the message and the stack", err)
		}
	})
}

// kindsOnly records the kinds of telemetry it receives; it is not
// evoke.StepHooks.
type kindsOnly struct {
	mu    sync.Mutex
	kinds map[evoke.TelemetryKind]int
}

func (k *kindsOnly) Telemetry(t evoke.Telemetry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kinds[t.Kind]++
}

// Hooks that are not evoke.StepHooks receive every kind of telemetry but
// the step events, and the runtime does not time steps for them.
func TestStepTelemetryOnlyForStepHooks(t *testing.T) {
	t.Parallel()
	hooks := &kindsOnly{kinds: map[evoke.TelemetryKind]int{}}
	cfg := quietConfig()
	cfg.Hooks = hooks
	rt := newRuntime(t, openStore(t), cfg)
	if err := evoke.RegisterAggregate(rt, "hopper", hopper{}); err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterProcessManager(rt, spinner{}, nil); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	appendEvent(t, rt, "open-s2", "Opened", hopData{ID: "s2"})
	evoketest.Eventually(t, 0, "the saga stops", func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return hooks.kinds[evoke.TelemetryStop] == 1
	})
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if hooks.kinds[evoke.TelemetryStep] != 0 || hooks.kinds[evoke.TelemetryStart] != 1 || hooks.kinds[evoke.TelemetryCommand] == 0 {
		t.Errorf("telemetry kinds %v: want start, commands and stop, and no step events", hooks.kinds)
	}
}
