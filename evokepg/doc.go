// Package evokepg is evoke's shared storage backend: an [evokestore.Store] on
// PostgreSQL, through github.com/jackc/pgx/v5 and its pgxpool. Any number of
// nodes may open the same database and schema; the runtime's leases and the
// fenced instance writes keep each instance owned by one node at a time.
//
// # Schema per deployment
//
// Every table lives in one PostgreSQL schema, Options.Schema ("public" by
// default). Open creates the schema if it is missing and sets search_path to
// it on every connection (a startup parameter), so several evoke deployments,
// or parallel test runs, can share one database without seeing each other.
// A schema name matches ^[a-z_][a-z0-9_]{0,62}$: a name PostgreSQL folds to
// itself, that needs no quoting in any tool, and that fits an identifier.
// Open refuses any other (ErrInvalidSchema) before it connects. With
// Options.MustExist, Open creates nothing: a missing schema, or one without
// evoke's evoke_migrations table, fails with evokestore.ErrStoreNotFound
// (inspection tools open stores this way, so that a mistyped name does not
// leave an empty store behind).
// The schema is created and upgraded by versioned migrations embedded in the
// binary (migrations/NNNN_name.sql), applied by Open in one transaction under
// a transaction-scoped advisory lock derived from the schema name, so that
// nodes starting at the same time migrate once and the others wait and then
// find the schema current. Applied versions are recorded in the
// evoke_migrations table; opening a schema that is newer than the binary
// fails with ErrSchemaTooNew.
//
// Times are stored as BIGINT unix nanoseconds (UTC, 0 for the zero time), as
// in evokesqlite: timestamptz keeps only microseconds and times must
// round-trip exactly. Event data, states, commands and metadata are BYTEA,
// stored and returned byte for byte (JSONB would reorder keys and reformat).
// Text keys use the "C" collation, so ordering and paging are bytewise and do
// not depend on the database's locale.
//
// # Input
//
// The store takes the input evokestore's input contract allows, the same as
// evokesqlite: PostgreSQL's text columns refuse NUL bytes and invalid UTF-8,
// so Tx.AppendEvents checks its events first (evokestore.CheckNewEvents)
// and fails with evokestore.ErrInvalid, appending nothing, rather than with
// a driver error. JSON payloads are BYTEA, so a \u0000 escape inside one is
// stored like any other byte.
//
// # Commit-ordered log positions
//
// Readers of the global log (subscriptions, projections) remember the last
// position they processed and ask for events after it. That is only correct
// if an event can never become visible after an event with a greater
// position: PostgreSQL sequences and identity columns hand out numbers when
// a row is inserted, not when its transaction commits, so two concurrent
// appenders may commit in the opposite order of their positions, and a
// reader that read between the two commits would skip the smaller position
// for ever.
//
// Tx.AppendEvents therefore takes a transaction-scoped advisory lock
// (pg_advisory_xact_lock, with a key derived from the schema) before
// inserting. Appending transactions queue on it and hold it until they
// commit or roll back, and PostgreSQL releases the lock only after the
// commit is visible, so positions are assigned in commit order: once a
// reader sees position p, every position below p is either visible too or
// never will be (rolled back transactions leave gaps, which are harmless).
// Because the lock is per schema, deployments in different schemas do not
// contend.
//
// # One lock order
//
// The append lock is the first lock of every Tx that writes: the first
// round trip that writes or locks a row (an append, an instance, outbox,
// deadline or history write, a lease check, a purge) takes it before its
// other statements, in the same round trip; reads before it lock nothing.
// A Tx that appends after writing rows would otherwise hold those rows
// while it waits for the lock, and the holder of the lock could be
// waiting for the same rows: a deadlock, which PostgreSQL breaks by failing
// one of the two, possibly an application's own append. With the lock
// first, writing transactions run one at a time from their first write to
// their end and never wait for each other's rows. The only writes outside a
// Tx, the lease changes of Store.Balance and Store.Leave, never wait for the
// append lock and lock lease rows in partition order, the order
// Tx.CheckLeases locks them in. A Tx should write as late as possible
// before committing: its reads before its first write run concurrently with
// other writers.
//
// # Notifications
//
// Subscribe is pushed through LISTEN/NOTIFY, so commits of other processes
// on the same database and schema wake local workers too. A Tx that writes a
// topic queues pg_notify on the schema's channel (its name includes the
// schema) with the topic as payload, in the same round trip as the write;
// PostgreSQL delivers it only if the Tx commits. Each Store keeps one
// dedicated listener connection, outside the pool, that LISTENs on the
// channel and fans notifications out to local subscribers with
// non-blocking sends on channels buffered to one. After a successful local
// commit the Store also signals its own subscribers directly, for lower
// latency, and the listener then ignores the notification sent by its own
// pool's connections. If the listener's connection drops it reconnects with
// exponential backoff and, since notifications may have been missed, wakes
// every subscriber once. Workers should still poll as a fallback.
//
// # Performance
//
// Writes of many rows are single statements over arrays
// (INSERT ... SELECT FROM unnest($1::text[], ...)), and lookups by many keys
// use = ANY($1) with one array parameter rather than an IN list of many
// binds. A Tx sends BEGIN with its first statement, and a write with the
// notification it queues (and an append with the lock before it) as one pgx
// batch, so a Tx that appends events costs two round trips: the batch and
// COMMIT. With the append lock held through COMMIT, writing transactions
// commit one at a time, each waiting for its own WAL flush: batch events
// into few transactions. Reads outside a Tx
// use the pool; reads through a Tx use its connection and see its own
// writes. A Store holds at most Options.MaxConns pooled connections plus the
// listener's.
//
// Each write is otherwise a round trip of its own, so that its error is its
// own; Tx.DeferWrites (evokestore.WriteDeferrer, used by evoke's router)
// holds back the writes that return nothing until the next statement whose
// reply is needed, or sends them with COMMIT; Tx.AppendEventsAfter
// (evokestore.AppendReader) reads the events committed before an append in
// the append's own round trip, once it holds the append lock. A router's
// chained batch takes two round trips instead of eight: the append lock is
// taken in the first and held until the second (the COMMIT) returns, so a
// remote server's latency bounds the batches a second to about one per
// round trip and a half. The fences fail on the server (the
// evoke_assert function, SQLSTATEs EVK01 and EVK02), so that a COMMIT
// pipelined after them is refused. Rows go as INSERTs from arrays, never
// with COPY: every write is under the append lock, and a COPY is a
// statement the client streams, so a node paused in the middle of one
// (SIGSTOP, a frozen VM) would leave its session active, which
// idle_in_transaction_session_timeout does not end, and the lock held. An
// INSERT arrives whole; a node paused after it is idle in its transaction,
// and the server ends it (Options.IdleInTxTimeout).
//
// # History rows
//
// Consecutive step records of one instance written in one InsertHistory
// call (a saga's chained steps) share one history row, up to 64 records: the
// row's columns are the first record, its more column (migration 0009) the
// others, as a JSON array (internal/payload). A record's ID is its row's
// identity times 64 plus its place in the row. The history key
// (history_by_instance) refuses a second step on a row's first position
// only; what makes a step commit once is the instance's version fence in the
// same transaction (PutInstances), as in evokesqlite. A node of a version
// from before migration 0009 refuses to open the schema after it
// (ErrSchemaTooNew): one already running keeps writing rows of
// one record, which this version reads, but would show packed rows' first
// record only, so upgrade every node.
//
// # Partition leases
//
// Store implements evokestore.Leaser and Tx implements
// evokestore.LeaseChecker (see leases.go): leases live in the leases table
// and are valid while their node's heartbeat row in nodes is, by the
// database's clock; every fenced transaction locks its lease rows FOR SHARE,
// so taking a partition over waits for the old owner's open transactions.
//
// # Query plans
//
// Lookups by many IDs (id = ANY($1)) are planned with their parameters each
// time (pgx.QueryExecModeExec) rather than as cached generic plans: evoke's
// tables grow from empty, and a generic plan made while a table was small
// would keep scanning it sequentially after it grew. Where the key has more
// than one column (events by stream, instances and their deadlines by
// process manager and ID) the lookup is a lateral join, one index lookup per
// ID: on a table not analysed yet (a new schema's first minutes) the planner
// otherwise used the key's first column alone and filtered the rest, reading
// every instance of the process manager for each batch.
package evokepg
