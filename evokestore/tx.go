package evokestore

import (
	"context"
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
