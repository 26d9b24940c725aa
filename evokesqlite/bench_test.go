package evokesqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
)

func benchAppend(b *testing.B, batch int, sync string) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), &evokesqlite.Options{Synchronous: sync})
	ctx := context.Background()
	data := []byte(`{"order":"o-1","amount":1250,"currency":"EUR"}`)
	evs := make([]evokestore.NewEvent, batch)
	now := time.Now()
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range evs {
			n++
			evs[i] = evokestore.NewEvent{
				ID: "ev-" + strconv.Itoa(n), StreamID: "stream-" + strconv.Itoa(n%1000), StreamVersion: int64(n/1000 + 1),
				Type: "OrderPlaced", Data: data, CorrelationID: "corr", CausationID: "cause", RecordedAt: now,
			}
		}
		tx, err := s.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.AppendEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkAppendEvents measures committed appends: with synchronous=FULL
// (the default, one fsync per commit) and OFF (no fsync, the CPU cost).
func BenchmarkAppendEvents(b *testing.B) {
	for _, sync := range []string{"FULL", "OFF"} {
		for _, batch := range []int{1, 100, 500} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", sync, batch), func(b *testing.B) { benchAppend(b, batch, sync) })
		}
	}
}

func BenchmarkPutInstances(b *testing.B) {
	for _, batch := range []int{100, 500} {
		for _, mode := range []string{"insert", "update"} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, batch), func(b *testing.B) {
				s := open(b, filepath.Join(b.TempDir(), "bench.db"), nil)
				ctx := context.Background()
				state := []byte(`{"status":"waiting","items":[1,2,3],"total":1250}`)
				ws := make([]evokestore.InstanceWrite, batch)
				now := time.Now()
				for i := range ws {
					ws[i] = evokestore.InstanceWrite{PrevVersion: -1, Instance: evokestore.Instance{
						ProcessManager: "orders", ID: "i-" + strconv.Itoa(i), State: state, Version: 1,
						Status: evokestore.StatusRunning, Phase: "waiting", CreatedAt: now, UpdatedAt: now,
					}}
				}
				put := func() {
					tx, err := s.Begin(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if err := tx.PutInstances(ctx, ws); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				if mode == "update" {
					put()
				}
				rows, round := 0, 0
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					round++
					for i := range ws {
						if mode == "insert" {
							ws[i].ID = "i-" + strconv.Itoa(round) + "-" + strconv.Itoa(i)
						} else {
							ws[i].PrevVersion = ws[i].Version
							ws[i].Version++
						}
					}
					put()
					rows += batch
				}
				b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkWriteStep measures the rows a chained order saga writes besides
// its events: four history records and three command outcomes per saga, in
// transactions of 64 sagas, without fsync (synchronous=OFF: the CPU cost,
// which is what the single writer spends). Values are shaped like the
// router's: one process manager and node per batch, empty errors.
func BenchmarkWriteStep(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), &evokesqlite.Options{Synchronous: "OFF"})
	ctx := context.Background()
	const sagas = 64
	hs := make([]evokestore.HistoryRecord, 0, 4*sagas)
	ocs := make([]evokestore.CommandOutcome, 0, 3*sagas)
	cmds := []byte(`[{"id":"0190c1f2-7a3b-8c4d-9e5f-0a1b2c3d4e5f","type":"ProcessPayment","aggregate_type":"payment","aggregate_id":"order-00000001"}]`)
	now := time.Now()
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		hs, ocs = hs[:0], ocs[:0]
		for range sagas {
			n++
			inst := fmt.Sprintf("order-%08d", n)
			for k, ph := range []string{"awaiting_payment", "awaiting_inventory", "awaiting_shipping", "completed"} {
				hs = append(hs, evokestore.HistoryRecord{
					ProcessManager: "order-fulfilment", InstanceID: inst, Kind: evokestore.KindStep, Version: int64(k + 1),
					Position: int64(4*n + k), EventID: fmt.Sprintf("0190c1f2-7a3b-8c4d-9e5f-%012d", 4*n+k), EventType: "PaymentReceived",
					PhaseBefore: "awaiting_payment", PhaseAfter: ph, Commands: cmds, RecordedAt: now, Node: "host-1234-0a1b2c3d", LeaseToken: 7,
				})
				if k < 3 {
					ocs = append(ocs, evokestore.CommandOutcome{
						CommandID: fmt.Sprintf("0190c1f2-7a3b-8c4d-9e5f-%012d", 3*n+k), Type: "ProcessPayment", AggregateType: "payment",
						AggregateID: inst, ProcessManager: "order-fulfilment", InstanceID: inst, Status: evokestore.OutcomeAccepted,
						Events: 1, RecordedAt: now,
					})
				}
			}
		}
		tx, err := s.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.InsertHistory(ctx, hs); err != nil {
			b.Fatal(err)
		}
		if err := tx.PutCommandOutcomes(ctx, ocs); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/saga")
}
