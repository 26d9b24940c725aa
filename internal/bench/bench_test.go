package bench_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/bench"
	"github.com/evoke-go/evoke/internal/cli"
)

func open(ctx context.Context, spec string) (evokestore.Store, error) {
	return cli.OpenStore(ctx, spec, &cli.OpenOpts{Create: true})
}

// runSmall runs a small bench with a few seeded in-flight instances on
// spec and checks the result as JSON.
func runSmall(t *testing.T, spec string) *bench.Target {
	t.Helper()
	ctx := context.Background()
	tgt, err := bench.OpenEmpty(ctx, spec, false, open)
	if err != nil {
		t.Fatal(err)
	}
	const orders, inflight = 150, bench.SeedChunk + 7
	seeded := 0
	res, err := bench.Run(ctx, tgt.Store, bench.Options{
		Orders: orders, InFlight: inflight, Stall: 30 * time.Second, Window: 10 * time.Millisecond,
		Config:       evokeConfig(),
		SeedProgress: func(done, _ int) { seeded = done },
		AfterSeed:    tgt.Settle,
	})
	if err != nil {
		tgt.Close(ctx, false)
		t.Fatal(err)
	}
	st, err := tgt.Store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Instances["order_fulfillment"][evokestore.StatusRunning]; seeded != inflight || got != inflight {
		t.Errorf("seeded %d, running instances %d; want %d", seeded, got, inflight)
	}

	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"store", "orders", "completed", "inflight", "sagas_per_sec", "events_per_sec", "step_latency_ms", "steady_step_latency_ms", "peak_rss_mb"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result lacks %q: %s", k, raw)
		}
	}
	lat, _ := m["step_latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p99", "max"} {
		if v, _ := lat[k].(float64); v <= 0 {
			t.Errorf("step_latency_ms.%s = %v, want > 0: %s", k, lat[k], raw)
		}
	}
	l := res.StepLatency
	if res.Completed != orders || res.Orders != orders || l.Count != 3*orders || l.P50 > l.P99 || l.P99 > l.Max {
		t.Errorf("result %s: want %d completed, %d commands measured, p50 <= p99 <= max", raw, orders, 3*orders)
	}
	if res.SteadyStepLatency.Count > l.Count {
		t.Errorf("%d steady steps of %d", res.SteadyStepLatency.Count, l.Count)
	}
	// A run shorter than the warm-up has no steady steps (TestSummariseSteps
	// covers the split itself).
	if res.Seconds < bench.WarmUp.Seconds()-0.1 && res.SteadyStepLatency.Count != 0 {
		t.Errorf("a %.2fs run has %d steady steps, want none before %v", res.Seconds, res.SteadyStepLatency.Count, bench.WarmUp)
	}
	if res.SagasPerSec <= 0 || res.EventsPerSec <= res.SagasPerSec || res.PeakRSSMB <= 0 {
		t.Errorf("rates and RSS %s", raw)
	}
	if res.CPUSeconds <= 0 || res.CPUPerSagaUS <= 0 || math.Abs(res.CPUPerSagaUS-res.CPUSeconds*1e6/orders) > 1 {
		t.Errorf("CPU %v s, %v µs per saga: want both positive and consistent", res.CPUSeconds, res.CPUPerSagaUS)
	}
	// The routers' time: every order was written by some batch, which
	// took time to prepare and to write; the writer cannot have been busy
	// for longer than the run (one router here).
	rc := res.Runtime
	if rc.Writes <= 0 || rc.Writes > int64(orders) || rc.PrepareSeconds <= 0 || rc.WriteSeconds <= 0 || rc.WriteWaitSeconds < 0 ||
		rc.WriterBusy <= 0 || rc.WriterBusy > 1.05 || math.Abs(rc.WriterBusy-rc.WriteSeconds/res.Seconds) > 1e-9 {
		t.Errorf("router time %+v over a %.2fs run", rc, res.Seconds)
	}
	// Each of an order's three commands follows one of its events.
	by := res.StepLatencyByTrigger
	if len(by) != 3 || by["OrderPlaced"].Count != orders || by["PaymentReceived"].Count != orders || by["InventoryReserved"].Count != orders {
		t.Errorf("step latency by trigger: %+v", by)
	}
	// Every command's step was seen to commit, after the aggregate decided
	// it (it runs inline, in the batch's preparation).
	c := res.CommitLatency
	if c.Count != l.Count || c.P50 < l.P50 || c.P99 < l.P99 || c.Max < l.Max || c.P50 > c.P99 || c.P99 > c.Max {
		t.Errorf("commit latency %+v, step latency %+v: want every command, each at or after its dispatch", c, l)
	}
	if cb := res.CommitLatencyByTrigger; len(cb) != 3 || cb["OrderPlaced"].Count != orders || cb["InventoryReserved"].Count != orders {
		t.Errorf("commit latency by trigger: %+v", cb)
	}
	// The orders were placed at once: one append (of up to 500 orders).
	if a := res.AppendLatency; a.Count != 1 || a.P50 <= 0 || a.P50 > a.P99 || a.P99 > a.Max {
		t.Errorf("append latency %+v: want the one append that placed %d orders", a, orders)
	}
	// The timeline accounts for every step, window by window.
	n := 0
	for i, w := range res.Timeline {
		n += w.Steps
		if want := float64(i) * 0.01; math.Abs(w.At-want) > 1e-9 || w.Steps > 0 && (w.P50 > w.P99 || w.P99 > w.Max) || w.PerSec != float64(w.Steps)*100 {
			t.Errorf("window %d = %+v", i, w)
		}
	}
	if n != l.Count {
		t.Errorf("the timeline holds %d steps, want %d", n, l.Count)
	}
	// The one append began before its events were stamped, so within
	// the timeline, in one window.
	shown := 0
	for _, w := range res.Timeline {
		if w.AppendMax > 0 {
			shown++
		}
	}
	if shown != 1 {
		t.Errorf("the timeline shows the one append in %d windows: %+v", shown, res.Timeline)
	}
	return tgt
}

// tiny batches make a small run take several transactions.
func evokeConfig() (c evoke.Config) {
	c.BatchSize, c.DispatchBatchSize, c.Workers = 64, 64, 2
	return c
}

// TestAppendLatencyPaced: a paced run reports each of its appends once,
// with consistent quantiles. How many appends it makes depends on how many
// 10 ms ticks the machine keeps up with (a loaded one coalesces them);
// BenchmarkAppendLatencyPaced measures that.
func TestAppendLatencyPaced(t *testing.T) {
	t.Parallel()
	res := runPaced(t)
	if a := res.AppendLatency; a.Count < 1 || a.Count > pacedOrders || a.P50 <= 0 || a.P50 > a.P99 || a.P99 > a.Max {
		t.Errorf("append latency %+v: want between 1 and %d appends (one per order at most), p50 <= p99 <= max", a, pacedOrders)
	}
	if res.Completed != pacedOrders {
		t.Errorf("%d of %d paced orders completed", res.Completed, pacedOrders)
	}
}

// BenchmarkAppendLatencyPaced reports how many appends a paced run makes
// per 10 ms slice of its placing (appends/slice: 1 when the machine keeps
// up with the ticks) and their median latency.
func BenchmarkAppendLatencyPaced(b *testing.B) {
	for b.Loop() {
		res := runPaced(b)
		slices := float64(pacedOrders) / pacedRate / 0.010
		b.ReportMetric(float64(res.AppendLatency.Count)/slices, "appends/slice")
		b.ReportMetric(res.AppendLatency.P50, "append-p50-ms")
	}
}

// A paced run: 120 orders at 1000/s, about 12 slices of 10 ms.
const pacedOrders, pacedRate = 120, 1000

// runPaced runs pacedOrders at pacedRate on an empty SQLite store.
func runPaced(tb testing.TB) bench.Result {
	tb.Helper()
	ctx := context.Background()
	tgt, err := bench.OpenEmpty(ctx, filepath.Join(tb.TempDir(), "paced.db"), false, open)
	if err != nil {
		tb.Fatal(err)
	}
	defer tgt.Close(ctx, false)
	res, err := bench.Run(ctx, tgt.Store, bench.Options{Orders: pacedOrders, Rate: pacedRate, Stall: 30 * time.Second, Config: evokeConfig()})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func TestBenchSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "bench.db")
	tgt := runSmall(t, db)
	if err := tgt.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	// The file is not empty now: refused without force, recreated with it.
	if _, err := bench.OpenEmpty(ctx, db, false, open); !errors.Is(err, bench.ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("OpenEmpty on a used file: %v", err)
	}
	tgt, err := bench.OpenEmpty(ctx, "sqlite:"+db, true, open)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close(ctx, false)
	if st, err := tgt.Store.Stats(ctx); err != nil || st.Events != 0 {
		t.Fatalf("after --force: %+v, %v", st, err)
	}
	if _, err := os.Stat(db + "-shm"); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

func TestBenchPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv("EVOKE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("PostgreSQL bench test disabled: set EVOKE_TEST_POSTGRES_URL to a database it may create schemas in, e.g. EVOKE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	ctx := context.Background()
	tgt := runSmall(t, base)
	if !strings.HasPrefix(tgt.Schema, "evoke_bench_") {
		t.Errorf("schema %q", tgt.Schema)
	}
	if err := tgt.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, tgt.Schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s still there after Close (%d, %v)", tgt.Schema, n, err)
	}
}

// The steady latencies are those of steps triggered from the given time on.
func TestSummariseSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var steps []bench.Step
	for i := range 10 { // a slow first second, then fast steps
		steps = append(steps, bench.Step{Trigger: t0.Add(time.Duration(i) * 100 * time.Millisecond), Latency: 40 * time.Millisecond})
	}
	for i := range 90 {
		steps = append(steps, bench.Step{Trigger: t0.Add(time.Second + time.Duration(i)*time.Millisecond), Latency: time.Duration(i+1) * 100 * time.Microsecond})
	}
	all, steady := bench.SummariseSteps(steps, t0.Add(time.Second))
	if all.Count != 100 || all.P99 != 40 || all.Max != 40 {
		t.Errorf("all = %+v, want 100 steps, p99 and max 40 ms", all)
	}
	if steady.Count != 90 || steady.P99 != 9 || steady.Max != 9 || steady.P50 != 4.5 {
		t.Errorf("steady = %+v, want 90 steps, p50 4.5 ms, p99 and max 9 ms", steady)
	}
}

// Steps are grouped by when their trigger was appended; an empty window
// stays, so that a stall shows.
func TestTimelineOf(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	steps := []bench.Step{
		{Trigger: t0.Add(10 * time.Millisecond), Latency: 2 * time.Millisecond, Committed: 7 * time.Millisecond},
		{Trigger: t0.Add(90 * time.Millisecond), Latency: 4 * time.Millisecond, Committed: 9 * time.Millisecond},
		{Trigger: t0.Add(250 * time.Millisecond), Latency: 30 * time.Millisecond},
		{Trigger: t0.Add(-time.Millisecond), Latency: time.Millisecond}, // before the start: the first window
	}
	got := bench.TimelineOf(steps, t0, 100*time.Millisecond)
	want := []bench.Window{
		{At: 0, Steps: 3, PerSec: 30, P50: 2, P99: 4, Max: 4, CommitP99: 9}, // of the two with a commit time
		{At: 0.1},
		{At: 0.2, Steps: 1, PerSec: 10, P50: 30, P99: 30, Max: 30},
	}
	if len(got) != len(want) {
		t.Fatalf("TimelineOf = %+v, want %+v", got, want)
	}
	for i := range want {
		if math.Abs(got[i].At-want[i].At) > 1e-9 || got[i].Steps != want[i].Steps || got[i].PerSec != want[i].PerSec || got[i].P50 != want[i].P50 || got[i].P99 != want[i].P99 || got[i].Max != want[i].Max || got[i].CommitP99 != want[i].CommitP99 {
			t.Errorf("window %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := bench.TimelineOf(steps, t0, 0); got != nil {
		t.Errorf("no window width: %+v", got)
	}
	// The producer's appends, by when they began: the longest of each
	// window; one past the last window is left out.
	appends := []bench.Append{
		{At: t0.Add(5 * time.Millisecond), Took: 1500 * time.Microsecond},
		{At: t0.Add(60 * time.Millisecond), Took: 12 * time.Millisecond},
		{At: t0.Add(210 * time.Millisecond), Took: 3 * time.Millisecond},
		{At: t0.Add(900 * time.Millisecond), Took: time.Second},
	}
	bench.AppendsInto(got, appends, t0, 100*time.Millisecond)
	if got[0].AppendMax != 12 || got[1].AppendMax != 0 || got[2].AppendMax != 3 {
		t.Errorf("AppendMax by window: %v, %v, %v; want 12, 0, 3", got[0].AppendMax, got[1].AppendMax, got[2].AppendMax)
	}
	if a := bench.SummariseAppends(appends); a != (bench.Latency{Count: 4, P50: 3, P99: 1000, Max: 1000}) {
		t.Errorf("SummariseAppends = %+v", a)
	}
	if by := bench.ByTrigger([]bench.Step{{Latency: time.Millisecond, Type: "A"}, {Latency: 3 * time.Millisecond, Type: "A"}, {Latency: 9 * time.Millisecond, Type: "B"}}); len(by) != 2 || by["A"] != (bench.Latency{Count: 2, P50: 1, P99: 3, Max: 3}) || by["B"].Count != 1 {
		t.Errorf("ByTrigger = %+v", by)
	}
}

// The timeline is drawn as well-formed SVG with its title, legend and
// target line, and an empty timeline still draws.
func TestTimelineSVG(t *testing.T) {
	t.Parallel()
	tl := []bench.Window{{At: 0, Steps: 5, PerSec: 50, P50: 1, P99: 2, Max: 3}, {At: 0.1, Steps: 0}, {At: 0.2, Steps: 9, PerSec: 90, P50: 5, P99: 45.5, Max: 60}}
	withCommits := slices.Clone(tl)
	withCommits[0].CommitP99, withCommits[2].CommitP99 = 8, 75
	withAppends := slices.Clone(tl)
	withAppends[2].AppendMax = 95
	for _, c := range []struct {
		tl     []bench.Window
		want   []string
		absent string
	}{
		{tl, []string{"run &lt;1&gt;", ">p99<", ">target 20 ms<", "stroke-dasharray", "steps/s", "<polyline"}, ">p99 to commit<"},
		{tl, nil, ">longest append<"},
		{withCommits, []string{">p99 to commit<", ">80<"}, ""},                  // the scale takes the commit p99 in
		{withAppends, []string{">longest append<", ">100<"}, ">p99 to commit<"}, // and the appends
		{nil, []string{"run &lt;1&gt;", ">p50<"}, ""},
	} {
		svg := string(bench.TimelineSVG("run <1>", c.tl, bench.TargetP99))
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			if _, err := d.Token(); err != nil {
				if err != io.EOF {
					t.Fatalf("not well-formed XML: %v\n%s", err, svg)
				}
				break
			}
		}
		for _, w := range c.want {
			if !strings.Contains(svg, w) {
				t.Errorf("%d windows: SVG lacks %q", len(c.tl), w)
			}
		}
		if c.absent != "" && strings.Contains(svg, c.absent) {
			t.Errorf("%d windows: SVG has %q", len(c.tl), c.absent)
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("%d windows: SVG has NaN or Inf coordinates", len(c.tl))
		}
	}
}

func TestSummarise(t *testing.T) {
	t.Parallel()
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if got := bench.Summarise(lat); got != (bench.Latency{Count: 100, P50: 50, P99: 99, Max: 100}) {
		t.Errorf("Summarise = %+v", got)
	}
	if got := bench.Summarise(nil); got != (bench.Latency{}) {
		t.Errorf("Summarise(nil) = %+v", got)
	}
}

// Calibrate measures the machine on the bench store's backend and leaves
// nothing behind: no scratch file next to a SQLite store, no schema in
// PostgreSQL.
func TestCalibrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	specs := []string{filepath.Join(t.TempDir(), "bench.db")}
	if u := os.Getenv("EVOKE_TEST_POSTGRES_URL"); u != "" {
		specs = append(specs, u)
	}
	for _, spec := range specs {
		m, err := bench.Calibrate(ctx, spec, 200*time.Millisecond)
		if err != nil {
			t.Fatalf("postgres %v: %v", bench.IsPostgres(spec), err)
		}
		// A transaction of 100 rows costs far less than 100 of one row.
		if m.TxPerSec <= 0 || m.RowsPerSec <= 2*m.TxPerSec {
			t.Errorf("postgres %v: %+v", bench.IsPostgres(spec), m)
		}
		if bench.IsPostgres(spec) {
			conn, err := pgx.Connect(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			err = conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'evoke_machine_%'`).Scan(&n)
			conn.Close(ctx)
			if err != nil || n != 0 {
				t.Errorf("%d scratch schemas left (%v)", n, err)
			}
		} else if left, _ := os.ReadDir(filepath.Dir(spec)); len(left) != 0 {
			t.Errorf("scratch files left next to the store: %v", left)
		}
	}
}
