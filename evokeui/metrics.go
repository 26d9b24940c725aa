package evokeui

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
)

// RuntimeStats is implemented by *evoke.Runtime: when Options.Actions has
// it, /metrics exports the runtime's counters too.
type RuntimeStats interface {
	Stats() evoke.Stats
}

var _ RuntimeStats = (*evoke.Runtime)(nil)

// metricsTimeout bounds the store reads of one scrape.
const metricsTimeout = 10 * time.Second

// The store's metrics, read at each scrape.
var (
	mEvents    = prometheus.NewDesc("evoke_log_events", "Events in the log.", nil, nil)
	mHead      = prometheus.NewDesc("evoke_log_head_position", "Highest committed log position.", nil, nil)
	mOutbox    = prometheus.NewDesc("evoke_outbox_commands", "Commands queued in the outbox, not executed yet.", nil, nil)
	mExecuted  = prometheus.NewDesc("evoke_commands_executed", "Commands executed, those executed with their step included (when the store can count them), as the store holds them.", nil, nil)
	mRejected  = prometheus.NewDesc("evoke_commands_rejected", "Commands rejected, among those executed.", nil, nil)
	mInstances = prometheus.NewDesc("evoke_instances", "Instances that have not ended, by process manager and status.", []string{"process_manager", "status"}, nil)
	mEnded     = prometheus.NewDesc("evoke_instances_ended", "Instances that ended, by process manager and outcome (until retention purges them).", []string{"process_manager", "outcome"}, nil)
	mParkedEv  = prometheus.NewDesc("evoke_parked_events", "Events parked for a process manager because its Correlate failed.", []string{"process_manager"}, nil)
	mLag       = prometheus.NewDesc("evoke_checkpoint_lag_events", "Log head less the lowest checkpoint of the process manager's partitions.", []string{"process_manager"}, nil)
	mLeases    = prometheus.NewDesc("evoke_partitions_leased", "Partitions leased to a live node (stores with leases only).", []string{"node"}, nil)
	mUnleased  = prometheus.NewDesc("evoke_partitions_unleased", "Partitions no live node leases: no runtime steps their instances (stores with leases only).", nil, nil)
	mUp        = prometheus.NewDesc("evoke_store_up", "1 if the last scrape read the store, else 0.", nil, nil)
)

// runtimeCounter is one counter of evoke.Stats.
type runtimeCounter struct {
	desc *prometheus.Desc
	get  func(s *evoke.Stats) float64
}

func counter(name, help string, get func(s *evoke.Stats) float64) runtimeCounter {
	return runtimeCounter{prometheus.NewDesc("evoke_runtime_"+name, help, nil, nil), get}
}

// runtimeCounters are the runtime's counters, since it started.
var runtimeCounters = []runtimeCounter{
	counter("steps_total", "Steps taken.", func(s *evoke.Stats) float64 { return float64(s.Steps) }),
	counter("batches_total", "Batches of steps.", func(s *evoke.Stats) float64 { return float64(s.Batches) }),
	counter("commands_total", "Commands issued.", func(s *evoke.Stats) float64 { return float64(s.Commands) }),
	counter("dispatched_total", "Commands executed.", func(s *evoke.Stats) float64 { return float64(s.Dispatched) }),
	counter("rejected_total", "Commands rejected.", func(s *evoke.Stats) float64 { return float64(s.Rejected) }),
	counter("failures_total", "Failed steps.", func(s *evoke.Stats) float64 { return float64(s.Failures) }),
	counter("parked_total", "Instances parked.", func(s *evoke.Stats) float64 { return float64(s.Parked) }),
	counter("completed_total", "Instances completed.", func(s *evoke.Stats) float64 { return float64(s.Completed) }),
	counter("dropped_total", "Events dropped (for ended or missing instances, or stale deadlines).", func(s *evoke.Stats) float64 {
		return float64(s.DroppedCompleted + s.DroppedStop + s.DroppedStrict + s.DroppedStale)
	}),
	counter("correlate_errors_total", "Events parked because Correlate failed.", func(s *evoke.Stats) float64 { return float64(s.CorrelateErrors) }),
	counter("suppressed_total", "Commands suppressed while catching up.", func(s *evoke.Stats) float64 { return float64(s.Suppressed) }),
	counter("purged_total", "Instances purged after the retention.", func(s *evoke.Stats) float64 { return float64(s.Purged) }),
	counter("lease_lost_total", "Transactions fenced off by a lost partition lease.", func(s *evoke.Stats) float64 { return float64(s.LeaseLost) }),
	counter("conflicts_total", "Transactions run again after a conflict.", func(s *evoke.Stats) float64 { return float64(s.Conflicts) }),
	counter("inline_fallbacks_total", "Batches whose inline commands were queued instead.", func(s *evoke.Stats) float64 { return float64(s.InlineFallbacks) }),
	counter("chained_total", "Steps committed as chained follow-on steps.", func(s *evoke.Stats) float64 { return float64(s.Chained) }),
	counter("writes_total", "Batches written.", func(s *evoke.Stats) float64 { return float64(s.Writes) }),
	counter("prepare_seconds_total", "Time spent preparing batches.", func(s *evoke.Stats) float64 { return s.PrepareTime.Seconds() }),
	counter("write_wait_seconds_total", "Time prepared batches waited for the one before.", func(s *evoke.Stats) float64 { return s.WriteWait.Seconds() }),
	counter("write_seconds_total", "Time spent writing batches.", func(s *evoke.Stats) float64 { return s.WriteTime.Seconds() }),
}

// collector reads the store (and the runtime, if any) at each scrape.
type collector struct{ u *ui }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mEvents, mHead, mOutbox, mExecuted, mRejected, mInstances, mEnded, mParkedEv, mLag, mLeases, mUnleased, mUp} {
		ch <- d
	}
	if _, ok := c.u.opts.Actions.(RuntimeStats); ok {
		for _, rc := range runtimeCounters {
			ch <- rc.desc
		}
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if rs, ok := c.u.opts.Actions.(RuntimeStats); ok {
		s := rs.Stats()
		for _, rc := range runtimeCounters {
			ch <- prometheus.MustNewConstMetric(rc.desc, prometheus.CounterValue, rc.get(&s))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsTimeout)
	defer cancel()
	snap, err := c.u.snapshot(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(mUp, err)
		gauge(mUp, 0)
		return
	}
	gauge(mUp, 1)
	gauge(mEvents, float64(snap.Stats.Events))
	gauge(mHead, float64(snap.Stats.Head))
	gauge(mOutbox, float64(snap.Stats.Outbox))
	gauge(mExecuted, float64(snap.Executed))
	gauge(mRejected, float64(snap.Rejected))
	for _, p := range snap.PMs {
		for i, st := range liveStatuses {
			gauge(mInstances, float64(p.Live[i]), p.PM, string(st))
		}
		for i, o := range evokestore.Outcomes {
			gauge(mEnded, float64(p.Ended[i]), p.PM, string(o))
		}
		gauge(mParkedEv, float64(p.ParkedEvents), p.PM)
		if p.Partitions > 0 {
			gauge(mLag, float64(p.Lag), p.PM)
		}
	}
	if lr, ok := c.u.st.(evokestore.LeaseReader); ok {
		leases, err := lr.PartitionLeases(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(mLeases, err)
			return
		}
		byNode, unleased := map[string]int{}, 0
		for _, l := range leases {
			if l.Node != "" && l.Alive {
				byNode[l.Node]++
			} else {
				unleased++
			}
		}
		for n, k := range byNode {
			gauge(mLeases, float64(k), n)
		}
		gauge(mUnleased, float64(unleased))
	}
}

// metricsHandler serves the Prometheus text exposition of the store's
// (and runtime's) metrics, with the Go runtime's and the process's.
func (u *ui) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{u}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
