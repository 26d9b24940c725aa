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

// Copies returns how many COPY statements t sent.
func (t *Tx) Copies() int { return t.copies }

// Trips returns how many round trips t made.
func (t *Tx) Trips() int { return t.trips }

// SQLInstances and SQLInstanceDeadlines are the lookups by many instances,
// for tests of their plans.
const (
	SQLInstances         = sqlInstances
	SQLInstanceDeadlines = sqlInstanceDeadlines
)
