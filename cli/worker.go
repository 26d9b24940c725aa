package cli

import (
	"context"
	"fmt"
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
	fs := newFlags("worker", "--store URL [--node NAME] [--partitions N] [--lease D]", stderr)
	store := fs.String("store", DefaultStore, "store: a postgres:// URL (several workers share it) or a SQLite file (one worker)")
	node := fs.String("node", "", "this node's name (default: host, process ID and a random suffix)")
	partitions := fs.Int("partitions", 16, "partitions of the instances; the same on every worker")
	lease := fs.Duration("lease", 5*time.Second, "partition lease time: a dead worker's partitions are taken over after about this long")
	timeout := fs.Duration("timeout", 0, "inactivity timeout of the order process (0: none)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "--log-level: %v\n", err)
		return errUsage
	}
	st, err := OpenStore(ctx, *store, &OpenOpts{Create: true})
	if err != nil {
		return err
	}
	defer st.Close()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	rt, err := evoke.New(st, &evoke.Config{Logger: logger, NodeID: *node, Partitions: *partitions, LeaseTTL: *lease})
	if err != nil {
		return err
	}
	if err := demo.Register(rt, *timeout); err != nil {
		return err
	}
	if err := rt.Start(ctx); err != nil {
		return err
	}
	logger.Info("worker running", "store", st.Backend())
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
