package evokesqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
	"github.com/evoke-go/evoke/internal/payload"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// txn is a write transaction of a Store. It is not safe for concurrent use.
// Its reads see its own writes; its writes become visible to others at
// Commit, and nothing of them at all if it is rolled back, abandoned with its
// context cancelled, or the process dies first.
type txn struct {
	queries

	s      *Store
	tx     *sql.Tx
	topics backend.TopicSet
	stmts  [numStmts]*sql.Stmt
	bulk   [numBulk][len(bulkSizes)]*sql.Stmt
	args   []any
}

var _ evokestore.Tx = (*txn)(nil)

func (t *txn) stmt(ctx context.Context, id stmtID) *sql.Stmt {
	st := t.stmts[id]
	if st == nil {
		st = t.tx.StmtContext(ctx, t.s.ws[id])
		t.stmts[id] = st
	}
	return st
}

func (t *txn) bulkStmt(ctx context.Context, kind, size int) *sql.Stmt {
	st := t.bulk[kind][size]
	if st == nil {
		st = t.tx.StmtContext(ctx, t.s.bulk[kind][size])
		t.bulk[kind][size] = st
	}
	return st
}

// insertBulk inserts n rows with multi-row INSERTs of kind; fill appends the
// values of row i to args. after, if not nil, is called after each statement
// with the index of its first row, its row count and its result.
func (t *txn) insertBulk(ctx context.Context, kind, n int, fill func(args []any, i int) []any, after func(first, rows int, res sql.Result) error) error {
	i := 0
	for si, size := range bulkSizes {
		for n-i >= size {
			args := t.args[:0]
			for j := i; j < i+size; j++ {
				args = fill(args, j)
			}
			t.args = args
			res, err := t.bulkStmt(ctx, kind, si).ExecContext(ctx, args...)
			clear(args)
			if err != nil {
				return err
			}
			if after != nil {
				if err := after(i, size, res); err != nil {
					return err
				}
			}
			i += size
		}
	}
	return nil
}

// uniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure, and returns SQLite's message naming the columns.
func uniqueViolation(err error) (string, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return se.Error(), true
	}
	return "", false
}

// AppendEvents appends events in slice order at the stream versions they
// name and returns them with their positions and RecordedAt (the NewEvent's,
// or now if zero, truncated to the stored UTC nanoseconds).
func (t *txn) AppendEvents(ctx context.Context, events []evokestore.NewEvent) ([]evokestore.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := evokestore.CheckNewEvents(events); err != nil {
		return nil, fmt.Errorf("evokesqlite: append events: %w", err)
	}
	now := time.Now().UnixNano()
	out := make([]evokestore.Event, len(events))
	fill := func(args []any, i int) []any {
		e := &events[i]
		at := backend.Nanos(e.RecordedAt)
		if at == 0 {
			at = now
		}
		out[i] = evokestore.Event{
			ID: e.ID, StreamID: e.StreamID, StreamVersion: e.StreamVersion, Type: e.Type, Data: e.Data,
			CorrelationID: e.CorrelationID, CausationID: e.CausationID, Values: e.Values, RecordedAt: backend.FromNanos(at),
		}
		return append(args, e.ID, e.StreamID, e.StreamVersion, e.Type, nullBytes(e.Data), e.CorrelationID, e.CausationID, nullBytes(e.Values), at)
	}
	after := func(first, rows int, res sql.Result) error {
		// One writer holds the database: the rows of one statement get
		// consecutive positions ending at the last inserted rowid.
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for j := range rows {
			out[first+j].Position = last - int64(rows-1-j)
		}
		return nil
	}
	if err := t.insertBulk(ctx, bEvents, len(events), fill, after); err != nil {
		if msg, ok := uniqueViolation(err); ok {
			if strings.Contains(msg, "events.id") {
				return nil, fmt.Errorf("evokesqlite: append events: %w: %v", evokestore.ErrDuplicateEvent, err)
			}
			return nil, fmt.Errorf("evokesqlite: append events: %w: %v", evokestore.ErrVersionConflict, err)
		}
		return nil, fmt.Errorf("evokesqlite: append events: %w", err)
	}
	t.topics |= backend.SetEvents
	return out, nil
}

// nullBytes stores a nil slice as NULL (and so reads it back as nil).
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func appendInstance(args []any, in *evokestore.Instance) []any {
	return append(args, in.ProcessManager, in.ID, in.Partition, nullBytes(in.State), in.Version, string(in.Status), in.Phase,
		in.LastPosition, in.Attempts, backend.Nanos(in.NextAttemptAt), in.LastError, backend.Nanos(in.CreatedAt), backend.Nanos(in.UpdatedAt), backend.Nanos(in.CompletedAt), string(in.Outcome))
}

// PutInstances inserts (PrevVersion -1) or updates instances, fenced: an
// update whose stored version is not PrevVersion (or whose instance does not
// exist), or an insert of an existing instance, fails with ErrFenced. An
// update keeps the stored CreatedAt.
func (t *txn) PutInstances(ctx context.Context, writes []evokestore.InstanceWrite) error {
	var inserts, updates []int
	for i := range writes {
		if writes[i].PrevVersion < 0 {
			inserts = append(inserts, i)
		} else {
			updates = append(updates, i)
		}
	}
	if len(updates) > 0 {
		// An upsert (see bUpdateInstances): the expected version travels
		// in created_at, negated.
		fill := func(args []any, i int) []any {
			w := &writes[updates[i]]
			return append(args, w.ProcessManager, w.ID, w.Partition, nullBytes(w.State), w.Version, string(w.Status), w.Phase,
				w.LastPosition, w.Attempts, backend.Nanos(w.NextAttemptAt), w.LastError, backend.Nanos(w.UpdatedAt), backend.Nanos(w.CompletedAt), string(w.Outcome), -(w.PrevVersion + 1))
		}
		fenced := false
		check := func(first, rows int, res sql.Result) error {
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			fenced = fenced || int(n) != rows
			return nil
		}
		if err := t.insertBulk(ctx, bUpdateInstances, len(updates), fill, check); err != nil {
			return fmt.Errorf("evokesqlite: put instances: update: %w", err)
		}
		var unborn bool
		if err := t.stmt(ctx, sUnborn).QueryRowContext(ctx).Scan(&unborn); err != nil {
			return fmt.Errorf("evokesqlite: put instances: update: %w", err)
		}
		if unborn {
			// Updates of missing instances, inserted by the upsert: take
			// them back, so that the Tx holds nothing of this call's
			// fenced rows even if the caller went on to commit it.
			if _, err := t.stmt(ctx, sDeleteUnborn).ExecContext(ctx); err != nil {
				return fmt.Errorf("evokesqlite: put instances: update: %w", err)
			}
		}
		if fenced || unborn {
			return t.fenced(ctx, writes, updates)
		}
	}
	if len(inserts) == 0 {
		return nil
	}
	for _, i := range inserts {
		// A negative created_at marks an update of a missing instance
		// (bUpdateInstances): no stored instance may have one.
		if w := &writes[i]; backend.Nanos(w.CreatedAt) < 0 {
			return fmt.Errorf("evokesqlite: put instances: %s/%s: created at %v, before 1970", w.ProcessManager, w.ID, w.CreatedAt)
		}
	}
	fill := func(args []any, i int) []any { return appendInstance(args, &writes[inserts[i]].Instance) }
	if err := t.insertBulk(ctx, bInstances, len(inserts), fill, nil); err != nil {
		if _, ok := uniqueViolation(err); ok {
			return fmt.Errorf("evokesqlite: put instances: insert: %w: %v", evokestore.ErrFenced, err)
		}
		return fmt.Errorf("evokesqlite: put instances: insert: %w", err)
	}
	return nil
}

// fenced names the first of the writes at idx whose stored version is not
// the one it expected, for a fenced bulk update. Writes of the same call
// that were applied (stored at their new version) are passed over.
func (t *txn) fenced(ctx context.Context, writes []evokestore.InstanceWrite, idx []int) error {
	for _, i := range idx {
		w := &writes[i]
		insts, err := t.Instances(ctx, w.ProcessManager, []string{w.ID})
		if err != nil {
			return fmt.Errorf("evokesqlite: put instances: %w (and reading the fenced instance: %v)", evokestore.ErrFenced, err)
		}
		if len(insts) == 0 {
			return fmt.Errorf("evokesqlite: put instances: update %s/%s at version %d: no such instance: %w", w.ProcessManager, w.ID, w.PrevVersion, evokestore.ErrFenced)
		}
		if v := insts[0].Version; v != w.PrevVersion && v != w.Version {
			return fmt.Errorf("evokesqlite: put instances: update %s/%s at version %d, stored %d: %w", w.ProcessManager, w.ID, w.PrevVersion, insts[0].Version, evokestore.ErrFenced)
		}
	}
	return fmt.Errorf("evokesqlite: put instances: %w", evokestore.ErrFenced)
}

// InsertOutbox adds commands to the outbox, assigning Seq; a command whose ID
// is already in the outbox is ignored.
func (t *txn) InsertOutbox(ctx context.Context, cmds []evokestore.OutboxCommand) error {
	if len(cmds) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	fill := func(args []any, i int) []any {
		c := &cmds[i]
		at := backend.Nanos(c.CreatedAt)
		if at == 0 {
			at = now
		}
		return append(args, c.ID, c.ProcessManager, c.InstanceID, c.Partition, c.Type, c.AggregateType, c.AggregateID,
			nullBytes(c.Payload), c.CorrelationID, c.CausationID, nullBytes(c.Values), at)
	}
	if err := t.insertBulk(ctx, bOutbox, len(cmds), fill, nil); err != nil {
		return fmt.Errorf("evokesqlite: insert outbox: %w", err)
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
	if _, err := t.stmt(ctx, sDeleteOutbox).ExecContext(ctx, jsonInts(seqs)); err != nil {
		return fmt.Errorf("evokesqlite: delete outbox: %w", err)
	}
	return nil
}

// PutCommandOutcomes records command outcomes; a command ID already recorded
// fails with ErrDuplicateCommand.
func (t *txn) PutCommandOutcomes(ctx context.Context, outcomes []evokestore.CommandOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	size := 0
	for i := range outcomes {
		size += payload.OutcomeRecordSize(&outcomes[i])
	}
	buf := make([]byte, 0, size)
	fill := func(args []any, i int) []any {
		o := &outcomes[i]
		at := backend.Nanos(o.RecordedAt)
		if at == 0 {
			at = now
		}
		start := len(buf)
		buf = payload.AppendOutcomeRecord(buf, o)
		return append(args, o.CommandID, at, o.Status == evokestore.OutcomeRejected, buf[start:len(buf):len(buf)])
	}
	if err := t.insertBulk(ctx, bOutcomes, len(outcomes), fill, nil); err != nil {
		if _, ok := uniqueViolation(err); ok {
			return fmt.Errorf("evokesqlite: put command outcomes: %w: %v", evokestore.ErrDuplicateCommand, err)
		}
		return fmt.Errorf("evokesqlite: put command outcomes: %w", err)
	}
	return nil
}

// InsertHistory appends history records (their ID is assigned by the store
// and ignored here). A second "step" record of one instance for the same
// position fails, where it is the first of its row: consecutive steps of
// one instance (a saga's chained steps) share a row, keyed by the first
// (ParseHistoryRow). What makes a step commit once is the instance's
// version fence (PutInstances); the key is a second guard.
func (t *txn) InsertHistory(ctx context.Context, records []evokestore.HistoryRecord) error {
	if len(records) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	runs := payload.StepRuns(records, 0) // each row's first record
	// The records' payloads, one buffer for the call (the statements
	// bind slices of it).
	size := 0
	for i := range records {
		size += payload.HistoryRecordSize(&records[i]) + 42 // and a run's position and ID
	}
	buf := make([]byte, 0, size)
	ats, ids := make([]int64, len(records)), make([]int64, len(records))
	fill := func(args []any, r int) []any {
		lo, hi := runs[r], len(records)
		if r+1 < len(runs) {
			hi = runs[r+1]
		}
		for i := lo; i < hi; i++ {
			ats[i] = backend.Nanos(records[i].RecordedAt)
			if ats[i] == 0 {
				ats[i] = now
			}
			ids[i] = t.s.historyID(now)
		}
		h := &records[lo]
		// The key (migrations 0009, 0010): a step's is its position
		// alone, so that an instance steps once per event.
		stepKey := ids[lo]
		if h.Kind == evokestore.KindStep {
			stepKey = 0
		}
		start := len(buf)
		buf = payload.AppendHistoryRun(buf, records[lo:hi], ats[lo:hi], ids[lo:hi])
		return append(args, h.ProcessManager, h.InstanceID, h.Position, stepKey, ids[lo], buf[start:len(buf):len(buf)])
	}
	if err := t.insertBulk(ctx, bHistory, len(runs), fill, nil); err != nil {
		return fmt.Errorf("evokesqlite: insert history: %w", err)
	}
	return nil
}

// PutCheckpoint stores (inserts or overwrites) a subscription checkpoint.
func (t *txn) PutCheckpoint(ctx context.Context, cp evokestore.Checkpoint) error {
	if _, err := t.stmt(ctx, sPutCheckpoint).ExecContext(ctx, cp.ProcessManager, cp.Partition, cp.Position, cp.CatchupUntil); err != nil {
		return fmt.Errorf("evokesqlite: put checkpoint: %w", err)
	}
	return nil
}

// PutCheckpoints stores several subscription checkpoints.
func (t *txn) PutCheckpoints(ctx context.Context, cps []evokestore.Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	// Multi-row upserts: a row names a checkpoint an earlier row of the
	// statement wrote, it overwrites it, as one by one.
	fill := func(args []any, i int) []any {
		cp := &cps[i]
		return append(args, cp.ProcessManager, cp.Partition, cp.Position, cp.CatchupUntil)
	}
	if err := t.insertBulk(ctx, bCheckpoints, len(cps), fill, nil); err != nil {
		return fmt.Errorf("evokesqlite: put checkpoints: %w", err)
	}
	return nil
}

// Hold stores events held for an instance; holding an already held event
// again overwrites its error.
func (t *txn) Hold(ctx context.Context, held []evokestore.HeldEvent) error {
	if len(held) == 0 {
		return nil
	}
	fill := func(args []any, i int) []any {
		h := &held[i]
		return append(args, h.ProcessManager, h.InstanceID, h.Position, h.Error)
	}
	if err := t.insertBulk(ctx, bHold, len(held), fill, nil); err != nil {
		return fmt.Errorf("evokesqlite: hold: %w", err)
	}
	return nil
}

// Release deletes held events of one instance.
func (t *txn) Release(ctx context.Context, processManager, instanceID string, positions []int64) error {
	if len(positions) == 0 {
		return nil
	}
	if _, err := t.stmt(ctx, sRelease).ExecContext(ctx, processManager, instanceID, jsonInts(positions)); err != nil {
		return fmt.Errorf("evokesqlite: release: %w", err)
	}
	return nil
}

// ReplaceDeadlines replaces all deadlines of the listed instances with
// deadlines (whose ProcessManager is taken from the argument).
func (t *txn) ReplaceDeadlines(ctx context.Context, processManager string, instanceIDs []string, deadlines []evokestore.Deadline) error {
	if len(instanceIDs) == 0 {
		return nil
	}
	if _, err := t.stmt(ctx, sDeleteDeadlinesOf).ExecContext(ctx, processManager, jsonStrings(instanceIDs)); err != nil {
		return fmt.Errorf("evokesqlite: replace deadlines: %w", err)
	}
	fill := func(args []any, i int) []any {
		d := &deadlines[i]
		return append(args, processManager, d.InstanceID, d.Name, d.DueAt.UnixNano(), d.Version)
	}
	if err := t.insertBulk(ctx, bDeadlines, len(deadlines), fill, nil); err != nil {
		return fmt.Errorf("evokesqlite: replace deadlines: %w", err)
	}
	t.topics |= backend.SetDeadlines
	return nil
}

// DeleteDeadline deletes one deadline if it is still stored with d's name and
// Version (DueAt is ignored); deleted reports whether it was.
func (t *txn) DeleteDeadline(ctx context.Context, d evokestore.Deadline) (bool, error) {
	res, err := t.stmt(ctx, sDeleteDeadline).ExecContext(ctx, d.ProcessManager, d.InstanceID, d.Name, d.Version)
	if err != nil {
		return false, fmt.Errorf("evokesqlite: delete deadline: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("evokesqlite: delete deadline: %w", err)
	}
	if n > 0 {
		t.topics |= backend.SetDeadlines
	}
	return n > 0, nil
}

// deleteInstance removes an instance with its held events, deadlines and
// history (the retention's purge).
func (t *txn) deleteInstance(ctx context.Context, processManager, instanceID string) error {
	for _, id := range [...]stmtID{sDeleteInstance, sDeleteHeldAll, sDeleteDeadlines, sDeleteHistory} {
		if _, err := t.stmt(ctx, id).ExecContext(ctx, processManager, instanceID); err != nil {
			return fmt.Errorf("evokesqlite: delete instance %s/%s: %w", processManager, instanceID, err)
		}
	}
	t.topics |= backend.SetDeadlines
	return nil
}

// Commit commits the transaction and then wakes the subscribers of the
// topics it wrote to.
func (t *txn) Commit() error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("evokesqlite: commit: %w", err)
	}
	t.s.wakeups.SignalSet(t.topics)
	select {
	case t.s.ckptKick <- struct{}{}:
	default:
	}
	return nil
}

// Rollback abandons the transaction. After Commit or Rollback it returns an
// error wrapping sql.ErrTxDone, so it is safe to defer.
func (t *txn) Rollback() error {
	if err := t.tx.Rollback(); err != nil {
		return fmt.Errorf("evokesqlite: rollback: %w", err)
	}
	return nil
}
