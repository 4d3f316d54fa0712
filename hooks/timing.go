package hooks

import (
	"fmt"
	"time"
)

// OptionTiming asks for a last progress line saying where the run's time
// went (git push -o timing). The run log always has it.
const OptionTiming = "timing"

// Timing is where the time of one run went: the hook's share of a push.
// gitserver's share (receiving and checking the pack, the report) comes
// before and after it, the ref update after it.
//
//	plan     load the pipeline at the pushed commit and plan it (DuckDB
//	         parses every query), read the start data's table list
//	nodes    first node start to last node end (the critical path):
//	  run      summed over nodes, the node processes' own time (exec's
//	           Result.Wall: from the exec of the runner to its exit)
//	  sandbox  summed over nodes, the rest of each node's span: staging its
//	           inputs, building, starting and tearing down its sandbox,
//	           collecting /out (what a node waits for beyond its own run;
//	           sandboxes prepared while an earlier node ran do not count)
//	commit   Iceberg snapshots of every output and the data commit
type Timing struct {
	Plan    time.Duration
	Nodes   time.Duration
	Run     time.Duration
	Sandbox time.Duration
	Commit  time.Duration
}

// String is the progress line's text after "weir: timing: ".
func (t Timing) String() string {
	return fmt.Sprintf("plan %d ms, nodes %d ms (run %d ms, sandbox %d ms), commit %d ms",
		ms(t.Plan), ms(t.Nodes), ms(t.Run), ms(t.Sandbox), ms(t.Commit))
}

func ms(d time.Duration) int64 { return d.Round(time.Millisecond).Milliseconds() }

// reportTiming writes the timing line to the run log, and to the client
// when the push asked for it (-o timing).
func (r *run) reportTiming() {
	r.mu.Lock()
	t := r.timing
	r.mu.Unlock()
	line := "weir: timing: " + t.String()
	if r.opts.timing {
		r.out.linef("%s", line)
		return
	}
	r.mu.Lock()
	fmt.Fprintf(&r.nodeLog, "%s\n", line)
	r.mu.Unlock()
}
