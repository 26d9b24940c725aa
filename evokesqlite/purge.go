package evokesqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
)

var _ evokestore.Purger = (*txn)(nil)

// Purge deletes up to limit instances that completed or were cancelled
// before before, with their history, held events and deadlines, and up to
// limit command outcomes recorded before before (evokestore.Purger).
func (t *txn) Purge(ctx context.Context, before time.Time, limit int) (evokestore.PurgeResult, error) {
	var res evokestore.PurgeResult
	rows, err := t.tx.QueryContext(ctx, `SELECT process_manager, id FROM instances WHERE completed_at > 0 AND completed_at < ? ORDER BY completed_at LIMIT ?`, backend.Nanos(before), limit)
	if err != nil {
		return res, fmt.Errorf("evokesqlite: purge: %w", err)
	}
	var victims [][2]string
	for rows.Next() {
		var v [2]string
		if err := rows.Scan(&v[0], &v[1]); err != nil {
			rows.Close()
			return res, fmt.Errorf("evokesqlite: purge: %w", err)
		}
		victims = append(victims, v)
	}
	if err := rows.Close(); err != nil {
		return res, fmt.Errorf("evokesqlite: purge: %w", err)
	}
	for _, v := range victims {
		if err := t.deleteInstance(ctx, v[0], v[1]); err != nil {
			return res, err
		}
	}
	res.Instances = len(victims)
	r, err := t.tx.ExecContext(ctx, `DELETE FROM command_outcomes WHERE command_id IN (SELECT command_id FROM command_outcomes WHERE recorded_at < ? ORDER BY recorded_at LIMIT ?)`, backend.Nanos(before), limit)
	if err != nil {
		return res, fmt.Errorf("evokesqlite: purge command outcomes: %w", err)
	}
	n, _ := r.RowsAffected()
	res.CommandOutcomes = int(n)
	return res, nil
}
