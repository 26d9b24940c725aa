// Package evokesqlite is evoke's embedded storage backend: an
// [evokestore.Store] on a single SQLite file, using the pure-Go
// modernc.org/sqlite driver (no cgo).
//
// # Design
//
// The database runs in WAL mode. Writes go through one dedicated write
// connection (a *sql.DB limited to a single open connection) whose
// transactions start with BEGIN IMMEDIATE: Begin therefore serialises writers
// inside the process, and the immediate lock makes a writer of another
// process wait (up to Options.BusyTimeout) at Begin instead of failing later
// with an unrecoverable lock upgrade. Reads made outside a transaction go
// through a separate pool of read-only connections (Options.ReadConns) and,
// thanks to WAL, never block and are never blocked by the writer; they see
// the last committed state. Reads made through a Tx go through that Tx and
// see its own uncommitted writes.
//
// Every statement is prepared once per Store. Large slices are written with
// multi-row INSERT statements of a few fixed sizes, so a transaction that
// writes hundreds of rows costs a handful of statement executions.
//
// # Durability
//
// Options.Synchronous defaults to FULL: in WAL mode SQLite then fsyncs the
// write-ahead log on every commit, so a transaction whose Commit returned nil
// survives a process crash and a power failure. NORMAL fsyncs only at
// checkpoints: it is faster and still never corrupts the database, but the
// last transactions committed before a power failure (not a mere process
// crash) may be lost. OFF leaves syncing to the operating system.
//
// # Schema
//
// The schema is created and upgraded by versioned migrations embedded in the
// binary (migrations/NNNN_name.sql), applied by Open in one transaction and
// recorded in the evoke_migrations table. Opening a database whose schema is
// newer than the binary fails with ErrSchemaTooNew. Times are stored as
// INTEGER unix nanoseconds (UTC, 0 for the zero time) and JSON documents as
// BLOBs. A history record is its key (process manager, instance, position,
// step key), its ID and one JSON array with the rest (migration 0011), and
// a command outcome its command ID, its time, whether it was rejected and
// one JSON array (0012):
// the driver binds every value of an INSERT on its own, copying each
// string into C memory, and nothing looks these rows up by the other
// values, so each is one value instead of eleven or eight (PostgreSQL
// keeps a column each: pgx sends a bulk insert's columns as arrays).
// An instance's consecutive steps written in one call (a saga's chained
// steps) share one history row, keyed by the first, whose JSON array holds
// each record's array followed by its position and ID: one row instead of
// four per saga. The key then refuses a second step on a row's first
// position only; what makes a step commit once is the instance's version
// fence, which the same transaction writes. (Migration 0013 moves the
// schema version for it, so that older binaries refuse such a file.)
//
// # Input
//
// The store takes the input evokestore's input contract allows, the same as
// evokepg, although SQLite itself would store any bytes: Tx.AppendEvents
// checks its events first (evokestore.CheckNewEvents) and fails with
// evokestore.ErrInvalid, appending nothing, so that a log written here
// can move to PostgreSQL and what one store accepts the other does too.
//
// # Notifications
//
// Subscribe is an in-process fan-out: after a Tx that wrote events, outbox
// commands or deadlines commits, every subscriber of the matching topic is
// woken. Commits made by other processes sharing the file are not signalled;
// workers should also poll.
package evokesqlite
