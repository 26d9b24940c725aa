package evokepg_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkMachine measures the machine rather than evoke: durable
// transactions of a minimal table (id, short text) from 8 connections, one
// row per transaction and 100 rows per multi-row INSERT. Issue 5 and SPEC
// §6.6 quote these figures for "this kind of machine" (~8,400
// transactions/s, ~250,000 rows/s batched); run it next to `evoke bench`
// to tell a slower day of the machine from a slower evoke
// (docs/benchmarks.md).
func BenchmarkMachine(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows-per-tx=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			schema := pgx.Identifier{newSchema(b)}.Sanitize()
			cfg, err := pgxpool.ParseConfig(testURL(b))
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxConns = 8
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			if _, err := pool.Exec(ctx, `CREATE SCHEMA `+schema+`; CREATE TABLE `+schema+`.t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			var values strings.Builder
			args := make([]any, batch)
			for i := range batch {
				if i > 0 {
					values.WriteString(",")
				}
				fmt.Fprintf(&values, "($%d)", i+1)
				args[i] = "order-fulfilment-payload"
			}
			insert := `INSERT INTO ` + schema + `.t (v) VALUES ` + values.String()
			var rows atomic.Int64
			b.SetParallelism(4) // 8 goroutines on the 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := pool.Exec(ctx, insert, args...); err != nil {
						b.Error(err)
						return
					}
					rows.Add(int64(batch))
				}
			})
			b.ReportMetric(float64(rows.Load())/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
