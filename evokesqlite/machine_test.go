package evokesqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/evoke-go/evoke/internal/bench"
)

// BenchmarkMachine measures the machine rather than evoke: durable
// transactions of a minimal table on the pragmas the store uses (WAL,
// synchronous=FULL), one row per transaction and 100 rows per multi-row
// INSERT (bench.Machine; `evoke bench --calibrate` reports the same with a
// run). Issue 5 and SPEC §6.6 quote these two figures for "this kind of
// machine" (~5,700 transactions/s and ~280,000 rows/s); run it next to
// `evoke bench` to tell a slower day of the machine from a slower evoke.
func BenchmarkMachine(b *testing.B) {
	for _, rows := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows-per-tx=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			m, err := bench.OpenMachineSQLite(ctx, filepath.Join(b.TempDir(), "machine.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			insert := m.Inserter(rows)
			n := 0
			for b.Loop() {
				if err := insert(ctx); err != nil {
					b.Fatal(err)
				}
				n += rows
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
