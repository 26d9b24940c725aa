package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
	"github.com/evoke-go/evoke/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := evoke.DefaultConfig()
	fs := newFlags("demo", "[--store PATH|URL] [--orders N] [--fail-rate F] [--timeout-rate F] [--poison-rate F] [--rate R] [--json]", stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file (PATH or sqlite:PATH) or a postgres:// URL; created if missing")
	orders := fs.Int("orders", 1000, "number of orders to place")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	first := fs.Int("first-order", 0, "fix the first order number (re-running with the same value resumes those orders instead of placing new ones; an interrupted run prints it)")
	rate := fs.Float64("rate", 0, "place orders at this many per second while they run (0: all at once)")
	failRate := fs.Float64("fail-rate", 0, "fraction of orders whose payment is declined (compensation path)")
	timeoutRate := fs.Float64("timeout-rate", 0, "fraction of orders whose shipment never arrives: the order process gets a 1s inactivity timeout, which the store keeps for every later run and worker, and refunds them")
	poisonRate := fs.Float64("poison-rate", 0, "fraction of poison orders, whose first step fails every time: their instances are parked, to practise evoke retry, skip and cancel on")
	stall := fs.Duration("stall", 60*time.Second, "give up when no order settled for this long")
	batch := fs.Int("batch", def.BatchSize, "events stepped per transaction, chained steps included (Config.BatchSize)")
	dispatchBatch := fs.Int("dispatch-batch", def.DispatchBatchSize, "commands executed per transaction (Config.DispatchBatchSize)")
	lease := fs.Duration("lease", def.LeaseTTL, "partition lease time on PostgreSQL (Config.LeaseTTL); a killed run's partitions wait this long for the next")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	logLevel := fs.String("log-level", "warn", "log level: debug, info (shows every state transition), warn, error")
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	var level slog.Level
	switch err := level.UnmarshalText([]byte(*logLevel)); {
	case err != nil:
		return usageErrorf("--log-level %q: want debug, info, warn or error", *logLevel)
	case *orders <= 0:
		return usageErrorf("--orders must be positive, not %d", *orders)
	case *first < 0:
		return usageErrorf("--first-order must not be negative, not %d", *first)
	case !(*rate >= 0) || math.IsInf(*rate, 1):
		return usageErrorf("--rate must be a number of orders per second, 0 or more (0: all at once), not %v", *rate)
	case demo.CheckRates(*failRate, *timeoutRate, *poisonRate) != nil:
		return usageErrorf("--fail-rate %v, --timeout-rate %v and --poison-rate %v must be fractions from 0 to 1 adding up to at most 1", *failRate, *timeoutRate, *poisonRate)
	case *stall <= 0:
		return usageErrorf("--stall must be positive, not %v", *stall)
	case *batch <= 0, *dispatchBatch <= 0:
		return usageErrorf("--batch and --dispatch-batch must be positive, not %d and %d", *batch, *dispatchBatch)
	case *lease <= 0:
		return usageErrorf("--lease must be positive, not %v", *lease)
	}
	if err := checkStoreSpec(*store); err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	st, err := OpenStore(ctx, *store, &OpenOpts{Create: true})
	if err != nil {
		return err
	}
	defer st.Close()

	bar := newBar(stderr, *orders, "orders")
	opts := demo.Options{
		Orders: *orders, FirstOrder: *first, Stall: *stall, Rate: *rate,
		FailRate: *failRate, TimeoutRate: *timeoutRate, PoisonRate: *poisonRate,
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Progress: bar.set,
	}
	opts.Config.BatchSize, opts.Config.DispatchBatchSize = *batch, *dispatchBatch
	opts.Config.LeaseTTL = *lease
	sum, runErr := demo.Run(ctx, st, opts)
	bar.finish()
	if runErr != nil && !errors.Is(runErr, demo.ErrIncomplete) && !errors.Is(runErr, demo.ErrInterrupted) {
		return runErr
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		printSummary(stdout, *store, sum)
	}
	if errors.Is(runErr, demo.ErrInterrupted) {
		fmt.Fprintf(stderr, "evoke demo: interrupted: %d of %d orders placed, %d completed, %d parked; "+
			"the store keeps them, and `evoke demo --store %s --first-order %d --orders %d` resumes them\n",
			sum.Placed, sum.Orders, sum.Completed, sum.Parked, redact(*store), sum.FirstOrder, sum.Orders)
		return errInterrupted
	}
	if sum.Parked > 0 {
		fmt.Fprintf(stderr, "%d orders are parked: `evoke list --store %s --pm %s --status parked` lists them; evoke retry, skip and cancel act on them\n",
			sum.Parked, redact(*store), orderfulfillment.Name)
	}
	return runErr
}

func printSummary(w io.Writer, store string, s demo.Summary) {
	fmt.Fprintf(w, "evoke demo: orders %d..%d on %s (%s)\n", s.FirstOrder, s.FirstOrder+s.Orders-1, store, s.Store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\t\n", k, v) }
	row("orders", s.Orders)
	if s.Placed < s.Orders {
		row("placed", s.Placed)
	}
	row("completed", s.Completed)
	row("in flight", s.InFlight)
	row("compensated", s.Compensated)
	row("timed out", s.TimedOut)
	row("failed", s.Failed)
	row("parked", s.Parked)
	row("events", s.Events)
	row("commands", s.Commands)
	row("seconds", fmt.Sprintf("%.2f", s.Seconds))
	row("sagas/s", fmt.Sprintf("%.0f", s.SagasPerSec))
	tw.Flush()
}

// bar is a progress bar on a terminal, and a line every few seconds
// elsewhere.
type bar struct {
	pb    *progressbar.ProgressBar
	w     io.Writer
	total int
	last  time.Time
	shown int
}

func newBar(w io.Writer, total int, what string) *bar {
	b := &bar{w: w, total: total, last: time.Now()}
	if f, ok := fileOf(w); ok && term.IsTerminal(int(f.Fd())) {
		b.pb = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(what),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return b
}

func (b *bar) set(done, total int) {
	if b.pb != nil {
		_ = b.pb.Set(done)
		return
	}
	if done != b.shown && (time.Since(b.last) > 2*time.Second || done == total) {
		fmt.Fprintf(b.w, "progress: %d/%d\n", done, total)
		b.last, b.shown = time.Now(), done
	}
}

func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}
