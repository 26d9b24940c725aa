package evokepg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of Open and of a closed Store.
var (
	// ErrSchemaTooNew reports that the schema was migrated by a newer
	// version of evoke than the running binary knows; Open refuses to touch
	// it.
	ErrSchemaTooNew = errors.New("evokepg: database schema is newer than this binary supports")
	// ErrClosed reports a Begin on a closed Store, or a Tx rolled back by
	// Store.Close.
	ErrClosed = errors.New("evokepg: store closed")
)

// Options tunes a Store. The zero value (or a nil *Options) gives the
// defaults.
type Options struct {
	// Schema is the PostgreSQL schema holding evoke's tables; Open creates
	// it if missing (unless MustExist is set) and every connection uses it
	// as its search_path. One database can host several deployments in
	// different schemas. A name is a lower-case letter or underscore
	// followed by up to 62 lower-case letters, digits and underscores
	// (^[a-z_][a-z0-9_]{0,62}$): a name PostgreSQL folds to itself and
	// that needs no quoting. Open refuses any other, before it connects.
	// Defaults to "public".
	Schema string
	// MaxConns is the size of the connection pool serving transactions and
	// reads. The Store opens one more connection, outside the pool, to
	// LISTEN for notifications. Defaults to 8.
	MaxConns int32
	// IdleInTxTimeout is the server's idle_in_transaction_session_timeout
	// for the Store's connections: a transaction left idle that long (its
	// node paused or wedged) is ended by the server, releasing the lease
	// rows it locked so that another node can take the partitions over.
	// Keep it at or below the runtime's lease time. Defaults to 5s.
	IdleInTxTimeout time.Duration
	// MustExist opens an existing store only: Open fails with an error
	// wrapping evokestore.ErrStoreNotFound, and creates nothing, when the
	// schema is missing or holds no evoke tables (its evoke_migrations
	// table). An existing store of an older schema is still migrated.
	// Defaults to false: Open creates the schema and its tables.
	MustExist bool
}

// ErrInvalidSchema reports an Options.Schema that is not a valid name.
var ErrInvalidSchema = errors.New("evokepg: invalid schema name")

// validSchema reports whether name is a schema name Open accepts: a
// lower-case letter or underscore followed by up to 62 lower-case letters,
// digits and underscores.
func validSchema(name string) bool {
	if name == "" || len(name) > 63 || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Schema == "" {
		r.Schema = "public"
	}
	if !validSchema(r.Schema) {
		return r, fmt.Errorf("%w %q: want a lower-case letter or underscore, then up to 62 lower-case letters, digits and underscores", ErrInvalidSchema, r.Schema)
	}
	if r.MaxConns <= 0 {
		r.MaxConns = 8
	}
	if r.IdleInTxTimeout <= 0 {
		r.IdleInTxTimeout = 5 * time.Second
	}
	return r, nil
}

// Store is an evokestore.Store on a PostgreSQL schema. It is safe for
// concurrent use.
type Store struct {
	queries

	pool     *pgxpool.Pool
	listenCC *pgx.ConnConfig // the listener's connection settings
	schema   string
	channel  string // the NOTIFY channel of the schema
	lockKey  int64  // the advisory lock serialising writing transactions

	wakeups backend.Wakeups

	mu     sync.Mutex
	txs    map[*txn]struct{}
	closed bool

	// pids holds the backend PIDs of the pool's connections, whose
	// notifications the listener ignores (Commit signals them directly).
	pidMu sync.RWMutex
	pids  map[uint32]struct{}

	stopListen context.CancelFunc
	listenDone chan struct{}

	closeOnce sync.Once
}

var (
	_ evokestore.Store         = (*Store)(nil)
	_ evokestore.StreamsReader = (*Store)(nil)
)

// Open connects to the PostgreSQL database at url (a URL or keyword/value
// connection string, as pgxpool.ParseConfig accepts), creates Options.Schema
// if missing and migrates it to the schema this binary knows. opts may be
// nil. A search_path in url is overridden by Options.Schema. With
// Options.MustExist it opens an existing schema only.
func Open(ctx context.Context, url string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("evokepg: open: %w", err)
	}
	cfg.MaxConns = o.MaxConns
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = quoteIdent(o.Schema)
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(o.IdleInTxTimeout.Milliseconds(), 10)
	// No JIT compilation, unless the URL asks for it: evoke's statements
	// are short lookups and writes that JIT never pays for, and on tables
	// not yet analysed PostgreSQL overestimates their cost past
	// jit_above_cost. Reading the streams of a 1,024-command batch then
	// spent ~22 ms compiling against ~3.5 ms running (halving PostgreSQL's
	// saturation throughput).
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}

	s := &Store{
		listenCC: cfg.ConnConfig.Copy(),
		schema:   o.Schema,
		channel:  channelName(o.Schema),
		lockKey:  lockKey("append", o.Schema),
		txs:      make(map[*txn]struct{}),
		pids:     make(map[uint32]struct{}),
	}
	s.queries = queries{s: s}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		s.pidMu.Lock()
		s.pids[c.PgConn().PID()] = struct{}{}
		s.pidMu.Unlock()
		return nil
	}
	cfg.BeforeClose = func(c *pgx.Conn) {
		s.pidMu.Lock()
		delete(s.pids, c.PgConn().PID())
		s.pidMu.Unlock()
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("evokepg: open: %w", err)
	}
	s.pool = pool
	if err := migrate(ctx, pool, o.Schema, o.MustExist); err != nil {
		pool.Close()
		return nil, fmt.Errorf("evokepg: open schema %q: %w", o.Schema, err)
	}
	conn, err := s.connectListener(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("evokepg: open schema %q: %w", o.Schema, err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListen = cancel
	s.listenDone = make(chan struct{})
	go s.listen(lctx, conn)
	return s, nil
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// lockKey derives a 64-bit advisory lock key from a purpose and a schema, so
// that deployments in different schemas do not contend.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("evoke/" + purpose + "/" + schema))
	return int64(h.Sum64())
}

// channelName is the NOTIFY channel of a schema: "evoke:<schema>", or a hash
// of the schema if that would exceed PostgreSQL's 63-byte identifiers.
func channelName(schema string) string {
	if c := "evoke:" + schema; len(c) <= 63 {
		return c
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return "evoke:" + strconv.FormatUint(h.Sum64(), 16)
}

// Schema returns the PostgreSQL schema holding the store's tables.
func (s *Store) Schema() string { return s.schema }

// Backend returns "postgres".
func (s *Store) Backend() string { return "postgres" }

// Close stops the listener, rolls back every Tx still open and closes the
// connections. It does not close channels returned by Subscribe: subscribers
// must stop waiting on their own (typically when their context ends) and
// call cancel. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopListen()
		<-s.listenDone
		s.mu.Lock()
		s.closed = true
		open := make([]*txn, 0, len(s.txs))
		for t := range s.txs {
			open = append(open, t)
		}
		s.mu.Unlock()
		for _, t := range open {
			t.abort(ErrClosed)
		}
		s.pool.Close()
	})
	return nil
}

// Begin starts a write transaction (READ COMMITTED). The transaction takes a
// pooled connection and begins on the server with its first statement, in
// the same round trip. Its first round trip that writes takes the append
// lock, held until the Tx ends, so writing transactions run one at a time
// from their first write to their end (see the package documentation). Cancelling ctx before
// the Tx ends rolls it back.
func (s *Store) Begin(ctx context.Context) (evokestore.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("evokepg: begin: %w", err)
	}
	t := &txn{s: s, ctx: ctx}
	t.queries = queries{s: s, t: t}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("evokepg: begin: %w", ErrClosed)
	}
	s.txs[t] = struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { t.abort(context.Cause(ctx)) })
	t.mu.Lock()
	t.stop = stop
	t.mu.Unlock()
	return t, nil
}

// Subscribe returns a channel that receives a value after each commit that
// wrote to topic, by this Store or by any other process on the same database
// and schema (through LISTEN/NOTIFY), and once after the listener had to
// reconnect. Wakes are coalesced in a buffer of one and never block a
// committer. cancel removes the subscription (it is safe to call more than
// once); the channel is never closed, neither by cancel nor by Close.
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

// migrate creates schema if missing and applies the migrations it lacks, in
// one transaction holding an advisory lock of the schema: concurrent Opens
// (nodes starting together) wait for the first and then find nothing to do.
// With mustExist it creates nothing: a schema without evoke_migrations is
// evokestore.ErrStoreNotFound.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, mustExist bool) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("migrate", schema)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	ident := quoteIdent(schema)
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if mustExist {
		var tables bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'evoke_migrations')`, schema).Scan(&tables); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		switch {
		case !exists:
			return fmt.Errorf("the schema does not exist: %w", evokestore.ErrStoreNotFound)
		case !tables:
			return fmt.Errorf("the schema holds no evoke tables: %w", evokestore.ErrStoreNotFound)
		}
	}
	if !exists {
		// Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE
		// privilege on the database even when the schema exists.
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+ident); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	for _, q := range []string{
		`SET LOCAL search_path TO ` + ident,
		`CREATE TABLE IF NOT EXISTS evoke_migrations (
	version    BIGINT PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	var cur int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM evoke_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	exec := func(q string, args ...any) error { _, err := tx.Exec(ctx, q, args...); return err }
	applied, err := backend.Apply(ms, cur, ErrSchemaTooNew, exec, `INSERT INTO evoke_migrations (version, applied_at) VALUES ($1, $2)`)
	if err != nil || applied == 0 {
		return err // nothing to commit
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// The SQLSTATEs evoke_assert raises with (migration 0008).
const (
	codeFenced    = "EVK01"
	codeLeaseLost = "EVK02"
)

// asserted returns the message of an evoke_assert failure with code.
func asserted(err error, code string) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == code {
		return pe.Message, true
	}
	return "", false
}

// uniqueConstraint returns the constraint a unique violation broke.
func uniqueConstraint(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}
