package main

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/gc"
	"github.com/weir-dev/weir/hooks/sched"
)

func TestRetentionFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"14d", 14 * 24 * time.Hour, false},
		{"0.5d", 12 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"0", 0, false},
		{"never", gc.Forever, false},
		{"-1h", 0, true},
		{"-2d", 0, true},
		{"forever", 0, true},
		{"", 0, true},
	} {
		got, err := parseRetention(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("parseRetention(%q) = %v, %v", tc.in, got, err)
		}
		if !tc.bad && tc.in != "0.5d" && tc.in != "0" {
			if back, _ := parseRetention(retentionText(got)); back != got {
				t.Errorf("%q prints as %q, which parses as %v", tc.in, retentionText(got), back)
			}
		}
	}
}

func TestServeGCFlags(t *testing.T) {
	cfg, _ := parseServe(t, "--gc-every", "0", "--keep-failed-runs", "3d", "--keep-runs", "30d", "--reflog-expiry", "never", "--gc-grace", "2h")
	o := cfg.gc.opts
	if cfg.gcEvery != 0 || o.KeepFailedRuns != 72*time.Hour || o.KeepRuns != 30*24*time.Hour || o.ReflogExpiry != gc.Forever || o.Grace != 2*time.Hour {
		t.Fatalf("gc flags: every %v, %+v", cfg.gcEvery, o)
	}
	cfg, help := parseServe(t)
	d, def := cfg.gc.opts, gc.DefaultOptions()
	if cfg.gcEvery != time.Hour || d.Grace != def.Grace || d.KeepFailedRuns != def.KeepFailedRuns || d.KeepRuns != def.KeepRuns || d.ReflogExpiry != def.ReflogExpiry {
		t.Fatalf("gc defaults: every %v, %+v", cfg.gcEvery, d)
	}
	for _, f := range []string{"-gc-every", "-gc-grace", "-keep-failed-runs", "-keep-runs", "-reflog-expiry", "(default 14d)", "(default never)", "(default 90d)"} {
		if !strings.Contains(help, f) {
			t.Errorf("weir serve --help lacks %q", f)
		}
	}
}

// TestLongRun: the periodic collection waits while a run has been running
// for more than half of --gc-grace (its files are named by no ref yet).
func TestLongRun(t *testing.T) {
	runs := []sched.RunInfo{
		{ID: "r-1", Repo: "demo", State: sched.Succeeded, Duration: 3 * time.Hour},
		{ID: "r-2", Repo: "demo", State: sched.Running, Duration: 20 * time.Minute},
		{ID: "r-3", Repo: "team/x", State: sched.Queued, Duration: 0},
	}
	if why := longRun(runs, time.Hour); why != "" {
		t.Errorf("a 20 min run against a 1h grace deferred the collection: %s", why)
	}
	runs[1].Duration = 31 * time.Minute
	if why := longRun(runs, time.Hour); !strings.Contains(why, "run r-2 of demo has been running for 31m0s") {
		t.Errorf("a 31 min run against a 1h grace: %q", why)
	}
	if why := longRun(runs, gc.Forever); why != "" {
		t.Errorf("grace forever: %q", why)
	}
}
