package cli

import (
	"context"
	"fmt"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
)

// Outcomes of a finished instance: how it ended, where its status only says
// that it did.
const (
	outcomeCompleted   = "completed"
	outcomeCompensated = "compensated"
	outcomeTimedOut    = "timed_out"
	outcomeCancelled   = "cancelled"
)

// outcomes are the values of evoke list --outcome.
var outcomes = []string{outcomeCompleted, outcomeCompensated, outcomeTimedOut, outcomeCancelled}

// outcomeOf returns how the instance ended, or "" while it has not:
// cancelled by an operator; compensated when an aggregate rejected one of
// its commands (a $rejected step); timed out when the step that completed
// it was a timeout or a deadline; completed otherwise.
//
// The outcome is derived from the instance's status and history here, one
// history read per finished instance. Once the runtime stores the outcome
// with the instance (a field of evokestore.Instance), this function returns
// that field instead and the history read goes. An instance whose history
// Config.Retention purged counts as completed.
func outcomeOf(ctx context.Context, st evokestore.Store, in *evokestore.Instance) (string, error) {
	switch in.Status {
	case evokestore.StatusCancelled:
		return outcomeCancelled, nil
	case evokestore.StatusCompleted:
	default:
		return "", nil
	}
	hist, err := st.History(ctx, in.ProcessManager, in.ID)
	if err != nil {
		return "", fmt.Errorf("read history of %s %s: %w", in.ProcessManager, in.ID, err)
	}
	last := ""
	for _, h := range hist {
		if h.Error != "" { // a failed attempt, not a step
			continue
		}
		if h.EventType == evoke.CommandRejectedEvent {
			return outcomeCompensated, nil
		}
		last = h.EventType
	}
	if last == evoke.TimeoutEvent || last == evoke.DeadlineEvent {
		return outcomeTimedOut, nil
	}
	return outcomeCompleted, nil
}
