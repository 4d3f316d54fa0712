package gitserver

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSessionClone clones one repo (WEIR_BENCH_COMMITS commits,
// default 10000, over WEIR_BENCH_FILES files, default 5000) from Weir and,
// in the same iteration, from C git's own upload-pack over the same ext::
// pipe, and reports both times and their ratio (weir/git). Both clones are
// bare (no checkout: the protocol and index-pack, not the file system).
//
//	go test ./gitserver -run '^$' -bench SessionClone -benchtime 3x
func BenchmarkSessionClone(b *testing.B) {
	commits := benchEnvInt("WEIR_BENCH_COMMITS", 10000)
	files := benchEnvInt("WEIR_BENCH_FILES", 5000)
	// WEIR_BENCH_CACHE_MB sets a Pebble block cache and bloom filters
	// (default: the objects package's options: an 8 MiB cache, no filters).
	ts := newSessServerCache(b, int64(benchEnvInt("WEIR_BENCH_CACHE_MB", 0))<<20)
	g := newSessGit(b, ts)
	bare := filepath.Join(g.home, "peer.git")
	start := time.Now()
	benchRepo(b, g, bare, commits, files)
	b.Logf("generated %d commits over %d files in %v", commits, files, time.Since(start))
	start = time.Now()
	g.run(bare, "push", "-q", ts.url("bench"), "main")
	b.Logf("pushed to weir in %v", time.Since(start))

	// WEIR_BENCH_TRACE2=<file> writes git's trace2 perf and packet traces.
	if f := os.Getenv("WEIR_BENCH_TRACE2"); f != "" {
		g.env = append(g.env, "GIT_TRACE2_PERF="+f, "GIT_TRACE_PACKET="+f+".packet")
	}
	var weirTotal, gitTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(g.home, fmt.Sprintf("w%d.git", i))
		t0 := time.Now()
		g.run(g.home, "clone", "-q", "--bare", ts.url("bench"), dst)
		weirTotal += time.Since(t0)

		dst = filepath.Join(g.home, fmt.Sprintf("g%d.git", i))
		t0 = time.Now()
		g.run(g.home, "clone", "-q", "--bare", "ext::git %s "+bare, dst)
		gitTotal += time.Since(t0)
	}
	b.StopTimer()
	for _, l := range strings.Split(ts.logBuf.String(), "\n") {
		if strings.Contains(l, "msg=upload-pack") {
			b.Log(l)
		}
	}
	b.ReportMetric(float64(weirTotal.Milliseconds())/float64(b.N), "weir-ms/clone")
	b.ReportMetric(float64(gitTotal.Milliseconds())/float64(b.N), "git-ms/clone")
	b.ReportMetric(float64(weirTotal)/float64(gitTotal), "weir/git")
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchRepo writes a bare repo with fast-import: the first commit adds
// files files in 50 directories, every later commit changes one file; then
// it is repacked as a server's repo would be.
func benchRepo(b *testing.B, g *sessGit, bare string, commits, files int) {
	g.run(g.home, "init", "-q", "--bare", bare)
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = bare
	cmd.Env = g.env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	path := func(i int) string { return fmt.Sprintf("dir%02d/file%05d.txt", i%50, i) }
	for c := 0; c < commits; c++ {
		msg := fmt.Sprintf("commit %d\n", c)
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s", 1700000000+c, len(msg), msg)
		if c == 0 {
			for i := 0; i < files; i++ {
				content := fmt.Sprintf("file %d version 0\n%s", i, benchFiller(i))
				fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path(i), len(content), content)
			}
		} else {
			i := (c * 7919) % files
			content := fmt.Sprintf("file %d version %d\n%s", i, c, benchFiller(i))
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path(i), len(content), content)
		}
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	g.run(bare, "repack", "-adq")
}

// benchFiller is a few hundred bytes of per-file text.
func benchFiller(i int) string {
	s := ""
	for j := 0; j < 8; j++ {
		s += fmt.Sprintf("line %d of file %d: some text that makes the file look like source code\n", j, i)
	}
	return s
}
