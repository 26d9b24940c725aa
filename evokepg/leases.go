package evokepg

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke/evokestore"
)

var (
	_ evokestore.Leaser       = (*Store)(nil)
	_ evokestore.LeaseChecker = (*txn)(nil)
	_ evokestore.LeaseReader  = (*Store)(nil)
)

// Leases use the database's clock (now()), never a node's, so that nodes
// with skewed clocks agree on who holds what. A node's leases are valid while
// its heartbeat row in nodes has not expired: renewing them touches only that
// row, never the lease rows, so renewal never waits for (or holds up) the
// transactions writing under the leases. A lease row is locked FOR SHARE by
// every transaction that writes under it (CheckLeases) until that
// transaction ends; taking a lease over updates the row, so it waits for
// them (or, with SKIP LOCKED, leaves the partition for the next round): once
// a lease has changed hands, no write under the old token can commit. Every
// statement locks lease rows in partition order, the order CheckLeases
// locks them in, and none of them waits for the append lock, so that lease
// changes never deadlock with the transactions they fence. A node
// paused in the middle of a transaction is cut off by the server's
// idle_in_transaction_session_timeout (see Options.IdleInTxTimeout).
const (
	sqlHeartbeat = `INSERT INTO nodes (id, expires_at) VALUES ($1, now() + $2 * interval '1 microsecond')
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`
	sqlEnsureLeases = `INSERT INTO leases (partition) SELECT g FROM generate_series(0, $1 - 1) g ON CONFLICT DO NOTHING`
	sqlLiveNodes    = `SELECT count(*) FROM nodes WHERE expires_at > now()`
	sqlHeldLeases   = `SELECT partition, token FROM leases WHERE node = $1 AND partition < $2 ORDER BY partition`
	sqlReleaseSome  = `UPDATE leases SET node = '' WHERE node = $1 AND partition IN (
	SELECT partition FROM leases WHERE node = $1 AND partition = ANY($2::int[]) ORDER BY partition FOR UPDATE)`
	sqlTake = `UPDATE leases SET node = $1, token = token + 1
WHERE partition IN (
	SELECT l.partition FROM leases l LEFT JOIN nodes n ON n.id = l.node
	WHERE l.partition < $3 AND (l.node = '' OR n.id IS NULL OR n.expires_at <= now())
	ORDER BY l.partition LIMIT $2 FOR UPDATE OF l SKIP LOCKED)
RETURNING partition, token`
	sqlLeave = `UPDATE leases SET node = '' WHERE node = $1 AND partition IN (
	SELECT partition FROM leases WHERE node = $1 ORDER BY partition FOR UPDATE)`
	sqlForgetNode      = `DELETE FROM nodes WHERE id = $1`
	sqlPartitionLeases = `SELECT l.partition, l.node, l.token, n.expires_at, COALESCE(n.expires_at > now(), false)
FROM leases l LEFT JOIN nodes n ON n.id = l.node AND l.node <> '' ORDER BY l.partition`
	sqlPruneNodes = `DELETE FROM nodes n WHERE n.expires_at < now() - interval '1 hour'
	AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.node = n.id)`
	// sqlCheck fails on the server (migration 0008) unless the node holds
	// every lease it names, so that a COMMIT sent with it is refused.
	sqlCheck = `SELECT evoke_assert(count(*) = cardinality($2::int[]), '` + codeLeaseLost + `',
	format('node %s holds %s of its %s leases', $1::text, count(*), cardinality($2::int[]))) FROM (
	SELECT 1 FROM leases l JOIN unnest($2::int[], $3::bigint[]) AS x(p, tok) ON l.partition = x.p AND l.token = x.tok
	WHERE l.node = $1 AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = $1 AND n.expires_at > now())
	ORDER BY l.partition FOR SHARE OF l) held`
)

// Balance implements evokestore.Leaser.
func (s *Store) Balance(ctx context.Context, node string, partitions int, ttl time.Duration) ([]evokestore.Lease, error) {
	if node == "" || partitions <= 0 || ttl <= 0 {
		return nil, fmt.Errorf("evokepg: balance: need a node, partitions and a ttl (got %q, %d, %v)", node, partitions, ttl)
	}
	us := ttl.Microseconds()
	var out []evokestore.Lease
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlHeartbeat, node, us); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlEnsureLeases, partitions); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, sqlLiveNodes).Scan(&live); err != nil {
			return err
		}
		share := (partitions + max(live, 1) - 1) / max(live, 1)
		held, err := scanLeases(tx.Query(ctx, sqlHeldLeases, node, partitions))
		if err != nil {
			return err
		}
		if len(held) > share {
			var extra []int
			for _, l := range held[share:] {
				extra = append(extra, l.Partition)
			}
			if _, err := tx.Exec(ctx, sqlReleaseSome, node, extra); err != nil {
				return err
			}
			held = held[:share]
		}
		if need := share - len(held); need > 0 {
			taken, err := scanLeases(tx.Query(ctx, sqlTake, node, need, partitions))
			if err != nil {
				return err
			}
			held = append(held, taken...)
		}
		if _, err := tx.Exec(ctx, sqlPruneNodes); err != nil {
			return err
		}
		for i := range held {
			held[i].Node = node
		}
		out = held
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("evokepg: balance leases of %s: %w", node, err)
	}
	sortLeases(out)
	return out, nil
}

// Leave implements evokestore.Leaser.
func (s *Store) Leave(ctx context.Context, node string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlLeave, node); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlForgetNode, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("evokepg: leave %s: %w", node, err)
	}
	return nil
}

// CheckLeases implements evokestore.LeaseChecker.
func (t *txn) CheckLeases(ctx context.Context, node string, leases []evokestore.Lease) error {
	if len(leases) == 0 {
		return nil
	}
	parts, tokens := make([]int32, len(leases)), make([]int64, len(leases))
	for i, l := range leases {
		parts[i], tokens[i] = int32(l.Partition), l.Token
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: check leases: %w", err)
	}
	defer t.mu.Unlock()
	b := &pgx.Batch{}
	b.Queue(sqlCheck, node, parts, tokens)
	return t.exec(ctx, b, func(err error) error {
		if msg, ok := asserted(err, codeLeaseLost); ok {
			return fmt.Errorf("%w: %s", evokestore.ErrLeaseLost, msg)
		}
		return fmt.Errorf("evokepg: check leases: %w", err)
	})
}

func scanLeases(rows pgx.Rows, err error) ([]evokestore.Lease, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []evokestore.Lease
	for rows.Next() {
		var l evokestore.Lease
		var p int32
		if err := rows.Scan(&p, &l.Token); err != nil {
			return nil, err
		}
		l.Partition = int(p)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortLeases(out)
	return out, nil
}

func sortLeases(ls []evokestore.Lease) {
	slices.SortFunc(ls, func(a, b evokestore.Lease) int { return a.Partition - b.Partition })
}

// PartitionLeases implements evokestore.LeaseReader.
func (s *Store) PartitionLeases(ctx context.Context) ([]evokestore.PartitionLease, error) {
	rows, err := s.pool.Query(ctx, sqlPartitionLeases)
	if err != nil {
		return nil, fmt.Errorf("evokepg: partition leases: %w", err)
	}
	defer rows.Close()
	var out []evokestore.PartitionLease
	for rows.Next() {
		var l evokestore.PartitionLease
		var part int32
		var until *time.Time
		if err := rows.Scan(&part, &l.Node, &l.Token, &until, &l.Alive); err != nil {
			return nil, fmt.Errorf("evokepg: partition leases: %w", err)
		}
		l.Partition = int(part)
		if until != nil {
			l.AliveUntil = until.UTC()
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokepg: partition leases: %w", err)
	}
	return out, nil
}
