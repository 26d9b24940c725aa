package evokepg

import "context"

// SQLReadStreams is ReadStreams' query, for tests of its plan.
const SQLReadStreams = sqlReadStreams

// Setting returns a run-time parameter as the store's connections have it.
func (s *Store) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT current_setting($1)`, name).Scan(&v)
	return v, err
}

// LockKey returns the key of s's append lock.
func (s *Store) LockKey() int64 { return s.lockKey }

// Tx is the store's transaction type, for tests of its own methods.
type Tx = txn

// Trips returns how many round trips t made.
func (t *txn) Trips() int { return t.trips }

// SQLInstances and SQLInstanceDeadlines are the lookups by many instances,
// for tests of their plans.
const (
	SQLInstances         = sqlInstances
	SQLInstanceDeadlines = sqlInstanceDeadlines
)
