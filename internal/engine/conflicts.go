package engine

import (
	"errors"
	"log/slog"

	"github.com/evoke-go/evoke/evokestore"
)

// conflictRetries is how many times in a row a transaction conflict
// (evokestore.IsConflict) is retried before it is logged as an error.
const conflictRetries = 3

// conflict counts err if it is a transaction conflict, and reports whether
// it is.
func (en *Engine) conflict(err error) bool {
	if !evokestore.IsConflict(err) {
		return false
	}
	en.counters.Conflicts.Add(1)
	return true
}

// retryLevel counts err, a failure about to be retried for the failures-th
// time in a row, if it is a transaction conflict, and returns the level to
// log it at: a conflict, or a write fenced off because a partition moved
// to another node (a lease hand-over, routine when nodes join or leave),
// within the retry budget is routine (WARN); any other failure, or one of
// those beyond the budget, an error.
func (en *Engine) retryLevel(err error, failures int) slog.Level {
	routine := en.conflict(err) || errors.Is(err, evokestore.ErrLeaseLost)
	if !routine || failures > conflictRetries {
		return slog.LevelError
	}
	return slog.LevelWarn
}
