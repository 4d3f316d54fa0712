package gitserver

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	src := filepath.Join(g.home, "src")
	g.run(g.home, "init", "-q", src)
	g.run(src, "remote", "add", "origin", ts.url("demo"))
	g.runIn(src, revisionsStream(6, 0, 40), "fast-import", "--quiet")
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
