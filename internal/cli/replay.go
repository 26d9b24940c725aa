package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/internal/demo"
)

// errDiffer reports a replay that found differences (exit status 1; the
// report was printed).
var errDiffer = errors.New("the replay differs from the record")

// runReplay replays a demo process manager's stored instances through this
// binary's code and reports those that would differ.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", "[--store URL] --pm NAME [--json]", stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", fmt.Sprintf("the process manager to replay (required; this binary has the code of %v)", demo.ProcessManagers()))
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	if *pm == "" {
		return usageErrorf("--pm is required")
	}
	st, err := OpenStore(ctx, *store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	var b *bar
	rep, err := demo.Replay(ctx, st, *pm, &evoke.ReplayOpts{Progress: func(done, total int) {
		if b == nil {
			b = newBar(stderr, total, "instances")
		}
		b.set(done, total)
	}})
	if b != nil {
		b.finish()
	}
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, rep)
	}
	if rep.Differ() {
		return fmt.Errorf("%w: %d of %d instances", errDiffer, len(rep.Differences), rep.Instances)
	}
	return nil
}
