package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/weir-dev/weir/hooks/sched"
)

// TestParseRuns reads the listing as hooks/sched writes it: the queue
// wait of each run by id, whatever the state and note.
func TestParseRuns(t *testing.T) {
	var b bytes.Buffer
	runs := []sched.RunInfo{
		{ID: "r-0000000a", Repo: "swarm", Targets: []sched.Target{{Branch: "main"}}, Pusher: "agent-1", State: sched.Queued, Ahead: 3, Wait: 1500 * time.Millisecond},
		{ID: "r-0000000b", Repo: "swarm", Targets: []sched.Target{{Branch: "agent-2"}}, Pusher: "agent-2", State: sched.Running, Wait: 12 * time.Second, Duration: time.Second},
		{ID: "r-0000000c", Repo: "swarm", Targets: []sched.Target{{Branch: "main"}}, Pusher: "agent-3", State: sched.Refused, Note: "refs/heads/main moved", Wait: 185 * time.Second},
		{ID: "r-0000000d", Repo: "swarm", Pusher: "agent-4", State: sched.Succeeded, Wait: 2*time.Hour + 3*time.Minute},
	}
	if err := sched.WriteRuns(&b, runs); err != nil {
		t.Fatal(err)
	}
	got, ok := parseRuns(b.String())
	if !ok {
		t.Fatalf("not read as a listing:\n%s", b.String())
	}
	want := map[string]time.Duration{
		"r-0000000a": 1500 * time.Millisecond, "r-0000000b": 12 * time.Second,
		"r-0000000c": 185 * time.Second, "r-0000000d": 2*time.Hour + 3*time.Minute,
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: wait %v, want %v (listing:\n%s)", id, got[id], w, b.String())
		}
	}
	if _, ok := parseRuns("weir: unknown command \"runs\"\n"); ok {
		t.Error("an error message was read as a listing")
	}
}
