package gitserver

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSessionPush pushes a whole history (WEIR_BENCH_COMMITS commits,
// default 2000, editing WEIR_BENCH_FILES text files, default 300: the
// history deltas are for) into a new repo each iteration, and in the same
// iteration into a bare repo with C git's own receive-pack over the same
// ext:: pipe, and reports both times and their ratio (weir/git). The
// server runs in the test process, so -cpuprofile profiles its ingest:
//
//	go test ./gitserver -run '^$' -bench SessionPush -benchtime 3x -cpuprofile /tmp/push.prof
func BenchmarkSessionPush(b *testing.B) {
	commits := benchEnvInt("WEIR_BENCH_COMMITS", 2000)
	files := benchEnvInt("WEIR_BENCH_FILES", 300)
	ts := newSessServer(b)
	g := newSessGit(b, ts)
	src := filepath.Join(g.home, "src")
	g.run(g.home, "init", "-q", "--bare", src)
	g.runIn(src, revisionsStream(files, 0, commits), "fast-import", "--quiet")
	g.run(src, "repack", "-q", "-a", "-d", "-f")
	var weirTotal, gitTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		g.run(src, "push", "-q", ts.url(fmt.Sprintf("bench%d", i)), "main")
		weirTotal += time.Since(t0)

		dst := filepath.Join(g.home, fmt.Sprintf("g%d.git", i))
		g.run(g.home, "init", "-q", "--bare", dst)
		t0 = time.Now()
		g.run(src, "push", "-q", "ext::git %s "+dst, "main")
		gitTotal += time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(weirTotal.Milliseconds())/float64(b.N), "weir-ms/push")
	b.ReportMetric(float64(gitTotal.Milliseconds())/float64(b.N), "git-ms/push")
	b.ReportMetric(float64(weirTotal)/float64(gitTotal), "weir/git")
}
