package runs

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// TestList: a run the queue still remembers and refs/runs/ keeps is
// listed once, with what both know; one only kept (the queue forgot it)
// and one still running are listed too, newest first; the filter selects
// on all of them.
func TestList(t *testing.T) {
	ctx := context.Background()
	objs, err := objects.Open(memkv.New(), objects.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := refs.NewDB(objs)
	wh, err := catalog.NewLocalWarehouse(filepath.Join(t.TempDir(), "wh"))
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(objs, rdb, wh)
	repo := objects.RepoName("team/demo")
	keep := func(id, branch, status string, when int) {
		t.Helper()
		blob, _ := objs.Put(ctx, repo, plumbing.BlobObject, []byte("log of "+id+"\n"))
		tree, _ := objs.Put(ctx, repo, plumbing.TreeObject, append([]byte("100644 log\x00"), blob[:]...))
		c, err := objs.Put(ctx, repo, plumbing.CommitObject, fmt.Appendf(nil,
			"tree %s\nauthor weir <w@x> %d +0000\ncommitter weir <w@x> %d +0000\n\nweir: run %s on %s %s\n\nRun: %s\nCode-Commit: %s\nPusher: ana\nNode: 5\tmain.x\t%s\n",
			tree, when, when, id, branch, status, id, strings.Repeat("ab", 20), status))
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.Update(ctx, repo, []refs.Update{{Name: refs.Name("refs/runs/" + id + "/log"), New: c}}, nil, "test"); err != nil {
			t.Fatal(err)
		}
	}
	keep("r-0001", "main", "ok", 1700000000)     // forgotten by the queue
	keep("r-0002", "main", "failed", 1700000100) // remembered too
	s, err := sched.New(sched.Config{MaxRuns: 4})
	if err != nil {
		t.Fatal(err)
	}
	admit := func(id, branch string) *sched.Ticket {
		tk, err := s.Admit(ctx, sched.Request{ID: sched.RunID(id), Repo: sched.Repo(repo), Pusher: "bob",
			Targets: []sched.Target{{Branch: branch}}})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	admit("r-0002", "main").Done(sched.Failed, "expect x failed")
	admit("r-0003", "dev") // still running
	src := NewSource(s, cat, objs)
	ids := func(f Filter) string {
		t.Helper()
		l, err := src.List(ctx, repo, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range l {
			out = append(out, v.ID+":"+v.State)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "r-0003:running,r-0002:failed,r-0001:succeeded"},
		{Filter{State: "failed"}, "r-0002:failed"},
		{Filter{State: "succeeded"}, "r-0001:succeeded"},
		{Filter{Branch: "main"}, "r-0002:failed,r-0001:succeeded"},
		{Filter{Branch: "dev"}, "r-0003:running"},
		{Filter{Limit: 2}, "r-0003:running,r-0002:failed"},
	} {
		if got := ids(tc.f); got != tc.want {
			t.Errorf("List(%+v) = %s, want %s", tc.f, got, tc.want)
		}
	}
	l, _ := src.List(ctx, repo, Filter{State: "failed"})
	if v := l[0]; v.Kept != "refs/runs/r-0002/" || v.Status != "failed" || v.Note != "expect x failed" || v.DurationMS == nil || len(v.Nodes) != 1 || v.Ended == nil {
		t.Errorf("a run both know: %+v", v)
	}
	if v, err := src.Run(ctx, repo, "latest", "main", true); err != nil || v.ID != "r-0002" || v.Log == nil || *v.Log != "log of r-0002\n" {
		t.Errorf("Run(latest, main) = %+v, %v", v, err)
	}
	if _, err := src.Run(ctx, repo, "../../heads/main", "", false); err == nil || !strings.Contains(err.Error(), "not a run id") {
		t.Errorf("hostile id: %v", err)
	}
	// Without a queue (a reader with none), kept runs only.
	if l, err := NewSource(nil, cat, objs).List(ctx, repo, Filter{}); err != nil || len(l) != 2 || l[0].ID != "r-0002" {
		t.Errorf("no queue: %+v %v", l, err)
	}
}
