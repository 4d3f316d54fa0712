package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestAgentsMergeCleanly shows the pipeline's design holds: agents that
// change their own lines of models/agents.sql on branches from one base,
// neighbours included, merge into main one after the other with C git and
// no conflict, and main then has every agent's version.
func TestAgentsMergeCleanly(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	if err := writePipeline(dir, 4); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := git(dir, args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q", "-b", "main")
	run("add", "-A")
	run("commit", "-qm", "base")
	f := filepath.Join(dir, "models", "agents.sql")
	for i := 0; i < 4; i++ {
		run("checkout", "-q", "-b", agentName(i), "main~0")
		run("reset", "-q", "--hard", "main")
		b, _ := os.ReadFile(f)
		if !lineRE(i).Match(b) {
			t.Fatalf("no line for agent %d:\n%s", i, b)
		}
		b = lineRE(i).ReplaceAll(b, []byte("  ("+string(rune('0'+i))+", 7)"))
		os.WriteFile(f, b, 0o644)
		run("commit", "-qam", agentName(i))
		run("checkout", "-q", "main")
	}
	// Each branch was made from the base; merge them one after the other.
	for i := 0; i < 4; i++ {
		run("merge", "-q", "--no-ff", "-m", "merge", agentName(i))
	}
	b, _ := os.ReadFile(f)
	for i := 0; i < 4; i++ {
		if want := "  (" + string(rune('0'+i)) + ", 7)"; !strings.Contains(string(b), want) {
			t.Errorf("main lacks %q:\n%s", want, b)
		}
	}
}
