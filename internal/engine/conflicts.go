package engine

import (
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
// log it at: a conflict within its retry budget is routine (WARN), any
// other failure, or a conflict beyond the budget, an error.
func (en *Engine) retryLevel(err error, failures int) slog.Level {
	if !en.conflict(err) {
		return slog.LevelError
	}
	if failures > conflictRetries {
		return slog.LevelError
	}
	return slog.LevelWarn
}
