package hooks

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/weir-dev/weir/objects"
)

// The run log is a commit in the push's quarantine, committed with the
// push and fetchable under refs/runs/<id>/log:
//
//	message  weir: run <id> on <branch> <status>
//	         (blank line)
//	         Run: <id>
//	         Code-Commit: <the code commit>
//	         Pusher: <who pushed>
//	         Data-Commit: <the data it made, kept or checked> (if any)
//	         Node: <wall ms> TAB <node> TAB <how it ended>   (one per node that ran)
//	tree     one blob, "log":
//	           the run's progress lines, as the client saw them
//	           (blank line)
//	           for each node that ran, in the order they ended:
//	             == <node> (<file>) <how it ended> in <wall time>
//	             <its whole output, neutralised>
//	           weir: timing: ... (here unless the push asked -o timing)
//
// A run writes one log per status it ends with (logCommit). ReadRun and
// KeptRuns (runrecord.go) read it back for "weir run" and the runs API;
// the trailers are one line each (clipLine), so a node's output, which is
// only in the tree, cannot forge them.

// logCommit returns the run's log commit with status, written once.
func (r *run) logCommit(status string) (objects.Hash, error) {
	if h, ok := r.logs[status]; ok {
		return h, nil
	}
	h, err := r.writeLog(status)
	if err != nil {
		r.log.Warn("run log not kept", "err", err)
		return objects.ZeroHash, err
	}
	if r.logs == nil {
		r.logs = map[string]objects.Hash{}
	}
	r.logs[status] = h
	return h, nil
}

// writeLog stores the run's log as a commit (tree: "log") in the push's
// quarantine, so it is committed with the push and fetchable under
// refs/runs/<id>/log. status ("ok", "failed", ...) is in its subject.
func (r *run) writeLog(status string) (objects.Hash, error) {
	q := r.push.Quarantine
	r.mu.Lock()
	text := r.out.textFrom(r.logFrom) + "\n" + r.nodeLog.String()
	var trailers strings.Builder
	for _, d := range []objects.Hash{r.landed, r.newData, r.keptData} {
		if !d.IsZero() {
			fmt.Fprintf(&trailers, "Data-Commit: %s\n", d)
			break
		}
	}
	if r.check && !r.start.IsZero() {
		fmt.Fprintf(&trailers, "Data-Commit: %s\n", r.start)
	}
	for _, n := range r.nodeTimes {
		fmt.Fprintf(&trailers, "Node: %d\t%s\t%s\n", n.Wall.Milliseconds(), clipLine(n.Node, 200), n.Result)
	}
	r.mu.Unlock()
	blob, err := q.Put(plumbing.BlobObject, []byte(text))
	if err != nil {
		return objects.ZeroHash, err
	}
	tree := &object.Tree{Entries: []object.TreeEntry{{Name: "log", Mode: filemode.Regular, Hash: blob}}}
	tb, err := encode(tree)
	if err != nil {
		return objects.ZeroHash, err
	}
	th, err := q.Put(plumbing.TreeObject, tb)
	if err != nil {
		return objects.ZeroHash, err
	}
	now := time.Now()
	sig := object.Signature{Name: "weir", Email: "weir@localhost", When: now}
	c := &object.Commit{
		Author: sig, Committer: sig, TreeHash: th,
		Message: fmt.Sprintf("weir: run %s on %s %s\n\nRun: %s\nCode-Commit: %s\nPusher: %s\n%s", r.id, r.branch, clipLine(status, 200), r.id, r.code, r.push.Pusher, trailers.String()),
	}
	cb, err := encode(c)
	if err != nil {
		return objects.ZeroHash, err
	}
	return q.Put(plumbing.CommitObject, cb)
}

type encoder interface {
	Encode(plumbing.EncodedObject) error
}

func encode(e encoder) ([]byte, error) {
	o := &plumbing.MemoryObject{}
	if err := e.Encode(o); err != nil {
		return nil, err
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}
