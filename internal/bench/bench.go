// Package bench runs the order-fulfilment workload of internal/demo as a
// benchmark behind `evoke bench`: from an empty store, optionally with many
// live (in-flight) instances seeded first, it measures completed sagas/s,
// events/s, the step latency (an event appended → the command its step
// produced dispatched) and the process's peak RSS.
//
// The step latency is derived from the store after the run, without any
// runtime instrumentation: every step's history record names its triggering
// event (EventID) and lists the IDs of the commands it produced; an
// aggregate's events carry the command's ID as causation and the dispatch
// time as RecordedAt; the triggering event's RecordedAt is its append time.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
	"github.com/evoke-go/evoke/internal/demo"
)

// Options configure a bench run.
type Options struct {
	// Orders is how many orders the timed run places and completes.
	// Defaults to 10000.
	Orders int
	// InFlight is how many started, never completed order-fulfilment
	// instances are written to the store before the timed run, so that
	// throughput can be measured against the number of live instances.
	InFlight int
	// Config tunes the runtime (Workers, BatchSize, DispatchBatchSize);
	// its Logger and Hooks are set by the run.
	Config evoke.Config
	// Rate, if positive, places the orders at this many per second while
	// they run (demo.Options.Rate), so that step latency is measured below
	// saturation; 0 places them all at once.
	Rate float64
	// Stall ends the run when no order finished for this long. Defaults
	// to 60s.
	Stall time.Duration
	// Progress, if set, is called during the timed run with the number of
	// completed orders.
	Progress func(done, total int)
	// SeedProgress, if set, is called while seeding with the number of
	// instances written.
	SeedProgress func(done, total int)
	// Logger receives the runtime's logs (warnings and errors by default).
	Logger *slog.Logger
	// AfterSeed, if set, runs after seeding and before the timed run
	// (Target.Settle); its time is not counted.
	AfterSeed func(ctx context.Context) error
	// Timed, if set, is called when the timed run starts; the function it
	// returns is called when it ends (before the latency analysis). evoke
	// bench --cpuprofile uses it to profile only the runtime's work.
	Timed func() (end func())
	// Window, if positive, fills Result.Timeline with the step latencies
	// of each Window of the timed run.
	Window time.Duration
	// Source, if set, runs the orders over NATS (demo.Options.Source):
	// placed on JetStream and ingested from there, their commands
	// answered over NATS.
	Source string
}

// Latency summarises the step latencies of a run, in milliseconds.
type Latency struct {
	// Count is how many commands were measured.
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Result is what a bench run measured.
type Result struct {
	Store string `json:"store"`
	// Source is "nats" for a run over NATS (Options.Source), and empty
	// for one over the store's own log.
	Source string `json:"source,omitempty"`
	Orders int    `json:"orders"`
	// Completed counts the run's orders whose process completed.
	Completed int `json:"completed"`
	// Failed counts the run's orders whose instance is failing or parked.
	Failed int `json:"failed"`
	// InFlight is how many live instances were seeded before the run.
	InFlight int `json:"inflight"`
	// Workers, Batch and DispatchBatch are the runtime settings asked
	// for; 0 means the runtime's default.
	Workers       int `json:"workers"`
	Batch         int `json:"batch"`
	DispatchBatch int `json:"dispatch_batch"`
	// Events and Commands count what the timed run added to the store.
	Events   int64 `json:"events"`
	Commands int64 `json:"commands"`
	// Seconds is the timed run's wall time: placing the orders and running
	// them to completion.
	Seconds      float64 `json:"seconds"`
	SagasPerSec  float64 `json:"sagas_per_sec"`
	EventsPerSec float64 `json:"events_per_sec"`
	StepLatency  Latency `json:"step_latency_ms"`
	// SteadyStepLatency is StepLatency over the steps whose triggering
	// event was appended WarmUp or more after the timed run started: the
	// first moments of a process (code and heap first touched, statements
	// prepared on each connection, files growing) are slower, and in a
	// short run they hold most of the tail.
	SteadyStepLatency Latency `json:"steady_step_latency_ms"`
	// StepLatencyByTrigger is StepLatency by the triggering event's type.
	// In the order workload an OrderPlaced step waits for the router to
	// read the event a producer appended; with chaining, the later steps
	// run in the batch that appended their event, so the overall median
	// mostly shows them.
	StepLatencyByTrigger map[string]Latency `json:"step_latency_by_trigger_ms"`
	// CommitLatency is the time from a command's triggering event's append
	// to the commit of the step that ran it, as the runtime saw it (its
	// "command" telemetry, emitted once the batch landed): StepLatency
	// ends when the aggregate decided the command, inside the batch's
	// preparation, so this adds the batch's write and its wait for the
	// batch before. CommitLatencyByTrigger is it by triggering event type.
	CommitLatency          Latency            `json:"commit_latency_ms"`
	CommitLatencyByTrigger map[string]Latency `json:"commit_latency_by_trigger_ms"`
	// AppendLatency summarises the producer's appends that placed the
	// orders (each a Runtime.AppendBatch of up to 500 orders, or of a 10 ms
	// slice with Rate): from the call to its return, the wait for the
	// store's write lock included. An OrderPlaced step's latency starts
	// when its event is stamped, before the append, so it includes the
	// append; the rest is the router's.
	AppendLatency Latency `json:"append_latency_ms"`
	// CPUSeconds is the CPU time (user and system) the whole process
	// used during the timed run, the orders' producer included; on a
	// shared machine it varies less than the wall time. CPUPerSagaUS is it
	// per completed saga, in microseconds. A PostgreSQL server's own CPU
	// is not in it.
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUPerSagaUS float64 `json:"cpu_us_per_saga"`
	// PeakRSSMB is the process's peak resident set (VmHWM), in MiB, at
	// the end of the timed run (seeding included, the latency analysis
	// not); 0 where /proc/self/status is not available.
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// SeedSeconds is how long seeding the in-flight instances took.
	SeedSeconds float64 `json:"seed_seconds"`
	// Runtime are some of the runtime's counters: its batches, the steps
	// it chained into the batch that appended their events
	// (Config.ChainDepth), and the batches it wrote again without their
	// chained steps or with their commands queued.
	Runtime RuntimeCounters `json:"runtime"`
	// Machine is the machine's own figures on the store's backend, when
	// measured (evoke bench --calibrate; see Calibrate).
	Machine *Machine `json:"machine,omitempty"`
	// Timeline summarises the step latencies by when their triggering
	// event was appended, one Options.Window at a time (if asked for).
	Timeline []Window `json:"timeline,omitempty"`
}

// RuntimeCounters are Result.Runtime.
type RuntimeCounters struct {
	Steps           int64 `json:"steps"`
	Batches         int64 `json:"batches"`
	Chained         int64 `json:"chained"`
	ChainFallbacks  int64 `json:"chain_fallbacks"`
	InlineFallbacks int64 `json:"inline_fallbacks"`
	// Where the routers spent their time (evoke.Stats): Writes batches
	// written, the seconds spent preparing them, waiting for the batch
	// before to be written, and writing them; WriterBusy is
	// WriteSeconds over the run's wall time (near 1, the store's single
	// writer is what limits the throughput).
	Writes           int64   `json:"writes"`
	PrepareSeconds   float64 `json:"prepare_seconds"`
	WriteWaitSeconds float64 `json:"write_wait_seconds"`
	WriteSeconds     float64 `json:"write_seconds"`
	WriterBusy       float64 `json:"writer_busy"`
}

// WarmUp is how long after the start of the timed run SteadyStepLatency
// begins.
const WarmUp = time.Second

// ErrNotEmpty reports a store that holds events or instances already.
var ErrNotEmpty = errors.New("bench: the store is not empty")

// Run seeds opts.InFlight live instances, then runs opts.Orders orders to
// completion on store, which must be empty, and measures the run. A run
// that did not complete every order returns its Result with an error
// wrapping demo.ErrIncomplete.
func Run(ctx context.Context, store evokestore.Store, opts Options) (Result, error) {
	if opts.Orders == 0 {
		opts.Orders = 10000
	}
	if opts.Orders < 0 || opts.InFlight < 0 {
		return Result{}, fmt.Errorf("%w: orders %d, in flight %d", evoke.ErrInvalid, opts.Orders, opts.InFlight)
	}
	if err := checkEmpty(ctx, store); err != nil {
		return Result{}, err
	}
	res := Result{
		Store: store.Backend(), Orders: opts.Orders, InFlight: opts.InFlight,
		Workers: opts.Config.Workers, Batch: opts.Config.BatchSize, DispatchBatch: opts.Config.DispatchBatchSize,
	}
	if opts.InFlight > 0 {
		start := time.Now()
		if err := Seed(ctx, store, opts.InFlight, opts.SeedProgress); err != nil {
			return res, err
		}
		res.SeedSeconds = time.Since(start).Seconds()
		if opts.AfterSeed != nil {
			if err := opts.AfterSeed(ctx); err != nil {
				return res, err
			}
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		return res, fmt.Errorf("read log head: %w", err)
	}
	end := func() {}
	if opts.Timed != nil {
		end = opts.Timed()
	}
	commits := newCommitClock(3 * opts.Orders)
	appends := &appendClock{}
	start, cpu0 := time.Now(), processCPU()
	sum, runErr := demo.Run(ctx, store, demo.Options{
		Orders: opts.Orders, Rate: opts.Rate, Stall: opts.Stall, Progress: opts.Progress, Logger: opts.Logger, Config: opts.Config,
		Hooks: commits, Placed: appends.add, Source: opts.Source,
	})
	if opts.Source != "" {
		res.Source = "nats"
	}
	cpu := processCPU() - cpu0
	end()
	res.Completed, res.Failed = sum.Completed, sum.Failed
	res.Events, res.Commands, res.Seconds = sum.Events, sum.Commands, sum.Seconds
	rs := sum.Runtime
	res.Runtime = RuntimeCounters{Steps: rs.Steps, Batches: rs.Batches, Chained: rs.Chained, ChainFallbacks: rs.ChainFallbacks, InlineFallbacks: rs.InlineFallbacks,
		Writes: rs.Writes, PrepareSeconds: rs.PrepareTime.Seconds(), WriteWaitSeconds: rs.WriteWait.Seconds(), WriteSeconds: rs.WriteTime.Seconds()}
	res.CPUSeconds = cpu.Seconds()
	if sum.Completed > 0 {
		res.CPUPerSagaUS = float64(cpu.Microseconds()) / float64(sum.Completed)
	}
	if sum.Seconds > 0 {
		res.SagasPerSec = float64(sum.Completed) / sum.Seconds
		res.EventsPerSec = float64(sum.Events) / sum.Seconds
		res.Runtime.WriterBusy = rs.WriteTime.Seconds() / sum.Seconds
	}
	// Read before the latency analysis below, which is not the runtime's.
	res.PeakRSSMB = PeakRSSMB()
	if runErr != nil && !errors.Is(runErr, demo.ErrIncomplete) {
		return res, runErr
	}
	steps, err := StepLatencies(context.WithoutCancel(ctx), store, head, sum.FirstOrder, sum.Orders, commits.committed())
	if err != nil {
		return res, err
	}
	res.StepLatency, res.SteadyStepLatency = SummariseSteps(steps, start.Add(WarmUp))
	res.StepLatencyByTrigger = ByTrigger(steps)
	res.CommitLatency, res.CommitLatencyByTrigger = CommitLatencies(steps)
	placed := appends.taken()
	res.AppendLatency = SummariseAppends(placed)
	res.Timeline = TimelineOf(steps, start, opts.Window)
	AppendsInto(res.Timeline, placed, start, opts.Window)
	return res, runErr
}

func checkEmpty(ctx context.Context, store evokestore.Store) error {
	st, err := store.Stats(ctx)
	if err != nil {
		return fmt.Errorf("read store stats: %w", err)
	}
	var instances int64
	for _, m := range st.Instances {
		for _, n := range m {
			instances += n
		}
	}
	if st.Events > 0 || instances > 0 || st.Outbox > 0 {
		return fmt.Errorf("%w: %d events, %d instances", ErrNotEmpty, st.Events, instances)
	}
	return nil
}

// SeedChunk is how many instances Seed writes per transaction.
const SeedChunk = 5000

// InFlightID returns the instance ID of seeded in-flight instance n.
func InFlightID(n int) string { return fmt.Sprintf("inflight-%08d", n) }

// Seed writes n order-fulfilment instances that started and never finish
// (status running, phase awaiting_shipment, a valid orderfulfillment.State)
// directly through the store, SeedChunk per transaction.
func Seed(ctx context.Context, store evokestore.Store, n int, progress func(done, total int)) error {
	now := time.Now()
	for lo := 0; lo < n; lo += SeedChunk {
		hi := min(lo+SeedChunk, n)
		ws := make([]evokestore.InstanceWrite, 0, hi-lo)
		for k := lo; k < hi; k++ {
			id := InFlightID(k + 1)
			state, err := json.Marshal(orderfulfillment.State{
				OrderID: id, CustomerID: "customer-" + strconv.Itoa(k%97),
				Items:  []orderfulfillment.Item{{SKU: "sku-" + strconv.Itoa(k%13), Qty: 1 + k%3}},
				Amount: int64(1000 + k%5000), Status: orderfulfillment.StatusAwaitingShipment,
			})
			if err != nil {
				return err
			}
			ws = append(ws, evokestore.InstanceWrite{PrevVersion: -1, Instance: evokestore.Instance{
				ProcessManager: orderfulfillment.Name, ID: id, State: state, Version: 3,
				Status: evokestore.StatusRunning, Phase: orderfulfillment.StatusAwaitingShipment,
				CreatedAt: now, UpdatedAt: now,
			}})
		}
		tx, err := store.Begin(ctx)
		if err != nil {
			return fmt.Errorf("seed: begin: %w", err)
		}
		if err := tx.PutInstances(ctx, ws); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("seed instances %d..%d: %w", lo+1, hi, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("seed instances %d..%d: commit: %w", lo+1, hi, err)
		}
		if progress != nil {
			progress(hi, n)
		}
	}
	return nil
}

// Step is one command's step latency: from the append of the event that
// triggered it (Trigger) to its dispatch.
type Step struct {
	Trigger time.Time
	Latency time.Duration
	// Type is the triggering event's type.
	Type string
	// Committed is the time from Trigger to the commit of the step's batch
	// as the runtime reported it; 0 when it did not (StepLatencies was
	// given no commit times, or none for this command).
	Committed time.Duration
}

// appendClock collects the producer's appends. A paced producer may still
// be running when a failed run returns.
type appendClock struct {
	mu      sync.Mutex
	appends []Append
}

// add is demo.Options.Placed.
func (c *appendClock) add(began time.Time, took time.Duration) {
	c.mu.Lock()
	c.appends = append(c.appends, Append{At: began, Took: took})
	c.mu.Unlock()
}

// taken returns the appends; the clock must no longer be in use.
func (c *appendClock) taken() []Append {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.appends
}

// commitClock records when the runtime reported each command's step
// committed (its "command" telemetry comes after the batch landed), in
// two flat slices sized for the run: a map of the IDs would grow the heap
// the run's peak RSS is read from.
type commitClock struct {
	seed maphash.Seed
	mu   sync.Mutex
	ids  []uint64 // hashes of command IDs
	at   []int64  // Unix nanoseconds
}

func newCommitClock(commands int) *commitClock {
	return &commitClock{seed: maphash.MakeSeed(), ids: make([]uint64, 0, commands), at: make([]int64, 0, commands)}
}

func (c *commitClock) Telemetry(t evoke.Telemetry) {
	if t.Kind != evoke.TelemetryCommand {
		return
	}
	now, h := time.Now().UnixNano(), maphash.String(c.seed, t.CommandID)
	c.mu.Lock()
	c.ids, c.at = append(c.ids, h), append(c.at, now)
	c.mu.Unlock()
}

// committed returns the recorded times by command ID; the clock must no
// longer be in use.
func (c *commitClock) committed() func(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[uint64]int64, len(c.ids))
	for i, h := range c.ids {
		m[h] = c.at[i]
	}
	return func(id string) (time.Time, bool) {
		at, ok := m[maphash.String(c.seed, id)]
		return time.Unix(0, at), ok
	}
}

// CommitLatencies summarises the steps' Committed times, of all and by
// triggering event type, over the steps that have one.
func CommitLatencies(steps []Step) (all Latency, by map[string]Latency) {
	a := make([]time.Duration, 0, len(steps))
	for _, s := range steps {
		if s.Committed > 0 {
			a = append(a, s.Committed)
		}
	}
	return summariseOwned(a), byTrigger(steps, func(s Step) (time.Duration, bool) { return s.Committed, s.Committed > 0 })
}

// StepLatencies returns, for every command the run's orders' steps
// produced, the time from its triggering event's append to its dispatch,
// and to its step's commit where committed (nil, or the commit time by
// command ID) has it. The run's events are those after log position after; its orders
// are demo.OrderID(first) .. demo.OrderID(first+n-1).
func StepLatencies(ctx context.Context, store evokestore.Store, after int64, first, n int, committed func(id string) (time.Time, bool)) ([]Step, error) {
	step := func(cmd string, trig, at time.Time, typ string) Step {
		s := Step{Trigger: trig, Latency: at.Sub(trig), Type: typ}
		if committed != nil {
			if c, ok := committed(cmd); ok {
				s.Committed = c.Sub(trig)
			}
		}
		return s
	}
	appended := make(map[string]time.Time)   // event ID → RecordedAt
	dispatched := make(map[string]time.Time) // command ID → first event's RecordedAt
	for {
		evs, err := store.ReadLog(ctx, evokestore.LogQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			appended[e.ID] = e.RecordedAt
			if e.CausationID != "" {
				if _, ok := dispatched[e.CausationID]; !ok {
					dispatched[e.CausationID] = e.RecordedAt
				}
			}
		}
		after = evs[len(evs)-1].Position
	}

	type cmdRef struct {
		ID string `json:"id"`
	}
	type pending struct {
		cmd     string
		trigger time.Time
		typ     string
	}
	var (
		mu        sync.Mutex
		lat       []Step
		noEvent   []pending // commands that emitted no event (rejected, or lost shipments)
		firstErr  error
		wg        sync.WaitGroup
		next      = make(chan int)
		stopEarly = make(chan struct{})
	)
	for range 8 {
		wg.Go(func() {
			var mine []Step
			var mineNoEvent []pending
			for k := range next {
				hist, err := store.History(ctx, orderfulfillment.Name, demo.OrderID(k))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("read history of %s: %w", demo.OrderID(k), err)
						close(stopEarly)
					}
					mu.Unlock()
					continue
				}
				for _, h := range hist {
					if h.Kind != evokestore.KindStep || len(h.Commands) == 0 {
						continue
					}
					trig, ok := appended[h.EventID]
					if !ok {
						continue
					}
					var refs []cmdRef
					if err := json.Unmarshal(h.Commands, &refs); err != nil {
						continue
					}
					for _, r := range refs {
						if at, ok := dispatched[r.ID]; ok {
							mine = append(mine, step(r.ID, trig, at, h.EventType))
						} else {
							mineNoEvent = append(mineNoEvent, pending{r.ID, trig, h.EventType})
						}
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			noEvent = append(noEvent, mineNoEvent...)
			mu.Unlock()
		})
	}
feed:
	for k := first; k < first+n; k++ {
		select {
		case next <- k:
		case <-stopEarly:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// A command whose aggregate emitted nothing still has its outcome,
	// recorded at dispatch.
	for lo := 0; lo < len(noEvent); lo += 500 {
		part := noEvent[lo:min(lo+500, len(noEvent))]
		ids := make([]string, len(part))
		trig := make(map[string]pending, len(part))
		for i, p := range part {
			ids[i], trig[p.cmd] = p.cmd, p
		}
		outs, err := store.CommandOutcomes(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("read command outcomes: %w", err)
		}
		for _, o := range outs {
			p := trig[o.CommandID]
			lat = append(lat, step(o.CommandID, p.trigger, o.RecordedAt, p.typ))
		}
	}
	return lat, nil
}

// SummariseSteps summarises the latencies of all steps, and of those
// triggered at steadyFrom or later.
func SummariseSteps(steps []Step, steadyFrom time.Time) (all, steady Latency) {
	a, st := make([]time.Duration, 0, len(steps)), make([]time.Duration, 0, len(steps))
	for _, s := range steps {
		a = append(a, s.Latency)
		if !s.Trigger.Before(steadyFrom) {
			st = append(st, s.Latency)
		}
	}
	return summariseOwned(a), summariseOwned(st)
}

// ByTrigger summarises the latencies of steps by their triggering event's
// type.
func ByTrigger(steps []Step) map[string]Latency {
	return byTrigger(steps, func(s Step) (time.Duration, bool) { return s.Latency, true })
}

// byTrigger summarises of(s) of steps by their triggering event's type,
// over the steps of which it is measured (ok).
func byTrigger(steps []Step, of func(Step) (d time.Duration, ok bool)) map[string]Latency {
	by := map[string][]time.Duration{}
	for _, s := range steps {
		if d, ok := of(s); ok {
			by[s.Type] = append(by[s.Type], d)
		}
	}
	out := make(map[string]Latency, len(by))
	for t, l := range by {
		out[t] = summariseOwned(l)
	}
	return out
}

// Summarise returns the count, median, 99th percentile and maximum of lat
// (nearest rank), in milliseconds.
func Summarise(lat []time.Duration) Latency {
	return summariseOwned(slices.Clone(lat))
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// summariseOwned is Summarise of a slice it may sort in place.
func summariseOwned(s []time.Duration) Latency {
	if len(s) == 0 {
		return Latency{}
	}
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Latency{Count: len(s), P50: ms(rank(0.50)), P99: ms(rank(0.99)), Max: ms(s[len(s)-1])}
}

// PeakRSSMB returns the process's peak resident set size (VmHWM in
// /proc/self/status) in MiB, or 0 where it cannot be read.
func PeakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
