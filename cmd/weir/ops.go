package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/metrics"
)

// Health and metrics on the HTTP listener:
//
//	GET /healthz   200 "ok" when the database answers and the warehouse
//	               takes a write; else 503 with the reason, one line.
//	               Open to anyone (it says nothing about repos); the probe
//	               runs at most once per healthInterval, so hammering it
//	               costs nothing.
//	GET /metrics   Prometheus text format (metrics package). On a loopback
//	               listener open (like everything there); off loopback only
//	               for an admin identity (a token of a user marked admin:
//	               Authorization: Bearer <token>), unless --metrics-open.

// openMetrics makes the server's metrics (its own registry).
func (a *serveApp) openMetrics() error {
	a.Metrics = metrics.New()
	return nil
}

// mountOps wires the metrics into the Git server and the run queue's
// gauges, and serves /healthz and /metrics.
func (a *serveApp) mountOps() error {
	a.Git.Metrics = a.Metrics
	if a.Runs != nil {
		runs := a.Runs
		a.Metrics.Gauge("weir_run_queue_length", "Pushes waiting for a run slot or for a run of their branch.", func() float64 { return float64(runs.Stats().Waiting) })
		a.Metrics.Gauge("weir_runs_running", "Runs holding a run slot.", func() float64 { return float64(runs.Stats().Running) })
	}
	if a.HTTPAccess == nil {
		return nil
	}
	h := &health{db: a.DB, wh: a.Catalog.Warehouse()}
	a.Mux.Handle("GET /healthz", h)
	a.Mux.Handle("GET /metrics", metricsGate(a.HTTPAccess, a.Config.metricsOpen, a.Metrics.Handler()))
	return nil
}

// metricsGate lets a request through to next when open, on a listener
// with anonymous access, or for an admin identity; else 401 or 403.
func metricsGate(acc *access.Access, open bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open {
			id, ok := acc.HTTPIdentity(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Basic realm="weir"`)
				http.Error(w, "authentication required: /metrics is for admins (a token of a user marked admin, as Authorization: Bearer <token>), or start weir serve with --metrics-open", http.StatusUnauthorized)
				return
			}
			if !acc.IsAdmin(id) {
				http.Error(w, "permission denied: /metrics is for admins (weir user admin NAME on), or start weir serve with --metrics-open", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// healthInterval is how long one probe's answer is reused.
const healthInterval = 2 * time.Second

// healthSeg is the warehouse folder (key prefix) the probe writes to and
// removes from at once: it starts with '.', which no repo's does.
const healthSeg = ".healthz"

// health answers /healthz.
type health struct {
	db kv.Reader
	wh catalog.Warehouse

	mu     sync.Mutex
	at     time.Time
	reason string // "" when healthy
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reason := h.check(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, reason)
		return
	}
	fmt.Fprintln(w, "ok")
}

// check returns why the server is unhealthy ("" when it is not), probing
// at most once per healthInterval; concurrent callers wait for one probe.
func (h *health) check(ctx context.Context) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && time.Since(h.at) < healthInterval {
		return h.reason
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	h.reason = ""
	if err := probeDB(h.db); err != nil {
		h.reason = "database: " + err.Error()
	} else if err := probeWarehouse(ctx, h.wh); err != nil {
		h.reason = "warehouse not writable: " + err.Error()
	}
	h.at = time.Now()
	return h.reason
}

// probeDB reads one key: the database answers, found or not.
func probeDB(db kv.Reader) error {
	_, closer, err := db.Get([]byte("\xffhealthz"))
	if err == nil {
		return closer.Close()
	}
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	return err
}

// probeWarehouse writes a small file to the warehouse and removes it.
func probeWarehouse(ctx context.Context, wh catalog.Warehouse) error {
	ar, err := wh.Area(healthSeg)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "weir-healthz-")
	if err != nil {
		return fmt.Errorf("temp file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString("ok\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var b [6]byte
	rand.Read(b[:])
	loc := ar.Prefix() + "/probe-" + hex.EncodeToString(b[:])
	if err := ar.Upload(ctx, f.Name(), loc); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "catalog: "))
	}
	fio, err := ar.IO(ctx)
	if err != nil {
		return err
	}
	rm, ok := fio.(interface{ Remove(string) error })
	if !ok {
		return nil
	}
	return rm.Remove(loc)
}

// schedObserver records the run queue's starts and ends as metrics.
type schedObserver struct{ m *metrics.Metrics }

func (o schedObserver) Started(wait time.Duration) { o.m.RunStarted(wait) }
func (o schedObserver) Ended(st sched.State, ran time.Duration) {
	o.m.RunEnded(st.String(), ran)
}

// meteredREST times the Iceberg REST catalog's commits: POST to a table
// (commit table) and to /v1/transactions/commit.
func meteredREST(m *metrics.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		commit := r.Method == http.MethodPost &&
			(strings.HasSuffix(p, "/transactions/commit") || strings.Contains(p, "/tables/") && !strings.HasSuffix(p, "/metrics") && !strings.HasSuffix(p, "/rename"))
		if !commit {
			next.ServeHTTP(w, r)
			return
		}
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r)
		m.RESTCommit(rec.code, time.Since(start))
	})
}

// codeRecorder remembers the status a handler wrote.
type codeRecorder struct {
	http.ResponseWriter
	code int
	done bool
}

func (c *codeRecorder) WriteHeader(code int) {
	if !c.done {
		c.code, c.done = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeRecorder) Write(b []byte) (int, error) {
	c.done = true
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer below.
func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }
