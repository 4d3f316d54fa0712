// Package metrics owns the server's Prometheus metrics: one registry per
// server (never the global default, so two servers or two tests never
// share a count), the metrics on it, and the methods every layer records
// through. It imports nothing of Weir, so any package may import it
// without breaking the dependency direction of docs/design.md; a layer is
// handed a *Metrics by weir serve and a nil *Metrics records nothing, so
// unit tests and offline commands need none.
//
// It must never read client-controlled text into a label: repo, branch
// and user names are unbounded, so no metric is labelled by them. Labels
// are closed sets the server chooses (a run's state, a Git service, a
// result).
//
// The metrics, as /metrics shows them:
//
//	weir_runs_total{state}                    counter   runs that ended, by state (succeeded, failed, cancelled, refused)
//	weir_runs_started_total                   counter   runs admitted (a run slot granted)
//	weir_run_queue_length                     gauge     pushes waiting for a run slot or for their branch
//	weir_runs_running                         gauge     runs holding a run slot
//	weir_run_queue_wait_seconds               histogram how long admitted runs waited
//	weir_run_duration_seconds                 histogram how long runs ran, from admission to end
//	weir_push_duration_seconds                histogram receive-pack sessions, runs included
//	weir_git_received_bytes_total{service}    counter   bytes gitserver read from clients
//	weir_git_sent_bytes_total{service}        counter   bytes gitserver wrote to clients
//	weir_rest_commit_seconds{code}            histogram Iceberg REST commits (table and transaction), by HTTP status class
//	weir_sandbox_starts_total                 counter   node sandboxes asked to run
//	weir_sandbox_failures_total               counter   sandboxes that could not run their node (not a node's own failure)
//	weir_gc_runs_total{result}                counter   garbage collections, by result (ok, error)
//	weir_gc_freed_objects_total               counter   objects garbage collection deleted
//	weir_gc_freed_bytes_total                 counter   bytes garbage collection freed
//	weir_gc_last_success_timestamp_seconds    gauge     when the last collection succeeded
//
// plus the Go runtime's and the process's own (go_*, process_*).
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one server's metrics. The zero of *Metrics (nil) records
// nothing; every method may be called on it.
type Metrics struct {
	reg *prometheus.Registry

	runs        *prometheus.CounterVec
	runsStarted prometheus.Counter
	queueWait   prometheus.Histogram
	runDuration prometheus.Histogram
	push        prometheus.Histogram
	received    *prometheus.CounterVec
	sent        *prometheus.CounterVec
	restCommit  *prometheus.HistogramVec
	sbStarts    prometheus.Counter
	sbFailures  prometheus.Counter
	gcRuns      *prometheus.CounterVec
	gcObjects   prometheus.Counter
	gcBytes     prometheus.Counter
	gcLast      prometheus.Gauge
}

// Run states and Git services the labels take; anything else is counted
// as "other", so a label set stays closed.
var (
	runStates   = []string{"succeeded", "failed", "cancelled", "refused"}
	gitServices = []string{"git-upload-pack", "git-receive-pack", "git-upload-archive"}
)

// durations are histogram buckets from 10 ms to about 45 min.
var durations = prometheus.ExponentialBuckets(0.01, 2.5, 12)

// New returns metrics on a registry of their own, with the Go runtime's
// and the process's collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_runs_total", Help: "Pipeline runs that ended, by state."}, []string{"state"})
	m.runsStarted = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_runs_started_total", Help: "Pipeline runs admitted to a run slot."})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weir_run_queue_wait_seconds", Help: "How long admitted runs waited in the run queue.", Buckets: durations})
	m.runDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weir_run_duration_seconds", Help: "How long runs ran, from admission to their end.", Buckets: durations})
	m.push = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weir_push_duration_seconds", Help: "Duration of receive-pack sessions (git push), pipeline runs included.", Buckets: durations})
	m.received = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_git_received_bytes_total", Help: "Bytes the Git server read from clients, by service."}, []string{"service"})
	m.sent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_git_sent_bytes_total", Help: "Bytes the Git server wrote to clients, by service."}, []string{"service"})
	m.restCommit = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weir_rest_commit_seconds", Help: "Latency of Iceberg REST commits (table and transaction commits), by HTTP status class.", Buckets: durations}, []string{"code"})
	m.sbStarts = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_sandbox_starts_total", Help: "Node sandboxes asked to run."})
	m.sbFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_sandbox_failures_total", Help: "Sandboxes that could not run their node (not the node's own failure)."})
	m.gcRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_gc_runs_total", Help: "Garbage collections, by result."}, []string{"result"})
	m.gcObjects = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_gc_freed_objects_total", Help: "Objects garbage collection deleted."})
	m.gcBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_gc_freed_bytes_total", Help: "Bytes garbage collection freed (objects and warehouse files)."})
	m.gcLast = prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_gc_last_success_timestamp_seconds", Help: "Unix time of the last successful garbage collection."})
	m.reg.MustRegister(m.runs, m.runsStarted, m.queueWait, m.runDuration, m.push, m.received, m.sent,
		m.restCommit, m.sbStarts, m.sbFailures, m.gcRuns, m.gcObjects, m.gcBytes, m.gcLast,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every label value that can occur, at zero: a scrape shows them
	// before the first event.
	for _, st := range runStates {
		m.runs.WithLabelValues(st)
	}
	for _, s := range gitServices {
		m.received.WithLabelValues(s)
		m.sent.WithLabelValues(s)
	}
	for _, r := range []string{"ok", "error"} {
		m.gcRuns.WithLabelValues(r)
	}
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Gauge registers a gauge whose value f gives at each scrape (f must be
// quick and safe to call from any goroutine). name must be new.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

func closed(v string, set []string) string {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return "other"
}

// RunStarted records a run admitted after waiting wait.
func (m *Metrics) RunStarted(wait time.Duration) {
	if m == nil {
		return
	}
	m.runsStarted.Inc()
	m.queueWait.Observe(wait.Seconds())
}

// RunEnded records a run that ended in state ("succeeded", "failed",
// "cancelled", "refused"); ran is how long it ran (zero if it never
// started, then it is not observed as a duration).
func (m *Metrics) RunEnded(state string, ran time.Duration) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(closed(state, runStates)).Inc()
	if ran > 0 {
		m.runDuration.Observe(ran.Seconds())
	}
}

// Push records one receive-pack session's duration.
func (m *Metrics) Push(d time.Duration) {
	if m == nil {
		return
	}
	m.push.Observe(d.Seconds())
}

// GitBytes records bytes read from and written to a client by a Git
// service ("git-upload-pack", "git-receive-pack", "git-upload-archive").
func (m *Metrics) GitBytes(service string, received, sent int64) {
	if m == nil {
		return
	}
	service = closed(service, gitServices)
	m.received.WithLabelValues(service).Add(float64(received))
	m.sent.WithLabelValues(service).Add(float64(sent))
}

// RESTCommit records one Iceberg REST commit that answered with HTTP
// status code after d.
func (m *Metrics) RESTCommit(code int, d time.Duration) {
	if m == nil {
		return
	}
	class := "5xx"
	switch {
	case code < 300:
		class = "2xx"
	case code < 400:
		class = "3xx"
	case code < 500:
		class = "4xx"
	}
	m.restCommit.WithLabelValues(class).Observe(d.Seconds())
}

// SandboxStarted records a sandbox asked to run a node; failed that it
// could not (the runner's error, not the node's exit status).
func (m *Metrics) SandboxStarted(failed bool) {
	if m == nil {
		return
	}
	m.sbStarts.Inc()
	if failed {
		m.sbFailures.Inc()
	}
}

// GCResult is what one garbage collection freed.
type GCResult struct {
	Objects int64 // objects deleted
	Bytes   int64 // bytes freed, objects and warehouse files
}

// GC records one garbage collection: what it freed, or err.
func (m *Metrics) GC(r GCResult, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.gcRuns.WithLabelValues("error").Inc()
		return
	}
	m.gcRuns.WithLabelValues("ok").Inc()
	m.gcObjects.Add(float64(r.Objects))
	m.gcBytes.Add(float64(r.Bytes))
	m.gcLast.SetToCurrentTime()
}
