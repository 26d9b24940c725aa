package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/bench"
	"github.com/evoke-go/evoke/internal/demo"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "--store URL [--orders N] [--workers W] [--batch N] [--dispatch-batch N] [--inflight N] [--rate R] [--calibrate] [--timeline FILE.svg] [--json]", stdout, stderr)
	store := fs.String("store", "./evoke-bench.db", "store: a SQLite file (PATH or sqlite:PATH; a non-empty file needs --force) or a postgres:// URL (a fresh schema is made unless it has evoke_schema)")
	orders := fs.Int("orders", 10000, "number of orders to run to completion")
	def := evoke.DefaultConfig()
	workers := fs.Int("workers", def.Workers, "goroutines stepping one batch (Config.Workers; the default is GOMAXPROCS)")
	batch := fs.Int("batch", def.BatchSize, "events stepped per transaction, chained steps included (Config.BatchSize)")
	dispatchBatch := fs.Int("dispatch-batch", def.DispatchBatchSize, "commands executed per transaction (Config.DispatchBatchSize)")
	inflight := fs.Int("inflight", 0, "live order-fulfilment instances to seed before the timed run")
	rate := fs.Float64("rate", 0, "place orders at this many per second while they run (0: all at once, to measure saturation)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	force := fs.Bool("force", false, "delete an existing SQLite file (and its -wal/-shm) first")
	keep := fs.Bool("keep", false, "keep the PostgreSQL schema made for the run")
	noSettle := fs.Bool("no-vacuum", false, "PostgreSQL: do not VACUUM (ANALYZE) the instances --inflight seeded before the timed run")
	stall := fs.Duration("stall", 60*time.Second, "give up when no order finished for this long")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed run (not seeding, not the latency analysis) to this file")
	calibrate := fs.Bool("calibrate", false, "after the run, measure the machine on the same backend (durable 1-row and 100-row transactions of a minimal table, ~4 s) and report it with the result")
	traceFile := fs.String("trace", "", "write a runtime execution trace of the timed run to this file (go tool trace)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file at the end of the timed run (allocations since the process started, seeding included; live objects at the end)")
	timeline := fs.String("timeline", "", "draw the step latency (p50, p99, max) and steps/s of every 100 ms of the run to this SVG file; with --json the windows are in the result's timeline")
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	switch {
	case *orders <= 0 || *workers <= 0 || *batch <= 0 || *dispatchBatch <= 0:
		return usageErrorf("--orders, --workers, --batch and --dispatch-batch must be positive")
	case *inflight < 0:
		return usageErrorf("--inflight must not be negative, not %d", *inflight)
	case !(*rate >= 0) || math.IsInf(*rate, 1):
		return usageErrorf("--rate must be a number of orders per second, 0 or more (0: all at once), not %v", *rate)
	case *stall <= 0:
		return usageErrorf("--stall must be positive, not %v", *stall)
	}
	if err := checkStoreSpec(*store); err != nil { // before anything is made
		return err
	}
	// The profile and trace files are created now: a bad path fails
	// before the run, which they record only the timed part of.
	cpu, err := openRecording(*cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		return err
	}
	defer cpu.close() // if the timed run never began (closing twice is harmless)
	tr, err := openRecording(*traceFile, trace.Start, trace.Stop)
	if err != nil {
		return err
	}
	defer tr.close()
	var memW io.Writer
	mem, err := openRecording(*memProfile, func(w io.Writer) error { memW = w; return nil }, func() {
		runtime.GC() // the live objects as of the end of the run
		_ = pprof.Lookup("allocs").WriteTo(memW, 0)
	})
	if err != nil {
		return err
	}
	defer mem.close()
	var timelineFile *os.File
	if *timeline != "" {
		if timelineFile, err = os.Create(*timeline); err != nil {
			return err
		}
		defer timelineFile.Close()
	}
	tgt, err := bench.OpenEmpty(ctx, *store, *force, func(ctx context.Context, spec string) (evokestore.Store, error) {
		return OpenStore(ctx, spec, &OpenOpts{Create: true})
	})
	if err != nil {
		return err
	}
	if tgt.Schema != "" && !*asJSON {
		fmt.Fprintf(stderr, "evoke bench: schema %s\n", tgt.Schema)
	}
	var runBar *bar
	opts := bench.Options{
		Orders: *orders, InFlight: *inflight, Stall: *stall, Rate: *rate,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if !*noSettle {
		opts.AfterSeed = tgt.Settle
	}
	var profileErr error
	if cpu != nil || tr != nil || mem != nil {
		opts.Timed = func() func() {
			stopProfile, err := cpu.begin()
			if err != nil {
				profileErr = err
				return func() {}
			}
			stopTrace, err := tr.begin()
			if err != nil {
				stopProfile()
				profileErr = err
				return func() {}
			}
			stopMem, err := mem.begin()
			if err != nil {
				stopTrace()
				stopProfile()
				profileErr = err
				return func() {}
			}
			return func() { stopMem(); stopTrace(); stopProfile() }
		}
	}
	if timelineFile != nil {
		opts.Window = timelineWindow
	}
	opts.Config.Workers, opts.Config.BatchSize, opts.Config.DispatchBatchSize = *workers, *batch, *dispatchBatch
	if *inflight > 0 {
		seedBar := newBar(stderr, *inflight, "instances seeded")
		opts.SeedProgress = func(done, total int) {
			seedBar.set(done, total)
			if done == total {
				seedBar.finish()
			}
		}
	}
	opts.Progress = func(done, total int) {
		if runBar == nil { // after seeding, so the bars do not overlap
			runBar = newBar(stderr, total, "orders")
		}
		runBar.set(done, total)
	}
	res, runErr := bench.Run(ctx, tgt.Store, opts)
	if runBar != nil {
		runBar.finish()
	}
	closeErr := errors.Join(tgt.Close(context.WithoutCancel(ctx), *keep), profileErr)
	if errors.Is(runErr, demo.ErrInterrupted) {
		fmt.Fprintln(stderr, "evoke bench: interrupted: no result")
		if closeErr != nil {
			fmt.Fprintf(stderr, "evoke bench: %v\n", closeErr)
		}
		return errInterrupted
	}
	if runErr != nil && !errors.Is(runErr, demo.ErrIncomplete) {
		return errors.Join(runErr, closeErr)
	}
	if *calibrate {
		if !*asJSON {
			fmt.Fprintln(stderr, "evoke bench: measuring the machine")
		}
		m, err := bench.Calibrate(ctx, *store, 2*time.Second)
		if err != nil {
			return errors.Join(err, runErr, closeErr)
		}
		res.Machine = &m
	}
	if timelineFile != nil {
		title := fmt.Sprintf("evoke bench: %d orders on %s", res.Orders, res.Store)
		if *rate > 0 {
			title += fmt.Sprintf(" at %s/s", strconv.FormatFloat(*rate, 'f', -1, 64))
		}
		if _, err := timelineFile.Write(bench.TimelineSVG(title, res.Timeline, bench.TargetP99)); err != nil {
			return errors.Join(err, runErr, closeErr)
		}
		if err := timelineFile.Close(); err != nil {
			return errors.Join(err, runErr, closeErr)
		}
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		printBench(stdout, *store, tgt.Schema, res)
	}
	return errors.Join(runErr, closeErr)
}

// timelineWindow is the width of one --timeline window.
const timelineWindow = 100 * time.Millisecond

func printBench(w io.Writer, store, schema string, r bench.Result) {
	where := redact(store)
	if schema != "" {
		where = "schema " + schema
	}
	fmt.Fprintf(w, "evoke bench: %d orders, %d in flight on %s (%s)\n", r.Orders, r.InFlight, where, r.Store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\t\n", k, v) }
	row("completed", r.Completed)
	row("failed", r.Failed)
	row("events", r.Events)
	row("commands", r.Commands)
	row("seconds", fmt.Sprintf("%.2f", r.Seconds))
	row("sagas/s", fmt.Sprintf("%.0f", r.SagasPerSec))
	row("events/s", fmt.Sprintf("%.0f", r.EventsPerSec))
	if r.CPUSeconds > 0 {
		row("CPU µs per saga", fmt.Sprintf("%.0f", r.CPUPerSagaUS))
	}
	row("step p50 ms", fmt.Sprintf("%.1f", r.StepLatency.P50))
	row("step p99 ms", fmt.Sprintf("%.1f", r.StepLatency.P99))
	row("step max ms", fmt.Sprintf("%.1f", r.StepLatency.Max))
	if r.SteadyStepLatency.Count > 0 {
		row(fmt.Sprintf("step p99 ms after %v", bench.WarmUp), fmt.Sprintf("%.1f", r.SteadyStepLatency.P99))
	}
	types := slices.Sorted(maps.Keys(r.StepLatencyByTrigger))
	for _, t := range types {
		l := r.StepLatencyByTrigger[t]
		row(fmt.Sprintf("after %s: p50 / p99 ms", t), fmt.Sprintf("%.1f / %.1f", l.P50, l.P99))
	}
	if l := r.AppendLatency; l.Count > 0 {
		row("orders' appends: p50 / p99 / max ms", fmt.Sprintf("%.1f / %.1f / %.1f (%d calls)", l.P50, l.P99, l.Max, l.Count))
	}
	if l := r.CommitLatency; l.Count > 0 {
		row("to commit: p50 / p99 / max ms", fmt.Sprintf("%.1f / %.1f / %.1f", l.P50, l.P99, l.Max))
		for _, t := range slices.Sorted(maps.Keys(r.CommitLatencyByTrigger)) {
			l := r.CommitLatencyByTrigger[t]
			row(fmt.Sprintf("to commit after %s: p50 / p99 ms", t), fmt.Sprintf("%.1f / %.1f", l.P50, l.P99))
		}
	}
	if rc := r.Runtime; rc.Writes > 0 {
		per := func(s float64) float64 { return s * 1000 / float64(rc.Writes) }
		row("batches written", rc.Writes)
		row("per batch: prepare / wait / write ms", fmt.Sprintf("%.1f / %.1f / %.1f", per(rc.PrepareSeconds), per(rc.WriteWaitSeconds), per(rc.WriteSeconds)))
		row("writer busy", fmt.Sprintf("%.0f%%", 100*rc.WriterBusy))
	}
	row("peak RSS MB", fmt.Sprintf("%.0f", r.PeakRSSMB))
	if r.InFlight > 0 {
		row("seed seconds", fmt.Sprintf("%.1f", r.SeedSeconds))
	}
	if m := r.Machine; m != nil {
		row("machine: 1-row tx/s", fmt.Sprintf("%.0f", m.TxPerSec))
		row("machine: rows/s in 100-row tx", fmt.Sprintf("%.0f", m.RowsPerSec))
	}
	tw.Flush()
}
