package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/evoke-go/evoke/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "[--store PATH] [--orders N] [--fail-rate F] [--timeout-rate F] [--json]", stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file (PATH or sqlite:PATH) or a postgres:// URL")
	orders := fs.Int("orders", 1000, "number of orders to place")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	first := fs.Int("first-order", 0, "fix the first order number (re-running with the same value resumes those orders instead of placing new ones)")
	rate := fs.Float64("rate", 0, "place orders at this many per second while they run (0: all at once)")
	failRate := fs.Float64("fail-rate", 0, "fraction of orders whose payment is declined (compensation path)")
	timeoutRate := fs.Float64("timeout-rate", 0, "fraction of orders whose shipment never arrives (1s inactivity timeout, refund)")
	stall := fs.Duration("stall", 60*time.Second, "give up when no order finished for this long")
	batch := fs.Int("batch", 0, "events stepped per transaction (default: the runtime's, 1024)")
	dispatchBatch := fs.Int("dispatch-batch", 0, "commands executed per transaction (default: the runtime's, 1024)")
	lease := fs.Duration("lease", 0, "partition lease time on PostgreSQL (default: the runtime's, 5s); a killed run's partitions wait this long for the next")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	logLevel := fs.String("log-level", "warn", "log level: debug, info (shows every state transition), warn, error")
	source := fs.String("source", "", "run the orders over NATS: placed on a JetStream stream of this nats:// server, ingested from there, their commands answered over NATS")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *orders <= 0 {
		fmt.Fprintln(stderr, "--orders must be positive")
		return errUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "--log-level: %v\n", err)
		return errUsage
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
		Orders: *orders, FirstOrder: *first, Stall: *stall, FailRate: *failRate, TimeoutRate: *timeoutRate, Rate: *rate,
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Progress: bar.set,
	}
	opts.Config.BatchSize, opts.Config.DispatchBatchSize = *batch, *dispatchBatch
	opts.Config.LeaseTTL = *lease
	opts.Source = *source
	sum, runErr := demo.Run(ctx, st, opts)
	bar.finish()
	if runErr != nil && !errors.Is(runErr, demo.ErrIncomplete) && !errors.Is(runErr, context.Canceled) {
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
	return runErr
}

func printSummary(w io.Writer, store string, s demo.Summary) {
	fmt.Fprintf(w, "evoke demo: orders %d..%d on %s (%s)\n", s.FirstOrder, s.FirstOrder+s.Orders-1, store, s.Store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\t\n", k, v) }
	row("orders", s.Orders)
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
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
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
