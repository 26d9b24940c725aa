package evokesqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/evoke-go/evoke/internal/bench"
)

// BenchmarkMachine measures the machine rather than evoke (bench.Machine):
// durable transactions of a minimal table on the store's pragmas.
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
