package evokepg_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/evoke-go/evoke/internal/bench"
)

// BenchmarkMachine measures the machine rather than evoke (bench.Machine):
// durable transactions of a minimal table from 8 connections.
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
