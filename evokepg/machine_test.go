package evokepg_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/evoke-go/evoke/internal/bench"
)

// BenchmarkMachine measures the machine rather than evoke: durable
// transactions of a minimal table from 8 connections, one row per
// transaction and 100 rows per multi-row INSERT (bench.Machine; `evoke
// bench --calibrate` reports the same with a run). Issue 5 and SPEC §6.6
// quote these figures for "this kind of machine" (~8,400 transactions/s,
// ~250,000 rows/s batched); run it next to `evoke bench` to tell a slower
// day of the machine from a slower evoke.
func BenchmarkMachine(b *testing.B) {
	for _, rows := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows-per-tx=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			m, err := bench.OpenMachinePostgres(ctx, testURL(b))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var n atomic.Int64
			b.SetParallelism(m.Parallel / 2) // 8 goroutines on the 2 cores
			b.RunParallel(func(pb *testing.PB) {
				insert := m.Inserter(rows)
				for pb.Next() {
					if err := insert(ctx); err != nil {
						b.Error(err)
						return
					}
					n.Add(int64(rows))
				}
			})
			b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
