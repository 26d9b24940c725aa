package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokestore"
)

// The operator commands act on the store (package evokeops): retry and
// skip hand the instance back to the runtime that runs its process
// manager, which steps its held events within its poll interval; cancel
// ends it at once.

func runRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runOp(ctx, "retry", "run a failing or parked instance's held events again, with a fresh attempt count", evokeops.Retry, args, stdout, stderr)
}

func runSkip(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runOp(ctx, "skip", "drop the event a failing or parked instance is stuck on, and run its other held events", evokeops.Skip, args, stdout, stderr)
}

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runOp(ctx, "cancel", "end an instance that has not completed (a cancelled tombstone)", evokeops.Cancel, args, stdout, stderr)
}

func runOp(ctx context.Context, name, what string, op func(context.Context, evokestore.Store, string, string) error,
	args []string, stdout, stderr io.Writer) error {
	usage := "[--store URL] --pm NAME ID"
	if name == "skip" {
		usage = "[--store URL] --pm NAME (ID | --event POSITION)"
	}
	fs := newFlags(name, usage, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "the instance's process manager (required)")
	var event *int64
	if name == "skip" {
		event = fs.Int64("event", 0, "instead of an instance: the position of an event parked for the process manager (its Correlate failed) to drop")
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if event != nil && *event > 0 && *pm != "" && fs.NArg() == 0 {
		st, err := OpenStore(ctx, *store, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := evokeops.SkipEvent(ctx, st, *pm, *event); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "event %d parked for %s skipped\n", *event, *pm)
		return nil
	}
	id, err := instanceArg(fs, *pm, what, stderr)
	if err != nil {
		return err
	}
	st, err := OpenStore(ctx, *store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := op(ctx, st, *pm, id); err != nil {
		return err
	}
	switch name {
	case "cancel":
		fmt.Fprintf(stdout, "%s %s cancelled\n", *pm, id)
	default:
		fmt.Fprintf(stdout, "%s %s: %s requested; the runtime running %s steps it within its poll interval (`evoke show --pm %s %s` follows it)\n",
			*pm, id, name, *pm, *pm, id)
	}
	return nil
}
