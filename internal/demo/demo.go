// Package demo runs the order-fulfilment workload behind `evoke demo` and
// the crash tests: it places orders, runs the order-fulfilment process
// manager of examples/orderfulfillment with its payment, inventory and
// shipping aggregates (poison orders aside, whose first step fails every
// time), and counts how far they got.
package demo

import (
	"bytes"
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
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
)

// Errors of a run.
var (
	// ErrIncomplete reports a run that stopped before all its orders
	// finished.
	ErrIncomplete = errors.New("demo: not every order finished")
	// ErrInterrupted reports a run whose context ended (SIGINT): it
	// stopped placing orders, stopped the runtime after its current
	// transactions and counted what was done.
	ErrInterrupted = errors.New("demo: interrupted")
	// ErrPoisonOrder is the error with which the step of a poison order
	// (Options.PoisonRate) fails, every time it is tried.
	ErrPoisonOrder = errors.New("poison order: this step fails every time it runs (skip or cancel the instance)")
)

// runsStream records each run: its first order number and count, so that
// a second run on the same store gets new order IDs, and the order
// process's inactivity timeout, so that every later run and worker on the
// store keeps it (see StoredTimeout).
const runsStream = "evoke-demo-runs"

// runRecord is an event of runsStream.
type runRecord struct {
	First  int `json:"first"`
	Orders int `json:"orders"`
	// TimeoutMS is the order process's inactivity timeout in the run, in
	// milliseconds.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

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
	// PoisonRate is the fraction of orders that are poison: the order
	// process's first step fails on them every time (ErrPoisonOrder), so
	// that after Config.MaxAttempts tries each instance is parked for an
	// operator to retry, skip or cancel. A run counts a parked order as
	// settled. FailRate, TimeoutRate and PoisonRate add up to at most 1.
	PoisonRate float64
	// Timeout is the order process's inactivity timeout. Defaults to 1s
	// when TimeoutRate is set, and to none otherwise (a timeout costs a
	// deadline write per step). A run never uses less than the longest
	// timeout an earlier run recorded in the store (StoredTimeout): the
	// orders those runs placed may still be waiting on it.
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
}

// Summary is what a run did.
type Summary struct {
	Store      string `json:"store"`
	Orders     int    `json:"orders"`
	FirstOrder int    `json:"first_order"`
	// Placed counts the run's orders placed when it ended (by this run or
	// an earlier one): all of them, unless the run was interrupted.
	Placed int `json:"placed"`
	// Interrupted reports that the run's context ended before all its
	// orders settled.
	Interrupted bool `json:"interrupted"`
	// TimeoutSeconds is the order process's inactivity timeout in the
	// run (0: none).
	TimeoutSeconds float64 `json:"timeout_seconds"`
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

// counter counts settled instances of the run's orders (finished or
// parked), and passes all telemetry on to next, if set.
type counter struct {
	first, last int
	finished    atomic.Int64
	next        evoke.Hooks
}

func (c *counter) Telemetry(t evoke.Telemetry) {
	if c.next != nil {
		c.next.Telemetry(t)
	}
	if (t.Kind != evoke.TelemetryStop && t.Kind != evoke.TelemetryPark) || t.Name != orderfulfillment.Name {
		return
	}
	if n, ok := orderNumber(t.ProcessID); ok && n >= c.first && n <= c.last {
		c.finished.Add(1)
	}
}

// Register adds the order-fulfilment process manager and its aggregates to
// rt, with the given inactivity timeout (0 for none).
func Register(rt *evoke.Runtime, timeout time.Duration) error {
	return errors.Join(
		evoke.RegisterProcessManager(rt, fulfillment{orderfulfillment.Fulfillment{TimeoutAfter: timeout}}, nil),
		evoke.RegisterAggregate(rt, orderfulfillment.AggregatePayment, orderfulfillment.Payment{}),
		evoke.RegisterAggregate(rt, orderfulfillment.AggregateInventory, orderfulfillment.Inventory{}),
		evoke.RegisterAggregate(rt, orderfulfillment.AggregateShipping, orderfulfillment.Shipping{}),
	)
}

// fulfillment is the demo's order process: orderfulfillment.Fulfillment,
// whose Handle fails on the OrderPlaced of a poison order every time.
type fulfillment struct {
	orderfulfillment.Fulfillment
}

// poisonMark is the part of an OrderPlaced that marks a poison order.
type poisonMark struct {
	Poison bool `json:"poison"`
}

// Handle fails a poison order's OrderPlaced with ErrPoisonOrder and hands
// every other event to Fulfillment.Handle.
func (f fulfillment) Handle(s orderfulfillment.State, e evoke.Event) (orderfulfillment.State, []evoke.Command, error) {
	// (Only an order that mentions poison is decoded: the check costs
	// nothing measurable on the orders that do not.)
	if e.Type == orderfulfillment.EventOrderPlaced && bytes.Contains(e.Data, []byte(`"poison"`)) {
		if m, err := evoke.Decode[poisonMark](e); err == nil && m.Poison {
			return s, nil, fmt.Errorf("order %s: %w", s.OrderID, ErrPoisonOrder)
		}
	}
	return f.Fulfillment.Handle(s, e)
}

// StoredTimeout returns the longest inactivity timeout of the order process
// that a demo run recorded in store, or 0. Every run records its timeout
// before it places an order, and takes at least the stored one (as evoke
// worker does by default): a process whose timeout came from a flag keeps
// it in every later process on the same store, flag or not.
func StoredTimeout(ctx context.Context, store evokestore.Store) (time.Duration, error) {
	runs, err := readRuns(ctx, store)
	if err != nil {
		return 0, err
	}
	var d time.Duration
	for _, r := range runs {
		d = max(d, time.Duration(r.TimeoutMS)*time.Millisecond)
	}
	return d, nil
}

// readRuns reads the runs recorded in store.
func readRuns(ctx context.Context, store evokestore.Store) ([]runRecord, error) {
	evs, err := store.ReadStream(ctx, runsStream, 0)
	if err != nil {
		return nil, fmt.Errorf("read demo runs: %w", err)
	}
	out := make([]runRecord, len(evs))
	for i, e := range evs {
		if err := json.Unmarshal(e.Data, &out[i]); err != nil {
			return nil, fmt.Errorf("decode demo run %d: %w", i+1, err)
		}
	}
	return out, nil
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
	if err := opts.mix().check(); err != nil {
		return Summary{}, err
	}
	if opts.Timeout == 0 && opts.TimeoutRate > 0 {
		opts.Timeout = time.Second
	}
	storedTimeout, err := StoredTimeout(ctx, store)
	if err != nil {
		return Summary{}, err
	}
	opts.Timeout = max(opts.Timeout, storedTimeout)
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
	if err := Register(rt, opts.Timeout); err != nil {
		return Summary{}, err
	}
	first, err := record(ctx, rt, opts.FirstOrder, opts.Orders, opts.Timeout)
	if err != nil {
		return Summary{}, err
	}
	cnt.first, cnt.last = first, first+opts.Orders-1
	sum := Summary{Store: store.Backend(), Orders: opts.Orders, FirstOrder: first, TimeoutSeconds: opts.Timeout.Seconds()}

	// Orders a killed earlier run finished already count.
	done, err := finished(ctx, store, first, opts.Orders)
	if err != nil {
		return sum, err
	}
	base := int64(done)

	// The runtime runs until stop: an interrupt (ctx) ends the placing
	// and the wait, and then stop lets the runtime finish its current
	// transactions.
	if err := rt.Start(context.WithoutCancel(ctx)); err != nil {
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
		return rt.Stop(sctx)
	}
	defer stop()

	var placedThrough atomic.Int64 // the orders before it are placed
	placedThrough.Store(int64(first))
	pl := placer{mix: opts.mix(), resume: opts.FirstOrder != 0, observe: opts.Placed, through: &placedThrough}
	placing := make(chan struct{})
	if opts.Rate > 0 {
		go func() {
			defer close(placing)
			if err := pl.placePaced(ctx, rt, first, opts.Orders, opts.Rate); err != nil && ctx.Err() == nil {
				logger.Error("placing orders failed", "err", err)
			}
		}()
	} else {
		close(placing)
		if err := pl.place(ctx, rt, first, opts.Orders); err != nil && ctx.Err() == nil {
			return sum, err
		}
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
			waitErr = ErrInterrupted
		case <-tick.C:
			continue
		}
		break
	}
	elapsed := time.Since(start)
	<-placing
	sum.Placed = int(placedThrough.Load()) - first
	sum.Interrupted = errors.Is(waitErr, ErrInterrupted)
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
	// them: the outcome agrees with it. A parked order is settled: a
	// poison order ends there.
	settled := sum.Completed + sum.Parked
	if errors.Is(waitErr, ErrIncomplete) && settled >= sum.Orders {
		waitErr = nil
	}
	if waitErr == nil && settled < sum.Orders {
		waitErr = ErrIncomplete
	}
	return sum, waitErr
}

// record records a run of n orders with the given timeout and returns its
// first order number: first if set (a run resumed), else the next free
// one. A resumed run is recorded only when its timeout is longer than the
// stored one.
func record(ctx context.Context, rt *evoke.Runtime, first, n int, timeout time.Duration) (int, error) {
	for {
		past, err := readRuns(ctx, rt.Store())
		if err != nil {
			return 0, err
		}
		r := runRecord{First: first, Orders: n, TimeoutMS: timeout.Milliseconds()}
		var stored int64
		for _, p := range past {
			stored = max(stored, p.TimeoutMS)
		}
		if r.First != 0 && r.TimeoutMS <= stored {
			return r.First, nil
		}
		if r.First == 0 {
			r.First = 1
			for _, p := range past {
				r.First = max(r.First, p.First+p.Orders)
			}
		}
		_, err = rt.Append(ctx, runsStream, int64(len(past)), evoke.NewEvent("DemoRunStarted", r))
		if errors.Is(err, evoke.ErrVersionConflict) {
			continue
		}
		return r.First, err
	}
}

// mix is the share of each kind of order in a run.
type mix struct {
	fail, timeout, poison float64
}

func (o Options) mix() mix { return mix{o.FailRate, o.TimeoutRate, o.PoisonRate} }

// check refuses rates that are not fractions adding up to at most 1.
func (m mix) check() error {
	for _, r := range []float64{m.fail, m.timeout, m.poison} {
		if !(r >= 0 && r <= 1) { // NaN too
			return fmt.Errorf("%w: fail rate %v, timeout rate %v and poison rate %v must be fractions adding up to at most 1", evoke.ErrInvalid, m.fail, m.timeout, m.poison)
		}
	}
	if m.fail+m.timeout+m.poison > 1 {
		return fmt.Errorf("%w: fail rate %v, timeout rate %v and poison rate %v must be fractions adding up to at most 1", evoke.ErrInvalid, m.fail, m.timeout, m.poison)
	}
	return nil
}

// CheckRates returns an error wrapping evoke.ErrInvalid unless the fail,
// timeout and poison rates of Options are fractions adding up to at most
// 1.
func CheckRates(fail, timeout, poison float64) error {
	return mix{fail, timeout, poison}.check()
}

// Place appends the OrderPlaced events of orders first..first+n-1 in
// batches; rt need not be started. With resume, orders placed by an earlier
// attempt are skipped. failRate and timeoutRate are as in Options.
func Place(ctx context.Context, rt *evoke.Runtime, first, n int, resume bool, failRate, timeoutRate float64) error {
	return placer{mix: mix{fail: failRate, timeout: timeoutRate}, resume: resume}.place(ctx, rt, first, n)
}

// placer places orders.
type placer struct {
	mix    mix
	resume bool
	// observe, if set, is called after each append (Options.Placed).
	observe func(time.Time, time.Duration)
	// through, if set, is moved past each chunk once it is placed.
	through *atomic.Int64
}

// place appends the orders first..first+n-1 in chunks. When ctx ends it
// stops before the next chunk and returns ctx's error; a chunk it began
// is appended whole.
func (p placer) place(ctx context.Context, rt *evoke.Runtime, first, n int) error {
	const chunk = 500
	actx := context.WithoutCancel(ctx)
	for lo := first; lo < first+n; lo += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+chunk, first+n)
		if err := p.placeChunk(actx, rt, lo, hi); err != nil {
			return err
		}
		if p.through != nil {
			p.through.Store(int64(hi))
		}
	}
	return nil
}

// placeChunk appends the orders lo..hi-1.
func (p placer) placeChunk(ctx context.Context, rt *evoke.Runtime, lo, hi int) error {
	batch := make([]evoke.StreamAppend, 0, hi-lo)
	for k := lo; k < hi; k++ {
		batch = append(batch, evoke.StreamAppend{StreamID: OrderID(k), ExpectedVersion: evoke.NoStream, Events: []evoke.Event{order(k, p.mix)}})
	}
	if p.resume {
		var err error
		if batch, err = unplaced(ctx, rt, batch); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
	}
	t0 := time.Now()
	_, err := rt.AppendBatch(ctx, batch)
	if err == nil && p.observe != nil {
		p.observe(t0, time.Since(t0))
	}
	if err != nil && p.resume && (errors.Is(err, evoke.ErrVersionConflict) || errors.Is(err, evoke.ErrDuplicateEvent)) {
		for _, a := range batch {
			_, err := rt.Append(ctx, a.StreamID, a.ExpectedVersion, a.Events...)
			if err != nil && !errors.Is(err, evoke.ErrVersionConflict) && !errors.Is(err, evoke.ErrDuplicateEvent) {
				return fmt.Errorf("place %s: %w", a.StreamID, err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("place orders %d..%d: %w", lo, hi-1, err)
	}
	return nil
}

// placePaced places n orders at rate per second, a slice every 10ms.
func (p placer) placePaced(ctx context.Context, rt *evoke.Runtime, first, n int, rate float64) error {
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
			if err := p.place(ctx, rt, first+placed, due-placed); err != nil {
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

// placedData is the data of the demo's OrderPlaced: the example's, and
// whether the order is poison.
type placedData struct {
	orderfulfillment.OrderPlaced
	Poison bool `json:"poison,omitempty"`
}

// order returns order k's OrderPlaced event, with a deterministic ID so that
// placing it again is recognised. Whether its payment is declined, its
// shipment lost or the order poison is a deterministic function of k,
// spread evenly.
func order(k int, m mix) evoke.Event {
	id := OrderID(k)
	u := float64(uint32(k)*2654435761%10000) / 10000 // Knuth's multiplicative hash: evenly spread
	e := evoke.NewEvent(orderfulfillment.EventOrderPlaced, placedData{OrderPlaced: orderfulfillment.OrderPlaced{
		OrderID:        id,
		CustomerID:     fmt.Sprintf("customer-%d", k%97),
		Items:          []orderfulfillment.Item{{SKU: fmt.Sprintf("sku-%d", k%13), Qty: 1 + k%3}},
		Amount:         int64(1000 + k%5000),
		DeclinePayment: u < m.fail,
		LoseShipment:   u >= m.fail && u < m.fail+m.timeout,
	}, Poison: u >= m.fail+m.timeout && u < m.fail+m.timeout+m.poison})
	e.ID = id + "-placed"
	return e
}

// finished counts the run's orders that settled: whose instance completed
// or is parked.
func finished(ctx context.Context, store evokestore.Querier, first, n int) (int, error) {
	var s Summary
	s.FirstOrder, s.Orders = first, n
	err := count(ctx, store, &s)
	return s.Completed + s.Parked, err
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
