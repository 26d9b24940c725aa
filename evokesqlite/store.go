package evokesqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrSchemaTooNew reports that the database was migrated by a newer version
// of evoke than the running binary knows; Open refuses to touch it.
var ErrSchemaTooNew = errors.New("evokesqlite: database schema is newer than this binary supports")

// Options tunes a Store. The zero value (or a nil *Options) gives the
// defaults.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "OFF", "NORMAL", "FULL" or
	// "EXTRA". See the package documentation for what it means for
	// durability. Defaults to "FULL".
	Synchronous string
	// BusyTimeout is how long a connection waits for a lock held by another
	// connection (typically another process) before failing with
	// SQLITE_BUSY. Defaults to 10s.
	BusyTimeout time.Duration
	// ReadConns is the number of connections in the pool serving reads made
	// outside a transaction. Defaults to 4.
	ReadConns int
	// MustExist opens an existing store only: Open fails with an error
	// wrapping evokestore.ErrStoreNotFound, and creates nothing, when the
	// file is missing or holds no evoke tables. The connections open the
	// file with SQLite's mode=rw, which never creates it. An existing store
	// of an older schema is still migrated. Defaults to false: Open creates
	// the file and its tables.
	MustExist bool
}

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Synchronous == "" {
		r.Synchronous = "FULL"
	}
	switch strings.ToUpper(r.Synchronous) {
	case "OFF", "NORMAL", "FULL", "EXTRA", "0", "1", "2", "3":
		r.Synchronous = strings.ToUpper(r.Synchronous)
	default:
		return r, fmt.Errorf("evokesqlite: invalid Synchronous %q (want OFF, NORMAL, FULL or EXTRA)", r.Synchronous)
	}
	if r.BusyTimeout <= 0 {
		r.BusyTimeout = 10 * time.Second
	}
	if r.ReadConns <= 0 {
		r.ReadConns = 4
	}
	return r, nil
}

// Store is an evokestore.Store on a SQLite database file. It is safe for
// concurrent use.
type Store struct {
	queries

	path string
	w    *sql.DB // the single write connection
	r    *sql.DB // the read pool

	ws   [numStmts]*sql.Stmt     // every statement, prepared on w
	rs   [numReadStmts]*sql.Stmt // read statements, prepared on r
	bulk [numBulk][len(bulkSizes)]*sql.Stmt

	wakeups backend.Wakeups
	// lastHistoryID is the last history ID assigned (see historyID).
	lastHistoryID atomic.Int64

	// The background checkpointer (see checkpoints).
	ckpt               *sql.DB
	ckptKick           chan struct{}
	ckptStop, ckptDone chan struct{}
	ckpts              atomic.Int64 // checkpoints run
	ckptMinGap         atomic.Int64 // the shortest time between two checkpoints, in ns (tests)

	closeOnce sync.Once
	closeErr  error
}

var _ evokestore.Store = (*Store)(nil)

// Open opens (creating it if missing, unless Options.MustExist is set) the
// SQLite database at path and migrates it to the schema this binary knows.
// path may carry a "sqlite:" prefix (and "sqlite://" is accepted too); it
// must not contain '?'. opts may be nil.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := path
	if rest, ok := strings.CutPrefix(p, "sqlite://"); ok {
		p = rest
	} else {
		p = strings.TrimPrefix(p, "sqlite:")
	}
	if p == "" {
		return nil, errors.New("evokesqlite: open: empty path")
	}
	if strings.ContainsRune(p, '?') {
		return nil, fmt.Errorf("evokesqlite: open %q: path must not contain '?'", p)
	}

	dsn, base := p, url.Values{}
	if o.MustExist {
		if err := mustExist(ctx, p); err != nil {
			return nil, err
		}
		dsn = existingURI(p)
		base.Set("mode", "rw") // SQLite's own URI parameter: never create the file
	}
	base.Add("_pragma", "busy_timeout("+strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)+")")
	base.Add("_pragma", "journal_mode(WAL)")
	base.Add("_pragma", "synchronous("+o.Synchronous+")")
	base.Add("_pragma", "foreign_keys(off)")
	base.Add("_pragma", "temp_store(MEMORY)")

	wq := cloneValues(base)
	// The writer's page cache lasts across its commits: 32 MiB.
	wq.Add("_pragma", "cache_size(-32768)")
	// The writer checkpoints only as a backstop: the checkpointer does it.
	wq.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walBackstopPages)+")")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: open %q: %w", p, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{path: p, w: w}
	s.queries = queries{s: s}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("evokesqlite: open %q: %w", p, err)
	}

	rq := cloneValues(base)
	rq.Add("_pragma", "query_only(1)")
	// Readers: 16 MiB each. With a million live instances, 32 MiB took
	// ~30 MB more of peak RSS for no more throughput, and 8 MiB cost ~6%
	// of it (docs/benchmarks.md).
	rq.Add("_pragma", "cache_size(-16384)")
	r, err := sql.Open("sqlite", dsn+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("evokesqlite: open %q: %w", p, err)
	}
	r.SetMaxOpenConns(o.ReadConns)
	r.SetMaxIdleConns(o.ReadConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s.r = r

	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("evokesqlite: open %q: %w", p, err)
	}
	cq := cloneValues(base)
	cq.Add("_pragma", "cache_size(-1024)") // it copies WAL frames: no use for a cache
	c, err := sql.Open("sqlite", dsn+"?"+cq.Encode())
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("evokesqlite: open %q: %w", p, err)
	}
	c.SetMaxOpenConns(1)
	s.ckpt, s.ckptKick, s.ckptStop, s.ckptDone = c, make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go s.checkpoints()
	return s, nil
}

// mustExist checks, through a connection that sets no pragma and opens the
// file with mode=rw (so that it neither creates the file nor turns an empty
// one into a database), that path holds an evoke store.
func mustExist(ctx context.Context, path string) error {
	notFound := func(why string) error {
		return fmt.Errorf("evokesqlite: open %q: %s: %w", path, why, evokestore.ErrStoreNotFound)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return notFound("no such file")
	}
	db, err := sql.Open("sqlite", existingURI(path)+"?mode=rw")
	if err != nil {
		return fmt.Errorf("evokesqlite: open %q: %w", path, err)
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'evoke_migrations'`).Scan(&n)
	switch {
	case err != nil:
		return fmt.Errorf("evokesqlite: open %q: %w", path, err)
	case n == 0:
		return notFound("the file holds no evoke tables")
	}
	return nil
}

// existingURI is path as an SQLite URI filename ("file:..."), through which
// the driver hands SQLite's own parameters (mode) to SQLite.
func existingURI(path string) string {
	p := strings.NewReplacer("%", "%25", "#", "%23").Replace(path)
	if strings.HasPrefix(p, "/") {
		return "file://" + p
	}
	return "file:" + p
}

// WAL checkpoints. SQLite copies the write-ahead log back into the database
// file by itself on the committing connection once the log passes 1000
// pages, which puts that copy and its fsync inside the writer's commit,
// where every batch waits for it. Instead a goroutine with a connection of
// its own copies what it can (a passive checkpoint: it never blocks the
// writer or the readers) after commits once the log file passed
// walCheckpointBytes, at most every walCheckpointEvery, and once more that
// long after the last commit; the writer still checkpoints by itself past
// walBackstopPages, should that ever fall behind.
//
// The interval matters: the log file keeps its size when SQLite starts it
// over, so without one a checkpoint followed every commit, copying again
// the pages every commit touches (the last page of each table and index,
// the instances stepped) and syncing the database file each time; at
// 10,000 sagas/s, ~1,100 checkpoints in a six-second run against ~50.
var (
	walCheckpointBytes int64 = 4 << 20
	walCheckpointEvery       = 100 * time.Millisecond
)

const walBackstopPages = 16384

func (s *Store) checkpoints() {
	defer close(s.ckptDone)
	var last time.Time
	var later *time.Timer // a checkpoint held back by the interval
	defer func() {
		if later != nil {
			later.Stop()
		}
	}()
	var due <-chan time.Time
	for {
		select {
		case <-s.ckptStop:
			return
		case <-s.ckptKick:
		case <-due:
			due = nil
		}
		if fi, err := os.Stat(s.path + "-wal"); err != nil || fi.Size() < walCheckpointBytes {
			continue
		}
		if wait := walCheckpointEvery - time.Since(last); wait > 0 {
			if due == nil {
				if later == nil {
					later = time.NewTimer(wait)
				} else {
					later.Reset(wait)
				}
				due = later.C
			}
			continue
		}
		var busy, log, done int
		_ = s.ckpt.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done)
		now := time.Now()
		if !last.IsZero() {
			if gap := now.Sub(last); s.ckptMinGap.Load() == 0 || int64(gap) < s.ckptMinGap.Load() {
				s.ckptMinGap.Store(int64(gap))
			}
		}
		last = now
		s.ckpts.Add(1)
	}
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

func (s *Store) prepare(ctx context.Context) error {
	for i, q := range stmtSQL {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.ws[i] = st
		if i < int(numReadStmts) {
			if st, err = s.r.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("prepare %q: %w", q, err)
			}
			s.rs[i] = st
		}
	}
	for k := range bulkKinds {
		for j, n := range bulkSizes {
			q := bulkKinds[k].sql(n)
			st, err := s.w.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", q, err)
			}
			s.bulk[k][j] = st
		}
	}
	return nil
}

// Path returns the database file's path (without any "sqlite:" prefix).
func (s *Store) Path() string { return s.path }

// Backend returns "sqlite".
func (s *Store) Backend() string { return "sqlite" }

// historyID returns a new history record ID: the time in nanoseconds, or
// one more than the last ID if that is later, so that IDs increase in the
// order records are written (writes are serialised) and, across restarts,
// as long as the clock does not step back by more than the time between
// two records of one instance.
func (s *Store) historyID(now int64) int64 {
	for {
		last := s.lastHistoryID.Load()
		id := max(now, last+1)
		if s.lastHistoryID.CompareAndSwap(last, id) {
			return id
		}
	}
}

// Close closes the store's connections. It does not close channels returned
// by Subscribe: subscribers must stop waiting on their own (typically when
// their context ends) and call cancel. A Tx still open is rolled back when
// its connection closes; Close does not wait for it. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.ckptStop != nil {
			close(s.ckptStop)
			<-s.ckptDone
			errs = append(errs, s.ckpt.Close())
		}
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Begin starts a write transaction (BEGIN IMMEDIATE on the single write
// connection). It waits while another Tx of this Store is open. Cancelling
// ctx before the Tx ends rolls it back.
func (s *Store) Begin(ctx context.Context) (evokestore.Tx, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: begin: %w", err)
	}
	t := &txn{s: s, tx: tx}
	t.queries = queries{s: s, t: t}
	return t, nil
}

// Subscribe returns a channel that receives a value after each commit of
// this Store that wrote to topic; wakes are coalesced in a buffer of one
// and never block the committer. Commits of other processes are not seen.
// cancel removes the subscription (it is safe to call more than once); the
// channel is never closed, neither by cancel nor by Close.
func (s *Store) Subscribe(topic evokestore.Topic) (<-chan struct{}, func()) {
	return s.wakeups.Subscribe(topic)
}

//go:embed migrations/*.sql
var migrationFS embed.FS

func loadMigrations() ([]backend.Migration, error) {
	return backend.LoadMigrations(migrationFS, "migrations")
}

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int64 {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return ms[len(ms)-1].Version
}

func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS evoke_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM evoke_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	exec := func(q string, args ...any) error { _, err := tx.ExecContext(ctx, q, args...); return err }
	if _, err := backend.Apply(ms, cur, ErrSchemaTooNew, exec, `INSERT INTO evoke_migrations (version, applied_at) VALUES (?, ?)`); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
