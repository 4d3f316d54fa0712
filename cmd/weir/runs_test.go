package main

import (
	"strings"
	"testing"

	"github.com/weir-dev/weir/hooks/runs"
	"github.com/weir-dev/weir/hooks/sched"
)

// TestRunFlags: weir serve's run-queue flags become the scheduler's
// Config, are listed in --help, and bad values are refused at start.
func TestRunFlags(t *testing.T) {
	cfg, help := parseServe(t, "--runs", "3", "--run-queue", "7", "--run-policy", "fifo", "--node-pool-cpus", "1.5",
		"--node-pool-memory-mb", "2048", "--node-default-cpus", "0.5", "--node-default-memory-mb", "256", "--runs-history", "10")
	for _, f := range []string{"-runs ", "-run-queue", "-run-policy", "fair: fair share", "fifo: first in", "-node-pool-cpus", "-node-pool-memory-mb",
		"-node-default-cpus", "-node-default-memory-mb", "-runs-history"} {
		if !strings.Contains(help, f) {
			t.Errorf("--help lacks %q", f)
		}
	}
	got, err := cfg.runs.config()
	if err != nil {
		t.Fatal(err)
	}
	want := sched.Config{MaxRuns: 3, MaxQueue: 7, Policy: "fifo", CPU: 1.5, Memory: 2048 << 20,
		NodeDefault: sched.Demand{CPU: 0.5, Memory: 256 << 20}, History: 10}
	if got != want {
		t.Fatalf("config %+v, want %+v", got, want)
	}
	s, err := sched.New(got)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Config(); c.MaxRuns != 3 || c.MaxQueue != 7 || c.CPU != 1.5 {
		t.Fatalf("scheduler config %+v", c)
	}

	// --run-queue 0 is no queue at all (the scheduler's negative).
	cfg, _ = parseServe(t, "--run-queue", "0")
	if got, _ := cfg.runs.config(); got.MaxQueue != -1 {
		t.Fatalf("--run-queue 0: MaxQueue %d, want -1", got.MaxQueue)
	}
	for _, bad := range [][]string{{"--runs", "-1"}, {"--run-queue", "-2"}, {"--node-pool-cpus", "-1"}, {"--node-default-memory-mb", "-5"}} {
		cfg, _ := parseServe(t, bad...)
		if _, err := cfg.runs.config(); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	cfg, _ = parseServe(t, "--run-policy", "lottery")
	if _, err := newScheduler(cfg.runs, nil); err == nil || !strings.Contains(err.Error(), `unknown policy "lottery"`) {
		t.Errorf("--run-policy lottery: err %v", err)
	}
}

// TestRunsArgs: "weir runs" takes its flags before or after the repo,
// refuses unknown states, negative limits and extra words, and its filter
// keeps the runs asked for, newest first, at most --limit.
func TestRunsArgs(t *testing.T) {
	var out strings.Builder
	repo, f, err := parseRunsArgs([]string{"--state", "failed", "team/demo.git", "--branch", "dev", "--limit", "1"}, &out)
	if err != nil || repo != "team/demo.git" || f != (runs.Filter{Branch: "dev", State: "failed", Limit: 1}) {
		t.Fatalf("parse: %q %+v %v", repo, f, err)
	}
	for _, bad := range [][]string{{}, {"r", "--state", "exploded"}, {"r", "--limit", "-1"}, {"r", "extra"}, {"r", "--nope"}} {
		if _, _, err := parseRunsArgs(bad, &out); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	infos := []sched.RunInfo{
		{ID: "r-3", State: sched.Failed, Targets: []sched.Target{{Branch: "dev"}}},
		{ID: "r-2", State: sched.Succeeded, Targets: []sched.Target{{Branch: "dev"}}},
		{ID: "r-1", State: sched.Failed, Targets: []sched.Target{{Branch: "main"}}},
	}
	ids := func(rs []sched.RunInfo) string {
		var s []string
		for _, r := range rs {
			s = append(s, string(r.ID))
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		f    runs.Filter
		want string
	}{
		{runs.Filter{}, "r-3,r-2,r-1"}, {runs.Filter{State: "failed"}, "r-3,r-1"}, {runs.Filter{Branch: "dev"}, "r-3,r-2"},
		{runs.Filter{Branch: "main", State: "succeeded"}, ""}, {runs.Filter{State: "failed", Limit: 1}, "r-3"},
	} {
		if got := ids(tc.f.Apply(append([]sched.RunInfo(nil), infos...))); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.f, got, tc.want)
		}
	}
}
