package evokesqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
	"github.com/evoke-go/evoke/internal/payload"
)

// defaultLimit is the limit of queries whose Limit is 0.
const defaultLimit = 1000

// queries implements evokestore.Querier on the read pool (t == nil) or
// inside a Tx.
type queries struct {
	s *Store
	t *txn
}

func (q queries) stmt(ctx context.Context, id stmtID) *sql.Stmt {
	if q.t != nil {
		return q.t.stmt(ctx, id)
	}
	return q.s.rs[id]
}

// query runs a read statement and appends its rows to out with scan.
func query[T any](ctx context.Context, q queries, id stmtID, out []T, scan func(backend.Rows, []T) ([]T, error), args ...any) ([]T, error) {
	rows, err := q.stmt(ctx, id).QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scan(rows, out)
}

func limitOr(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

func jsonStrings(ss []string) string {
	b, _ := json.Marshal(ss) // cannot fail for strings
	return string(b)
}

func jsonInts(ns []int64) string {
	b := make([]byte, 0, 2+len(ns)*8)
	b = append(b, '[')
	for i, n := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(append(b, ']'))
}

// queryEvents runs a read statement of events (hint sizes the result).
func queryEvents(ctx context.Context, q queries, id stmtID, hint int, args ...any) ([]evokestore.Event, error) {
	return query(ctx, q, id, make([]evokestore.Event, 0, hint), backend.ScanEvents, args...)
}

// ReadLog returns events after q.After in position order, at most q.Limit
// (default 1000), restricted to q.Types if not empty.
func (q queries) ReadLog(ctx context.Context, lq evokestore.LogQuery) ([]evokestore.Event, error) {
	limit := limitOr(lq.Limit)
	hint := min(limit, 256)
	var (
		evs []evokestore.Event
		err error
	)
	if len(lq.Types) == 0 {
		evs, err = queryEvents(ctx, q, sReadLog, hint, lq.After, until(lq.Until), limit)
	} else {
		evs, err = queryEvents(ctx, q, sReadLogTypes, hint, lq.After, until(lq.Until), jsonStrings(lq.Types), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read log: %w", err)
	}
	return evs, nil
}

// until returns a log query's upper position bound (none: the largest).
func until(u int64) int64 {
	if u <= 0 {
		return math.MaxInt64
	}
	return u
}

// ReadStream returns one stream's events with version > afterVersion, in
// version order.
func (q queries) ReadStream(ctx context.Context, streamID string, afterVersion int64) ([]evokestore.Event, error) {
	evs, err := queryEvents(ctx, q, sReadStream, 8, streamID, afterVersion)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read stream %q: %w", streamID, err)
	}
	return evs, nil
}

// ReadStreams returns the events of several streams in one query, ordered by
// stream then version (evokestore.StreamsReader).
func (q queries) ReadStreams(ctx context.Context, streamIDs []string) ([]evokestore.Event, error) {
	evs, err := queryEvents(ctx, q, sReadStreams, len(streamIDs), jsonStrings(streamIDs))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read %d streams: %w", len(streamIDs), err)
	}
	return evs, nil
}

// ReadEvents returns the events with the given IDs, in log order
// (evokestore.EventsReader).
func (q queries) ReadEvents(ctx context.Context, ids []string) ([]evokestore.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	evs, err := queryEvents(ctx, q, sReadEvents, len(ids), jsonStrings(ids))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read %d events: %w", len(ids), err)
	}
	return evs, nil
}

// Head returns the highest committed position (0 for an empty log); inside
// a Tx, its own appends count.
func (q queries) Head(ctx context.Context) (int64, error) {
	var h int64
	if err := q.stmt(ctx, sHead).QueryRowContext(ctx).Scan(&h); err != nil {
		return 0, fmt.Errorf("evokesqlite: head: %w", err)
	}
	return h, nil
}

// queryInstances runs a read statement of instances (hint sizes the
// result).
func queryInstances(ctx context.Context, q queries, id stmtID, hint int, args ...any) ([]evokestore.Instance, error) {
	return query(ctx, q, id, make([]evokestore.Instance, 0, hint), backend.ScanInstances, args...)
}

// Instances loads the named instances of one process manager, ordered by
// ID; missing ones are absent. Any number of IDs is passed as one JSON array
// parameter, so there is no limit on len(ids).
func (q queries) Instances(ctx context.Context, processManager string, ids []string) ([]evokestore.Instance, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ins, err := queryInstances(ctx, q, sInstances, len(ids), processManager, jsonStrings(ids))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: load instances: %w", err)
	}
	return ins, nil
}

// ListInstances lists instances ordered by (process manager, id), after
// (AfterProcessManager, AfterID), at most Limit (default 1000).
func (q queries) ListInstances(ctx context.Context, iq evokestore.InstanceQuery) ([]evokestore.Instance, error) {
	limit := limitOr(iq.Limit)
	id := sListInstances
	if iq.Status != "" && iq.Status != evokestore.StatusRunning {
		id = sListInstancesStopped
	}
	ins, err := queryInstances(ctx, q, id, min(limit, 64), iq.ProcessManager, string(iq.Status), iq.AfterProcessManager, iq.AfterID, limit,
		string(iq.Outcome), iq.IDPrefix, backend.Nanos(iq.CreatedBefore), backend.Nanos(iq.CreatedAfter))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: list instances: %w", err)
	}
	return ins, nil
}

// Checkpoint returns a subscription checkpoint; ok is false if none.
func (q queries) Checkpoint(ctx context.Context, processManager string, partition int) (evokestore.Checkpoint, bool, error) {
	cp := evokestore.Checkpoint{ProcessManager: processManager, Partition: partition}
	err := q.stmt(ctx, sCheckpoint).QueryRowContext(ctx, processManager, partition).Scan(&cp.Position, &cp.CatchupUntil)
	if err == sql.ErrNoRows {
		return evokestore.Checkpoint{}, false, nil
	}
	if err != nil {
		return evokestore.Checkpoint{}, false, fmt.Errorf("evokesqlite: checkpoint: %w", err)
	}
	return cp, true, nil
}

// Outbox returns pending commands after oq.After in sequence order, at most
// oq.Limit (default 1000).
func (q queries) Outbox(ctx context.Context, oq evokestore.OutboxQuery) ([]evokestore.OutboxCommand, error) {
	limit := limitOr(oq.Limit)
	out := make([]evokestore.OutboxCommand, 0, min(limit, 64))
	var err error
	switch {
	case oq.Instances != nil && oq.Partitions != nil:
		return nil, errors.New("evokesqlite: outbox: Partitions and Instances do not combine")
	case oq.Instances != nil:
		if len(oq.Instances) == 0 {
			return nil, nil
		}
		out, err = query(ctx, q, sOutboxInstances, out, backend.ScanOutbox, oq.ProcessManager, jsonStrings(oq.Instances), oq.After, limit)
	case oq.Partitions != nil:
		out, err = query(ctx, q, sOutboxParts, out, backend.ScanOutbox, oq.After, jsonInts(intsToInt64(oq.Partitions)), limit)
	default:
		out, err = query(ctx, q, sOutbox, out, backend.ScanOutbox, oq.After, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: outbox: %w", err)
	}
	return out, nil
}

// CommandOutcomes returns the recorded outcomes of the given command IDs,
// ordered by command ID.
func (q queries) CommandOutcomes(ctx context.Context, ids []string) ([]evokestore.CommandOutcome, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.stmt(ctx, sCommandOutcomes).QueryContext(ctx, jsonStrings(ids))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: command outcomes: %w", err)
	}
	defer rows.Close()
	out := make([]evokestore.CommandOutcome, 0, len(ids))
	for rows.Next() {
		var o evokestore.CommandOutcome
		var at int64
		var record []byte
		if err := rows.Scan(&o.CommandID, &at, &record); err != nil {
			return nil, fmt.Errorf("evokesqlite: command outcomes: %w", err)
		}
		if err := payload.ParseOutcomeRecord(record, &o); err != nil {
			return nil, fmt.Errorf("evokesqlite: command outcome %s: %w", o.CommandID, err)
		}
		o.RecordedAt = backend.FromNanos(at)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokesqlite: command outcomes: %w", err)
	}
	return out, nil
}

// Held returns the events held for one instance, in position order.
func (q queries) Held(ctx context.Context, processManager, instanceID string) ([]evokestore.HeldEvent, error) {
	out, err := query(ctx, q, sHeld, nil, backend.ScanHeld, processManager, instanceID)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: held: %w", err)
	}
	return out, nil
}

// History returns one instance's history in insertion order.
func (q queries) History(ctx context.Context, processManager, instanceID string) ([]evokestore.HistoryRecord, error) {
	rows, err := q.stmt(ctx, sHistory).QueryContext(ctx, processManager, instanceID)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: history: %w", err)
	}
	defer rows.Close()
	var out []evokestore.HistoryRecord
	for rows.Next() {
		var h evokestore.HistoryRecord
		var record []byte
		if err := rows.Scan(&h.ID, &h.ProcessManager, &h.InstanceID, &h.Position, &record); err != nil {
			return nil, fmt.Errorf("evokesqlite: history: %w", err)
		}
		if out, err = payload.ParseHistoryRow(out, h, record); err != nil {
			return nil, fmt.Errorf("evokesqlite: history of %s %s, record %d: %w", processManager, instanceID, h.ID, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokesqlite: history: %w", err)
	}
	return out, nil
}

// DueDeadlines returns deadlines due at or before now, earliest first, at
// most limit (default 1000).
func (q queries) DueDeadlines(ctx context.Context, now time.Time, limit int) ([]evokestore.Deadline, error) {
	out, err := query(ctx, q, sDueDeadlines, nil, backend.ScanDeadlines, now.UnixNano(), limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: due deadlines: %w", err)
	}
	return out, nil
}

// InstanceDeadlines returns the deadlines of some instances of one process
// manager, by instance ID and due time (evokestore.DeadlinesReader).
func (q queries) InstanceDeadlines(ctx context.Context, pm string, ids []string) ([]evokestore.Deadline, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := query(ctx, q, sInstanceDeadlines, nil, backend.ScanDeadlines, pm, jsonStrings(ids))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: instance deadlines: %w", err)
	}
	return out, nil
}

// NextDeadline returns the earliest deadline; ok is false if none.
func (q queries) NextDeadline(ctx context.Context) (evokestore.Deadline, bool, error) {
	d, err := backend.ScanDeadline(q.stmt(ctx, sNextDeadline).QueryRowContext(ctx))
	if err == sql.ErrNoRows {
		return evokestore.Deadline{}, false, nil
	}
	if err != nil {
		return evokestore.Deadline{}, false, fmt.Errorf("evokesqlite: next deadline: %w", err)
	}
	return d, true, nil
}

// Stats counts what the store holds.
func (q queries) Stats(ctx context.Context) (evokestore.Stats, error) {
	var st evokestore.Stats
	wrap := func(err error) error { return fmt.Errorf("evokesqlite: stats: %w", err) }
	if err := q.stmt(ctx, sStatsEvents).QueryRowContext(ctx).Scan(&st.Events, &st.Head); err != nil {
		return st, wrap(err)
	}
	if err := q.stmt(ctx, sStatsOutbox).QueryRowContext(ctx).Scan(&st.Outbox); err != nil {
		return st, wrap(err)
	}
	if err := q.stmt(ctx, sStatsCommands).QueryRowContext(ctx).Scan(&st.Commands, &st.Rejected); err != nil {
		return st, wrap(err)
	}
	rows, err := q.stmt(ctx, sStatsInstances).QueryContext(ctx)
	if err != nil {
		return st, wrap(err)
	}
	defer rows.Close()
	st.Instances = make(map[string]map[evokestore.InstanceStatus]int64)
	set := func(pm string, status evokestore.InstanceStatus, n int64) {
		m := st.Instances[pm]
		if m == nil {
			m = make(map[evokestore.InstanceStatus]int64)
			st.Instances[pm] = m
		}
		m[status] = n
	}
	running := map[string]int64{} // all of a process manager's, less those not running
	for rows.Next() {
		var pm, status string
		var n int64
		if err := rows.Scan(&pm, &status, &n); err != nil {
			return st, wrap(err)
		}
		if status == "" {
			running[pm] += n
			continue
		}
		running[pm] -= n
		set(pm, evokestore.InstanceStatus(status), n)
	}
	if err := rows.Err(); err != nil {
		return st, wrap(err)
	}
	for pm, n := range running {
		if n > 0 {
			set(pm, evokestore.StatusRunning, n)
		}
	}
	return st, nil
}

// Tally counts executed commands and how done instances ended
// (evokestore.TallyReader).
func (q queries) Tally(ctx context.Context, since *evokestore.Tally) (evokestore.Tally, error) {
	t := evokestore.Tally{Outcomes: map[string]map[evokestore.InstanceOutcome]int64{}}
	wrap := func(err error) error { return fmt.Errorf("evokesqlite: tally: %w", err) }
	var prev evokestore.Tally
	if since != nil {
		prev = *since
	}
	var recorded, recordedRejected int64
	if err := q.stmt(ctx, sTallyCommands).QueryRowContext(ctx, prev.Until).Scan(&recorded, &recordedRejected, &t.Until, &t.ByEvents, &t.RejectedByEvents); err != nil {
		return t, wrap(err)
	}
	if t.Until < prev.Until { // a log shorter than since's: not the same
		return q.Tally(ctx, nil)
	}
	t.ByEvents, t.RejectedByEvents = t.ByEvents+prev.ByEvents, t.RejectedByEvents+prev.RejectedByEvents
	t.Executed, t.Rejected = recorded+t.ByEvents, recordedRejected+t.RejectedByEvents
	rows, err := q.stmt(ctx, sTallyOutcomes).QueryContext(ctx)
	if err != nil {
		return t, wrap(err)
	}
	defer rows.Close()
	if err := backend.ScanOutcomeCounts(rows, t.Outcomes); err != nil {
		return t, wrap(err)
	}
	return t, nil
}

// Ended counts the instances that ended in each interval, per process
// manager (evokestore.TallyReader).
func (q queries) Ended(ctx context.Context, since time.Time, every time.Duration, n int) (map[string][]int64, error) {
	out := map[string][]int64{}
	if every <= 0 || n <= 0 {
		return out, nil
	}
	rows, err := q.stmt(ctx, sEnded).QueryContext(ctx, since.UnixNano(), int64(every), n)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: ended: %w", err)
	}
	defer rows.Close()
	if err := backend.ScanEnded(rows, out, n); err != nil {
		return nil, fmt.Errorf("evokesqlite: ended: %w", err)
	}
	return out, nil
}

func intsToInt64(ns []int) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = int64(n)
	}
	return out
}
