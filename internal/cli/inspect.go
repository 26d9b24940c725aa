package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokeui"
)

// The inspection commands read the store only: they work on any store,
// whichever process managers wrote it, while the runtime runs.

// runList lists instances, by process manager and ID.
func runList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", "[--store URL] [--pm NAME] [--status STATUS] [--outcome OUTCOME] [--limit N] [--after ID] [--json]", stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "only this process manager's instances")
	status := fs.String("status", "", "only instances with this status: running, compensating, failing, parked, completed, cancelled")
	outcome := fs.String("outcome", "", "only finished instances that ended this way: completed, compensated, timed_out, cancelled")
	limit := fs.Int("limit", 50, "at most this many instances")
	after := fs.String("after", "", "start after this instance ID (with --pm: paging)")
	asJSON := fs.Bool("json", false, "print one JSON object per instance (a finished one with its outcome)")
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	if *status != "" && !slices.Contains(evokestore.Statuses, evokestore.InstanceStatus(*status)) {
		return usageErrorf("--status: unknown status %q (want one of %v)", *status, evokestore.Statuses)
	}
	if *outcome != "" && !slices.Contains(evokestore.Outcomes, evokestore.InstanceOutcome(*outcome)) {
		return usageErrorf("--outcome: unknown outcome %q (want one of %v)", *outcome, evokestore.Outcomes)
	}
	if *outcome != "" && *status != "" && *status != string(outcomeStatus(*outcome)) {
		return usageErrorf("--status %s and --outcome %s do not combine: an instance that ended %s has status %s", *status, *outcome, *outcome, outcomeStatus(*outcome))
	}
	if *limit <= 0 {
		return usageErrorf("--limit must be positive, not %d", *limit)
	}
	if *after != "" && *pm == "" {
		return usageErrorf("--after pages within one process manager: give --pm too")
	}
	st, err := OpenStore(ctx, *store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	q := evokestore.InstanceQuery{ProcessManager: *pm, Status: evokestore.InstanceStatus(*status), Limit: *limit}
	if *after != "" {
		q.AfterProcessManager, q.AfterID = *pm, *after
	}
	if *outcome != "" {
		q.Status, q.Outcome = outcomeStatus(*outcome), evokestore.InstanceOutcome(*outcome)
	}
	insts, err := st.ListInstances(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for i := range insts {
			if err := enc.Encode(evokeui.InstanceMap(&insts[i])); err != nil {
				return err
			}
		}
		return nil
	}
	if len(insts) == 0 {
		fmt.Fprintln(stdout, "no instances")
		return listParkedEvents(ctx, st, *pm, stdout)
	}
	if err := evokeui.WriteInstanceList(stdout, insts, time.Now()); err != nil {
		return err
	}
	if len(insts) == *limit {
		last := insts[len(insts)-1]
		if *pm != "" {
			fmt.Fprintf(stdout, "(first %d; more with --after %s)\n", *limit, last.ID)
		} else { // --after pages within one process manager
			fmt.Fprintf(stdout, "(first %d; more with --pm %s --after %s)\n", *limit, last.ProcessManager, last.ID)
		}
	}
	return listParkedEvents(ctx, st, *pm, stdout)
}

// outcomeStatus is the status of an instance that ended with outcome.
func outcomeStatus(outcome string) evokestore.InstanceStatus {
	if evokestore.InstanceOutcome(outcome) == evokestore.EndCancelled {
		return evokestore.StatusCancelled
	}
	return evokestore.StatusCompleted
}

// listParkedEvents prints the events parked for pm because its Correlate
// failed, if any.
func listParkedEvents(ctx context.Context, st evokestore.Store, pm string, w io.Writer) error {
	if pm == "" {
		return nil
	}
	held, err := evokeops.ParkedEvents(ctx, st, pm)
	if err != nil {
		return err
	}
	evokeui.WriteParkedEvents(w, pm, held)
	return nil
}

// runShow prints one instance: its state, what it holds, and its timeline.
func runShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("show", "[--store URL] --pm NAME [--json] ID", stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "the instance's process manager (required)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := fs.parse(args)
	if err != nil {
		return err
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
	v, err := evokeui.LoadInstance(ctx, st, *pm, id)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return v.WriteText(stdout)
}

// runGraph draws a process manager's state machine from the transitions
// its instances recorded (history: phase before -> phase after, on event).
func runGraph(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("graph", "[--store URL] --pm NAME [--format mermaid|dot] [--instances N]", stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	pm := fs.String("pm", "", "the process manager (required)")
	format := fs.String("format", "mermaid", "mermaid (a stateDiagram) or dot (Graphviz)")
	maxInst := fs.Int("instances", 10000, "read the history of at most this many instances")
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	switch {
	case *pm == "":
		return usageErrorf("needs --pm NAME: the process manager whose state machine to draw")
	case *format != "mermaid" && *format != "dot":
		return usageErrorf("--format %q: want mermaid or dot", *format)
	case *maxInst <= 0:
		return usageErrorf("--instances must be positive, not %d", *maxInst)
	}
	st, err := OpenStore(ctx, *store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	g, err := evokeui.Transitions(ctx, st, *pm, *maxInst)
	if err != nil {
		return err
	}
	if g.Instances == 0 {
		return fmt.Errorf("process manager %q has no instances in this store", *pm)
	}
	if *format == "dot" {
		g.DOT(stdout, *pm)
	} else {
		g.Mermaid(stdout)
	}
	return nil
}

// instanceArg returns the one instance ID of a command taking --pm NAME ID,
// from its positional arguments pos, or a usage error.
func instanceArg(fs *flagSet, pm string, pos []string) (string, error) {
	switch {
	case pm == "" && len(pos) == 1:
		return "", usageErrorf("needs --pm NAME: the process manager of instance %s", pos[0])
	case pm == "" || len(pos) != 1:
		return "", usageErrorf("needs --pm NAME and one instance ID, not %d arguments (usage: evoke %s %s)", len(pos), fs.Name(), fs.synopsis)
	case pos[0] == "":
		return "", usageErrorf("the instance ID is empty")
	}
	return pos[0], nil
}
