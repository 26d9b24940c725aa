package cli

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/internal/demo"
)

// runWorker runs one node of the demo's process managers until ctx ends
// (SIGINT, SIGTERM). On PostgreSQL any number of workers share the work:
// each owns the partitions it leases.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := evoke.DefaultConfig()
	fs := newFlags("worker", "--store URL [--node NAME] [--partitions N] [--lease D] [--timeout D]", stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a postgres:// URL (several workers share it) or a SQLite file (one worker); created if missing")
	node := fs.String("node", "", "this node's name (default: host, process ID and a random suffix)")
	partitions := fs.Int("partitions", def.Partitions, "partitions of the instances (Config.Partitions); the same on every worker")
	lease := fs.Duration("lease", def.LeaseTTL, "partition lease time (Config.LeaseTTL): a dead worker's partitions are taken over after about this long")
	timeout := fs.Duration("timeout", 0, "inactivity timeout of the order process (default: the longest one evoke demo recorded in the store, or none); "+
		"a worker never uses less than the stored one")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	var level slog.Level
	switch err := level.UnmarshalText([]byte(*logLevel)); {
	case err != nil:
		return usageErrorf("--log-level %q: want debug, info, warn or error", *logLevel)
	case *partitions <= 0:
		return usageErrorf("--partitions must be positive, not %d", *partitions)
	case *lease <= 0:
		return usageErrorf("--lease must be positive, not %v", *lease)
	case *timeout < 0:
		return usageErrorf("--timeout must not be negative, not %v", *timeout)
	}
	st, err := OpenStore(ctx, *store, &OpenOpts{Create: true})
	if err != nil {
		return err
	}
	defer st.Close()
	stored, err := demo.StoredTimeout(ctx, st)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	rt, err := evoke.New(st, &evoke.Config{Logger: logger, NodeID: *node, Partitions: *partitions, LeaseTTL: *lease})
	if err != nil {
		return err
	}
	if err := demo.Register(rt, max(*timeout, stored)); err != nil {
		return err
	}
	if err := rt.Start(ctx); err != nil {
		return err
	}
	logger.Info("worker running", "store", st.Backend(), "timeout", max(*timeout, stored))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rt.Stop(sctx); err != nil {
		return err
	}
	s := rt.Stats()
	logger.Info("worker stopped", "steps", s.Steps, "commands", s.Commands, "dispatched", s.Dispatched, "lease_lost", s.LeaseLost)
	return nil
}
