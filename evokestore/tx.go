package evokestore

import (
	"context"
	"errors"
	"fmt"
)

// WithTx runs fn in a transaction of st and commits it; if fn fails, the
// transaction is rolled back and fn's error returned.
func WithTx(ctx context.Context, st Store, fn func(tx Tx) error) error {
	tx, err := st.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// EventAt reads the event at a log position; ok is false if the log has no
// event there (it never had one, or it was purged).
func EventAt(ctx context.Context, q Querier, position int64) (ev Event, ok bool, err error) {
	evs, err := q.ReadLog(ctx, LogQuery{After: position - 1, Limit: 1})
	if err != nil || len(evs) == 0 || evs[0].Position != position {
		return Event{}, false, err
	}
	return evs[0], true, nil
}

// IsConflict reports whether err is a transaction conflict the server
// resolved by failing the transaction, which succeeds if run again: a
// deadlock (SQLSTATE 40P01) or a serialization failure (40001), as
// reported by an error in err's chain with a SQLState method (pgconn's).
func IsConflict(err error) bool {
	var se interface{ SQLState() string }
	if !errors.As(err, &se) {
		return false
	}
	switch se.SQLState() {
	case "40P01", "40001":
		return true
	}
	return false
}
