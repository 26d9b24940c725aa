// Command evoke runs, inspects and benchmarks evoke process managers; see
// `evoke help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/evoke-go/evoke/internal/cli"
)

// The garbage collector's defaults, unless GOGC or GOMEMLIMIT set them: the
// runtime allocates briskly but keeps little (its live heap is bounded by
// the batch sizes and the instance cache, not by the instances in flight;
// a soft limit of 224 MiB instead made no difference), so collecting four
// times less often saves about a sixth of the CPU of a saturated run
// (docs/benchmarks.md); the soft limit makes the collector work harder
// again before the heap reaches it. A program embedding evoke can make the
// same choice for itself.
const (
	gcPercent   = 400
	memoryLimit = 192 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// The first SIGINT or SIGTERM ends ctx: the command stops gracefully.
	// Then the signals' default action is back, so a second one ends the
	// process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
