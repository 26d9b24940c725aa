package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Machine is what the machine itself does on a store backend, measured on
// a minimal table (an identity and a short text): durable transactions of
// one row per second, and rows per second in transactions of 100 rows.
// The shared 2-core machines of docs/benchmarks.md do about SQLite ~5,700
// and ~280,000 (synchronous=FULL) and PostgreSQL over 8 connections ~8,400
// and ~250,000; a bench run reported with them can be compared with one
// made on another machine or another day.
type Machine struct {
	TxPerSec   float64 `json:"tx_per_sec"`
	RowsPerSec float64 `json:"rows_per_sec"`
}

// MachineTable is the minimal table Machine is measured on.
type MachineTable struct {
	// Parallel is how many transactions run at once: 1 on SQLite (one
	// writer), 8 on PostgreSQL.
	Parallel int
	table    string // its name in SQL
	insert   func(ctx context.Context, query string, args []any) error
	close    func() error
}

// OpenMachineSQLite makes the table in a new SQLite file at path, with the
// pragmas evokesqlite's writer uses (WAL, synchronous=FULL). Close leaves
// the file.
func OpenMachineSQLite(ctx context.Context, path string) (*MachineTable, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("machine table: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("machine table: %w", err)
	}
	return &MachineTable{
		Parallel: 1,
		table:    "t",
		insert: func(ctx context.Context, query string, args []any) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		},
		close: db.Close, // the file stays: the caller made its place
	}, nil
}

// OpenMachinePostgres makes the table in a new schema of the database at
// rawURL (its evoke_schema parameter is ignored), dropped by Close.
func OpenMachinePostgres(ctx context.Context, rawURL string) (*MachineTable, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("machine table: %w", err)
	}
	q := u.Query()
	q.Del("evoke_schema")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("machine table: %w", err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("machine table: %w", err)
	}
	schema := pgx.Identifier{fmt.Sprintf("evoke_machine_%d", time.Now().UnixNano())}.Sanitize()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+schema+`; CREATE TABLE `+schema+`.t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text NOT NULL)`); err != nil {
		pool.Close()
		return nil, fmt.Errorf("machine table: %w", err)
	}
	return &MachineTable{
		Parallel: 8,
		table:    schema + ".t",
		insert: func(ctx context.Context, query string, args []any) error {
			_, err := pool.Exec(ctx, query, args...)
			return err
		},
		close: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := pool.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`)
			pool.Close()
			return err
		},
	}, nil
}

// Inserter returns a function that commits one transaction of rows rows.
// It is not safe for concurrent use: make one per goroutine.
func (m *MachineTable) Inserter(rows int) func(ctx context.Context) error {
	var values strings.Builder
	args := make([]any, rows)
	for i := range rows {
		if i > 0 {
			values.WriteString(",")
		}
		fmt.Fprintf(&values, "($%d)", i+1)
		args[i] = "order-fulfilment-payload"
	}
	query := `INSERT INTO ` + m.table + ` (v) VALUES ` + values.String()
	return func(ctx context.Context) error { return m.insert(ctx, query, args) }
}

// Close closes the table's database (and drops a PostgreSQL schema).
func (m *MachineTable) Close() error { return m.close() }

// Measure runs transactions of rows rows for d from m.Parallel goroutines
// and returns the rows committed per second.
func (m *MachineTable) Measure(ctx context.Context, rows int, d time.Duration) (float64, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, m.Parallel)
	start := time.Now()
	deadline := start.Add(d)
	for g := range m.Parallel {
		insert := m.Inserter(rows)
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := insert(ctx); err != nil {
					errs[g] = err
					return
				}
				n.Add(int64(rows))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("measure the machine: %w", err)
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// Calibrate measures the machine on the backend of the bench store spec:
// for SQLite in a scratch file next to it (the same file system), for
// PostgreSQL in a scratch schema of its database. Each of the two figures
// takes d.
func Calibrate(ctx context.Context, spec string, d time.Duration) (Machine, error) {
	var m *MachineTable
	var err error
	if IsPostgres(spec) {
		m, err = OpenMachinePostgres(ctx, spec)
	} else {
		var dir string
		if dir, err = os.MkdirTemp(filepath.Dir(sqlitePath(spec)), "evoke-machine-"); err != nil {
			return Machine{}, fmt.Errorf("measure the machine: %w", err)
		}
		defer os.RemoveAll(dir)
		m, err = OpenMachineSQLite(ctx, filepath.Join(dir, "machine.db"))
	}
	if err != nil {
		return Machine{}, err
	}
	var res Machine
	if res.TxPerSec, err = m.Measure(ctx, 1, d); err == nil {
		res.RowsPerSec, err = m.Measure(ctx, 100, d)
	}
	return res, errors.Join(err, m.Close())
}
