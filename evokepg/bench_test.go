package evokepg_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokestore"
)

// openBench opens a store for a benchmark; with async, its commits do not
// wait for the WAL to reach the disk (synchronous_commit=off), which shows
// the cost of everything but the fsync.
func openBench(b *testing.B, async bool) *evokepg.Store {
	url := testURL(b)
	if async {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "synchronous_commit=off"
	}
	schema := newSchema(b)
	s, err := evokepg.Open(context.Background(), url, &evokepg.Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

var commitModes = []struct {
	name  string
	async bool
}{{"commit=sync", false}, {"commit=async", true}}

func benchAppend(b *testing.B, batch int, async bool) {
	s := openBench(b, async)
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

// BenchmarkAppendEvents measures committed appends from one goroutine: one
// transaction per iteration (BEGIN, lock, notify and insert in one round
// trip, then COMMIT).
func BenchmarkAppendEvents(b *testing.B) {
	for _, m := range commitModes {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", m.name, batch), func(b *testing.B) { benchAppend(b, batch, m.async) })
		}
	}
}

// BenchmarkAppendEventsParallel measures single-event appends from 8
// goroutines, which queue on the append lock.
func BenchmarkAppendEventsParallel(b *testing.B) {
	s := open(b, newSchema(b), nil)
	ctx := context.Background()
	data := []byte(`{"order":"o-1","amount":1250,"currency":"EUR"}`)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			tx, err := s.Begin(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "ev-" + strconv.FormatInt(n, 10), StreamID: "s-" + strconv.FormatInt(n, 10), StreamVersion: 1, Type: "OrderPlaced", Data: data}})
			if err != nil {
				tx.Rollback()
				b.Error(err)
				return
			}
			if err := tx.Commit(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(next.Load())/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPutInstances measures committed batches of 100 instance inserts
// and of 100 fenced updates.
func BenchmarkPutInstances(b *testing.B) {
	const batch = 100
	for _, m := range commitModes {
		for _, mode := range []string{"insert", "update"} {
			b.Run(fmt.Sprintf("%s/%s/batch=%d", m.name, mode, batch), func(b *testing.B) { benchPut(b, mode, batch, m.async) })
		}
	}
}

func benchPut(b *testing.B, mode string, batch int, async bool) {
	s := openBench(b, async)
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
				ws[i].PrevVersion, ws[i].Version = ws[i].Version, ws[i].Version+1
			}
		}
		put()
		rows += batch
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
