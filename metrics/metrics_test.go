package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
)

// TestMetrics: what is recorded is what a scrape parses back; unknown
// label values fold into "other"; two Metrics share nothing; a nil
// *Metrics records nothing and does not panic.
func TestMetrics(t *testing.T) {
	var none *Metrics
	none.RunEnded("succeeded", time.Second)
	none.GitBytes("git-upload-pack", 1, 2)
	none.GC(GCResult{Objects: 1}, nil)
	none.Gauge("x", "x", func() float64 { return 1 })

	m, other := New(), New()
	m.RunStarted(time.Second)
	m.RunEnded("succeeded", 2*time.Second)
	m.RunEnded("failed", 0)
	m.RunEnded("evil\"label", 0)
	m.GitBytes("git-receive-pack", 1000, 10)
	m.GitBytes("../../etc", 5, 5)
	m.Push(3 * time.Second)
	m.RESTCommit(409, time.Millisecond)
	m.SandboxStarted(false)
	m.SandboxStarted(true)
	m.GC(GCResult{Objects: 7, Bytes: 700}, nil)
	m.GC(GCResult{}, errors.New("boom"))
	m.Gauge("weir_test_gauge", "a test gauge", func() float64 { return 42 })
	other.RunEnded("succeeded", time.Second)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, rec.Body.String())
	}
	val := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	next:
		for _, s := range f.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				ok := false
				for _, l := range s.GetLabel() {
					ok = ok || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !ok {
					continue next
				}
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue()
			case s.Gauge != nil:
				return s.GetGauge().GetValue()
			case s.Histogram != nil:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{val("weir_runs_total", "state", "succeeded"), 1, "succeeded"},
		{val("weir_runs_total", "state", "failed"), 1, "failed"},
		{val("weir_runs_total", "state", "cancelled"), 0, "cancelled (present at zero)"},
		{val("weir_runs_total", "state", "other"), 1, "an unknown state"},
		{val("weir_run_duration_seconds"), 1, "run durations (a run that never ran is not one)"},
		{val("weir_run_queue_wait_seconds"), 1, "waits"},
		{val("weir_git_received_bytes_total", "service", "git-receive-pack"), 1000, "received"},
		{val("weir_git_sent_bytes_total", "service", "other"), 5, "an unknown service"},
		{val("weir_push_duration_seconds"), 1, "pushes"},
		{val("weir_rest_commit_seconds", "code", "4xx"), 1, "REST commits"},
		{val("weir_sandbox_starts_total"), 2, "sandbox starts"},
		{val("weir_sandbox_failures_total"), 1, "sandbox failures"},
		{val("weir_gc_runs_total", "result", "ok"), 1, "gc ok"},
		{val("weir_gc_runs_total", "result", "error"), 1, "gc error"},
		{val("weir_gc_freed_bytes_total"), 700, "gc bytes"},
		{val("weir_test_gauge"), 42, "a gauge func"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if strings.Contains(rec.Body.String(), "evil") || strings.Contains(rec.Body.String(), "etc") {
		t.Errorf("a caller's label value reached the output")
	}
}
