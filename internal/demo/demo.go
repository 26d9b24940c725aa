// Package demo runs the order-fulfilment workload behind `evoke demo` and
// the crash tests: it places orders, runs the example order-fulfilment
// process manager with its payment, inventory and shipping aggregates, and
// counts how far they got.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokenats"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
)

// ErrIncomplete reports a run that stopped before all its orders finished.
var ErrIncomplete = errors.New("demo: not every order finished")

// runsStream records each run's first order number and count, so that a
// second run on the same store gets new order IDs.
const runsStream = "evoke-demo-runs"

// Options configure a run.
type Options struct {
	// Orders is how many orders to place. Defaults to 1000.
	Orders int
	// FirstOrder, if set, fixes the first order number instead of taking
	// the next free one; placing is then idempotent, so a killed run can
	// be started again with the same options and finishes the same orders.
	FirstOrder int
	// FailRate is the fraction of orders whose payment is declined: their
	// process manager compensates and ends as payment_failed.
	FailRate float64
	// TimeoutRate is the fraction of orders whose shipment never arrives:
	// their inactivity timeout fires, the payment is refunded, and the
	// order ends as timed_out.
	TimeoutRate float64
	// Timeout is the order process's inactivity timeout. Defaults to 1s
	// when TimeoutRate is set, and to none otherwise (a timeout costs a
	// deadline write per step).
	Timeout time.Duration
	// Rate, if positive, places the orders at this many per second (in
	// ticks of 10ms) while they run, instead of all at once: latency is
	// then measured below saturation.
	Rate float64
	// Stall ends the run when no order finished for this long. Defaults
	// to 60s.
	Stall time.Duration
	// Progress, if set, is called about ten times a second and at the end
	// with the number of finished orders.
	Progress func(finished, total int)
	// Logger receives the runtime's logs. Defaults to warnings and errors
	// on slog.Default's handler.
	Logger *slog.Logger
	// Hooks, if set, receives the runtime's telemetry too.
	Hooks evoke.Hooks
	// Placed, if set, is called after each append that placed orders, with
	// when the append began and how long it took (the call to
	// Runtime.AppendBatch: its transaction, waiting for the store's write
	// lock included). It is called from the goroutine placing the orders.
	Placed func(began time.Time, took time.Duration)
	// Config tunes the runtime; its Logger and Hooks are set by Run.
	Config evoke.Config
	// Source, if set, is the nats:// URL of a NATS server with JetStream:
	// the orders are then placed on its stream EVOKE_DEMO, ingested from
	// there, and their commands sent over NATS to the service of package
	// natsorders, which Run starts (see examples/natsorders).
	Source string
}

// Summary is what a run did.
type Summary struct {
	Store      string `json:"store"`
	Orders     int    `json:"orders"`
	FirstOrder int    `json:"first_order"`
	// Completed counts orders whose process finished.
	Completed int `json:"completed"`
	// InFlight counts orders still running when the run ended.
	InFlight int `json:"in_flight"`
	// Failed counts orders whose instance is failing or parked.
	Failed int `json:"failed"`
	// Compensated counts finished orders that took the compensation path:
	// a command was rejected (payment_failed, inventory_failed).
	Compensated int `json:"compensated"`
	// TimedOut counts finished orders whose timeout fired.
	TimedOut int `json:"timed_out"`
	// Parked counts orders whose instance is parked for an operator.
	Parked int `json:"parked"`
	// Events counts the events the run added to the store, Commands the
	// commands the runtime executed during the run (inline and from the
	// outbox).
	Events      int64   `json:"events"`
	Commands    int64   `json:"commands"`
	Seconds     float64 `json:"seconds"`
	SagasPerSec float64 `json:"sagas_per_sec"`
	// Runtime are the runtime's counters at the end of the run.
	Runtime evoke.Stats `json:"-"`
}

// OrderID returns the ID of order number n.
func OrderID(n int) string { return fmt.Sprintf("order-%07d", n) }

func orderNumber(id string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "order-"))
	return n, err == nil && strings.HasPrefix(id, "order-")
}

// counter counts finished instances of the run's orders, and passes all
// telemetry on to next, if set.
type counter struct {
	first, last int
	finished    atomic.Int64
	next        evoke.Hooks
}

func (c *counter) Telemetry(t evoke.Telemetry) {
	if c.next != nil {
		c.next.Telemetry(t)
	}
	if t.Kind != evoke.TelemetryStop || t.Name != orderfulfillment.Name {
		return
	}
	if n, ok := orderNumber(t.ProcessID); ok && n >= c.first && n <= c.last {
		c.finished.Add(1)
	}
}

// Register adds the order-fulfilment process manager and its aggregates to
// rt, with the given inactivity timeout (0 for none).
func Register(rt *evoke.Runtime, timeout time.Duration) error {
	return orderfulfillment.Register(rt, orderfulfillment.Fulfillment{TimeoutAfter: timeout})
}

// Run places opts.Orders orders on store and runs them until all finished,
// the run stalls, or ctx ends.
func Run(ctx context.Context, store evokestore.Store, opts Options) (Summary, error) {
	if opts.Orders == 0 {
		opts.Orders = 1000
	}
	if opts.Orders < 0 || opts.FirstOrder < 0 {
		return Summary{}, fmt.Errorf("%w: orders %d, first order %d", evoke.ErrInvalid, opts.Orders, opts.FirstOrder)
	}
	if opts.Stall == 0 {
		opts.Stall = 60 * time.Second
	}
	if opts.FailRate < 0 || opts.FailRate > 1 || opts.TimeoutRate < 0 || opts.TimeoutRate > 1 || opts.FailRate+opts.TimeoutRate > 1 {
		return Summary{}, fmt.Errorf("%w: fail rate %v and timeout rate %v must be fractions adding up to at most 1", evoke.ErrInvalid, opts.FailRate, opts.TimeoutRate)
	}
	if opts.Timeout == 0 && opts.TimeoutRate > 0 {
		opts.Timeout = time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(leveled{slog.Default().Handler(), slog.LevelWarn})
	}
	before, err := store.Stats(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("read store stats: %w", err)
	}
	start := time.Now()

	cfg := opts.Config
	cfg.Logger = logger
	cnt := &counter{next: opts.Hooks}
	cfg.Hooks = cnt
	rt, err := evoke.New(store, &cfg)
	if err != nil {
		return Summary{}, err
	}
	var out orderSink
	var src *evokenats.Source
	if opts.Source != "" {
		var closeNATS func()
		if src, out, closeNATS, err = overNATS(ctx, rt, opts); err != nil {
			return Summary{}, err
		}
		defer closeNATS()
	} else if err := Register(rt, opts.Timeout); err != nil {
		return Summary{}, err
	}
	first := opts.FirstOrder
	if first == 0 {
		if first, err = allocate(ctx, rt, opts.Orders); err != nil {
			return Summary{}, err
		}
	}
	cnt.first, cnt.last = first, first+opts.Orders-1
	sum := Summary{Store: store.Backend(), Orders: opts.Orders, FirstOrder: first}

	// Orders a killed earlier run finished already count.
	done, err := finished(ctx, store, first, opts.Orders)
	if err != nil {
		return sum, err
	}
	base := int64(done)

	if err := rt.Start(ctx); err != nil {
		return sum, err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if src != nil {
			if err := src.Stop(sctx); err != nil {
				return err
			}
		}
		return rt.Stop(sctx)
	}
	defer stop()
	if src != nil {
		if err := src.Start(ctx); err != nil {
			return sum, err
		}
	}

	if opts.Rate > 0 {
		go func() {
			if err := placePaced(ctx, rt, out, first, opts.Orders, opts.Rate, opts.FirstOrder != 0, opts.FailRate, opts.TimeoutRate, opts.Placed); err != nil && ctx.Err() == nil {
				logger.Error("placing orders failed", "err", err)
			}
		}()
	} else if err := place(ctx, rt, out, first, opts.Orders, opts.FirstOrder != 0, opts.FailRate, opts.TimeoutRate, opts.Placed); err != nil {
		return sum, err
	}

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := int64(-1), time.Now()
	var stored int64 // finished orders, as the store last counted them
	lastCount := time.Now()
	var waitErr error
	for {
		n := min(base+cnt.finished.Load(), int64(opts.Orders))
		// On a shared store other nodes step orders of this run too, and
		// only the store knows: it is asked once a second while this
		// runtime's own count stands still.
		if n < int64(opts.Orders) && time.Since(lastChange) >= time.Second && time.Since(lastCount) >= time.Second {
			if done, err := finished(ctx, store, first, opts.Orders); err == nil {
				stored = int64(done)
			}
			lastCount = time.Now()
		}
		n = max(n, stored)
		if opts.Progress != nil {
			opts.Progress(int(n), opts.Orders)
		}
		if n >= int64(opts.Orders) {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > opts.Stall {
			waitErr = fmt.Errorf("%w: no order finished for %v", ErrIncomplete, opts.Stall)
			break
		}
		select {
		case <-ctx.Done():
			waitErr = ctx.Err()
		case <-tick.C:
			continue
		}
		break
	}
	elapsed := time.Since(start)
	if err := stop(); err != nil {
		return sum, err
	}
	sum.Runtime = rt.Stats()
	ictx := context.WithoutCancel(ctx)
	if err := count(ictx, store, &sum); err != nil {
		return sum, err
	}
	after, err := store.Stats(ictx)
	if err != nil {
		return sum, fmt.Errorf("read store stats: %w", err)
	}
	sum.Events = after.Events - before.Events
	sum.Commands = sum.Runtime.Dispatched
	sum.Seconds = elapsed.Seconds()
	if sum.Seconds > 0 {
		sum.SagasPerSec = float64(sum.Completed) / sum.Seconds
	}
	// The summary counts the store's instances, whichever node stepped
	// them: the outcome agrees with it.
	if errors.Is(waitErr, ErrIncomplete) && sum.Completed >= sum.Orders {
		waitErr = nil
	}
	if waitErr == nil && sum.Completed < sum.Orders {
		waitErr = ErrIncomplete
	}
	return sum, waitErr
}

// allocate records a run of n orders and returns its first order number.
func allocate(ctx context.Context, rt *evoke.Runtime, n int) (int, error) {
	type run struct {
		First  int `json:"first"`
		Orders int `json:"orders"`
	}
	for {
		past, err := rt.Store().ReadStream(ctx, runsStream, 0)
		if err != nil {
			return 0, fmt.Errorf("read demo runs: %w", err)
		}
		first := 1
		if len(past) > 0 {
			var r run
			if err := json.Unmarshal(past[len(past)-1].Data, &r); err != nil {
				return 0, fmt.Errorf("decode demo run: %w", err)
			}
			first = r.First + r.Orders
		}
		_, err = rt.Append(ctx, runsStream, int64(len(past)), evoke.NewEvent("DemoRunStarted", run{First: first, Orders: n}))
		if errors.Is(err, evoke.ErrVersionConflict) {
			continue
		}
		return first, err
	}
}

// Place appends the OrderPlaced events of orders first..first+n-1 in
// batches; rt need not be started. With resume, orders placed by an earlier
// attempt are skipped. failRate and timeoutRate are as in Options.
func Place(ctx context.Context, rt *evoke.Runtime, first, n int, resume bool, failRate, timeoutRate float64) error {
	return place(ctx, rt, nil, first, n, resume, failRate, timeoutRate, nil)
}

// orderSink places a batch of orders elsewhere than in rt's log.
type orderSink func(ctx context.Context, batch []evoke.StreamAppend) error

// place is Place reporting each append to placed (if not nil), placing
// the orders with out if it is not nil.
func place(ctx context.Context, rt *evoke.Runtime, out orderSink, first, n int, resume bool, failRate, timeoutRate float64, placed func(time.Time, time.Duration)) error {
	const chunk = 500
	for lo := first; lo < first+n; lo += chunk {
		hi := min(lo+chunk, first+n)
		batch := make([]evoke.StreamAppend, 0, hi-lo)
		for k := lo; k < hi; k++ {
			batch = append(batch, evoke.StreamAppend{StreamID: OrderID(k), ExpectedVersion: evoke.NoStream, Events: []evoke.Event{order(k, failRate, timeoutRate)}})
		}
		if resume {
			var err error
			if batch, err = unplaced(ctx, rt, batch); err != nil {
				return err
			}
			if len(batch) == 0 {
				continue
			}
		}
		t0 := time.Now()
		var err error
		if out != nil {
			err = out(ctx, batch)
		} else {
			_, err = rt.AppendBatch(ctx, batch)
		}
		if err == nil && placed != nil {
			placed(t0, time.Since(t0))
		}
		if err != nil && resume && (errors.Is(err, evoke.ErrVersionConflict) || errors.Is(err, evoke.ErrDuplicateEvent)) {
			for _, a := range batch {
				_, err := rt.Append(ctx, a.StreamID, a.ExpectedVersion, a.Events...)
				if err != nil && !errors.Is(err, evoke.ErrVersionConflict) && !errors.Is(err, evoke.ErrDuplicateEvent) {
					return fmt.Errorf("place %s: %w", a.StreamID, err)
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("place orders %d..%d: %w", lo, hi-1, err)
		}
	}
	return nil
}

// placePaced places n orders at rate per second, a slice every 10ms.
func placePaced(ctx context.Context, rt *evoke.Runtime, out orderSink, first, n int, rate float64, resume bool, failRate, timeoutRate float64, observe func(time.Time, time.Duration)) error {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	placed := 0
	for placed < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		due := min(n, int(rate*time.Since(start).Seconds()))
		if due > placed {
			if err := place(ctx, rt, out, first+placed, due-placed, resume, failRate, timeoutRate, observe); err != nil {
				return err
			}
			placed = due
		}
	}
	return nil
}

// unplaced drops the orders an earlier run placed already, with one query
// where the store can read many streams at once.
func unplaced(ctx context.Context, rt *evoke.Runtime, batch []evoke.StreamAppend) ([]evoke.StreamAppend, error) {
	sr, ok := rt.Store().(evokestore.StreamsReader)
	if !ok {
		return batch, nil
	}
	ids := make([]string, len(batch))
	for i, a := range batch {
		ids[i] = a.StreamID
	}
	evs, err := sr.ReadStreams(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read placed orders: %w", err)
	}
	placed := make(map[string]bool, len(evs))
	for _, e := range evs {
		placed[e.StreamID] = true
	}
	out := batch[:0]
	for _, a := range batch {
		if !placed[a.StreamID] {
			out = append(out, a)
		}
	}
	return out, nil
}

// order returns order k's OrderPlaced event, with a deterministic ID so that
// placing it again is recognised. Whether its payment is declined or its
// shipment lost is a deterministic function of k, spread evenly.
func order(k int, failRate, timeoutRate float64) evoke.Event {
	id := OrderID(k)
	u := float64(uint32(k)*2654435761%10000) / 10000 // Knuth's multiplicative hash: evenly spread
	e := evoke.NewEvent(orderfulfillment.EventOrderPlaced, orderfulfillment.OrderPlaced{
		OrderID:        id,
		CustomerID:     fmt.Sprintf("customer-%d", k%97),
		Items:          []orderfulfillment.Item{{SKU: fmt.Sprintf("sku-%d", k%13), Qty: 1 + k%3}},
		Amount:         int64(1000 + k%5000),
		DeclinePayment: u < failRate,
		LoseShipment:   u >= failRate && u < failRate+timeoutRate,
	})
	e.ID = id + "-placed"
	return e
}

// finished counts the run's orders whose instance completed.
func finished(ctx context.Context, store evokestore.Querier, first, n int) (int, error) {
	var s Summary
	s.FirstOrder, s.Orders = first, n
	err := count(ctx, store, &s)
	return s.Completed, err
}

// count fills in the run's completed, in-flight and failed orders.
func count(ctx context.Context, store evokestore.Querier, s *Summary) error {
	s.Completed, s.InFlight, s.Failed, s.Compensated, s.TimedOut, s.Parked = 0, 0, 0, 0, 0, 0
	const chunk = 500
	for lo := s.FirstOrder; lo < s.FirstOrder+s.Orders; lo += chunk {
		hi := min(lo+chunk, s.FirstOrder+s.Orders)
		ids := make([]string, 0, hi-lo)
		for k := lo; k < hi; k++ {
			ids = append(ids, OrderID(k))
		}
		insts, err := store.Instances(ctx, orderfulfillment.Name, ids)
		if err != nil {
			return fmt.Errorf("count orders: %w", err)
		}
		for _, in := range insts {
			switch {
			case in.Status.Done():
				s.Completed++
				switch in.Phase {
				case orderfulfillment.StatusPaymentFailed, orderfulfillment.StatusInventoryFailed:
					s.Compensated++
				case orderfulfillment.StatusTimedOut:
					s.TimedOut++
				}
			case in.Status.Stuck():
				s.Failed++
				if in.Status == evokestore.StatusParked {
					s.Parked++
				}
			}
		}
	}
	s.InFlight = s.Orders - s.Completed - s.Failed // running or not started yet
	return nil
}

// leveled filters a handler's records below a level.
type leveled struct {
	slog.Handler
	min slog.Level
}

func (l leveled) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= l.min && l.Handler.Enabled(ctx, level)
}

func (l leveled) WithAttrs(as []slog.Attr) slog.Handler {
	return leveled{l.Handler.WithAttrs(as), l.min}
}
func (l leveled) WithGroup(name string) slog.Handler {
	return leveled{l.Handler.WithGroup(name), l.min}
}
