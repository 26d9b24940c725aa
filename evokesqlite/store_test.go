package evokesqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestoretest"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t testing.TB, path string, opts *evokesqlite.Options) *evokesqlite.Store {
	t.Helper()
	s, err := evokesqlite.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// sqliteExtensions are the optional extensions the SQLite store implements.
var sqliteExtensions = []evokestoretest.Extension{evokestoretest.StreamsReader, evokestoretest.EventsReader,
	evokestoretest.DeadlinesReader, evokestoretest.Purger, evokestoretest.TallyReader}

func TestConformance(t *testing.T) {
	evokestoretest.Run(t, func(t *testing.T) evokestore.Store {
		return open(t, filepath.Join(t.TempDir(), "evoke.db"), nil)
	}, sqliteExtensions...)
}

func TestConformanceSynchronousNormal(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	evokestoretest.Run(t, func(t *testing.T) evokestore.Store {
		return open(t, "sqlite:"+filepath.Join(t.TempDir(), "evoke.db"), &evokesqlite.Options{Synchronous: "normal", ReadConns: 1})
	}, sqliteExtensions...)
}

func TestBackend(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "evoke.db"), nil)
	if got := s.Backend(); got != "sqlite" {
		t.Fatalf("Backend() = %q", got)
	}
}

func appendOne(t *testing.T, s evokestore.Store, id, stream string, version int64) evokestore.Event {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: id, StreamID: stream, StreamVersion: version, Type: "T", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return evs[0]
}

func migrationRows(t *testing.T, path string) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version FROM evoke_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestReopenKeepsDataAndMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub.db")
	ctx := context.Background()
	s, err := evokesqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	e1 := appendOne(t, s, "e1", "s", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	var all []int64 // every migration, applied once each
	for v := int64(1); v <= evokesqlite.SchemaVersion(); v++ {
		all = append(all, v)
	}
	want := fmt.Sprint(all)
	if got := fmt.Sprint(migrationRows(t, path)); got != want {
		t.Fatalf("migrations after first open = %s, want %s", got, want)
	}

	for i := range 2 {
		s, err = evokesqlite.Open(ctx, path, nil)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		evs, err := s.ReadLog(ctx, evokestore.LogQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1+i || evs[0].ID != "e1" || evs[0].Position != e1.Position || !evs[0].RecordedAt.Equal(e1.RecordedAt) {
			t.Fatalf("after reopen %d log = %+v", i, evs)
		}
		e := appendOne(t, s, fmt.Sprintf("r%d", i), "s", int64(i+2))
		if e.Position <= evs[len(evs)-1].Position {
			t.Fatalf("position %d after reopen not beyond %d", e.Position, evs[len(evs)-1].Position)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(migrationRows(t, path)); got != want {
			t.Fatalf("migrations after reopen %d = %s, want %s", i, got, want)
		}
	}
}

func TestPositionsNeverReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evoke.db")
	s := open(t, path, nil)
	ctx := context.Background()
	e1 := appendOne(t, s, "e1", "s", 1)
	// A rolled back append takes positions that are never handed out again
	// or, at least, never handed out below the head.
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "x", StreamID: "s", StreamVersion: 2, Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	e2 := appendOne(t, s, "e2", "s", 2)
	if e2.Position <= e1.Position {
		t.Fatalf("position %d not after %d", e2.Position, e1.Position)
	}
}

func TestSqlitePrefix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prefixed.db")
	s := open(t, "sqlite:"+path, nil)
	appendOne(t, s, "e1", "s", 1)
	if got := s.Path(); got != path {
		t.Fatalf("Path() = %q, want %q", got, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("sqlite: prefix did not open %s: %v", path, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sqlite:prefixed.db")); err == nil {
		t.Fatal("prefix kept in the file name")
	}
	s2 := open(t, "sqlite://"+path, nil)
	evs, err := s2.ReadLog(context.Background(), evokestore.LogQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("sqlite:// open sees %d events, %v", len(evs), err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evoke.db")
	s, err := evokesqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO evoke_migrations (version, applied_at) VALUES (?, 0)`, evokesqlite.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = evokesqlite.Open(context.Background(), path, nil)
	if !errors.Is(err, evokesqlite.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := evokesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), &evokesqlite.Options{Synchronous: "bogus; DROP"}); err == nil {
		t.Fatal("invalid Synchronous accepted")
	}
	if _, err := evokesqlite.Open(context.Background(), "sqlite:", nil); err == nil {
		t.Fatal("empty path accepted")
	}
	s := open(t, filepath.Join(t.TempDir(), "x.db"), &evokesqlite.Options{Synchronous: "NORMAL"})
	appendOne(t, s, "e1", "s", 1)
}

func TestCloseIdempotent(t *testing.T) {
	s, err := evokesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// The write-ahead log is copied into the database file in the background
// once it passes a few MiB, long before the writer's own backstop (64 MiB).
func TestBackgroundCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evoke.db")
	s := open(t, path, nil)
	ctx := context.Background()
	data := []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
	for i := range 160 { // about 10 MiB of log
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: fmt.Sprint("e", i), StreamID: "s", StreamVersion: int64(i + 1), Type: "Big", Data: data}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= 4<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes after 10 MiB of commits: the log was not checkpointed", fi.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Fenced updates are upserts (see bUpdateInstances): an update of a missing
// instance fails as fenced and leaves no row behind, even in a Tx its caller
// commits anyway; one fenced row among many (past a 128-row statement)
// fails the call; an instance cannot be stored as created before 1970,
// whose negative created_at would read as such an update.
func TestFencedUpsert(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "u.db"), nil)
	at := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	inst := func(id string, v int64) evokestore.Instance {
		return evokestore.Instance{ProcessManager: "pm", ID: id, State: []byte(`{}`), Version: v, Status: evokestore.StatusRunning, CreatedAt: at, UpdatedAt: at}
	}
	var ws []evokestore.InstanceWrite
	for i := range 300 {
		ws = append(ws, evokestore.InstanceWrite{Instance: inst(fmt.Sprintf("i%03d", i), 1), PrevVersion: -1})
	}
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) }); err != nil {
		t.Fatal(err)
	}

	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: inst("i000", 2), PrevVersion: 1}, {Instance: inst("ghost", 2), PrevVersion: 1}})
	if !errors.Is(err, evokestore.ErrFenced) || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("update of a missing instance: %v, want ErrFenced naming it", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Instances(ctx, "pm", []string{"ghost"}); err != nil || len(got) != 0 {
		t.Fatalf("the missing instance's update left %v (%v)", got, err)
	}
	if got, err := s.Instances(ctx, "pm", []string{"i000"}); err != nil || len(got) != 1 || !got[0].CreatedAt.Equal(at) {
		t.Fatalf("i000 = %+v (%v), want its created_at kept", got, err)
	}

	for i := range ws {
		v := int64(1)
		if i == 0 {
			v = 2 // updated by the committed Tx above
		}
		ws[i] = evokestore.InstanceWrite{Instance: inst(ws[i].ID, v+1), PrevVersion: v}
	}
	ws[200].PrevVersion = 7 // stale, in the second 128-row statement
	err = evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	if !errors.Is(err, evokestore.ErrFenced) || !strings.Contains(err.Error(), "i200") {
		t.Fatalf("one stale row of 300: %v, want ErrFenced naming i200", err)
	}
	ws[200].PrevVersion = 1
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Instances(ctx, "pm", []string{"i000", "i299"}); err != nil || len(got) != 2 || got[0].Version != 3 || got[1].Version != 2 {
		t.Fatalf("after the update: %+v (%v)", got, err)
	}

	old := inst("old", 1)
	old.CreatedAt = time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)
	err = evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: old, PrevVersion: -1}})
	})
	if err == nil || !strings.Contains(err.Error(), "before 1970") {
		t.Fatalf("instance created in 1969: %v, want refused", err)
	}
}

// schemaAt returns a database at path with the migrations up to version
// applied, as an older binary left it.
func schemaAt(t *testing.T, path string, version int64) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE evoke_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		var v int64
		if _, err := fmt.Sscanf(filepath.Base(f), "%04d_", &v); err != nil || v > version {
			continue
		}
		q, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(q)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := db.Exec(`INSERT INTO evoke_migrations VALUES (?, 0)`, v); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// Migrations 0009 and 0010 rekey history by position (0009) and move the
// rows to write order with the key in an index (0010): a store at schema 8
// with records (steps, and failures sharing a step's position) opens with
// them all, read back in ID order, and a second step on one event is still
// refused.
func TestHistoryRekeyMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := schemaAt(t, path, 8)
	for _, r := range []struct {
		id       int64
		kind     string
		position int64
	}{{10, "step", 5}, {20, "failed", 7}, {30, "failed", 7}, {40, "step", 7}} {
		if _, err := db.Exec(`INSERT INTO history (process_manager, instance_id, id, kind, version, position, recorded_at) VALUES ('pm', 'i', ?, ?, 1, ?, 1)`,
			r.id, r.kind, r.position); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, path, nil)
	got, err := s.History(ctx, "pm", "i")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, h := range got {
		keys = append(keys, fmt.Sprintf("%d:%s@%d", h.ID, h.Kind, h.Position))
	}
	if want := "[10:step@5 20:failed@7 30:failed@7 40:step@7]"; fmt.Sprint(keys) != want {
		t.Fatalf("history after migration = %v, want %s", keys, want)
	}
	err = evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		return tx.InsertHistory(ctx, []evokestore.HistoryRecord{{ProcessManager: "pm", InstanceID: "i", Kind: evokestore.KindStep, Version: 2, Position: 7}})
	})
	if err == nil {
		t.Fatal("a second step at position 7 was accepted after the migration")
	}
	err = evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		return tx.InsertHistory(ctx, []evokestore.HistoryRecord{
			{ProcessManager: "pm", InstanceID: "i", Kind: evokestore.KindFailed, Version: 2, Position: 7},
			{ProcessManager: "pm", InstanceID: "i", Kind: evokestore.KindStep, Version: 2, Position: 8},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.History(ctx, "pm", "i"); err != nil || len(got) != 6 || got[5].Position != 8 || got[4].Kind != evokestore.KindFailed {
		t.Fatalf("history after new records = %+v, %v", got, err)
	}
}

// Migrations 0011 and 0012 pack a history record's and a command outcome's
// payload into one JSON column: a store at schema 10 with records of every
// shape (commands as JSON, not JSON, and none; strings that need escaping)
// and outcomes opens with them read back unchanged.
func TestRecordMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := schemaAt(t, path, 10)
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	want := []evokestore.HistoryRecord{
		{ID: 10, ProcessManager: "pm", InstanceID: "i", Kind: evokestore.KindStep, Version: 1, Position: 5, EventID: "e-1", EventType: "Placed",
			PhaseBefore: "", PhaseAfter: "awaiting \"payment\"", Commands: []byte(`[{"id":"c1","type":"Pay"}]`), RecordedAt: at, Node: "n1", LeaseToken: 7},
		{ID: 20, ProcessManager: "pm", InstanceID: "i", Kind: evokestore.KindFailed, Version: 1, Position: 7, EventID: "e-2", EventType: "Paid",
			Error: "boom\n\ttab \\ é ✓", RecordedAt: at.Add(time.Second)},
		{ID: 30, ProcessManager: "pm", InstanceID: "i", Kind: evokestore.KindStep, Version: 2, Position: 7, Commands: []byte("not json"), RecordedAt: at.Add(2 * time.Second)},
	}
	for _, h := range want {
		stepKey := h.ID
		if h.Kind == evokestore.KindStep {
			stepKey = 0
		}
		var cmds any
		if h.Commands != nil {
			cmds = h.Commands
		}
		if _, err := db.Exec(`INSERT INTO history (process_manager, instance_id, position, step_key, id, kind, version, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, h.ProcessManager, h.InstanceID, h.Position, stepKey, h.ID, h.Kind, h.Version,
			h.EventID, h.EventType, h.PhaseBefore, h.PhaseAfter, cmds, h.Error, h.RecordedAt.UnixNano(), h.Node, h.LeaseToken); err != nil {
			t.Fatal(err)
		}
	}
	outcomes := []evokestore.CommandOutcome{
		{CommandID: "c1", Type: "Pay", AggregateType: "payment", AggregateID: "o-1", ProcessManager: "pm", InstanceID: "i",
			Status: evokestore.OutcomeAccepted, Events: 2, RecordedAt: at},
		{CommandID: "c2", Type: "Reserve", AggregateType: "inventory", AggregateID: "o-\"1\"", ProcessManager: "pm", InstanceID: "i",
			Status: evokestore.OutcomeRejected, Error: "out of stock: ✗\n", RecordedAt: at.Add(time.Second)},
	}
	for _, o := range outcomes {
		if _, err := db.Exec(`INSERT INTO command_outcomes (command_id, type, aggregate_type, aggregate_id, process_manager, instance_id, status, error, events, recorded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, o.CommandID, o.Type, o.AggregateType, o.AggregateID, o.ProcessManager, o.InstanceID,
			o.Status, o.Error, o.Events, o.RecordedAt.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, nil)
	if got, err := s.CommandOutcomes(ctx, []string{"c2", "c1"}); err != nil || !reflect.DeepEqual(got, outcomes) {
		t.Fatalf("outcomes after migration:\n got %+v, %v\nwant %+v", got, err, outcomes)
	}
	if st, err := s.Stats(ctx); err != nil || st.Commands != 2 || st.Rejected != 1 {
		t.Fatalf("stats after migration: %+v, %v", st, err)
	}
	got, err := s.History(ctx, "pm", "i")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history after migration:\n got %+v\nwant %+v", got, want)
	}
	// Written after the migration, the same records read back the same.
	more := []evokestore.HistoryRecord{want[0], want[1], want[2]}
	for i := range more {
		more[i].InstanceID = "j"
	}
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, more) }); err != nil {
		t.Fatal(err)
	}
	got, err = s.History(ctx, "pm", "j")
	if err != nil || len(got) != 3 {
		t.Fatalf("history written after the migration: %v, %v", got, err)
	}
	for i := range got {
		more[i].ID = got[i].ID // assigned by the store
	}
	if !reflect.DeepEqual(got, more) {
		t.Fatalf("history written after the migration:\n got %+v\nwant %+v", got, more)
	}
}

// A run of one instance's steps written in one call is one history row
// (the conformance suite's HistoryRuns reads such rows back and checks the
// key).
func TestHistoryRuns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runs.db")
	s := open(t, path, nil)
	rec := func(id, kind string, pos int64) evokestore.HistoryRecord {
		return evokestore.HistoryRecord{ProcessManager: "pm", InstanceID: id, Kind: kind, Version: pos, Position: pos, EventID: fmt.Sprintf("e%d", pos), EventType: "T"}
	}
	in := []evokestore.HistoryRecord{
		rec("i", evokestore.KindStep, 10), rec("i", evokestore.KindStep, 12), rec("j", evokestore.KindStep, 11),
		rec("i", evokestore.KindFailed, 13), rec("i", evokestore.KindStep, 14), rec("i", evokestore.KindStep, 15), rec("i", evokestore.KindStep, 16),
	}
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, in) }); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow(`SELECT COUNT(*) FROM history`).Scan(&rows); err != nil || rows != 4 {
		t.Errorf("%d rows (%v), want 4: i@10-12, j@11, the failure, i@14-16", rows, err)
	}
	if got, err := s.History(ctx, "pm", "i"); err != nil || len(got) != 6 {
		t.Errorf("history of i: %d records, %v; want 6", len(got), err)
	}
}

// The checkpointer copies the log back at most once an interval however
// many commits come, and once more that long after the last one.
func TestCheckpointsAtMostOnceAnInterval(t *testing.T) {
	const every = 300 * time.Millisecond
	evokesqlite.SetCheckpointing(t.Cleanup, 1, every)
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ckpt.db"), nil)
	n := 0
	commit := func() {
		t.Helper()
		n++
		if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
			_, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: fmt.Sprint("e", n), StreamID: "s", StreamVersion: int64(n), Type: "T", Data: []byte(`{}`)}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s: %d checkpoints", what, s.Checkpoints())
			}
		}
	}
	commit()
	waitFor("checkpoint after the first commit", func() bool { return s.Checkpoints() >= 1 })
	time.Sleep(every + every/2) // nothing pending
	base := s.Checkpoints()
	commit()
	waitFor("checkpoint after a quiet interval", func() bool { return s.Checkpoints() == base+1 })
	for range 20 {
		commit()
	}
	waitFor("checkpoint after the last commit", func() bool { return s.Checkpoints() > base+1 })
	after := s.Checkpoints()
	time.Sleep(2 * every)
	if got := s.Checkpoints(); got != after {
		t.Errorf("%d checkpoints without commits, want none", got-after)
	}
	// However fast or slow the commits came, two checkpoints were never
	// closer than the interval.
	if gap := s.MinCheckpointGap(); gap < every {
		t.Errorf("two checkpoints %v apart, want at least %v", gap, every)
	}
}

// MustExist opens existing stores only: a missing file, an empty one or a
// database without evoke's tables is refused, and left as it was.
func TestMustExist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must := &evokesqlite.Options{MustExist: true}
	missing := filepath.Join(dir, "missing.db")
	if _, err := evokesqlite.Open(context.Background(), missing, must); !errors.Is(err, evokestore.ErrStoreNotFound) {
		t.Errorf("missing file: err = %v, want ErrStoreNotFound", err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := evokesqlite.Open(context.Background(), "sqlite:"+empty, must); !errors.Is(err, evokestore.ErrStoreNotFound) {
		t.Errorf("empty file: err = %v, want ErrStoreNotFound", err)
	}
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := evokesqlite.Open(context.Background(), other, must); !errors.Is(err, evokestore.ErrStoreNotFound) {
		t.Errorf("a database without evoke's tables: err = %v, want ErrStoreNotFound", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"empty.db", "other.db"}; !reflect.DeepEqual(names, want) {
		t.Errorf("files after the refused opens: %v, want %v", names, want)
	}
	if fi, _ := os.Stat(empty); fi.Size() != 0 {
		t.Errorf("the empty file was written: %d bytes", fi.Size())
	}

	// An existing store, at a path SQLite's URIs would misread.
	odd := filepath.Join(dir, "odd #1 %20.db")
	s := open(t, odd, nil)
	appendOne(t, s, "e1", "s-1", 1)
	s.Close()
	s = open(t, odd, must)
	if evs, err := s.ReadStream(context.Background(), "s-1", 0); err != nil || len(evs) != 1 {
		t.Errorf("the existing store through MustExist: %d events, %v", len(evs), err)
	}
}
