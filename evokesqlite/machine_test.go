package evokesqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// BenchmarkMachine measures the machine rather than evoke: durable
// transactions of a minimal table (id, short text), on the pragmas the
// store uses (WAL, synchronous=FULL), one row per transaction and 100 rows
// per multi-row INSERT. Issue 5 and SPEC §6.6 quote these two figures for
// "this kind of machine" (~5,700 transactions/s and ~280,000 rows/s); run
// it next to `evoke bench` to tell a slower day of the machine from a
// slower evoke (docs/benchmarks.md).
func BenchmarkMachine(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows-per-tx=%d", batch), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "machine.db")
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			insert := `INSERT INTO t (v) VALUES ` + strings.TrimSuffix(strings.Repeat("(?),", batch), ",")
			args := make([]any, batch)
			for i := range args {
				args[i] = "order-fulfilment-payload"
			}
			rows := 0
			b.ResetTimer()
			for b.Loop() {
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.Exec(insert, args...); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				rows += batch
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
