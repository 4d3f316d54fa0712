package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape GETs /metrics with a token (or none) and parses it with
// Prometheus' own text parser.
func scrape(t *testing.T, s *weirServer, token string) map[string]*dto.MetricFamily {
	t.Helper()
	r := httpGet(t, s.HTTP+"/metrics", "x", token)
	if token == "" {
		r = httpGet(t, s.HTTP+"/metrics", "", "")
	}
	if r.status != 200 {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, r.body)
	}
	return fams
}

// metricValue is the value of the sample of family name whose labels
// include want (counter, gauge, or a histogram's count); ok false when
// there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == k && l.GetValue() == v
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestHealthAndMetrics: /healthz says ok; after a pipeline push /metrics
// (parsed with expfmt) counts one succeeded run, the bytes the push sent,
// the sandboxes, the push's duration, an empty queue; off loopback
// /metrics wants an admin's token while /healthz stays open; a warehouse
// that takes no write turns /healthz into 503 with the reason, and back.
func TestHealthAndMetrics(t *testing.T) {
	needSandboxes(t)
	data := t.TempDir()
	s := startWeir(t, data)
	if r := httpGet(t, s.HTTP+"/healthz", "", ""); r.status != 200 || r.body != "ok\n" {
		t.Fatalf("GET /healthz: %d %q", r.status, r.body)
	}
	before := scrape(t, s, "")
	if v, ok := metricValue(before, "weir_runs_total", map[string]string{"state": "succeeded"}); !ok || v != 0 {
		t.Fatalf("before any push: weir_runs_total{state=succeeded} = %v, %v", v, ok)
	}
	dir := exampleRepo(t)
	if out := git(t, dir, "push", s.URL("orders"), "main"); !strings.Contains(out, "main advanced") {
		t.Fatalf("push:\n%s", out)
	}
	fams := scrape(t, s, "")
	for _, c := range []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
		want   string
	}{
		{"weir_runs_total", map[string]string{"state": "succeeded"}, func(v float64) bool { return v == 1 }, "1"},
		{"weir_runs_total", map[string]string{"state": "failed"}, func(v float64) bool { return v == 0 }, "0"},
		{"weir_runs_started_total", nil, func(v float64) bool { return v == 1 }, "1"},
		{"weir_run_queue_wait_seconds", nil, func(v float64) bool { return v == 1 }, "1 observation"},
		{"weir_run_duration_seconds", nil, func(v float64) bool { return v == 1 }, "1 observation"},
		{"weir_push_duration_seconds", nil, func(v float64) bool { return v == 1 }, "1 observation"},
		{"weir_git_received_bytes_total", map[string]string{"service": "git-receive-pack"}, func(v float64) bool { return v > 1000 }, "> 1000 (the pack)"},
		{"weir_git_sent_bytes_total", map[string]string{"service": "git-receive-pack"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"weir_sandbox_starts_total", nil, func(v float64) bool { return v >= 4 }, ">= 4 (the example's nodes)"},
		{"weir_sandbox_failures_total", nil, func(v float64) bool { return v == 0 }, "0"},
		{"weir_run_queue_length", nil, func(v float64) bool { return v == 0 }, "0"},
		{"weir_gc_runs_total", map[string]string{"result": "ok"}, func(v float64) bool { return v == 0 }, "0"},
	} {
		v, ok := metricValue(fams, c.name, c.labels)
		if !ok || !c.ok(v) {
			t.Errorf("%s%v = %v (present %v), want %s", c.name, c.labels, v, ok, c.want)
		}
	}
	// No repo name is a label: client-chosen text never becomes a series.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "orders") {
					t.Errorf("%s has a label with a repo name: %s=%s", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	// Off loopback: /metrics for admins only, /healthz open.
	s.Stop()
	weirCLI(t, "user", "add", "alice", "--data", data)
	weirCLI(t, "user", "add", "bob", "--data", data)
	weirCLI(t, "user", "admin", "alice", "on", "--data", data)
	aliceTok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--data", data))
	bobTok := strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	s.args = []string{"--assume-remote"}
	s.Restart()
	if r := httpGet(t, s.HTTP+"/metrics", "", ""); r.status != 401 {
		t.Fatalf("anonymous /metrics off loopback: %d", r.status)
	}
	if r := httpGet(t, s.HTTP+"/metrics", "bob", bobTok); r.status != 403 || !strings.Contains(r.body, "admins") {
		t.Fatalf("bob's /metrics: %d %s", r.status, r.body)
	}
	scrape(t, s, aliceTok)
	if r := httpGet(t, s.HTTP+"/healthz", "", ""); r.status != 200 {
		t.Fatalf("anonymous /healthz off loopback: %d", r.status)
	}

	// A warehouse that takes no write: 503 with the reason, then ok again.
	wh := filepath.Join(data, "warehouse")
	restore := func() {}
	if out, err := exec.Command("chattr", "-R", "+i", wh).CombinedOutput(); err == nil {
		restore = func() { exec.Command("chattr", "-R", "-i", wh).Run() }
		t.Cleanup(restore)
	} else {
		t.Logf("chattr +i: %v %s; removing the warehouse instead", err, out)
		if err := os.RemoveAll(wh); err != nil {
			t.Fatal(err)
		}
	}
	health := func(code int) httpResult {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := httpGet(t, s.HTTP+"/healthz", "", "")
			if r.status == code {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz stayed %d %q, want %d", r.status, r.body, code)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if r := health(503); !strings.HasPrefix(r.body, "warehouse not writable: ") || strings.Contains(r.body, data) {
		t.Fatalf("/healthz of an unwritable warehouse: %q", r.body)
	}
	t.Logf("/healthz: %s", health(503).body)
	restore()
	if _, err := os.Stat(wh); err == nil {
		health(200)
	}
}
