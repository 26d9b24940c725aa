package evokepg_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestoretest"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/evoke-go/evoke/internal/testnote"
)

func TestMain(m *testing.M) {
	testnote.Postgres("evokepg")
	goleak.VerifyTestMain(m)
}

const urlEnv = "EVOKE_TEST_POSTGRES_URL"

// testURL returns the database of the integration tests, or skips t.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(urlEnv)
	if u == "" {
		t.Skipf("PostgreSQL tests disabled: set %s to a database they may create schemas in, e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable", urlEnv, urlEnv)
	}
	return u
}

// adminConn opens a plain connection for test set-up and inspection.
func adminConn(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newSchema returns the name of a fresh schema, dropped with everything in
// it when t ends (after the stores opened on it, closed by cleanups
// registered later, are closed).
func newSchema(t testing.TB) string {
	t.Helper()
	u := testURL(t)
	b := make([]byte, 6)
	crand.Read(b)
	schema := "evoke_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// open opens a Store on schema, closed when t ends.
func open(t testing.TB, schema string, opts *evokepg.Options) *evokepg.Store {
	t.Helper()
	var o evokepg.Options
	if opts != nil {
		o = *opts
	}
	o.Schema = schema
	s, err := evokepg.Open(context.Background(), testURL(t), &o)
	if err != nil {
		t.Fatalf("Open(schema %s): %v", schema, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	testURL(t)
	evokestoretest.Run(t, func(t *testing.T) evokestore.Store {
		return open(t, newSchema(t), nil)
	}, evokestoretest.StreamsReader, evokestoretest.EventsReader, evokestoretest.AppendReader, evokestoretest.DeadlinesReader,
		evokestoretest.Purger, evokestoretest.TallyReader, evokestoretest.LeaseReader, evokestoretest.Leaser,
		evokestoretest.WriteDeferrer)
}

func TestBackend(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s := open(t, schema, nil)
	if got := s.Backend(); got != "postgres" {
		t.Errorf("Backend() = %q", got)
	}
	if got := s.Schema(); got != schema {
		t.Errorf("Schema() = %q, want %q", got, schema)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Begin(context.Background()); !errors.Is(err, evokepg.ErrClosed) {
		t.Fatalf("Begin after Close: err = %v, want ErrClosed", err)
	}
}

func TestOpenInvalid(t *testing.T) {
	ctx := context.Background()
	for _, schema := range []string{string(make([]byte, 64)), strings.Repeat("a", 64), "weird;x", "Has-Dash", "Upper", "1st", "sp ace", `q"uote`, "é"} {
		// An unreachable server: the name is refused before Open connects.
		if _, err := evokepg.Open(ctx, "postgres://x@127.0.0.1:1/x", &evokepg.Options{Schema: schema}); !errors.Is(err, evokepg.ErrInvalidSchema) {
			t.Errorf("Open with schema %q: err = %v, want ErrInvalidSchema", schema, err)
		}
	}
	if _, err := evokepg.Open(ctx, "::not a url::", nil); err == nil {
		t.Error("Open of a malformed URL succeeded")
	}
}

func appendOne(t testing.TB, s evokestore.Store, id, stream string, version int64) evokestore.Event {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: id, StreamID: stream, StreamVersion: version, Type: "T", Data: []byte(`{}`)}})
	if err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return evs[0]
}

func migrationRows(t *testing.T, schema string) []int64 {
	t.Helper()
	conn := adminConn(t)
	rows, err := conn.Query(context.Background(), `SELECT version FROM `+pgx.Identifier{schema, "evoke_migrations"}.Sanitize()+` ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s := open(t, schema, nil)
	e := appendOne(t, s, "e1", "s", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, schema, nil)
	evs, err := s.ReadLog(context.Background(), evokestore.LogQuery{})
	if err != nil || len(evs) != 1 || evs[0].Position != e.Position {
		t.Fatalf("after reopening: %v, %v", evs, err)
	}
	if vs, want := migrationRows(t, schema), evokepg.SchemaVersion(); len(vs) != int(want) || vs[len(vs)-1] != want {
		t.Fatalf("evoke_migrations = %v, want 1..%d once each", vs, want)
	}
}

func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	const nodes = 6
	var wg sync.WaitGroup
	stores := make([]*evokepg.Store, nodes)
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = evokepg.Open(context.Background(), testURL(t), &evokepg.Options{Schema: schema, MaxConns: 2})
		})
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Errorf("node %d: Open: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	if vs := migrationRows(t, schema); len(vs) != int(evokepg.SchemaVersion()) {
		t.Fatalf("evoke_migrations = %v after %d concurrent Opens", vs, nodes)
	}
	// They all work on the one schema.
	for i, s := range stores {
		appendOne(t, s, fmt.Sprintf("e%d", i), "s", int64(i+1))
	}
	evs, err := stores[0].ReadLog(context.Background(), evokestore.LogQuery{})
	if err != nil || len(evs) != nodes {
		t.Fatalf("log = %d events, %v; want %d", len(evs), err, nodes)
	}
}

func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s := open(t, schema, nil)
	s.Close()
	conn := adminConn(t)
	if _, err := conn.Exec(context.Background(), `INSERT INTO `+pgx.Identifier{schema, "evoke_migrations"}.Sanitize()+` VALUES ($1, 0)`, evokepg.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := evokepg.Open(context.Background(), testURL(t), &evokepg.Options{Schema: schema})
	if !errors.Is(err, evokepg.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

func woken(ch <-chan struct{}, within time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(within):
		return false
	}
}

func drain(ch <-chan struct{}) {
	for woken(ch, 100*time.Millisecond) {
	}
}

// TestNotifyOtherStore checks that a commit through one Store wakes the
// subscribers of another Store (another pool, as on another node) on the
// same schema, through LISTEN/NOTIFY, and not those of another schema.
func TestNotifyOtherStore(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s1, s2 := open(t, schema, nil), open(t, schema, nil)
	other := open(t, newSchema(t), nil)
	events, cancel := s2.Subscribe(evokestore.TopicEvents)
	defer cancel()
	outbox, cancel := s2.Subscribe(evokestore.TopicOutbox)
	defer cancel()
	deadlines, cancel := s2.Subscribe(evokestore.TopicDeadlines)
	defer cancel()
	otherEvents, cancel := other.Subscribe(evokestore.TopicEvents)
	defer cancel()

	appendOne(t, s1, "e1", "s", 1)
	if !woken(events, 5*time.Second) {
		t.Fatal("subscriber of the second store not woken by a commit in the first")
	}
	if woken(outbox, 200*time.Millisecond) || woken(deadlines, 0) {
		t.Error("outbox or deadlines subscriber woken by an append")
	}
	if woken(otherEvents, 0) {
		t.Error("subscriber of another schema woken")
	}

	ctx := context.Background()
	tx, err := s1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.InsertOutbox(ctx, []evokestore.OutboxCommand{{ID: "c1", ProcessManager: "pm", InstanceID: "i", Type: "T", AggregateType: "a", AggregateID: "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.ReplaceDeadlines(ctx, "pm", []string{"i"}, []evokestore.Deadline{{ProcessManager: "pm", InstanceID: "i", Name: "d", DueAt: time.Now(), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if woken(outbox, 200*time.Millisecond) {
		t.Error("woken before commit")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !woken(outbox, 5*time.Second) || !woken(deadlines, 5*time.Second) {
		t.Fatal("outbox and deadlines subscribers of the second store not both woken")
	}
	if woken(events, 200*time.Millisecond) {
		t.Error("events subscriber woken by a commit without events")
	}

	// A deadline deleted by the first store wakes the second's scheduler;
	// one that was not there does not.
	tx, err = s1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if deleted, err := tx.DeleteDeadline(ctx, evokestore.Deadline{ProcessManager: "pm", InstanceID: "i", Name: "d", Version: 2}); err != nil || deleted {
		t.Fatalf("DeleteDeadline of another version = %v, %v", deleted, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if woken(deadlines, 300*time.Millisecond) {
		t.Error("deadlines subscriber woken by a commit that deleted nothing")
	}
	tx, err = s1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if deleted, err := tx.DeleteDeadline(ctx, evokestore.Deadline{ProcessManager: "pm", InstanceID: "i", Name: "d", Version: 1}); err != nil || !deleted {
		t.Fatalf("DeleteDeadline = %v, %v", deleted, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !woken(deadlines, 5*time.Second) {
		t.Error("deadlines subscriber not woken by a deleted deadline")
	}
}

// TestListenerReconnect kills the listener's connection: the Store
// reconnects, wakes every subscriber once (notifications may have been
// lost) and receives later notifications again.
func TestListenerReconnect(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s1, s2 := open(t, schema, nil), open(t, schema, nil)
	events, cancel := s1.Subscribe(evokestore.TopicEvents)
	defer cancel()
	outbox, cancel := s1.Subscribe(evokestore.TopicOutbox)
	defer cancel()

	conn := adminConn(t)
	ctx := context.Background()
	listen := `LISTEN ` + pgx.Identifier{"evoke:" + schema}.Sanitize()
	var killed int
	// Both stores listen; kill both connections (s2's reconnects too).
	if err := conn.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`, listen).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Fatalf("terminated %d listener connections, want 2", killed)
	}
	if !woken(events, 5*time.Second) || !woken(outbox, 5*time.Second) {
		t.Fatal("subscribers not woken after the listener reconnected")
	}
	drain(events)
	appendOne(t, s2, "e1", "s", 1)
	if !woken(events, 5*time.Second) {
		t.Fatal("subscriber not woken by another store's commit after the reconnection")
	}
}

// TestCommitOrderPositions runs appenders that hold their transactions open
// for a while after appending, against a reader that repeatedly reads the
// log after the last position it saw: the reader must see every committed
// event exactly once, none of the rolled back ones, and positions must only
// grow. Without the append lock, an appender holding a smaller position
// commits after the reader has moved past it and the event is skipped.
func TestCommitOrderPositions(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	stores := []*evokepg.Store{open(t, schema, &evokepg.Options{MaxConns: 12}), open(t, schema, &evokepg.Options{MaxConns: 12})}
	ctx := context.Background()
	const (
		writers   = 8
		txsEach   = 25
		maxBatch  = 3
		holdEvery = 3 // every third tx sleeps before committing
	)
	var (
		mu        sync.Mutex
		committed = map[string]bool{}
		wg        sync.WaitGroup
		writeErr  = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			stream := fmt.Sprintf("w%d", w)
			version := int64(0)
			for i := range txsEach {
				n := 1 + rng.IntN(maxBatch)
				evs := make([]evokestore.NewEvent, n)
				for j := range evs {
					evs[j] = evokestore.NewEvent{ID: fmt.Sprintf("%s-%d-%d", stream, i, j), StreamID: stream, StreamVersion: version + int64(j) + 1, Type: "T"}
				}
				tx, err := s.Begin(ctx)
				if err != nil {
					writeErr <- err
					return
				}
				if _, err := tx.AppendEvents(ctx, evs); err != nil {
					tx.Rollback()
					writeErr <- err
					return
				}
				if i%holdEvery == 0 {
					time.Sleep(time.Duration(1+rng.IntN(8)) * time.Millisecond)
				}
				if i%10 == 9 {
					if err := tx.Rollback(); err != nil {
						writeErr <- err
						return
					}
					continue
				}
				if err := tx.Commit(); err != nil {
					writeErr <- err
					return
				}
				version += int64(n)
				mu.Lock()
				for _, e := range evs {
					committed[e.ID] = true
				}
				mu.Unlock()
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	seen := map[string]bool{}
	last, reads := int64(0), 0
	read := func() (int, error) {
		evs, err := stores[1].ReadLog(ctx, evokestore.LogQuery{After: last, Limit: 7})
		if err != nil {
			return 0, err
		}
		reads++
		for _, e := range evs {
			if e.Position <= last {
				return 0, fmt.Errorf("position %d after %d", e.Position, last)
			}
			if seen[e.ID] {
				return 0, fmt.Errorf("event %s read twice", e.ID)
			}
			seen[e.ID] = true
			last = e.Position
		}
		return len(evs), nil
	}
	for done := false; !done; {
		select {
		case <-writersDone:
			done = true
		default:
		}
		if _, err := read(); err != nil {
			t.Fatal(err)
		}
	}
	for {
		n, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	close(writeErr)
	for err := range writeErr {
		t.Fatal(err)
	}
	var missed, phantom []string
	for id := range committed {
		if !seen[id] {
			missed = append(missed, id)
		}
	}
	for id := range seen {
		if !committed[id] {
			phantom = append(phantom, id)
		}
	}
	slices.Sort(missed)
	if len(missed) > 0 || len(phantom) > 0 {
		t.Fatalf("reader skipped %d committed events (first %v) and saw %d uncommitted ones %v",
			len(missed), missed[:min(len(missed), 8)], len(phantom), phantom)
	}
	t.Logf("%d events committed, read in %d reads", len(committed), reads)
}

// TestAbandonedAppendReleasesLock checks that cancelling the context of a Tx
// holding the append lock rolls it back and lets other appenders through.
func TestAbandonedAppendReleasesLock(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s1, s2 := open(t, schema, nil), open(t, schema, nil)
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := s1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "lost", StreamID: "s", StreamVersion: 1, Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	appended := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tx, err := s2.Begin(ctx)
		if err != nil {
			appended <- err
			return
		}
		if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "kept", StreamID: "s", StreamVersion: 1, Type: "T"}}); err != nil {
			tx.Rollback()
			appended <- err
			return
		}
		appended <- tx.Commit()
	}()
	select {
	case err := <-appended:
		t.Fatalf("second appender finished while the first held the append lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-appended; err != nil {
		t.Fatalf("second appender after the first was abandoned: %v", err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("Commit of an abandoned Tx succeeded")
	}
	evs, err := s1.ReadLog(context.Background(), evokestore.LogQuery{})
	if err != nil || len(evs) != 1 || evs[0].ID != "kept" {
		t.Fatalf("log = %+v, %v; want only kept", evs, err)
	}
}

// TestCloseRollsBackOpenTx checks that Close does not wait for an open Tx
// but rolls it back.
func TestCloseRollsBackOpenTx(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s, err := evokepg.Open(context.Background(), testURL(t), &evokepg.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "e1", StreamID: "s", StreamVersion: 1, Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close blocked on an open Tx")
	}
	if err := tx.Commit(); !errors.Is(err, evokepg.ErrClosed) {
		t.Fatalf("Commit after Close: err = %v, want ErrClosed", err)
	}
	s2 := open(t, schema, nil)
	if evs, err := s2.ReadLog(ctx, evokestore.LogQuery{}); err != nil || len(evs) != 0 {
		t.Fatalf("log after Close rolled back = %d events, %v", len(evs), err)
	}
}

// TestFencedConcurrentUpdate: of two transactions updating one instance
// from the same version, the second waits for the first and, once it
// commits, fails with ErrFenced.
func TestFencedConcurrentUpdate(t *testing.T) {
	t.Parallel()
	s := open(t, newSchema(t), nil)
	ctx := context.Background()
	in := evokestore.Instance{ProcessManager: "pm", ID: "a", Version: 1, Status: evokestore.StatusRunning, State: []byte(`{}`)}
	put := func(tx evokestore.Tx, in evokestore.Instance, prev int64) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: in, PrevVersion: prev}})
	}
	tx, _ := s.Begin(ctx)
	if err := put(tx, in, -1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	in.Version = 2
	tx1, _ := s.Begin(ctx)
	if err := put(tx1, in, 1); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		tx2, _ := s.Begin(ctx)
		err := put(tx2, in, 1)
		tx2.Rollback()
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("second update did not wait for the first: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-second; !errors.Is(err, evokestore.ErrFenced) {
		t.Fatalf("second update: err = %v, want ErrFenced", err)
	}
}

// ReadStreams reads by the stream index even on a log PostgreSQL has not
// analysed yet (a new schema's first minute): without statistics, the
// planner took "stream_id = ANY($1)" for 50 streams to match a quarter of
// the log and scanned all of it.
func TestReadStreamsUsesTheIndexUnanalysed(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema, nil)
	conn := adminConn(t)
	if _, err := conn.Exec(ctx, `SET search_path TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	unanalysed(t, conn, "events")
	const n = 20000
	evs := make([]evokestore.NewEvent, n)
	for i := range evs {
		evs[i] = evokestore.NewEvent{ID: fmt.Sprintf("e%05d", i), StreamID: fmt.Sprintf("s%05d", i), StreamVersion: 1, Type: "T", Data: []byte(`{}`)}
	}
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		_, err := tx.AppendEvents(ctx, evs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%05d", i*397)
	}
	got, err := s.ReadStreams(ctx, ids)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("ReadStreams: %d events, %v; want %d", len(got), err, len(ids))
	}
	var analysed bool
	if err := conn.QueryRow(ctx, `SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'events'`, schema).Scan(&analysed); err != nil {
		t.Fatal(err)
	}
	if analysed {
		t.Fatal("the log was analysed although its autovacuum is off")
	}
	text := explain(t, conn, evokepg.SQLReadStreams, ids)
	if strings.Contains(text, "Seq Scan on events") || !strings.Contains(text, "Index") {
		t.Fatalf("ReadStreams does not read through the stream index:\n%s", text)
	}
}

// unanalysed turns autovacuum (and so autoanalyze) off for the tables of
// conn's search path, so that they stay without statistics, as a new
// schema's tables are in their first minute.
func unanalysed(t *testing.T, conn *pgx.Conn, tables ...string) {
	t.Helper()
	for _, table := range tables {
		if _, err := conn.Exec(context.Background(), `ALTER TABLE `+pgx.Identifier{table}.Sanitize()+` SET (autovacuum_enabled = false)`); err != nil {
			t.Fatal(err)
		}
	}
}

// explain returns the plan PostgreSQL makes for query with args, planned
// with them as the store plans its lookups (pgx.QueryExecModeExec).
func explain(t *testing.T, conn *pgx.Conn, query string, args ...any) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `EXPLAIN `+query, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// The store's connections run without JIT compilation unless the URL asks
// for it: on a log not analysed yet, PostgreSQL costed the stream reads of
// a large batch past jit_above_cost and compiled them for ~22 ms a call.
func TestNoJITUnlessAsked(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	if v, err := open(t, schema, nil).Setting(ctx, "jit"); err != nil || v != "off" {
		t.Fatalf("jit = %q, %v; want off", v, err)
	}
	u := testURL(t)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	s, err := evokepg.Open(ctx, u+sep+"jit=on", &evokepg.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Setting(ctx, "jit"); err != nil || v != "on" {
		t.Fatalf("with jit=on in the URL: jit = %q, %v; want on", v, err)
	}
}

// The append lock is the first lock of a Tx that writes: taken by its
// first round trip that writes, a write held back included, and never by
// one that only reads.
func TestFirstWriteTakesTheAppendLock(t *testing.T) {
	ctx := context.Background()
	s := open(t, newSchema(t), nil)
	conn := adminConn(t)
	held := func() bool {
		t.Helper()
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
	AND ((classid::bigint << 32) | objid::bigint) = $1`, s.LockKey()).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	write := map[string]func(tx evokestore.Tx) error{
		"history": func(tx evokestore.Tx) error {
			return tx.InsertHistory(ctx, []evokestore.HistoryRecord{{ProcessManager: "pm", InstanceID: "i", Kind: evokestore.KindStep, Version: 1, Position: 1}})
		},
		"checkpoint": func(tx evokestore.Tx) error {
			return tx.PutCheckpoint(ctx, evokestore.Checkpoint{ProcessManager: "pm", Position: 1})
		},
		"delete deadline": func(tx evokestore.Tx) error {
			_, err := tx.DeleteDeadline(ctx, evokestore.Deadline{ProcessManager: "pm", InstanceID: "i", Name: "d"})
			return err
		},
	}
	for name, fn := range write {
		for _, deferred := range []bool{false, true} {
			tx, err := s.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if deferred {
				tx.(evokestore.WriteDeferrer).DeferWrites()
			}
			if _, err := tx.Head(ctx); err != nil {
				t.Fatal(err)
			}
			if held() {
				t.Fatalf("%s: a Tx that only read holds the append lock", name)
			}
			if err := fn(tx); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Head(ctx); err != nil {
				t.Fatal(err)
			}
			if !held() {
				t.Errorf("%s (deferred: %v): a Tx that wrote does not hold the append lock", name, deferred)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if held() {
		t.Fatal("the append lock outlives its Tx")
	}
}

// With DeferWrites, the writes that return nothing ride with the next
// round trip that needs a reply, or with COMMIT: a chained batch's write
// (fence, outcomes, events, the check of what was committed meanwhile,
// instances, history, checkpoints, commit) takes three round trips instead
// of eight, and two when the check rides with the events
// (AppendEventsAfter), and writes the same rows.
func TestDeferredWritesSaveRoundTrips(t *testing.T) {
	ctx := context.Background()
	s := open(t, newSchema(t), nil)
	leases, err := s.Balance(ctx, "n1", 2, time.Minute)
	if err != nil || len(leases) != 2 {
		t.Fatalf("leases %v, %v", leases, err)
	}
	write := func(deferred bool, k int, reading ...bool) int {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		ptx := tx.(*evokepg.Tx)
		if deferred {
			ptx.DeferWrites()
		}
		id := fmt.Sprintf("i%d", k)
		steps := []func() error{
			func() error { return ptx.CheckLeases(ctx, "n1", leases) },
			func() error {
				return tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{{CommandID: "c" + id, Type: "T", AggregateType: "a", AggregateID: id, ProcessManager: "pm", InstanceID: id, Status: evokestore.OutcomeAccepted}})
			},
			func() error {
				_, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "e" + id, StreamID: "s" + id, StreamVersion: 1, Type: "T"}})
				return err
			},
			func() error { _, err := tx.ReadLog(ctx, evokestore.LogQuery{After: 0, Limit: 10}); return err },
			func() error {
				return tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: -1, Instance: evokestore.Instance{ProcessManager: "pm", ID: id, Version: 1, Status: evokestore.StatusRunning}}})
			},
			func() error {
				return tx.InsertHistory(ctx, []evokestore.HistoryRecord{{ProcessManager: "pm", InstanceID: id, Kind: evokestore.KindStep, Version: 1, Position: 1}})
			},
			func() error {
				return tx.PutCheckpoints(ctx, []evokestore.Checkpoint{{ProcessManager: "pm", Partition: 0, Position: int64(k)}, {ProcessManager: "pm", Partition: 1, Position: int64(k)}})
			},
			tx.Commit,
		}
		if len(reading) > 0 {
			// The append and the read of what was committed before it, in
			// one round trip (evokestore.AppendReader).
			steps = append(steps[:2:2], append([]func() error{func() error {
				read, _, err := ptx.AppendEventsAfter(ctx, evokestore.LogQuery{Limit: 10}, nil, []evokestore.NewEvent{{ID: "e" + id, StreamID: "s" + id, StreamVersion: 1, Type: "T"}})
				if err == nil && len(read) != k-1 {
					err = fmt.Errorf("read %d events before the append, want %d", len(read), k-1)
				}
				return err
			}}, steps[4:]...)...)
		}
		for i, step := range steps {
			if err := step(); err != nil {
				t.Fatalf("deferred=%v: step %d: %v", deferred, i, err)
			}
		}
		return ptx.Trips()
	}
	if n := write(false, 1); n != 8 {
		t.Errorf("%d round trips without DeferWrites, want 8 (BEGIN rides with the fence)", n)
	}
	if n := write(true, 2); n != 3 {
		t.Errorf("%d round trips with DeferWrites, want 3 (the held-back writes ride with COMMIT)", n)
	}
	if n := write(true, 3, true); n != 2 {
		t.Errorf("%d round trips with DeferWrites and AppendEventsAfter, want 2", n)
	}
	for _, id := range []string{"i1", "i2", "i3"} {
		in, err := s.Instances(ctx, "pm", []string{id})
		if err != nil || len(in) != 1 {
			t.Errorf("instance %s: %v, %v", id, in, err)
		}
		if h, err := s.History(ctx, "pm", id); err != nil || len(h) != 1 {
			t.Errorf("history of %s: %v, %v", id, h, err)
		}
		if o, err := s.CommandOutcomes(ctx, []string{"c" + id}); err != nil || len(o) != 1 {
			t.Errorf("outcome of c%s: %v, %v", id, o, err)
		}
	}
	if cp, ok, err := s.Checkpoint(ctx, "pm", 1); err != nil || !ok || cp.Position != 3 {
		t.Errorf("checkpoint %+v, %v, %v", cp, ok, err)
	}
}

// A write held back fails in the call that sends it, with its own
// sentinel, and nothing of the transaction commits; a read sends what was
// held back first and sees it; Rollback drops it unsent.
func TestDeferredWriteErrors(t *testing.T) {
	ctx := context.Background()
	s := open(t, newSchema(t), nil)
	leases, err := s.Balance(ctx, "n1", 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	inst := evokestore.Instance{ProcessManager: "pm", ID: "a", Version: 1, Status: evokestore.StatusRunning}
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: -1, Instance: inst}})
	}); err != nil {
		t.Fatal(err)
	}
	begin := func() *evokepg.Tx {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() })
		ptx := tx.(*evokepg.Tx)
		ptx.DeferWrites()
		return ptx
	}
	stale := inst
	stale.Version = 2
	newEvent := []evokestore.NewEvent{{ID: "e1", StreamID: "s", StreamVersion: 1, Type: "T"}}

	// A fenced update surfaces at Commit.
	tx := begin()
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: 5, Instance: stale}}); err != nil {
		t.Fatalf("a held-back write failed at once: %v", err)
	}
	if err := tx.Commit(); !errors.Is(err, evokestore.ErrFenced) {
		t.Errorf("commit after a fenced update: %v, want ErrFenced", err)
	}
	// A duplicate outcome surfaces at the next append, which does not land.
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		return tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{{CommandID: "c1", Type: "T", AggregateType: "a", AggregateID: "x", ProcessManager: "pm", InstanceID: "a", Status: evokestore.OutcomeAccepted}})
	}); err != nil {
		t.Fatal(err)
	}
	tx = begin()
	if err := tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{{CommandID: "c1", Type: "T", AggregateType: "a", AggregateID: "x", ProcessManager: "pm", InstanceID: "a", Status: evokestore.OutcomeAccepted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.AppendEvents(ctx, newEvent); !errors.Is(err, evokestore.ErrDuplicateCommand) || !strings.Contains(err.Error(), "held back") {
		t.Errorf("append after a duplicate outcome: %v, want ErrDuplicateCommand from the held-back write", err)
	}
	tx.Rollback()
	// A lease check with a stale token surfaces at the next read.
	tx = begin()
	if err := tx.CheckLeases(ctx, "n1", []evokestore.Lease{{Partition: leases[0].Partition, Node: "n1", Token: leases[0].Token + 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Instances(ctx, "pm", []string{"a"}); !errors.Is(err, evokestore.ErrLeaseLost) {
		t.Errorf("read after a stale lease check: %v, want ErrLeaseLost", err)
	}
	tx.Rollback()
	// A read sees the writes held back before it.
	tx = begin()
	next := inst
	next.Version, next.Phase = 2, "moved"
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: 1, Instance: next}}); err != nil {
		t.Fatal(err)
	}
	if got, err := tx.Instances(ctx, "pm", []string{"a"}); err != nil || len(got) != 1 || got[0].Phase != "moved" {
		t.Errorf("read in the Tx after a held-back update: %+v, %v", got, err)
	}
	tx.Rollback()
	// Rollback sends nothing of what was held back.
	tx = begin()
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: 1, Instance: next}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil || tx.Trips() != 0 {
		t.Errorf("rollback: %v after %d round trips, want none", err, tx.Trips())
	}
	got, err := s.Instances(ctx, "pm", []string{"a"})
	if err != nil || len(got) != 1 || got[0].Version != 1 || got[0].Phase != "" {
		t.Errorf("after the failed and rolled back transactions: %+v, %v; want version 1 untouched", got, err)
	}
	if evs, err := s.ReadLog(ctx, evokestore.LogQuery{Limit: 10}); err != nil || len(evs) != 0 {
		t.Errorf("log after the failed append: %v, %v", evs, err)
	}
}

// TestCommitWithHeldBackWrites: COMMIT travels with the writes held back;
// when one of them fails, Commit returns its error, nothing of the
// transaction lands, and the connection goes back to the pool usable (with
// two connections, a leak would block the transactions after a few
// failures).
func TestCommitWithHeldBackWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := open(t, newSchema(t), &evokepg.Options{MaxConns: 2})
	inst := evokestore.Instance{ProcessManager: "pm", ID: "a", Version: 1, Status: evokestore.StatusRunning}
	if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: -1, Instance: inst}})
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ptx := tx.(*evokepg.Tx)
		ptx.DeferWrites()
		if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: fmt.Sprintf("e%d", i), StreamID: "s", StreamVersion: int64(i + 1), Type: "T"}}); err != nil {
			t.Fatal(err)
		}
		stale := inst
		stale.Version = 9
		if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: 5, Instance: stale}}); err != nil {
			t.Fatalf("a held-back write failed at once: %v", err)
		}
		if err := tx.Commit(); !errors.Is(err, evokestore.ErrFenced) {
			t.Fatalf("commit %d after a fenced update: %v, want ErrFenced", i, err)
		}
		if n := ptx.Trips(); n != 2 {
			t.Errorf("commit %d: %d round trips, want 2 (BEGIN with the append, the update with COMMIT)", i, n)
		}
	}
	if evs, err := s.ReadStream(ctx, "s", 0); err != nil || len(evs) != 0 {
		t.Errorf("events of failed commits: %v, %v; want none", evs, err)
	}
	var got int64
	for i := range 4 {
		if err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
			tx.(*evokepg.Tx).DeferWrites()
			evs, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: fmt.Sprintf("ok%d", i), StreamID: "s", StreamVersion: int64(i + 1), Type: "T"}})
			if err != nil {
				return err
			}
			got = evs[0].Position
			return tx.PutCheckpoints(ctx, []evokestore.Checkpoint{{ProcessManager: "pm", Partition: 0, Position: got}})
		}); err != nil {
			t.Fatalf("transaction %d after the failures: %v", i, err)
		}
	}
	if cp, ok, err := s.Checkpoint(ctx, "pm", 0); err != nil || !ok || cp.Position != got {
		t.Errorf("checkpoint written with COMMIT: %+v, %v, %v; want position %d", cp, ok, err, got)
	}
	// A lease check held back and failing refuses the COMMIT sent with it.
	leases, err := s.Balance(ctx, "n1", 1, time.Minute)
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases %v, %v", leases, err)
	}
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.(*evokepg.Tx).DeferWrites()
	stale := []evokestore.Lease{{Partition: leases[0].Partition, Node: "n1", Token: leases[0].Token + 1}}
	if err := tx.(*evokepg.Tx).CheckLeases(ctx, "n1", stale); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutCheckpoints(ctx, []evokestore.Checkpoint{{ProcessManager: "pm", Partition: 0, Position: got + 100}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, evokestore.ErrLeaseLost) {
		t.Errorf("commit after a stale lease check: %v, want ErrLeaseLost", err)
	}
	if cp, _, err := s.Checkpoint(ctx, "pm", 0); err != nil || cp.Position != got {
		t.Errorf("checkpoint after a refused commit: %+v, %v; want position %d", cp, err, got)
	}
}

// The lookups by many instances (a batch's instances, their deadlines) go
// through the key, one index lookup per ID, on tables PostgreSQL has not
// analysed yet: without statistics, the planner took "process_manager = $1"
// alone as the index condition and "id = ANY($2)" as a filter, reading every
// instance of the process manager for each batch.
func TestLookupsByInstanceUseTheKeyUnanalysed(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema, nil)
	conn := adminConn(t)
	if _, err := conn.Exec(ctx, `SET search_path TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	unanalysed(t, conn, "instances", "deadlines")
	const n = 20000
	if _, err := conn.Exec(ctx, `INSERT INTO instances (process_manager, id, partition, version, status)
SELECT 'pm', 'i' || lpad(g::text, 6, '0'), g % 16, 1, 'running' FROM generate_series(1, $1::int) g`, n); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO deadlines (process_manager, instance_id, name, due_at, version)
SELECT 'pm', 'i' || lpad(g::text, 6, '0'), 'timeout', g, 1 FROM generate_series(1, $1::int) g`, n); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 60)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%06d", 1+i*317)
	}
	got, err := s.Instances(ctx, "pm", append(ids, ids[0], "missing"))
	if err != nil || len(got) != len(ids) {
		t.Fatalf("Instances: %d, %v; want %d (each once, the missing one absent)", len(got), err, len(ids))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].ID >= got[i].ID {
			t.Fatalf("Instances out of order: %q before %q", got[i-1].ID, got[i].ID)
		}
	}
	var analysed bool
	if err := conn.QueryRow(ctx, `SELECT bool_or(last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL) FROM pg_stat_user_tables WHERE schemaname = $1 AND relname IN ('instances', 'deadlines')`, schema).Scan(&analysed); err != nil {
		t.Fatal(err)
	}
	if analysed {
		t.Fatal("the tables were analysed although their autovacuum is off")
	}
	for _, c := range []struct{ name, query, key string }{
		{"instances", evokepg.SQLInstances, "AND (id = "},
		{"deadlines", evokepg.SQLInstanceDeadlines, "AND (instance_id = "},
	} {
		text := explain(t, conn, c.query, "pm", ids)
		if strings.Contains(text, "Seq Scan on "+c.name) || strings.Contains(text, "Filter:") || !strings.Contains(text, c.key) {
			t.Errorf("the %s lookup does not go through the key:\n%s", c.name, text)
		}
	}
}

// A run of one instance's steps written in one call is one history row
// (migration 0009), up to 64 records a row.
func TestHistoryRuns(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema, nil)
	rec := func(id, kind string, pos int64) evokestore.HistoryRecord {
		return evokestore.HistoryRecord{ProcessManager: "pm", InstanceID: id, Kind: kind, Version: pos, Position: pos,
			EventID: fmt.Sprintf("e%d", pos), EventType: "T", Commands: []byte(fmt.Sprintf(`[{"id":"c%d"}]`, pos)),
			RecordedAt: time.Unix(0, pos*1000).UTC()}
	}
	few := []evokestore.HistoryRecord{
		rec("i", evokestore.KindStep, 10), rec("i", evokestore.KindStep, 12), rec("j", evokestore.KindStep, 11),
		rec("i", evokestore.KindFailed, 13), rec("i", evokestore.KindStep, 14), rec("i", evokestore.KindStep, 15), rec("i", evokestore.KindStep, 16),
	}
	for p := int64(100); p < 230; p++ { // 64 + 64 + 2
		few = append(few, rec("long", evokestore.KindStep, p))
	}
	var many []evokestore.HistoryRecord
	for k := range 100 {
		for p := range int64(3) {
			many = append(many, rec(fmt.Sprintf("m%03d", k), evokestore.KindStep, 1000+int64(k)*10+p))
		}
	}
	for _, recs := range [][]evokestore.HistoryRecord{few, many} {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.InsertHistory(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	conn := adminConn(t)
	for id, want := range map[string]int{"i": 3, "j": 1, "long": 3, "m042": 1} {
		var rows int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM `+pgx.Identifier{schema, "history"}.Sanitize()+` WHERE instance_id = $1`, id).Scan(&rows); err != nil || rows != want {
			t.Errorf("%s: %d rows (%v), want %d", id, rows, err, want)
		}
	}
	for _, id := range []string{"i", "long", "m042"} {
		got, err := s.History(ctx, "pm", id)
		if err != nil {
			t.Fatal(err)
		}
		var want []evokestore.HistoryRecord
		for _, h := range append(few[:len(few):len(few)], many...) {
			if h.InstanceID == id {
				want = append(want, h)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", id, len(got), len(want))
		}
		for k, g := range got {
			if w := want[k]; g.Kind != w.Kind || g.Position != w.Position || g.EventID != w.EventID || string(g.Commands) != string(w.Commands) ||
				!g.RecordedAt.Equal(w.RecordedAt) || k > 0 && g.ID <= got[k-1].ID {
				t.Errorf("%s record %d = %+v, want %+v (after ID %d)", id, k, g, w, got[max(k-1, 0)].ID)
			}
		}
	}
}

// MustExist opens an existing schema only: a missing schema, or one without
// evoke's tables, is refused and nothing is created in it or in public.
func TestMustExist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := adminConn(t)
	missing, bare := newSchema(t), newSchema(t)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+bare); err != nil {
		t.Fatal(err)
	}
	tablesIn := func(schema string) int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = $1)
	+ (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname LIKE 'evoke%')`, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	publicBefore := tablesIn("public")
	for _, schema := range []string{missing, bare} {
		if _, err := evokepg.Open(ctx, testURL(t), &evokepg.Options{Schema: schema, MustExist: true}); !errors.Is(err, evokestore.ErrStoreNotFound) {
			t.Errorf("schema %s: err = %v, want ErrStoreNotFound", schema, err)
		}
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, missing).Scan(&exists); err != nil || exists {
		t.Errorf("the missing schema exists after the refused open (%v)", err)
	}
	if n := tablesIn(bare); n != 0 {
		t.Errorf("%d tables and functions created in the schema without evoke's", n)
	}
	if n := tablesIn("public"); n != publicBefore {
		t.Errorf("public: %d tables and evoke functions, %d before", n, publicBefore)
	}

	existing := newSchema(t)
	open(t, existing, nil).Close()
	s := open(t, existing, &evokepg.Options{MustExist: true})
	if _, err := s.Head(ctx); err != nil {
		t.Errorf("the existing schema through MustExist: %v", err)
	}
}

// DeleteDeadlines deletes, in one round trip, each deadline still stored
// with its name and version, and reports which it deleted.
func TestDeleteDeadlines(t *testing.T) {
	ctx := context.Background()
	s := open(t, newSchema(t), nil)
	at := time.Unix(100, 0).UTC()
	dls := []evokestore.Deadline{
		{ProcessManager: "pm", InstanceID: "a", Name: "x", Version: 1, DueAt: at},
		{ProcessManager: "pm", InstanceID: "b", Name: "x", Version: 2, DueAt: at},
	}
	err := evokestore.WithTx(ctx, s, func(tx evokestore.Tx) error {
		return tx.ReplaceDeadlines(ctx, "pm", []string{"a", "b"}, dls)
	})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	before := tx.(*evokepg.Tx).Trips()
	deleted, err := tx.(evokestore.DeadlinesDeleter).DeleteDeadlines(ctx, []evokestore.Deadline{
		dls[0], {ProcessManager: "pm", InstanceID: "b", Name: "x", Version: 1}, {ProcessManager: "pm", InstanceID: "c", Name: "x", Version: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []bool{true, false, false}) {
		t.Errorf("deleted %v, want [true false false]", deleted)
	}
	if n := tx.(*evokepg.Tx).Trips() - before; n != 1 {
		t.Errorf("%d round trips, want 1", n)
	}
	left, err := tx.(evokestore.DeadlinesReader).InstanceDeadlines(ctx, "pm", []string{"a", "b"})
	if err != nil || len(left) != 1 || left[0].InstanceID != "b" {
		t.Errorf("deadlines left: %v, %v; want b's", left, err)
	}
}
