package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/objects"
)

// startDeltaWorker runs ts's background delta worker until the test ends,
// and returns a function that waits for its n-th finished search.
func startDeltaWorker(t *testing.T, ts *sessServer) (wait func(n int)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.srv.RunDeltaWorker(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done // the worker returns once cancelled
	})
	for !ts.srv.deltas.running.Load() {
		time.Sleep(time.Millisecond)
	}
	return func(n int) {
		t.Helper()
		for range 6000 {
			if strings.Count(ts.logBuf.String(), `msg="background delta search" repo=demo searched=`) >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no background delta search %d after a push; log:\n%s", n, ts.logBuf.String())
	}
}

// TestSessionDeltaBackground: with the background worker running, a
// history pushed without any delta gets its delta records after the push
// and before any clone, and the first clone sends the pack a second clone
// sends (nothing is left to search on its path). A later push's new
// objects are searched too, against the versions already searched. Without
// the worker the push leaves no record (TestSessionDeltaComputed).
func TestSessionDeltaBackground(t *testing.T) {
	ts := newSessServer(t)
	wait := startDeltaWorker(t, ts)
	g := newSessGit(t, ts)
	src := g.revisionsRepo(ts, "demo", 6, 40)
	g.run(src, "-c", "pack.window=0", "repack", "-q", "-a", "-d", "-F")
	g.run(src, "-c", "pack.window=0", "push", "-q", "origin", "main")
	wait(1)
	before := countRecords(t, ts.store, "demo", true)
	if before == 0 {
		t.Fatalf("the background search recorded no delta after the push")
	}

	dst := filepath.Join(g.home, "dst")
	pack := g.packBytes(g.home, "clone", "-q", "--bare", ts.url("demo"), dst)
	g.run(dst, "fsck", "--strict")
	if n := packDeltaCount(t, pack); n == 0 {
		t.Fatalf("clone pack has no deltas")
	}
	if n := countRecords(t, ts.store, "demo", false); n == 0 {
		t.Fatalf("no records")
	}
	all := countRecords(t, ts.store, "demo", false)
	dst2 := filepath.Join(g.home, "dst2")
	pack2 := g.packBytes(g.home, "clone", "-q", "--bare", ts.url("demo"), dst2)
	if !bytes.Equal(pack, pack2) {
		t.Errorf("the second clone sent another pack (%d bytes, first %d): the first searched on its path", len(pack2), len(pack))
	}
	if after := countRecords(t, ts.store, "demo", false); after != all {
		t.Errorf("clones recorded %d more records after the background search", after-all)
	}

	// An incremental push: only its new objects are searched.
	g.runIn(src, revisionsStream(6, 40, 10), "fast-import", "--quiet")
	g.run(src, "-c", "pack.window=0", "push", "-q", "origin", "main")
	wait(2)
	if n := countRecords(t, ts.store, "demo", true); n <= before {
		t.Errorf("delta records %d after the second push, %d before: its objects were not searched", n, before)
	}
	log := ts.logBuf.String()
	i := strings.LastIndex(log, `msg="background delta search" repo=demo searched=`)
	t.Logf("%s", log[i:strings.IndexByte(log[i:], '\n')+i])
}

// TestSessionThinFetchGrowingFiles: a fetch of commits that each append
// to files the client has, pushed without any delta (so the server
// searches), gets thin deltas against the client's versions, within 1.15x
// of C git's thin pack. Before the client's objects sorted first in the
// search, a new version larger than the client's came before it in the
// window and went whole (5 thin deltas and 1.22x here; the bench's thin
// fetch was 1.59x).
func TestSessionThinFetchGrowingFiles(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := filepath.Join(g.home, "src")
	g.run(g.home, "init", "-q", src)
	g.run(src, "remote", "add", "origin", ts.url("demo"))
	var b strings.Builder
	body := make([]string, 12)
	for i := range body {
		body[i] = strings.Repeat(fmt.Sprintf("select %d from orders where id = %d;\n", i, i), 30)
	}
	for c := range 20 {
		fmt.Fprintf(&b, "commit refs/heads/main\ncommitter Tess Ter <tess@example.com> %d +0000\ndata 2\nc\n", 1700000000+c*60)
		if c == 10 {
			b.WriteString("from refs/heads/main^0\n")
		}
		for i := range body {
			if c > 0 && (c+i)%3 != 0 {
				continue
			}
			if c > 0 {
				body[i] += fmt.Sprintf("-- commit %d appends to file %d\nselect count(*) from t%d;\n", c, i, c)
			}
			fmt.Fprintf(&b, "M 100644 inline q/f%02d.sql\ndata %d\n%s\n", i, len(body[i]), body[i])
		}
		if c == 9 {
			g.runIn(src, b.String(), "fast-import", "--quiet")
			b.Reset()
			g.run(src, "-c", "pack.window=0", "push", "-q", "origin", "main")
			g.run(g.home, "clone", "-q", ts.url("demo"), filepath.Join(g.home, "work"))
		}
	}
	old := g.revParse(src, "main")
	g.runIn(src, b.String(), "fast-import", "--quiet")
	g.run(src, "-c", "pack.window=0", "push", "-q", "origin", "main")
	work := filepath.Join(g.home, "work")
	fpack := g.packBytes(work, "fetch", "-q", "origin")
	g.run(work, "fsck", "--strict")
	if got, want := g.revParse(work, "origin/main"), g.revParse(src, "main"); got != want {
		t.Fatalf("fetched origin/main = %s, want %s", got, want)
	}
	cgThin := g.cgitPackSize(src, "main\n^"+old+"\n", true)
	t.Logf("fetch pack: %d bytes (%d thin deltas), C git thin: %d", len(fpack), packRefDeltaOutside(t, fpack), cgThin)
	if float64(len(fpack)) > 1.15*float64(cgThin) {
		t.Errorf("fetch pack is %d bytes, C git's thin pack %d: want <= 1.15x", len(fpack), cgThin)
	}
	// 13 of the 20 changed files find their client's version (the rest
	// find a better base among this fetch's own versions).
	if n := packRefDeltaOutside(t, fpack); n < 10 {
		t.Errorf("fetch pack has %d deltas against the client's objects, want >= 10", n)
	}
}

// TestSessionDeltaBackgroundRestart: the tips a background search covered
// and the clone plan the worker made are kept in the database, so after a
// restart (the worker's memory and the plan cache gone) the first clone
// does not walk the history (and gets what C git sends), and the search
// after the next push plans only what that push brought, not the whole
// repo again.
func TestSessionDeltaBackgroundRestart(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := g.revisionsRepo(ts, "demo", 6, 40)

	run := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			ts.srv.RunDeltaWorker(ctx)
		}()
		for !ts.srv.deltas.running.Load() {
			time.Sleep(time.Millisecond)
		}
		return func() { cancel(); <-done }
	}
	searches := func(n int) string {
		t.Helper()
		const msg = `msg="background delta search" repo=demo searched=`
		for range 6000 {
			log := ts.logBuf.String()
			if strings.Count(log, msg) >= n {
				i := strings.LastIndex(log, msg)
				line, _, _ := strings.Cut(log[i:], "\n")
				return line
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no background delta search %d; log:\n%s", n, ts.logBuf.String())
		return ""
	}

	stop := run()
	g.run(src, "-c", "pack.window=0", "push", "-q", "origin", "main")
	first := searches(1)
	stop()
	tip := g.revParse(src, "main")
	kept := loadSearchedTips(ts.store.DB(), "demo")
	if len(kept) != 1 || kept[0].String() != tip {
		t.Fatalf("kept searched tips %v, want [%s]", kept, tip)
	}

	// A restart: the worker's memory is gone, the database stays.
	ts.srv.deltas.mu.Lock()
	ts.srv.deltas.tips = map[objects.RepoName][]objects.Hash{}
	ts.srv.deltas.mu.Unlock()
	ts.srv.plans.reset()

	// The first clone after it extends the plan the worker kept, and
	// holds what C git's does.
	w, c := filepath.Join(g.home, "w.git"), filepath.Join(g.home, "c.git")
	g.run(g.home, "clone", "-q", "--bare", ts.url("demo"), w)
	if !lastUploadCached(t, ts) {
		t.Errorf("the first clone after a restart walked the history: no kept plan")
	}
	g.run(g.home, "clone", "-q", "--bare", "file://"+src, c)
	if ws, cs := g.objectSet(w), g.objectSet(c); strings.Join(ws, "\n") != strings.Join(cs, "\n") {
		t.Errorf("clone after a restart: weir sent %d objects, C git %d:\n%s", len(ws), len(cs), setDiff(ws, cs))
	}
	stop = run()
	defer stop()
	g.runIn(src, revisionsStream(6, 40, 5), "fast-import", "--quiet")
	g.run(src, "-c", "pack.window=0", "push", "-q", "origin", "main")
	second := searches(2)
	newObjects := strings.Count(g.run(src, "rev-list", "--objects", "main", "^"+tip), "\n")
	if !strings.Contains(second, fmt.Sprintf("objects=%d ", newObjects)) || !strings.Contains(second, " haves=1 ") {
		t.Errorf("search after the restart: %s\nwant objects=%d (what the push brought) and haves=1; the first search: %s", second, newObjects, first)
	}
	if kept := loadSearchedTips(ts.store.DB(), "demo"); len(kept) != 1 || kept[0].String() != g.revParse(src, "main") {
		t.Errorf("kept searched tips %v after the second search, want main", kept)
	}
}
