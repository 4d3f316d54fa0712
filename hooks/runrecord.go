package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// NodeTime is how one node of a run ended and how long it ran.
type NodeTime struct {
	Node   string        // "clean.revenue", "expect revenue_positive"
	Result string        // how it ended, one line ("ok", "exit status 1")
	Wall   time.Duration // the node process's own time
}

// RunRecord is a run as refs/runs/<id>/ keeps it, read back from its log
// commit (runlog.go): it outlives a restart, unlike the run queue's
// history. Code and Data are refs/runs/<id>/{code,data} when the run has
// them, else what its log names.
type RunRecord struct {
	ID     RunID
	Branch string
	Status string // the log's status: "ok", "failed", "plan refused", "not published: ..."
	Pusher string
	Code   objects.Hash
	Data   objects.Hash // ZeroHash: the run made and kept no data
	Log    objects.Hash // the log commit (refs/runs/<id>/log)
	Ended  time.Time    // when its log was written
	Nodes  []NodeTime
}

// ErrNoRun is a run id with no refs/runs/<id>/log.
var ErrNoRun = errors.New("hooks: no such run")

// ValidRunID reports whether s can be a run id: what newRunID makes
// ("r-" and hex), so that a client's id never reaches a ref name unchecked.
func ValidRunID(s string) bool {
	h, ok := strings.CutPrefix(s, "r-")
	if !ok || h == "" || len(h) > 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ReadKeptRun reads the record of k (one commit, and the run's code and
// data refs), without the log text.
func ReadKeptRun(ctx context.Context, rs refs.Store, objs *objects.Store, repo objects.RepoName, k KeptRun) (RunRecord, error) {
	rec, _, err := readRunLog(ctx, objs, repo, k.Log)
	if err != nil {
		return RunRecord{}, fmt.Errorf("run %s: %w", k.ID, err)
	}
	if rec.ID != k.ID {
		return RunRecord{}, fmt.Errorf("run %s: its log names run %s", k.ID, rec.ID)
	}
	if h, err := rs.Resolve(ctx, repo, RunRef(k.ID, "code")); err == nil {
		rec.Code = h
	}
	if h, err := rs.Resolve(ctx, repo, RunRef(k.ID, "data")); err == nil {
		rec.Data = h
	}
	return rec, nil
}

// ReadRun reads run id of repo from refs/runs/<id>/; its log text too
// when withLog.
func ReadRun(ctx context.Context, rs refs.Store, objs *objects.Store, repo objects.RepoName, id RunID, withLog bool) (RunRecord, string, error) {
	if !ValidRunID(string(id)) {
		return RunRecord{}, "", fmt.Errorf("%w: %q is not a run id (r-<hex>, or latest)", ErrNoRun, id)
	}
	lh, err := rs.Resolve(ctx, repo, RunRef(id, "log"))
	if errors.Is(err, refs.ErrNotFound) {
		return RunRecord{}, "", fmt.Errorf("%w: %s has no run %s kept (runs are kept as refs/runs/<id>/ once they end)", ErrNoRun, repo, id)
	}
	if err != nil {
		return RunRecord{}, "", err
	}
	rec, tree, err := readRunLog(ctx, objs, repo, lh)
	if err != nil {
		return RunRecord{}, "", fmt.Errorf("run %s: %w", id, err)
	}
	if rec.ID != id {
		return RunRecord{}, "", fmt.Errorf("run %s: its log names run %s", id, rec.ID)
	}
	if h, err := rs.Resolve(ctx, repo, RunRef(id, "code")); err == nil {
		rec.Code = h
	}
	if h, err := rs.Resolve(ctx, repo, RunRef(id, "data")); err == nil {
		rec.Data = h
	}
	if !withLog {
		return rec, "", nil
	}
	text, err := logText(ctx, objs, repo, tree)
	if err != nil {
		return rec, "", fmt.Errorf("run %s: %w", id, err)
	}
	return rec, text, nil
}

// KeptRun is one run kept under refs/runs/<id>/, as the ref names alone
// show it.
type KeptRun struct {
	ID  RunID
	Log objects.Hash // refs/runs/<id>/log
	// Made is when the id was made (RunID.Time): about when the run
	// arrived. Zero for an id of the older, random-only form: read its
	// log (ReadRun) for when it ended.
	Made time.Time
}

// ListKeptRuns lists the runs repo keeps under refs/runs/ from their ref
// names, reading no object: newest first by RunID.Time, ids of the older
// form (no time) last, in name order.
func ListKeptRuns(ctx context.Context, rs refs.Store, repo objects.RepoName) ([]KeptRun, error) {
	list, err := rs.List(ctx, repo, refs.RunsPrefix)
	if err != nil {
		return nil, err
	}
	var out []KeptRun
	for _, r := range list {
		id, part, ok := strings.Cut(strings.TrimPrefix(string(r.Name), refs.RunsPrefix), "/")
		if !ok || part != "log" || !ValidRunID(id) {
			continue
		}
		k := KeptRun{ID: RunID(id), Log: r.Hash}
		k.Made, _ = k.ID.Time()
		out = append(out, k)
	}
	slices.SortStableFunc(out, func(a, b KeptRun) int {
		if c := b.Made.Compare(a.Made); c != 0 {
			return c
		}
		return strings.Compare(string(b.ID), string(a.ID))
	})
	return out, nil
}

// KeptRuns lists the runs repo keeps under refs/runs/, newest first (by
// when their logs were written). It reads one commit per run: a listing
// that shows a few uses ListKeptRuns and reads only those.
func KeptRuns(ctx context.Context, rs refs.Store, objs *objects.Store, repo objects.RepoName) ([]RunRecord, error) {
	list, err := rs.List(ctx, repo, refs.RunsPrefix)
	if err != nil {
		return nil, err
	}
	var out []RunRecord
	for _, r := range list {
		id, part, ok := strings.Cut(strings.TrimPrefix(string(r.Name), refs.RunsPrefix), "/")
		if !ok || part != "log" || !ValidRunID(id) {
			continue
		}
		rec, _, err := readRunLog(ctx, objs, repo, r.Hash)
		if err != nil || rec.ID != RunID(id) {
			continue // not a log weir wrote; listing skips it
		}
		out = append(out, rec)
	}
	slices.SortStableFunc(out, func(a, b RunRecord) int { return b.Ended.Compare(a.Ended) })
	return out, nil
}

// readRunLog parses a run log commit (runlog.go) and returns its tree.
func readRunLog(ctx context.Context, objs *objects.Store, repo objects.RepoName, h objects.Hash) (RunRecord, objects.Hash, error) {
	o, err := objs.Get(ctx, repo, h)
	if err != nil {
		return RunRecord{}, objects.ZeroHash, err
	}
	if o.Type != plumbing.CommitObject {
		return RunRecord{}, objects.ZeroHash, fmt.Errorf("log %s is a %s, not a commit", h, o.Type)
	}
	head, msg, _ := bytes.Cut(o.Data, []byte("\n\n"))
	rec := RunRecord{Log: h}
	var tree objects.Hash
	for _, line := range strings.Split(string(head), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "tree":
			tree, _ = objects.ParseHash([]byte(v))
		case "committer":
			// "name <email> <unix> <tz>"
			f := strings.Fields(v)
			if len(f) >= 2 {
				if sec, err := strconv.ParseInt(f[len(f)-2], 10, 64); err == nil {
					rec.Ended = time.Unix(sec, 0).UTC()
				}
			}
		}
	}
	subject, body, _ := strings.Cut(string(msg), "\n")
	for _, line := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Run":
			rec.ID = RunID(v)
		case "Code-Commit":
			rec.Code, _ = objects.ParseHash([]byte(v))
		case "Pusher":
			rec.Pusher = v
		case "Data-Commit":
			rec.Data, _ = objects.ParseHash([]byte(v))
		case "Node":
			f := strings.SplitN(v, "\t", 3)
			if len(f) < 2 {
				continue
			}
			ms, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			n := NodeTime{Node: f[1], Wall: time.Duration(ms) * time.Millisecond}
			if len(f) == 3 {
				n.Result = f[2]
			}
			rec.Nodes = append(rec.Nodes, n)
		}
	}
	// subject: "weir: run <id> on <branch> <status>"
	if rest, ok := strings.CutPrefix(subject, "weir: run "+string(rec.ID)+" on "); ok && rec.ID != "" {
		rec.Branch, rec.Status, _ = strings.Cut(rest, " ")
	}
	return rec, tree, nil
}

// logText is the "log" blob of a run log's tree.
func logText(ctx context.Context, objs *objects.Store, repo objects.RepoName, tree objects.Hash) (string, error) {
	t, err := objs.Get(ctx, repo, tree)
	if err != nil {
		return "", err
	}
	// one entry: "100644 log\x00<20 bytes>"
	rest, ok := bytes.CutPrefix(t.Data, []byte("100644 log\x00"))
	if t.Type != plumbing.TreeObject || !ok || len(rest) != 20 {
		return "", errors.New("log tree is not weir's")
	}
	var bh objects.Hash
	copy(bh[:], rest)
	b, err := objs.Get(ctx, repo, bh)
	if err != nil {
		return "", err
	}
	return string(b.Data), nil
}
