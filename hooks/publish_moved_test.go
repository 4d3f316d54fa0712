package hooks_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// movedPipeline reads ext.events and writes main.summary.
var movedPipeline = map[string]string{
	"models/summary.sql": "SELECT count(*) AS n FROM ext.events",
}

// moveData writes the rows of the DuckDB query q to table t of branch's
// data (mode catalog.ModeAppend or ModeReplace) as a catalog writer does
// (a REST commit, an import): a data commit on the head, its pointers
// published, one compare-and-swap of refs/data/<branch>. It returns the
// new head.
func (w *world) moveData(t *testing.T, branch string, tn catalog.TableName, mode, q string) objects.Hash {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	file := filepath.Join(t.TempDir(), "rows.parquet")
	if _, err := db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet)", q, file)); err != nil {
		t.Fatal(err)
	}
	ref := hooks.DataRef(branch)
	head := w.ref(t, string(ref))
	next, err := w.cat.WriteDataCommit(ctx, repo, head, []catalog.TableWrite{{Table: tn, Files: []string{file}, Mode: mode}},
		catalog.CommitInfo{Message: "weir: " + mode + " to " + tn.String() + " (by ingest)"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cat.Publish(ctx, repo, head, next); err != nil {
		t.Fatal(err)
	}
	if err := w.refs.Update(ctx, repo, []refs.Update{{Name: ref, Old: head, New: next}}, nil, "ingest"); err != nil {
		t.Fatal(err)
	}
	return next
}

var (
	events = catalog.TableName{Namespace: "ext", Name: "events"}
	other  = catalog.TableName{Namespace: "ext", Name: "other"}
)

// movedWorld is a world whose main data holds ext.events (3 rows) and
// ext.other (1 row), and whose work tree has movedPipeline committed
// (and extra), not yet pushed.
func movedWorld(t *testing.T, extra map[string]string) *world {
	t.Helper()
	w := newWorld(t)
	w.moveData(t, "main", events, catalog.ModeReplace, "SELECT * FROM range(3) r(id)")
	w.moveData(t, "main", other, catalog.ModeReplace, "SELECT 100::BIGINT AS id")
	files := maps.Clone(movedPipeline)
	maps.Copy(files, extra)
	w.commit(t, files)
	return w
}

// preReceive runs the hook on a push of HEAD to main (old: the code ref
// now) and returns the result with what commitHook needs.
func (w *world) preReceive(t *testing.T) (res *hooks.Result, q *objects.Quarantine, old, newH objects.Hash, prog *lockedBuffer) {
	t.Helper()
	ctx := context.Background()
	newH = parseHash(t, w.run(t, "git", "rev-parse", "HEAD"))
	old = w.ref(t, "refs/heads/main")
	cmd := exec.Command("git", "pack-objects", "--revs", "--stdout", "-q")
	cmd.Dir = w.git
	cmd.Stdin = strings.NewReader(newH.String() + "\n")
	pack, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	q = w.objs.NewQuarantine(repo)
	t.Cleanup(func() { q.Close() })
	if _, err := q.IngestPack(ctx, strings.NewReader(string(pack))); err != nil {
		t.Fatal(err)
	}
	prog = &lockedBuffer{}
	res, err = w.hook.PreReceive(ctx, &hooks.Push{
		Repo: repo, Quarantine: q, Pusher: "test", Progress: prog,
		Commands: []hooks.Command{{Name: "refs/heads/main", Old: old, New: newH}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused) > 0 {
		t.Fatalf("run refused: %v\n%s", res.Refused, prog)
	}
	return res, q, old, newH, prog
}

// count is SELECT count(*) of table tn at data commit d.
func (w *world) count(t *testing.T, d objects.Hash, tn catalog.TableName) string {
	t.Helper()
	return w.query(t, d, "SELECT count(*)::VARCHAR FROM "+tn.String())
}

// TestPublishOntoMovedData: the branch's data moved during the run (a
// catalog write to a table the run neither reads nor writes, twice: once
// while it ran, once more between Finish and the compare-and-swap). The
// run's outputs land on top of the newest data in a merge commit beside
// the run's code; both catalog writes are kept.
func TestPublishOntoMovedData(t *testing.T) {
	w := movedWorld(t, nil)
	res, q, old, code, prog := w.preReceive(t)
	ingest1 := w.moveData(t, "main", other, catalog.ModeAppend, "SELECT 101::BIGINT AS id")
	var ingest2 objects.Hash
	refused := maps.Clone(res.Refused)
	err := w.commitHook(t, res, refused, "refs/heads/main", old, code, q, func(attempt int) {
		if attempt == 0 { // after Finish merged onto ingest1, before the CAS
			ingest2 = w.moveData(t, "main", other, catalog.ModeAppend, "SELECT 102::BIGINT AS id")
		}
	})
	res.Report(refused)
	if err == nil {
		t.Fatal("first compare-and-swap should have lost to the second ingest")
	}
	if len(refused) > 0 {
		t.Fatalf("refused: %v\n%s", refused, prog)
	}
	if got := w.ref(t, "refs/heads/main"); got != code {
		t.Fatalf("refs/heads/main = %s, want the pushed %s", got, code)
	}
	data := w.ref(t, "refs/data/main")
	if got := w.count(t, data, other); got != "3" {
		t.Errorf("ext.other has %s rows, want 3 (both ingests kept)", got)
	}
	if got := w.query(t, data, "SELECT n::VARCHAR FROM main.summary"); got != "3" {
		t.Errorf("main.summary n = %s, want 3", got)
	}
	// Lineage: a merge of the newest head and the run's own commit,
	// beside the pushed code.
	cm, err := object.GetCommit(w.objs.Storer(repo), data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.ParentHashes) != 2 || cm.ParentHashes[0] != ingest2 {
		t.Fatalf("published commit's parents %v, want [%s, run's commit]", cm.ParentHashes, ingest2)
	}
	if !strings.Contains(cm.Message, "Code-Commit: "+code.String()) || !strings.Contains(cm.Message, "published onto "+ingest2.String()[:7]) {
		t.Errorf("published commit's message lacks its lineage:\n%s", cm.Message)
	}
	runCommit, err := object.GetCommit(w.objs.Storer(repo), cm.ParentHashes[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(runCommit.Message, "Code-Commit: "+code.String()) || len(runCommit.ParentHashes) != 1 || runCommit.ParentHashes[0] == ingest1 {
		t.Errorf("second parent is not the run's own commit on the start data:\n%s", runCommit.Message)
	}
	if err := w.cat.VerifyPushedDataCommit(context.Background(), q, data); err != nil {
		t.Errorf("published commit's pointers are not all published: %v", err)
	}
	if !strings.Contains(prog.String(), "main's data moved during the run") || !strings.Contains(prog.String(), "main advanced: code "+code.String()[:7]+", data "+data.String()[:7]) {
		t.Errorf("progress does not say what happened:\n%s", prog)
	}
}

// TestPublishMovedOverlapRefused: a catalog write during the run to a
// table the run reads (only), or writes, refuses the push naming the table
// and the write; neither ref moves beyond that write, and the run is kept.
func TestPublishMovedOverlapRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table catalog.TableName
		q     string
		want  string
	}{
		{"read", events, "SELECT 7::BIGINT AS id", "table ext.events, which the run reads, changed under it (by append to ext.events (by ingest), "},
		{"written", catalog.TableName{Namespace: "main", Name: "summary"}, "SELECT 42::BIGINT AS n", "table main.summary, which the run writes, changed under it (by replace to main.summary (by ingest), "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := movedWorld(t, nil)
			mode := catalog.ModeAppend
			if tc.name == "written" {
				mode = catalog.ModeReplace
			}
			res, q, old, code, prog := w.preReceive(t)
			moved := w.moveData(t, "main", tc.table, mode, tc.q)
			refused := maps.Clone(res.Refused)
			err := w.commitHook(t, res, refused, "refs/heads/main", old, code, q, nil)
			res.Report(refused)
			why := refused["refs/heads/main"]
			if err == nil || !strings.Contains(why, "weir: refs/data/main moved during the run: "+tc.want) || !strings.Contains(why, "push again to rerun on the new data") {
				t.Fatalf("err %v, reason %q\n%s", err, why, prog)
			}
			if got := w.ref(t, "refs/heads/main"); got != old {
				t.Errorf("refs/heads/main moved to %s", got)
			}
			if got := w.ref(t, "refs/data/main"); got != moved {
				t.Errorf("refs/data/main = %s, want the catalog write %s", got, moved)
			}
			ids := runIDs(t, w)
			if len(ids) != 1 {
				t.Fatalf("runs kept: %v", ids)
			}
			if w.ref(t, "refs/runs/"+ids[0]+"/data").IsZero() || w.ref(t, "refs/runs/"+ids[0]+"/code") != code {
				t.Errorf("run %s not kept with its code and data", ids[0])
			}
			if !strings.Contains(prog.String(), "main did not advance: weir: refs/data/main moved during the run") {
				t.Errorf("progress:\n%s", prog)
			}
		})
	}
}

// runIDs lists the runs kept under refs/runs/.
func runIDs(t *testing.T, w *world) []string {
	t.Helper()
	rs, err := w.refs.List(context.Background(), repo, refs.RunsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, r := range rs {
		id, _, _ := strings.Cut(strings.TrimPrefix(string(r.Name), refs.RunsPrefix), "/")
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// TestPublishDataDeletedDuringRun: refs/data/main deleted while the run
// ran (an operator's repair, say): nothing to publish onto, so the push is
// refused saying so, the code ref stays and the data ref stays deleted.
func TestPublishDataDeletedDuringRun(t *testing.T) {
	w := movedWorld(t, nil)
	res, q, old, code, prog := w.preReceive(t)
	ctx := context.Background()
	head := w.ref(t, "refs/data/main")
	if err := w.refs.Update(ctx, repo, []refs.Update{{Name: hooks.DataRef("main"), Old: head}}, nil, "operator"); err != nil {
		t.Fatal(err)
	}
	refused := maps.Clone(res.Refused)
	err := w.commitHook(t, res, refused, "refs/heads/main", old, code, q, nil)
	res.Report(refused)
	why := refused["refs/heads/main"]
	if err == nil || !strings.Contains(why, "weir: refs/data/main was deleted during the run; push again to rerun on the new data") {
		t.Fatalf("err %v, reason %q\n%s", err, why, prog)
	}
	if got := w.ref(t, "refs/heads/main"); got != old {
		t.Errorf("refs/heads/main moved to %s", got)
	}
	if got := w.ref(t, "refs/data/main"); !got.IsZero() {
		t.Errorf("refs/data/main = %s, want it still deleted", got)
	}
}
