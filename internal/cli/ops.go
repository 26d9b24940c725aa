package cli

import (
	"context"
	"flag"
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

func runOp(ctx context.Context, name, _ string, op func(context.Context, evokestore.Store, string, string) error,
	args []string, stdout, stderr io.Writer) error {
	synopsis := "[--store URL] --pm NAME ID"
	if name == "skip" {
		synopsis = "[--store URL] --pm NAME (ID | --event POSITION)"
	}
	fs := newFlags(name, synopsis, stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "the instance's process manager (required)")
	var event *int64
	if name == "skip" {
		event = fs.Int64("event", 0, "instead of an instance ID: the log position of an event parked for the process manager because its Correlate failed (evoke list --pm NAME lists them), to drop")
	}
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if event != nil && isSet(fs, "event") {
		switch {
		case *event <= 0:
			return usageErrorf("--event must be a positive log position, not %d", *event)
		case len(pos) > 0:
			return usageErrorf("--event %d and instance %s do not combine: --event drops an event parked for the process manager (one no instance took); "+
				"to drop the event an instance is stuck on, give its ID without --event", *event, pos[0])
		case *pm == "":
			return usageErrorf("--event %d needs --pm NAME: the process manager the event is parked for", *event)
		}
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
	id, err := instanceArg(fs, *pm, pos)
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

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
