package evokepg

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
	"github.com/evoke-go/evoke/internal/payload"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Constraint names the error mapping relies on (migrations/0001_init.sql).
const (
	consEventID       = "events_id_key"
	consStreamVersion = "events_stream_version_key"
	consInstance      = "instances_pkey"
	consOutcome       = "command_outcomes_pkey"
)

// txn is a write transaction of a Store, at READ COMMITTED. It is not safe for
// concurrent use. Its reads see its own writes; its writes become visible to
// others at Commit, and nothing of them at all if it is rolled back,
// abandoned with its context cancelled, or the process dies first.
//
// A Tx takes a pooled connection and sends BEGIN only with its first
// statement (in the same round trip when that is a write), and COMMIT with
// the writes held back (DeferWrites), and gives the connection back at
// Commit or Rollback. Its first write takes the append lock first (see
// "One lock order" in the package documentation). After a statement failed,
// PostgreSQL refuses every further statement of the transaction: roll it
// back.
type txn struct {
	queries

	s    *Store
	ctx  context.Context // Begin's: cancelling it rolls the Tx back
	stop func() bool     // stops the context.AfterFunc that does so

	mu     sync.Mutex    // serialises the owner's calls with abort
	pc     *pgxpool.Conn // nil until the first statement
	begun  bool          // BEGIN was sent on conn
	done   bool
	cause  error            // why the Tx ended, if not by its owner
	locked bool             // the Tx holds the append lock
	topics backend.TopicSet // topics written, whose notifications are queued
	trips  int              // round trips made (for tests)
	// deferring: writes without a result are held in pend until the next
	// round trip (DeferWrites).
	deferring bool
	pend      []*pgx.QueuedQuery
}

var (
	_ evokestore.Tx               = (*txn)(nil)
	_ evokestore.StreamsReader    = (*txn)(nil)
	_ evokestore.Purger           = (*txn)(nil)
	_ evokestore.WriteDeferrer    = (*txn)(nil)
	_ evokestore.DeadlinesDeleter = (*txn)(nil)
)

// DeferWrites implements evokestore.WriteDeferrer: from now on, the writes
// that return nothing but an error (PutInstances, InsertOutbox,
// DeleteOutbox, PutCommandOutcomes, InsertHistory, the checkpoints, Hold,
// Release, ReplaceDeadlines, CheckLeases) are queued and
// sent in the same round trip as the next statement whose reply is needed,
// or with COMMIT, after the append lock (see the package documentation). A
// chained batch of the router then takes three round trips instead of
// eight, and two when its append reads along (AppendEventsAfter).
//
// A held-back write's failure stops the COMMIT sent with it because it is
// the server's: the fences (the instance versions, the leases) raise
// through evoke_assert (migration 0008) instead of being checked by the
// client on the statement's result.
func (t *txn) DeferWrites() {
	t.mu.Lock()
	t.deferring = true
	t.mu.Unlock()
}

// deferredError is the error of a write that was held back, returned by
// the call that sent it.
type deferredError struct{ err error }

func (e *deferredError) Error() string { return "a write held back earlier failed: " + e.err.Error() }
func (e *deferredError) Unwrap() error { return e.err }

// exec runs the writes queued on b, or holds them back when deferring;
// mapErr turns a failure into the call's error. A write that checks its
// result on the client (a query with a Fn) is never held back: a COMMIT
// sent with it would go through whatever the check found (Commit). Call
// with t.mu held.
func (t *txn) exec(ctx context.Context, b *pgx.Batch, mapErr func(error) error) error {
	if !t.deferring || slices.ContainsFunc(b.QueuedQueries, func(qq *pgx.QueuedQuery) bool { return qq.Fn != nil }) {
		if err := t.send(ctx, b, true); err != nil {
			return mapErr(err)
		}
		return nil
	}
	for _, qq := range b.QueuedQueries {
		qq.Fn = func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return &deferredError{mapErr(err)}
			}
			return nil
		}
	}
	t.pend = append(t.pend, b.QueuedQueries...)
	return nil
}

const sqlNotify = `SELECT pg_notify($1, $2)`

// closedErr is the error of a call on an ended Tx.
func (t *txn) closedErr() error {
	if t.cause != nil {
		return fmt.Errorf("%w: rolled back: %w", pgx.ErrTxClosed, t.cause)
	}
	return pgx.ErrTxClosed
}

// conn locks t for a read through its connection, beginning the transaction
// (and sending the writes held back) if needed; release unlocks it.
func (t *txn) conn(ctx context.Context) (db dbtx, release func(), err error) {
	t.mu.Lock()
	if t.done {
		err := t.closedErr()
		t.mu.Unlock()
		return nil, nil, err
	}
	if !t.begun || len(t.pend) > 0 {
		if err := t.send(ctx, &pgx.Batch{}, false); err != nil {
			t.mu.Unlock()
			return nil, nil, err
		}
	}
	t.trips++
	return t.pc, t.mu.Unlock, nil
}

// acquire takes t's connection from the pool if it has none. Call with
// t.mu held.
func (t *txn) acquire(ctx context.Context) error {
	if t.pc != nil {
		return nil
	}
	c, err := t.s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	t.pc = c
	return nil
}

// lock locks t for a write; the caller unlocks t.mu.
func (t *txn) lock() error {
	t.mu.Lock()
	if t.done {
		err := t.closedErr()
		t.mu.Unlock()
		return err
	}
	return nil
}

// notify queues the notification of topic on b unless it is queued already;
// PostgreSQL delivers it to listeners if and when the Tx commits.
func (t *txn) notify(b *pgx.Batch, topic backend.TopicSet) {
	for _, name := range (topic &^ t.topics).Topics() {
		b.Queue(sqlNotify, t.s.channel, string(name))
	}
}

const sqlAppendLock = `SELECT pg_advisory_xact_lock($1)`

// send runs b in one round trip, after BEGIN if the transaction has not
// begun yet and after the writes held back; writes tells whether b writes
// or locks rows. The first round trip that writes (b, or a write held
// back) takes the append lock before anything else: this is where the
// lock order (see the package documentation) is enforced. Call with t.mu
// held.
func (t *txn) send(ctx context.Context, b *pgx.Batch, writes bool) error {
	if err := t.acquire(ctx); err != nil {
		return err
	}
	lock := !t.locked && (writes || len(t.pend) > 0)
	if !t.begun || len(t.pend) > 0 || lock {
		nb := &pgx.Batch{}
		if !t.begun {
			nb.Queue("begin")
		}
		if lock {
			nb.Queue(sqlAppendLock, t.s.lockKey)
			// Held from here on, even if the batch fails: the
			// transaction can then only roll back.
			t.locked = true
		}
		nb.QueuedQueries = append(nb.QueuedQueries, t.pend...)
		nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
		t.pend, b = nil, nb
	}
	t.trips++
	// Begun even if the batch fails: rollback then ends whatever the
	// server holds of the transaction.
	t.begun = true
	return t.pc.SendBatch(ctx, b).Close()
}

// end marks t ended and forgets it. Call with t.mu held.
func (t *txn) end() {
	t.done = true
	if t.stop != nil {
		t.stop()
	}
	t.s.mu.Lock()
	delete(t.s.txs, t)
	t.s.mu.Unlock()
}

// rollback rolls the transaction back, if it has begun, without regard for
// t.ctx's cancellation. Call with t.mu held.
func (t *txn) rollback() error {
	t.pend = nil
	if t.pc == nil {
		return nil
	}
	defer t.release()
	// A connection that broke (typically because a statement's context was
	// cancelled) took the transaction with it: the server rolled it back.
	if !t.begun || t.pc.Conn().IsClosed() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 15*time.Second)
	defer cancel()
	if _, err := t.pc.Exec(ctx, "rollback"); err != nil && !t.pc.Conn().IsClosed() {
		return err
	}
	return nil
}

// release gives t's connection back to the pool, which closes it unless
// it is idle outside a transaction. Call with t.mu held.
func (t *txn) release() {
	if t.pc != nil {
		t.pc.Release()
		t.pc = nil
	}
}

// abort rolls t back unless it has ended: its context was cancelled or the
// Store is closing.
func (t *txn) abort(cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.cause = cause
	t.end()
	_ = t.rollback()
}

// AppendEvents appends events in slice order at the stream versions they
// name and returns them with their positions and RecordedAt (the NewEvent's,
// or now if zero, truncated to the stored UTC nanoseconds). It runs under
// the schema's append lock, taken by the first write of the Tx and held
// until the Tx ends, so that positions follow commit order (see the package
// documentation).
func (t *txn) AppendEvents(ctx context.Context, events []evokestore.NewEvent) ([]evokestore.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	_, out, err := t.appendEvents(ctx, nil, nil, events)
	return out, err
}

// AppendEventsAfter reads the events q selects after taking the append lock
// (skipping the inclusive position ranges in skip), then appends events, in
// one round trip (evokestore.AppendReader): under the lock nothing else can
// commit in between.
func (t *txn) AppendEventsAfter(ctx context.Context, q evokestore.LogQuery, skip [][2]int64, events []evokestore.NewEvent) (read, appended []evokestore.Event, err error) {
	return t.appendEvents(ctx, &q, skip, events)
}

// appendEvents appends events (possibly none), reading first, under the
// append lock, what q selects if it is not nil.
func (t *txn) appendEvents(ctx context.Context, q *evokestore.LogQuery, skip [][2]int64, events []evokestore.NewEvent) (read, appended []evokestore.Event, err error) {
	if err := evokestore.CheckNewEvents(events); err != nil {
		return nil, nil, fmt.Errorf("evokepg: append events: %w", err)
	}
	if err := t.lock(); err != nil {
		return nil, nil, fmt.Errorf("evokepg: append events: %w", err)
	}
	defer t.mu.Unlock()

	n := len(events)
	now := time.Now().UnixNano()
	var (
		ids, streams, types, corrs, causes = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions, ats                      = make([]int64, n), make([]int64, n)
		datas, vals                        = make([][]byte, n), make([][]byte, n)
		out                                = make([]evokestore.Event, n)
	)
	for i := range events {
		e := &events[i]
		at := backend.Nanos(e.RecordedAt)
		if at == 0 {
			at = now
		}
		ids[i], streams[i], versions[i], types[i], datas[i], corrs[i], causes[i], vals[i], ats[i] =
			e.ID, e.StreamID, e.StreamVersion, e.Type, e.Data, e.CorrelationID, e.CausationID, e.Values, at
		out[i] = evokestore.Event{
			ID: e.ID, StreamID: e.StreamID, StreamVersion: e.StreamVersion, Type: e.Type, Data: e.Data,
			CorrelationID: e.CorrelationID, CausationID: e.CausationID, Values: e.Values, RecordedAt: backend.FromNanos(at),
		}
	}

	b := &pgx.Batch{}
	if q != nil {
		limit := limitOr(q.Limit)
		los, his := make([]int64, len(skip)), make([]int64, len(skip))
		for i, r := range skip {
			los[i], his[i] = r[0], r[1]
		}
		var qq *pgx.QueuedQuery
		if len(q.Types) == 0 {
			qq = b.Queue(sqlReadLogSkipping, q.After, los, his, limit)
		} else {
			qq = b.Queue(sqlReadLogTypesSkipping, q.After, los, his, limit, q.Types)
		}
		qq.Query(func(rows pgx.Rows) error {
			evs, err := backend.ScanEvents(rows, make([]evokestore.Event, 0, min(limit, 64)))
			read = evs
			return err
		})
	}
	if n == 0 {
		// The read is under the append lock even when nothing follows.
		if err := t.send(ctx, b, true); err != nil {
			return nil, nil, fmt.Errorf("evokepg: read log: %w", err)
		}
		return read, nil, nil
	}
	t.notify(b, backend.SetEvents)
	b.Queue(sqlInsertEvents, ids, streams, versions, types, datas, corrs, causes, vals, ats).Query(func(rows pgx.Rows) error {
		i := 0
		for rows.Next() {
			var pos int64
			var id string
			if err := rows.Scan(&pos, &id); err != nil {
				return err
			}
			if i >= n || id != out[i].ID {
				return fmt.Errorf("insert returned event %q out of order", id)
			}
			out[i].Position = pos
			i++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if i != n {
			return fmt.Errorf("insert returned %d of %d events", i, n)
		}
		return nil
	})
	if err := t.send(ctx, b, true); err != nil {
		if c, ok := uniqueConstraint(err); ok {
			switch c {
			case consEventID:
				return nil, nil, fmt.Errorf("evokepg: append events: %w: %v", evokestore.ErrDuplicateEvent, err)
			case consStreamVersion:
				return nil, nil, fmt.Errorf("evokepg: append events: %w: %v", evokestore.ErrVersionConflict, err)
			}
		}
		return nil, nil, fmt.Errorf("evokepg: append events: %w", err)
	}
	t.topics |= backend.SetEvents
	return read, out, nil
}

// The rows of an insert come from unnest over one array per column, in
// slice order (WITH ORDINALITY ... ORDER BY ord), so that identities are
// assigned in that order.
const (
	sqlInsertEvents = `INSERT INTO events (id, stream_id, stream_version, type, data, correlation_id, causation_id, meta_values, recorded_at)
SELECT id, stream_id, stream_version, type, data, correlation_id, causation_id, meta_values, recorded_at
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::bytea[], $9::bigint[])
	WITH ORDINALITY AS u(id, stream_id, stream_version, type, data, correlation_id, causation_id, meta_values, recorded_at, ord)
ORDER BY ord
RETURNING position, id`

	sqlInsertInstances = `INSERT INTO instances (` + instanceCols + `)
SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bytea[], $5::bigint[], $6::text[], $7::text[], $8::bigint[],
	$9::integer[], $10::bigint[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[], $15::text[])`

	sqlUpdateInstances = `UPDATE instances AS i SET partition = u.partition, state = u.state, version = u.version, status = u.status,
	phase = u.phase, last_position = u.last_position, attempts = u.attempts, next_attempt_at = u.next_attempt_at,
	last_error = u.last_error, updated_at = u.updated_at, completed_at = u.completed_at, outcome = u.outcome
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[], $5::bytea[], $6::bigint[], $7::text[], $8::text[], $9::bigint[],
	$10::integer[], $11::bigint[], $12::text[], $13::bigint[], $14::bigint[], $15::text[])
	AS u(process_manager, id, prev, partition, state, version, status, phase, last_position, attempts, next_attempt_at, last_error, updated_at, completed_at, outcome)
WHERE i.process_manager = u.process_manager AND i.id = u.id AND i.version = u.prev`

	// sqlFencedUpdate runs sqlUpdateInstances and fails on the server
	// (migration 0008) unless every row found its expected version.
	sqlFencedUpdate = `WITH u AS (` + sqlUpdateInstances + ` RETURNING 1)
SELECT evoke_assert(count(*) = cardinality($2::text[]), '` + codeFenced + `',
	CASE WHEN cardinality($2::text[]) = 1 THEN format('update %s/%s at version %s', ($1::text[])[1], ($2::text[])[1], ($3::bigint[])[1])
	ELSE format('%s of %s updates found another version', cardinality($2::text[]) - count(*), cardinality($2::text[])) END)
FROM u`

	sqlInsertOutbox = `INSERT INTO outbox (command_id, process_manager, instance_id, partition, type, aggregate_type, aggregate_id, payload, correlation_id, causation_id, meta_values, created_at)
SELECT command_id, process_manager, instance_id, partition, type, aggregate_type, aggregate_id, payload, correlation_id, causation_id, meta_values, created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::text[], $10::text[], $11::bytea[], $12::bigint[])
	WITH ORDINALITY AS u(command_id, process_manager, instance_id, partition, type, aggregate_type, aggregate_id, payload, correlation_id, causation_id, meta_values, created_at, ord)
ORDER BY ord
ON CONFLICT (command_id) DO NOTHING`

	sqlInsertOutcomes = `INSERT INTO command_outcomes (` + outcomeCols + `)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::integer[], $10::bigint[])`

	sqlInsertHistory = `INSERT INTO history (process_manager, instance_id, kind, version, position, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token, more)
SELECT process_manager, instance_id, kind, version, position, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token, more
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[], $11::text[], $12::bigint[], $13::text[], $14::bigint[], $15::bytea[])
	WITH ORDINALITY AS u(process_manager, instance_id, kind, version, position, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token, more, ord)
ORDER BY ord`

	sqlHold = `INSERT INTO held_events (process_manager, instance_id, position, error)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
ON CONFLICT (process_manager, instance_id, position) DO UPDATE SET error = excluded.error`

	sqlInsertDeadlines = `INSERT INTO deadlines (` + deadlineCols + `)
SELECT $1::text, instance_id, name, due_at, version FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u(instance_id, name, due_at, version)`

	sqlPutCheckpoint = `INSERT INTO checkpoints (process_manager, partition, position, catchup_until) VALUES ($1, $2, $3, $4)
ON CONFLICT (process_manager, partition) DO UPDATE SET position = excluded.position, catchup_until = excluded.catchup_until`
	sqlPutCheckpoints = `INSERT INTO checkpoints (process_manager, partition, position, catchup_until)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[])
ON CONFLICT (process_manager, partition) DO UPDATE SET position = excluded.position, catchup_until = excluded.catchup_until`

	sqlDeleteOutbox      = `DELETE FROM outbox WHERE seq = ANY($1::bigint[])`
	sqlRelease           = `DELETE FROM held_events WHERE process_manager = $1 AND instance_id = $2 AND position = ANY($3::bigint[])`
	sqlDeleteDeadlines   = `DELETE FROM deadlines WHERE process_manager = $1 AND instance_id = $2`
	sqlDeleteDeadlinesOf = `DELETE FROM deadlines WHERE process_manager = $1 AND instance_id = ANY($2::text[])`
	sqlDeleteDeadline    = `WITH d AS (DELETE FROM deadlines WHERE process_manager = $1 AND instance_id = $2 AND name = $3 AND version = $4 RETURNING 1)
SELECT COUNT(*), (CASE WHEN COUNT(*) > 0 AND $5::boolean THEN pg_notify($6, $7) END) IS NULL FROM d`
)

// instanceColumns holds the column arrays of instance writes.
type instanceColumns struct {
	pms, ids, statuses, phases, lastErrors, outcomes                            []string
	partitions, attempts                                                        []int32
	states                                                                      [][]byte
	prevs, versions, lastPositions, nextAttempts, creates, updates, completions []int64
}

func (c *instanceColumns) add(w *evokestore.InstanceWrite) {
	c.pms = append(c.pms, w.ProcessManager)
	c.ids = append(c.ids, w.ID)
	c.prevs = append(c.prevs, w.PrevVersion)
	c.partitions = append(c.partitions, int32(w.Partition))
	c.states = append(c.states, w.State)
	c.versions = append(c.versions, w.Version)
	c.statuses = append(c.statuses, string(w.Status))
	c.phases = append(c.phases, w.Phase)
	c.lastPositions = append(c.lastPositions, w.LastPosition)
	c.attempts = append(c.attempts, int32(w.Attempts))
	c.nextAttempts = append(c.nextAttempts, backend.Nanos(w.NextAttemptAt))
	c.lastErrors = append(c.lastErrors, w.LastError)
	c.creates = append(c.creates, backend.Nanos(w.CreatedAt))
	c.updates = append(c.updates, backend.Nanos(w.UpdatedAt))
	c.completions = append(c.completions, backend.Nanos(w.CompletedAt))
	c.outcomes = append(c.outcomes, string(w.Outcome))
}

// PutInstances inserts (PrevVersion -1) or updates instances, fenced: an
// update whose stored version is not PrevVersion (or whose instance does not
// exist), or an insert of an existing instance, fails with ErrFenced. An
// update keeps the stored CreatedAt. All inserts are one statement and all
// updates another, sent in one round trip. A concurrent Tx updating the same
// instance makes this one wait for it to end and then fail with ErrFenced if
// it committed.
func (t *txn) PutInstances(ctx context.Context, writes []evokestore.InstanceWrite) error {
	if len(writes) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: put instances: %w", err)
	}
	defer t.mu.Unlock()

	var ins, upd instanceColumns
	for i := range writes {
		if writes[i].PrevVersion < 0 {
			ins.add(&writes[i])
		} else {
			upd.add(&writes[i])
		}
	}
	b := &pgx.Batch{}
	if len(ins.ids) > 0 {
		b.Queue(sqlInsertInstances, ins.pms, ins.ids, ins.partitions, ins.states, ins.versions, ins.statuses, ins.phases,
			ins.lastPositions, ins.attempts, ins.nextAttempts, ins.lastErrors, ins.creates, ins.updates, ins.completions, ins.outcomes)
	}
	if n := len(upd.ids); n > 0 {
		// When PostgreSQL plans the update for the array it is given (a
		// prepared statement's first executions on a connection), it joins
		// a large batch by hashing a scan of the whole table: 27 ms for
		// 1,000 updates on 40,000 instances, against 5 ms through the
		// primary key (+4% sagas/s at 20,000 orders, 8 of 10
		// alternating pairs). The join is a nested loop for this
		// statement only.
		b.Queue(`SET LOCAL enable_hashjoin = off`)
		b.Queue(`SET LOCAL enable_mergejoin = off`)
		// The fence fails on the server, so that a COMMIT sent in the
		// same round trip is refused (migration 0008).
		b.Queue(sqlFencedUpdate, upd.pms, upd.ids, upd.prevs, upd.partitions, upd.states, upd.versions, upd.statuses, upd.phases,
			upd.lastPositions, upd.attempts, upd.nextAttempts, upd.lastErrors, upd.updates, upd.completions, upd.outcomes)
		b.Queue(`SET LOCAL enable_hashjoin TO DEFAULT`)
		b.Queue(`SET LOCAL enable_mergejoin TO DEFAULT`)
	}
	return t.exec(ctx, b, func(err error) error {
		if c, ok := uniqueConstraint(err); ok && c == consInstance {
			return fmt.Errorf("evokepg: put instances: insert: %w: %v", evokestore.ErrFenced, err)
		}
		if msg, ok := asserted(err, codeFenced); ok {
			return fmt.Errorf("evokepg: put instances: %s: %w", msg, evokestore.ErrFenced)
		}
		return fmt.Errorf("evokepg: put instances: %w", err)
	})
}

// InsertOutbox adds commands to the outbox, assigning Seq in slice order; a
// command whose ID is already in the outbox is ignored.
func (t *txn) InsertOutbox(ctx context.Context, cmds []evokestore.OutboxCommand) error {
	if len(cmds) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: insert outbox: %w", err)
	}
	defer t.mu.Unlock()
	n := len(cmds)
	now := time.Now().UnixNano()
	ids, pms, insts, types, aggTypes, aggIDs, corrs, causes := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	partitions, payloads, vals, ats := make([]int32, n), make([][]byte, n), make([][]byte, n), make([]int64, n)
	for i := range cmds {
		c := &cmds[i]
		at := backend.Nanos(c.CreatedAt)
		if at == 0 {
			at = now
		}
		ids[i], pms[i], insts[i], partitions[i], types[i], aggTypes[i], aggIDs[i], payloads[i], corrs[i], causes[i], vals[i], ats[i] =
			c.ID, c.ProcessManager, c.InstanceID, int32(c.Partition), c.Type, c.AggregateType, c.AggregateID, c.Payload, c.CorrelationID, c.CausationID, c.Values, at
	}
	b := &pgx.Batch{}
	b.Queue(sqlInsertOutbox, ids, pms, insts, partitions, types, aggTypes, aggIDs, payloads, corrs, causes, vals, ats)
	t.notify(b, backend.SetOutbox)
	if err := t.exec(ctx, b, wrapErr("insert outbox")); err != nil {
		return err
	}
	t.topics |= backend.SetOutbox
	return nil
}

// DeleteOutbox removes dispatched commands; unknown sequence numbers are
// ignored.
func (t *txn) DeleteOutbox(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: delete outbox: %w", err)
	}
	defer t.mu.Unlock()
	b := &pgx.Batch{}
	b.Queue(sqlDeleteOutbox, seqs)
	return t.exec(ctx, b, wrapErr("delete outbox"))
}

// PutCommandOutcomes records command outcomes; a command ID already recorded
// fails with ErrDuplicateCommand.
func (t *txn) PutCommandOutcomes(ctx context.Context, outcomes []evokestore.CommandOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: put command outcomes: %w", err)
	}
	defer t.mu.Unlock()
	n := len(outcomes)
	now := time.Now().UnixNano()
	ids, types, aggTypes, aggIDs, pms, insts, statuses, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	events, ats := make([]int32, n), make([]int64, n)
	for i := range outcomes {
		o := &outcomes[i]
		at := backend.Nanos(o.RecordedAt)
		if at == 0 {
			at = now
		}
		ids[i], types[i], aggTypes[i], aggIDs[i], pms[i], insts[i], statuses[i], errs[i], events[i], ats[i] =
			o.CommandID, o.Type, o.AggregateType, o.AggregateID, o.ProcessManager, o.InstanceID, o.Status, o.Error, int32(o.Events), at
	}
	mapErr := func(err error) error {
		if c, ok := uniqueConstraint(err); ok && c == consOutcome {
			return fmt.Errorf("evokepg: put command outcomes: %w: %v", evokestore.ErrDuplicateCommand, err)
		}
		return fmt.Errorf("evokepg: put command outcomes: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(sqlInsertOutcomes, ids, types, aggTypes, aggIDs, pms, insts, statuses, errs, events, ats)
	return t.exec(ctx, b, mapErr)
}

// InsertHistory appends history records (their ID is assigned by the store,
// increasing in slice order, and ignored here). A second "step" record of
// one instance for the same position fails, where it is the first of its
// row: consecutive steps of one instance (a saga's chained steps) share a
// row, keyed by the first, the others in its more column (migration 0009).
// What makes a step commit once is the instance's version fence
// (PutInstances, in the same transaction); the key is a second guard.
func (t *txn) InsertHistory(ctx context.Context, records []evokestore.HistoryRecord) error {
	if len(records) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: insert history: %w", err)
	}
	defer t.mu.Unlock()
	now := time.Now().UnixNano()
	ats := make([]int64, len(records))
	for i := range records {
		if ats[i] = backend.Nanos(records[i].RecordedAt); ats[i] == 0 {
			ats[i] = now
		}
	}
	runs := payload.StepRuns(records, historyRun) // each row's first record
	n := len(runs)
	pms, insts, kinds, evIDs, evTypes, befores, afters, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	versions, positions, rowAts, commands, more := make([]int64, n), make([]int64, n), make([]int64, n), make([][]byte, n), make([][]byte, n)
	nodes, tokens := make([]string, n), make([]int64, n)
	size := 0
	for i := range records {
		size += payload.HistoryRecordSize(&records[i]) + 21 // and its position
	}
	buf := make([]byte, 0, size) // the rows' more, one buffer for the call
	for r, lo := range runs {
		hi := len(records)
		if r+1 < n {
			hi = runs[r+1]
		}
		h := &records[lo]
		pms[r], insts[r], kinds[r], versions[r], positions[r], evIDs[r], evTypes[r], befores[r], afters[r], commands[r], errs[r], rowAts[r] =
			h.ProcessManager, h.InstanceID, h.Kind, h.Version, h.Position, h.EventID, h.EventType, h.PhaseBefore, h.PhaseAfter, h.Commands, h.Error, ats[lo]
		nodes[r], tokens[r] = h.Node, h.LeaseToken
		if hi > lo+1 {
			start := len(buf)
			buf = payload.AppendHistoryMore(buf, records[lo+1:hi], ats[lo+1:hi])
			more[r] = buf[start:len(buf):len(buf)]
		}
	}
	b := &pgx.Batch{}
	b.Queue(sqlInsertHistory, pms, insts, kinds, versions, positions, evIDs, evTypes, befores, afters, commands, errs, rowAts, nodes, tokens, more)
	return t.exec(ctx, b, wrapErr("insert history"))
}

// historyRun bounds the records of one history row: a record's ID is its
// row's identity times historyRun plus its place in the row.
const historyRun = 64

// wrapErr returns the error mapping of a write that has no error of its
// own to tell apart.
func wrapErr(op string) func(error) error {
	return func(err error) error { return fmt.Errorf("evokepg: %s: %w", op, err) }
}

// PutCheckpoint stores (inserts or overwrites) a subscription checkpoint.
func (t *txn) PutCheckpoint(ctx context.Context, cp evokestore.Checkpoint) error {
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: put checkpoint: %w", err)
	}
	defer t.mu.Unlock()
	b := &pgx.Batch{}
	b.Queue(sqlPutCheckpoint, cp.ProcessManager, cp.Partition, cp.Position, cp.CatchupUntil)
	return t.exec(ctx, b, wrapErr("put checkpoint"))
}

// PutCheckpoints stores several subscription checkpoints in one round trip.
func (t *txn) PutCheckpoints(ctx context.Context, cps []evokestore.Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: put checkpoints: %w", err)
	}
	defer t.mu.Unlock()
	// One statement for all (a router writes one per partition it owns
	// with every batch); a checkpoint named twice keeps its last value, as
	// it would written one by one.
	last := make(map[[2]any]int, len(cps))
	for i, cp := range cps {
		last[[2]any{cp.ProcessManager, cp.Partition}] = i
	}
	pms, parts, poss, untils := make([]string, 0, len(last)), make([]int32, 0, len(last)), make([]int64, 0, len(last)), make([]int64, 0, len(last))
	for i, cp := range cps {
		if last[[2]any{cp.ProcessManager, cp.Partition}] == i {
			pms, parts, poss, untils = append(pms, cp.ProcessManager), append(parts, int32(cp.Partition)), append(poss, cp.Position), append(untils, cp.CatchupUntil)
		}
	}
	b := &pgx.Batch{}
	b.Queue(sqlPutCheckpoints, pms, parts, poss, untils)
	return t.exec(ctx, b, wrapErr("put checkpoints"))
}

// Hold stores events held for an instance; holding an already held event
// again overwrites its error (the last one wins within held too).
func (t *txn) Hold(ctx context.Context, held []evokestore.HeldEvent) error {
	if len(held) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: hold: %w", err)
	}
	defer t.mu.Unlock()
	type key struct {
		pm, id string
		pos    int64
	}
	// One statement must not upsert a row twice: keep the last of each key.
	at := make(map[key]int, len(held))
	var pms, ids, errs []string
	var positions []int64
	for _, h := range held {
		k := key{h.ProcessManager, h.InstanceID, h.Position}
		if i, ok := at[k]; ok {
			errs[i] = h.Error
			continue
		}
		at[k] = len(pms)
		pms, ids, positions, errs = append(pms, h.ProcessManager), append(ids, h.InstanceID), append(positions, h.Position), append(errs, h.Error)
	}
	b := &pgx.Batch{}
	b.Queue(sqlHold, pms, ids, positions, errs)
	return t.exec(ctx, b, wrapErr("hold"))
}

// Release deletes held events of one instance.
func (t *txn) Release(ctx context.Context, processManager, instanceID string, positions []int64) error {
	if len(positions) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: release: %w", err)
	}
	defer t.mu.Unlock()
	b := &pgx.Batch{}
	b.Queue(sqlRelease, processManager, instanceID, positions)
	return t.exec(ctx, b, wrapErr("release"))
}

// ReplaceDeadlines replaces all deadlines of the listed instances with
// deadlines (whose ProcessManager is taken from the argument), in one round
// trip.
func (t *txn) ReplaceDeadlines(ctx context.Context, processManager string, instanceIDs []string, deadlines []evokestore.Deadline) error {
	if len(instanceIDs) == 0 {
		return nil
	}
	if err := t.lock(); err != nil {
		return fmt.Errorf("evokepg: replace deadlines: %w", err)
	}
	defer t.mu.Unlock()
	b := &pgx.Batch{}
	b.Queue(sqlDeleteDeadlinesOf, processManager, instanceIDs)
	if n := len(deadlines); n > 0 {
		ids, names, dues, versions := make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
		for i, d := range deadlines {
			ids[i], names[i], dues[i], versions[i] = d.InstanceID, d.Name, d.DueAt.UnixNano(), d.Version
		}
		b.Queue(sqlInsertDeadlines, processManager, ids, names, dues, versions)
	}
	t.notify(b, backend.SetDeadlines)
	if err := t.exec(ctx, b, wrapErr("replace deadlines")); err != nil {
		return err
	}
	t.topics |= backend.SetDeadlines
	return nil
}

// DeleteDeadline deletes one deadline if it is still stored with d's name and
// Version (DueAt is ignored); deleted reports whether it was.
func (t *txn) DeleteDeadline(ctx context.Context, d evokestore.Deadline) (bool, error) {
	if err := t.lock(); err != nil {
		return false, fmt.Errorf("evokepg: delete deadline: %w", err)
	}
	defer t.mu.Unlock()
	var n int64
	b := &pgx.Batch{}
	b.Queue(sqlDeleteDeadline, d.ProcessManager, d.InstanceID, d.Name, d.Version, t.topics&backend.SetDeadlines == 0,
		t.s.channel, string(evokestore.TopicDeadlines)).QueryRow(func(row pgx.Row) error {
		var discard bool
		return row.Scan(&n, &discard)
	})
	if err := t.send(ctx, b, true); err != nil {
		return false, fmt.Errorf("evokepg: delete deadline: %w", err)
	}
	if n > 0 {
		t.topics |= backend.SetDeadlines
	}
	return n > 0, nil
}

// DeleteDeadlines deletes each of ds as DeleteDeadline does, in one round
// trip (evokestore.DeadlinesDeleter), and reports for each whether it was
// deleted.
func (t *txn) DeleteDeadlines(ctx context.Context, ds []evokestore.Deadline) ([]bool, error) {
	deleted := make([]bool, len(ds))
	if len(ds) == 0 {
		return deleted, nil
	}
	if err := t.lock(); err != nil {
		return nil, fmt.Errorf("evokepg: delete deadlines: %w", err)
	}
	defer t.mu.Unlock()
	b := &pgx.Batch{}
	notify := t.topics&backend.SetDeadlines == 0
	for i, d := range ds {
		b.Queue(sqlDeleteDeadline, d.ProcessManager, d.InstanceID, d.Name, d.Version, notify,
			t.s.channel, string(evokestore.TopicDeadlines)).QueryRow(func(row pgx.Row) error {
			var n int64
			var discard bool
			err := row.Scan(&n, &discard)
			deleted[i] = n > 0
			return err
		})
	}
	if err := t.send(ctx, b, true); err != nil {
		return nil, fmt.Errorf("evokepg: delete deadlines: %w", err)
	}
	if slices.Contains(deleted, true) {
		t.topics |= backend.SetDeadlines
	}
	return deleted, nil
}

// Commit commits the transaction and then wakes this Store's subscribers of
// the topics it wrote to (other processes' through NOTIFY). It fails if the
// context given to Begin is done. A Tx that ran no statement commits
// nothing.
func (t *txn) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return fmt.Errorf("evokepg: commit: %w", t.closedErr())
	}
	t.end()
	if !t.begun && len(t.pend) == 0 {
		t.release()
		return nil
	}
	if err := t.ctx.Err(); err != nil {
		_ = t.rollback()
		return fmt.Errorf("evokepg: commit: %w", context.Cause(t.ctx))
	}
	// COMMIT goes with the writes held back, in one round trip: their
	// failures are the server's (the fences raise, migration 0008; exec
	// holds back no write checked by the client), and PostgreSQL refuses a
	// COMMIT after a failed statement. A transaction that failed answers
	// COMMIT with ROLLBACK.
	b := &pgx.Batch{}
	b.Queue("commit").Exec(func(tag pgconn.CommandTag) error {
		if tag.String() == "ROLLBACK" {
			return pgx.ErrTxCommitRollback
		}
		return nil
	})
	if err := t.send(t.ctx, b, false); err != nil {
		_ = t.rollback()
		return fmt.Errorf("evokepg: commit: %w", err)
	}
	t.release()
	t.s.wakeups.SignalSet(t.topics)
	return nil
}

// Rollback abandons the transaction. After Commit or Rollback it returns an
// error wrapping pgx.ErrTxClosed, so it is safe to defer.
func (t *txn) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return fmt.Errorf("evokepg: rollback: %w", t.closedErr())
	}
	t.end()
	if err := t.rollback(); err != nil {
		return fmt.Errorf("evokepg: rollback: %w", err)
	}
	return nil
}

const (
	sqlPurgeInstances = `WITH v AS (
	DELETE FROM instances WHERE (process_manager, id) IN (
		SELECT process_manager, id FROM instances WHERE completed_at > 0 AND completed_at < $1 ORDER BY completed_at LIMIT $2)
	RETURNING process_manager, id),
h AS (DELETE FROM held_events e USING v WHERE e.process_manager = v.process_manager AND e.instance_id = v.id),
d AS (DELETE FROM deadlines e USING v WHERE e.process_manager = v.process_manager AND e.instance_id = v.id),
r AS (DELETE FROM history e USING v WHERE e.process_manager = v.process_manager AND e.instance_id = v.id)
SELECT COUNT(*) FROM v`
	sqlPurgeOutcomes = `DELETE FROM command_outcomes WHERE command_id IN (
	SELECT command_id FROM command_outcomes WHERE recorded_at < $1 ORDER BY recorded_at LIMIT $2)`
)

// Purge deletes up to limit instances that completed or were cancelled
// before before, with their history, held events and deadlines, and up to
// limit command outcomes recorded before before (evokestore.Purger), in one
// round trip.
func (t *txn) Purge(ctx context.Context, before time.Time, limit int) (evokestore.PurgeResult, error) {
	var res evokestore.PurgeResult
	if limit <= 0 {
		return res, nil
	}
	if err := t.lock(); err != nil {
		return res, fmt.Errorf("evokepg: purge: %w", err)
	}
	defer t.mu.Unlock()
	b := &pgx.Batch{}
	b.Queue(sqlPurgeInstances, backend.Nanos(before), limit).QueryRow(func(row pgx.Row) error { return row.Scan(&res.Instances) })
	b.Queue(sqlPurgeOutcomes, backend.Nanos(before), limit).Exec(func(ct pgconn.CommandTag) error {
		res.CommandOutcomes = int(ct.RowsAffected())
		return nil
	})
	if err := t.send(ctx, b, true); err != nil {
		return evokestore.PurgeResult{}, fmt.Errorf("evokepg: purge: %w", err)
	}
	return res, nil
}
