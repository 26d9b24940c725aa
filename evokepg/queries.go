package evokepg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
	"github.com/evoke-go/evoke/internal/payload"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// defaultLimit is the limit of queries whose Limit is 0.
const defaultLimit = 1000

// dbtx is what both the pool and a pgx.Tx offer.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// queries implements evokestore.Querier on the pool (t == nil) or inside a
// Tx.
type queries struct {
	s *Store
	t *txn
}

func noop() {}

// db returns where to run a read and a func to call when done with it.
func (q queries) db(ctx context.Context) (dbtx, func(), error) {
	if q.t == nil {
		return q.s.pool, noop, nil
	}
	return q.t.conn(ctx)
}

// customPlan makes pgx plan a lookup with its actual parameters every time
// instead of caching a generic plan: evoke's tables grow from empty, and a
// generic plan made while one was small (a sequential scan for
// "id = ANY($1)") would stick after it grew, until autovacuum analysed it.
// Planning such a lookup costs far less than one bad scan.
const customPlan = pgx.QueryExecModeExec

func limitOr(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

const eventCols = `position, id, stream_id, stream_version, type, data, correlation_id, causation_id, meta_values, recorded_at`

const instanceCols = `process_manager, id, partition, state, version, status, phase, last_position, attempts, next_attempt_at, last_error, created_at, updated_at, completed_at, outcome`

const outboxCols = `seq, command_id, process_manager, instance_id, partition, type, aggregate_type, aggregate_id, payload, correlation_id, causation_id, meta_values, created_at`

const outcomeCols = `command_id, type, aggregate_type, aggregate_id, process_manager, instance_id, status, error, events, recorded_at`

const historyCols = `id, process_manager, instance_id, kind, version, position, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token, more`

const deadlineCols = `process_manager, instance_id, name, due_at, version`

const (
	sqlReadLog      = `SELECT ` + eventCols + ` FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`
	sqlReadLogTypes = `SELECT ` + eventCols + ` FROM events WHERE position > $1 AND position <= $2 AND type = ANY($3::text[]) ORDER BY position LIMIT $4`
	// The log after $1 but for the inclusive position ranges ($2[i], $3[i]).
	sqlReadLogSkipping = `SELECT ` + eventCols + ` FROM events WHERE position > $1
AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi) WHERE position BETWEEN r.lo AND r.hi)
ORDER BY position LIMIT $4`
	sqlReadLogTypesSkipping = `SELECT ` + eventCols + ` FROM events WHERE position > $1 AND type = ANY($5::text[])
AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi) WHERE position BETWEEN r.lo AND r.hi)
ORDER BY position LIMIT $4`
	sqlReadStream = `SELECT ` + eventCols + ` FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version`
	// One index scan per stream, whatever the statistics say: a table
	// never analysed yet (a new schema, the first minute) has no
	// statistics for stream_id, and PostgreSQL then takes each of the
	// array's values to match 0.5% of the rows, so that "stream_id =
	// ANY($1)" for 50 streams became a sequential scan of the whole log
	// (~2 ms a call at 50,000 events, most of a batch's prepare).
	sqlReadStreams = `SELECT e.position, e.id, e.stream_id, e.stream_version, e.type, e.data, e.correlation_id, e.causation_id, e.meta_values, e.recorded_at
FROM (SELECT DISTINCT unnest($1::text[]) AS id) s
CROSS JOIN LATERAL (SELECT * FROM events WHERE stream_id = s.id ORDER BY stream_version) e
ORDER BY e.stream_id, e.stream_version`
	sqlReadEvents = `SELECT ` + eventCols + ` FROM events WHERE id = ANY($1::text[]) ORDER BY position`
	sqlHead       = `SELECT COALESCE(MAX(position), 0) FROM events`
	// By the key, one index lookup per ID, as sqlReadStreams and for the
	// same reason: on a table not analysed yet, "process_manager = $1 AND
	// id = ANY($2)" was planned as a scan of every instance of the process
	// manager with the IDs as a filter (~2.5 ms a batch at 20,000
	// instances, growing with the table until autovacuum analysed it).
	// The LIMIT (and the deadlines' ORDER BY) keep the planner from
	// flattening the lateral subquery back into that same scan.
	sqlInstances = `SELECT i.process_manager, i.id, i.partition, i.state, i.version, i.status, i.phase, i.last_position, i.attempts, i.next_attempt_at, i.last_error, i.created_at, i.updated_at, i.completed_at, i.outcome
FROM (SELECT DISTINCT unnest($2::text[]) AS id) k
CROSS JOIN LATERAL (SELECT * FROM instances WHERE process_manager = $1 AND id = k.id LIMIT 1) i
ORDER BY i.id`
	sqlListInstances = `SELECT ` + instanceCols + ` FROM instances WHERE ($1::text = '' OR process_manager = $1) AND ($2::text = '' OR status = $2) AND (process_manager, id) > ($3::text, $4::text)
AND ($6::text = '' OR (status IN ('completed', 'cancelled') AND (CASE WHEN outcome = '' THEN status ELSE outcome END) = $6)) AND ($7::text = '' OR left(id, length($7)) = $7)
AND ($8::bigint = 0 OR created_at < $8) AND ($9::bigint = 0 OR created_at > $9) ORDER BY process_manager, id LIMIT $5`
	sqlCheckpoint        = `SELECT position, catchup_until FROM checkpoints WHERE process_manager = $1 AND partition = $2`
	sqlOutbox            = `SELECT ` + outboxCols + ` FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`
	sqlOutboxParts       = `SELECT ` + outboxCols + ` FROM outbox WHERE seq > $1 AND partition = ANY($3::int[]) ORDER BY seq LIMIT $2`
	sqlOutboxInstances   = `SELECT ` + outboxCols + ` FROM outbox WHERE seq > $1 AND process_manager = $3 AND instance_id = ANY($4::text[]) ORDER BY seq LIMIT $2`
	sqlCommandOutcomes   = `SELECT ` + outcomeCols + ` FROM command_outcomes WHERE command_id = ANY($1::text[]) ORDER BY command_id`
	sqlHeld              = `SELECT process_manager, instance_id, position, error FROM held_events WHERE process_manager = $1 AND instance_id = $2 ORDER BY position`
	sqlHistory           = `SELECT ` + historyCols + ` FROM history WHERE process_manager = $1 AND instance_id = $2 ORDER BY id`
	sqlInstanceDeadlines = `SELECT d.process_manager, d.instance_id, d.name, d.due_at, d.version
FROM (SELECT DISTINCT unnest($2::text[]) AS id) k
CROSS JOIN LATERAL (SELECT * FROM deadlines WHERE process_manager = $1 AND instance_id = k.id ORDER BY due_at, name) d
ORDER BY d.instance_id, d.due_at, d.name`
	sqlDueDeadlines = `SELECT ` + deadlineCols + ` FROM deadlines WHERE due_at <= $1 ORDER BY due_at, process_manager, instance_id, name LIMIT $2`
	sqlNextDeadline = `SELECT ` + deadlineCols + ` FROM deadlines ORDER BY due_at, process_manager, instance_id, name LIMIT 1`
	sqlStats        = `SELECT (SELECT COUNT(*) FROM events), (SELECT COALESCE(MAX(position), 0) FROM events), (SELECT COUNT(*) FROM outbox),
	(SELECT COUNT(*) FROM command_outcomes), (SELECT COUNT(*) FROM command_outcomes WHERE status = 'rejected')`
	// As evokesqlite's sTallyCommands.
	sqlTallyCommands = `WITH h AS (SELECT COALESCE(MAX(position), 0) AS until FROM events)
SELECT (SELECT COUNT(*) FROM command_outcomes),
	(SELECT COUNT(*) FROM command_outcomes WHERE status = 'rejected' AND process_manager = ''),
	h.until,
	(SELECT COUNT(DISTINCT e.causation_id) FROM events e WHERE e.position > $1 AND e.position <= h.until
		AND substr(e.id, 15, 1) = '8' AND left(e.id, 13) = left(e.causation_id, 13)
		AND NOT EXISTS (SELECT 1 FROM command_outcomes o WHERE o.command_id = e.causation_id)),
	(SELECT COUNT(*) FROM events WHERE type = '$evoke.CommandRejected' AND position > $1 AND position <= h.until)
FROM h`
	sqlEnded = `SELECT process_manager, (completed_at - $1) / $2, COUNT(*) FROM instances
WHERE completed_at > 0 AND completed_at >= $1 AND completed_at < $1 + $2 * $3 GROUP BY 1, 2`
	sqlTallyOutcomes  = `SELECT process_manager, CASE WHEN outcome = '' THEN status ELSE outcome END, COUNT(*) FROM instances WHERE status IN ('completed', 'cancelled') GROUP BY 1, 2`
	sqlStatsInstances = `SELECT process_manager, status, COUNT(*) FROM instances GROUP BY process_manager, status`
)

// query runs a read and appends its rows to out with scan.
func query[T any](ctx context.Context, q queries, out []T, scan func(backend.Rows, []T) ([]T, error), sql string, args ...any) ([]T, error) {
	db, done, err := q.db(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scan(rows, out)
}

// ReadLog returns events after q.After (and up to q.Until if > 0) in
// position order, at most q.Limit (default 1000), restricted to q.Types if
// not empty. Positions are
// assigned in commit order (see the package documentation), so a reader
// that pages with After never skips an event committed later.
func (q queries) ReadLog(ctx context.Context, lq evokestore.LogQuery) ([]evokestore.Event, error) {
	limit := limitOr(lq.Limit)
	until := lq.Until
	if until <= 0 {
		until = math.MaxInt64
	}
	hint := min(limit, 256)
	var (
		evs []evokestore.Event
		err error
	)
	if len(lq.Types) == 0 {
		evs, err = q.queryEvents(ctx, hint, sqlReadLog, lq.After, until, limit)
	} else {
		evs, err = q.queryEvents(ctx, hint, sqlReadLogTypes, lq.After, until, lq.Types, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("evokepg: read log: %w", err)
	}
	return evs, nil
}

// ReadStream returns one stream's events with version > afterVersion, in
// version order.
func (q queries) ReadStream(ctx context.Context, streamID string, afterVersion int64) ([]evokestore.Event, error) {
	evs, err := q.queryEvents(ctx, 8, sqlReadStream, streamID, afterVersion)
	if err != nil {
		return nil, fmt.Errorf("evokepg: read stream %q: %w", streamID, err)
	}
	return evs, nil
}

// ReadEvents returns the events with the given IDs, in log order
// (evokestore.EventsReader).
func (q queries) ReadEvents(ctx context.Context, ids []string) ([]evokestore.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	evs, err := q.queryEvents(ctx, len(ids), sqlReadEvents, ids)
	if err != nil {
		return nil, fmt.Errorf("evokepg: read %d events: %w", len(ids), err)
	}
	return evs, nil
}

// ReadStreams returns the events of several streams in one query (= ANY
// over an array), ordered by stream ID and then version
// (evokestore.StreamsReader).
func (q queries) ReadStreams(ctx context.Context, streamIDs []string) ([]evokestore.Event, error) {
	if len(streamIDs) == 0 {
		return nil, nil
	}
	evs, err := q.queryEvents(ctx, len(streamIDs), sqlReadStreams, customPlan, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("evokepg: read %d streams: %w", len(streamIDs), err)
	}
	return evs, nil
}

// queryEvents runs a query of events (hint sizes the result).
func (q queries) queryEvents(ctx context.Context, hint int, sql string, args ...any) ([]evokestore.Event, error) {
	return query(ctx, q, make([]evokestore.Event, 0, hint), backend.ScanEvents, sql, args...)
}

// Head returns the highest committed position (0 for an empty log); inside
// a Tx, its own appends count.
func (q queries) Head(ctx context.Context) (int64, error) {
	db, done, err := q.db(ctx)
	if err != nil {
		return 0, fmt.Errorf("evokepg: head: %w", err)
	}
	defer done()
	var h int64
	if err := db.QueryRow(ctx, sqlHead).Scan(&h); err != nil {
		return 0, fmt.Errorf("evokepg: head: %w", err)
	}
	return h, nil
}

// queryInstances runs a query of instances (hint sizes the result).
func (q queries) queryInstances(ctx context.Context, hint int, sql string, args ...any) ([]evokestore.Instance, error) {
	return query(ctx, q, make([]evokestore.Instance, 0, hint), backend.ScanInstances, sql, args...)
}

// Instances loads the named instances of one process manager, ordered by
// ID; missing ones are absent. The IDs are passed as one array parameter
// (= ANY($2)), so there is no limit on len(ids).
func (q queries) Instances(ctx context.Context, processManager string, ids []string) ([]evokestore.Instance, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ins, err := q.queryInstances(ctx, len(ids), sqlInstances, customPlan, processManager, ids)
	if err != nil {
		return nil, fmt.Errorf("evokepg: load instances: %w", err)
	}
	return ins, nil
}

// ListInstances lists instances ordered by (process manager, id), bytewise,
// after (AfterProcessManager, AfterID), at most Limit (default 1000).
func (q queries) ListInstances(ctx context.Context, iq evokestore.InstanceQuery) ([]evokestore.Instance, error) {
	limit := limitOr(iq.Limit)
	ins, err := q.queryInstances(ctx, min(limit, 64), sqlListInstances, iq.ProcessManager, string(iq.Status), iq.AfterProcessManager, iq.AfterID, limit,
		string(iq.Outcome), iq.IDPrefix, backend.Nanos(iq.CreatedBefore), backend.Nanos(iq.CreatedAfter))
	if err != nil {
		return nil, fmt.Errorf("evokepg: list instances: %w", err)
	}
	return ins, nil
}

// Checkpoint returns a subscription checkpoint; ok is false if none.
func (q queries) Checkpoint(ctx context.Context, processManager string, partition int) (evokestore.Checkpoint, bool, error) {
	db, done, err := q.db(ctx)
	if err != nil {
		return evokestore.Checkpoint{}, false, fmt.Errorf("evokepg: checkpoint: %w", err)
	}
	defer done()
	cp := evokestore.Checkpoint{ProcessManager: processManager, Partition: partition}
	err = db.QueryRow(ctx, sqlCheckpoint, processManager, partition).Scan(&cp.Position, &cp.CatchupUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return evokestore.Checkpoint{}, false, nil
	}
	if err != nil {
		return evokestore.Checkpoint{}, false, fmt.Errorf("evokepg: checkpoint: %w", err)
	}
	return cp, true, nil
}

// Outbox returns pending commands after oq.After in sequence order, at most
// oq.Limit (default 1000). Unlike log positions, sequence numbers follow
// insertion, not commit, order: a command may commit after one with a
// greater Seq.
func (q queries) Outbox(ctx context.Context, oq evokestore.OutboxQuery) ([]evokestore.OutboxCommand, error) {
	limit := limitOr(oq.Limit)
	out := make([]evokestore.OutboxCommand, 0, min(limit, 64))
	var err error
	switch {
	case oq.Instances != nil && oq.Partitions != nil:
		return nil, errors.New("evokepg: outbox: Partitions and Instances do not combine")
	case oq.Instances != nil:
		if len(oq.Instances) == 0 {
			return nil, nil
		}
		out, err = query(ctx, q, out, backend.ScanOutbox, sqlOutboxInstances, customPlan, oq.After, limit, oq.ProcessManager, oq.Instances)
	case oq.Partitions != nil:
		out, err = query(ctx, q, out, backend.ScanOutbox, sqlOutboxParts, customPlan, oq.After, limit, oq.Partitions)
	default:
		out, err = query(ctx, q, out, backend.ScanOutbox, sqlOutbox, oq.After, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("evokepg: outbox: %w", err)
	}
	return out, nil
}

// CommandOutcomes returns the recorded outcomes of the given command IDs,
// ordered by command ID.
func (q queries) CommandOutcomes(ctx context.Context, ids []string) ([]evokestore.CommandOutcome, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	db, done, err := q.db(ctx)
	if err != nil {
		return nil, fmt.Errorf("evokepg: command outcomes: %w", err)
	}
	defer done()
	rows, err := db.Query(ctx, sqlCommandOutcomes, customPlan, ids)
	if err != nil {
		return nil, fmt.Errorf("evokepg: command outcomes: %w", err)
	}
	defer rows.Close()
	out := make([]evokestore.CommandOutcome, 0, len(ids))
	for rows.Next() {
		var o evokestore.CommandOutcome
		var events int32
		var at int64
		if err := rows.Scan(&o.CommandID, &o.Type, &o.AggregateType, &o.AggregateID, &o.ProcessManager, &o.InstanceID,
			&o.Status, &o.Error, &events, &at); err != nil {
			return nil, fmt.Errorf("evokepg: command outcomes: %w", err)
		}
		o.Events = int(events)
		o.RecordedAt = backend.FromNanos(at)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokepg: command outcomes: %w", err)
	}
	return out, nil
}

// Held returns the events held for one instance, in position order.
func (q queries) Held(ctx context.Context, processManager, instanceID string) ([]evokestore.HeldEvent, error) {
	out, err := query(ctx, q, nil, backend.ScanHeld, sqlHeld, processManager, instanceID)
	if err != nil {
		return nil, fmt.Errorf("evokepg: held: %w", err)
	}
	return out, nil
}

// History returns one instance's history in insertion order.
func (q queries) History(ctx context.Context, processManager, instanceID string) ([]evokestore.HistoryRecord, error) {
	db, done, err := q.db(ctx)
	if err != nil {
		return nil, fmt.Errorf("evokepg: history: %w", err)
	}
	defer done()
	rows, err := db.Query(ctx, sqlHistory, processManager, instanceID)
	if err != nil {
		return nil, fmt.Errorf("evokepg: history: %w", err)
	}
	defer rows.Close()
	var out []evokestore.HistoryRecord
	for rows.Next() {
		var h evokestore.HistoryRecord
		var at int64
		var more []byte
		if err := rows.Scan(&h.ID, &h.ProcessManager, &h.InstanceID, &h.Kind, &h.Version, &h.Position, &h.EventID,
			&h.EventType, &h.PhaseBefore, &h.PhaseAfter, &h.Commands, &h.Error, &at, &h.Node, &h.LeaseToken, &more); err != nil {
			return nil, fmt.Errorf("evokepg: history: %w", err)
		}
		h.ID *= historyRun // a record's ID: see historyRun
		h.RecordedAt = backend.FromNanos(at)
		out = append(out, h)
		if more != nil {
			if out, err = payload.ParseHistoryMore(out, &h, more); err != nil {
				return nil, fmt.Errorf("evokepg: history of %s %s: %w", processManager, instanceID, err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokepg: history: %w", err)
	}
	return out, nil
}

// DueDeadlines returns deadlines due at or before now, earliest first, at
// most limit (default 1000).
func (q queries) DueDeadlines(ctx context.Context, now time.Time, limit int) ([]evokestore.Deadline, error) {
	out, err := query(ctx, q, nil, backend.ScanDeadlines, sqlDueDeadlines, now.UnixNano(), limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("evokepg: due deadlines: %w", err)
	}
	return out, nil
}

// InstanceDeadlines returns the deadlines of some instances of one process
// manager, by instance ID and due time (evokestore.DeadlinesReader).
func (q queries) InstanceDeadlines(ctx context.Context, pm string, ids []string) ([]evokestore.Deadline, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := query(ctx, q, nil, backend.ScanDeadlines, sqlInstanceDeadlines, customPlan, pm, ids)
	if err != nil {
		return nil, fmt.Errorf("evokepg: instance deadlines: %w", err)
	}
	return out, nil
}

// NextDeadline returns the earliest deadline; ok is false if none.
func (q queries) NextDeadline(ctx context.Context) (evokestore.Deadline, bool, error) {
	db, done, err := q.db(ctx)
	if err != nil {
		return evokestore.Deadline{}, false, fmt.Errorf("evokepg: next deadline: %w", err)
	}
	defer done()
	d, err := backend.ScanDeadline(db.QueryRow(ctx, sqlNextDeadline))
	if errors.Is(err, pgx.ErrNoRows) {
		return evokestore.Deadline{}, false, nil
	}
	if err != nil {
		return evokestore.Deadline{}, false, fmt.Errorf("evokepg: next deadline: %w", err)
	}
	return d, true, nil
}

// Stats counts what the store holds, in one round trip.
func (q queries) Stats(ctx context.Context) (evokestore.Stats, error) {
	var st evokestore.Stats
	wrap := func(err error) error { return fmt.Errorf("evokepg: stats: %w", err) }
	db, done, err := q.db(ctx)
	if err != nil {
		return st, wrap(err)
	}
	defer done()
	b := &pgx.Batch{}
	b.Queue(sqlStats).QueryRow(func(row pgx.Row) error {
		return row.Scan(&st.Events, &st.Head, &st.Outbox, &st.Commands, &st.Rejected)
	})
	st.Instances = make(map[string]map[evokestore.InstanceStatus]int64)
	b.Queue(sqlStatsInstances).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var pm, status string
			var n int64
			if err := rows.Scan(&pm, &status, &n); err != nil {
				return err
			}
			m := st.Instances[pm]
			if m == nil {
				m = make(map[evokestore.InstanceStatus]int64)
				st.Instances[pm] = m
			}
			m[evokestore.InstanceStatus(status)] = n
		}
		return rows.Err()
	})
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return evokestore.Stats{}, wrap(err)
	}
	return st, nil
}

// Tally counts executed commands and how done instances ended, in one round
// trip (evokestore.TallyReader).
func (q queries) Tally(ctx context.Context, since *evokestore.Tally) (evokestore.Tally, error) {
	wrap := func(err error) error { return fmt.Errorf("evokepg: tally: %w", err) }
	db, done, err := q.db(ctx)
	if err != nil {
		return evokestore.Tally{}, wrap(err)
	}
	defer done()
	var prev evokestore.Tally
	if since != nil {
		prev = *since
	}
	for {
		t := evokestore.Tally{Outcomes: map[string]map[evokestore.InstanceOutcome]int64{}}
		var recorded, recordedRejected int64
		b := &pgx.Batch{}
		b.Queue(sqlTallyCommands, prev.Until).QueryRow(func(row pgx.Row) error {
			return row.Scan(&recorded, &recordedRejected, &t.Until, &t.ByEvents, &t.RejectedByEvents)
		})
		b.Queue(sqlTallyOutcomes).Query(func(rows pgx.Rows) error { return backend.ScanOutcomeCounts(rows, t.Outcomes) })
		if err := db.SendBatch(ctx, b).Close(); err != nil {
			return evokestore.Tally{}, wrap(err)
		}
		if t.Until < prev.Until { // a log shorter than since's: not the same
			prev = evokestore.Tally{}
			continue
		}
		t.ByEvents, t.RejectedByEvents = t.ByEvents+prev.ByEvents, t.RejectedByEvents+prev.RejectedByEvents
		t.Executed, t.Rejected = recorded+t.ByEvents, recordedRejected+t.RejectedByEvents
		return t, nil
	}
}

// Ended counts the instances that ended in each interval, per process
// manager (evokestore.TallyReader).
func (q queries) Ended(ctx context.Context, since time.Time, every time.Duration, n int) (map[string][]int64, error) {
	out := map[string][]int64{}
	if every <= 0 || n <= 0 {
		return out, nil
	}
	db, done, err := q.db(ctx)
	if err != nil {
		return nil, fmt.Errorf("evokepg: ended: %w", err)
	}
	defer done()
	rows, err := db.Query(ctx, sqlEnded, since.UnixNano(), int64(every), int64(n))
	if err != nil {
		return nil, fmt.Errorf("evokepg: ended: %w", err)
	}
	defer rows.Close()
	if err := backend.ScanEnded(rows, out, n); err != nil {
		return nil, fmt.Errorf("evokepg: ended: %w", err)
	}
	return out, nil
}
