package hooks_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// TestMergeTrainConcurrent: merge requests pushed at once while main's
// claim is held form one train, led by one of them; released, the train
// lands all of them with one merge commit, and every push's outcome says
// so. Run with -race: leader and riders hand each other objects and
// outcomes across goroutines.
func TestMergeTrainConcurrent(t *testing.T) {
	s, err := sched.New(sched.Config{MaxRuns: 4, KeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldWith(t, hooks.PipelineConfig{Scheduler: s, MergeTrain: 8})
	base := w.commit(t, map[string]string{"README": "base\n"})
	if res, prog := w.push(t, "main"); len(res.Refused) > 0 {
		t.Fatalf("push main: %v\n%s", res.Refused, prog)
	}
	const k = 5
	ctx := context.Background()
	var commits []objects.Hash
	var packs [][]byte
	for i := 0; i < k; i++ {
		w.run(t, "git", "checkout", "-q", "-b", fmt.Sprint("b", i), "main")
		c := w.commit(t, map[string]string{fmt.Sprintf("f%d.txt", i): fmt.Sprint(i)})
		commits = append(commits, c)
		cmd := exec.Command("git", "pack-objects", "--revs", "--stdout", "-q")
		cmd.Dir = w.git
		cmd.Stdin = strings.NewReader(c.String() + "\n^" + base.String() + "\n")
		pack, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		packs = append(packs, pack)
		w.run(t, "git", "checkout", "-q", "main")
	}
	hold, err := s.Admit(ctx, sched.Request{ID: "hold", Repo: sched.Repo(repo), Targets: []sched.Target{{Branch: "main"}}})
	if err != nil {
		t.Fatal(err)
	}
	name := refs.Name(refs.MergePrefix + "main")
	progs := make([]*lockedBuffer, k)
	results := make([]string, k)
	var wg sync.WaitGroup
	for i := 0; i < k; i++ {
		progs[i] = &lockedBuffer{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = w.mergeRequest(ctx, packs[i], commits[i], progs[i])
		}()
	}
	waitFor(t, func() bool {
		riding := 0
		for _, p := range progs {
			if strings.Contains(p.String(), "waits in a train into main") {
				riding++
			}
		}
		return riding == k-1 && s.Stats().Waiting == 1
	})
	hold.Done(sched.Succeeded, "")
	wg.Wait()
	for i, r := range results {
		if r != "ok" {
			t.Fatalf("merge request %d: %s\n%s", i, r, progs[i].String())
		}
	}
	head := w.ref(t, "refs/heads/main")
	o, err := w.objs.Get(ctx, repo, head)
	if err != nil {
		t.Fatal(err)
	}
	var parents []string
	for _, line := range strings.Split(string(o.Data), "\n") {
		if p, ok := strings.CutPrefix(line, "parent "); ok {
			parents = append(parents, p)
		}
	}
	want := []string{base.String()}
	for _, c := range commits {
		want = append(want, c.String())
	}
	if len(parents) != k+1 || parents[0] != base.String() || !slices.Equal(slices.Sorted(slices.Values(parents[1:])), slices.Sorted(slices.Values(want[1:]))) {
		t.Fatalf("main's tip has parents %v, want %s then %v in arrival order", parents, base, want[1:])
	}
	if h := w.ref(t, string(name)); !h.IsZero() {
		t.Fatalf("%s written: %s", name, h)
	}
}

// mergeRequest pushes commit (in pack) to refs/merge/main through the hook
// and commits what it decided as gitserver does: the request lands as
// Result.Lands says. It returns "ok" or the refusal.
func (w *world) mergeRequest(ctx context.Context, pack []byte, commit objects.Hash, prog *lockedBuffer) string {
	name := refs.Name(refs.MergePrefix + "main")
	q := w.objs.NewQuarantine(repo)
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		return err.Error()
	}
	res, err := w.hook.PreReceive(ctx, &hooks.Push{
		Repo: repo, Quarantine: q, Pusher: "test", Progress: prog,
		Commands: []hooks.Command{{Name: name, New: commit}},
	})
	if err != nil {
		return err.Error()
	}
	refused := maps.Clone(res.Refused)
	if why, ok := refused[name]; ok {
		if res.Report != nil {
			res.Report(refused)
		}
		return why
	}
	u, ok := res.Lands[name]
	if !ok {
		return "no landing"
	}
	ups := slices.Clone(res.Updates)
	if res.Finish != nil {
		f, refuse := res.Finish(ctx, refused)
		if why, ok := refuse[name]; ok {
			return why
		}
		ups = append(ups, f...)
	}
	if u.Name != "" {
		ups = append(ups, u)
	}
	if len(ups) > 0 {
		if err := w.refs.Update(ctx, repo, ups, q, "merge"); err != nil {
			refused[name] = err.Error()
		}
	}
	if res.Report != nil {
		res.Report(refused)
	}
	if why, ok := refused[name]; ok {
		return why
	}
	return "ok"
}
