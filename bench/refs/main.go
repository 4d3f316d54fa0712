// Command refs measures durable ref updates in Weir's Pebble ref store and
// compares them with C git's `git update-ref --stdin` transactions,
// measured in the same run on the same disk.
//
//	go run ./bench/refs [-d 3s] [-lat 2000] [-dir /path/on/the/disk/to/test]
//
// It prints updates/s with 1, 8 and 64 concurrent writers (each on its own
// ref, every update a compare-and-swap synced to disk before it returns),
// p50/p99 latency of one atomic two-ref update (code ref + data ref), and
// the same figures for git with core.fsync=reference (git's default does
// not fsync refs at all; that figure is printed too). The latencies of
// weir, git and of the disk itself (a 4 KiB append + fdatasync) are taken
// interleaved, one of each in turn, so that on a shared machine all three
// see the same load: read p99 against git's and the disk's of the same run.
//
// -lat-only times weir's two-ref updates alone (to run under strace -c or
// perf); -cpuprofile writes a CPU profile of weir's part.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

func hashOf(i int) objects.Hash {
	var h objects.Hash
	h[0] = 0xbe
	h[16], h[17], h[18], h[19] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return h
}

func main() {
	dur := flag.Duration("d", 3*time.Second, "duration of each throughput run")
	latN := flag.Int("lat", 2000, "number of two-ref updates timed for latency")
	base := flag.String("dir", "", "directory to create temp dirs in (default: os.TempDir)")
	latOnly := flag.Bool("lat-only", false, "time only weir's two-ref updates (for strace and perf)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of weir's part to this file")
	flag.Parse()

	root, err := os.MkdirTemp(*base, "weir-bench-refs-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	db, err := pebblekv.Open(filepath.Join(root, "pebble"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	rd := refs.NewDB(objects.New(db, objects.Limits{}))
	ctx := context.Background()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	if *latOnly {
		p50, p99 := weirLatency(ctx, rd, *latN)
		pprof.StopCPUProfile()
		fmt.Printf("weir atomic 2-ref update, %d updates: p50 %s p99 %s\n", *latN, round(p50), round(p99))
		return
	}
	fmt.Printf("durable ref updates, temp dir %s, %d CPUs, %s per run\n\n", root, runtimeCPUs(), *dur)
	weir := map[int]float64{}
	for _, writers := range []int{1, 8, 64} {
		weir[writers] = weirThroughput(ctx, rd, writers, *dur)
	}
	pprof.StopCPUProfile()

	gitDir := filepath.Join(root, "git")
	a, b := gitSetup(gitDir)
	gitSynced := gitThroughput(gitDir, a, b, *dur, true)
	gitDefault := gitThroughput(gitDir, a, b, *dur, false)
	// The three latencies are taken interleaved, one of each in turn, so
	// that all three see the same load on a shared machine.
	weirLat, gitLat, diskLat := interleavedLatency(ctx, rd, gitDir, a, b, root, *latN)
	p50, p99 := percentiles(weirLat)
	g50, g99 := percentiles(gitLat)
	f50, f99 := percentiles(diskLat)

	fmt.Printf("%-44s %12s\n", "single-ref CAS updates, each synced", "updates/s")
	for _, w := range []int{1, 8, 64} {
		fmt.Printf("  weir, %2d writers on distinct refs           %10.0f\n", w, weir[w])
	}
	fmt.Printf("  git update-ref --stdin, 1 writer (fsync)    %10.0f\n", gitSynced)
	fmt.Printf("  git update-ref --stdin, 1 writer (no fsync) %10.0f\n", gitDefault)
	fmt.Println()
	fmt.Printf("atomic 2-ref update latency (1 writer)      p50         p99\n")
	fmt.Printf("  weir                                    %8s    %8s\n", round(p50), round(p99))
	fmt.Printf("  git update-ref --stdin (fsync)          %8s    %8s\n", round(g50), round(g99))
	fmt.Printf("  the disk itself: 4 KiB append + fdatasync %8s    %8s\n", round(f50), round(f99))
	fmt.Println()
	fmt.Printf("weir %.0f/s vs git %.0f/s (ratio %.1fx), 1 writer, both fsyncing\n", weir[1], gitSynced, weir[1]/gitSynced)
	fmt.Printf("weir %.0f/s with 64 writers vs git %.0f/s (ratio %.1fx; goal 5000/s)\n", weir[64], gitSynced, weir[64]/gitSynced)
	fmt.Printf("weir p99 %s vs git p99 %s for one 2-ref update (weir/git %.2f; goal p99 <= 2ms); weir p99 / the disk's p99 %.2f\n", round(p99), round(g99), float64(p99)/float64(g99), float64(p99)/float64(f99))
}

// interleavedLatency times n atomic two-ref updates in weir and in git
// (update-ref --stdin, fsync) and n 4 KiB appends + fdatasync of the disk,
// one of each in turn.
func interleavedLatency(ctx context.Context, rd *refs.DB, gitDir, a, b, dir string, n int) (weir, git, disk []time.Duration) {
	u := startUpdateRef(gitDir, true)
	defer u.close()
	u.tx("create refs/heads/main "+a, "create refs/data/main "+a)
	cur, other := a, b
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	prev := objects.ZeroHash
	const base = 1 << 20 // hashes apart from weirLatency's
	for i := 1; i <= n; i++ {
		next := hashOf(base + i)
		t0 := time.Now()
		if err := rd.Update(ctx, "ilat", []refs.Update{
			{Name: "refs/heads/main", Old: prev, New: next},
			{Name: "refs/data/main", Old: prev, New: next},
		}, nil, "bench"); err != nil {
			log.Fatal(err)
		}
		weir = append(weir, time.Since(t0))
		prev = next

		t0 = time.Now()
		u.tx(fmt.Sprintf("update refs/heads/main %s %s", other, cur), fmt.Sprintf("update refs/data/main %s %s", other, cur))
		git = append(git, time.Since(t0))
		cur, other = other, cur

		t0 = time.Now()
		if _, err := f.Write(buf); err != nil {
			log.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			log.Fatal(err)
		}
		disk = append(disk, time.Since(t0))
	}
	return weir, git, disk
}

func runtimeCPUs() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	return n
}

func round(d time.Duration) time.Duration {
	return d.Round(time.Microsecond)
}

// weirThroughput runs writers goroutines, each moving its own ref by CAS
// for d, and returns acknowledged updates per second.
func weirThroughput(ctx context.Context, rd *refs.DB, writers int, d time.Duration) float64 {
	var total atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	repo := objects.RepoName(fmt.Sprintf("tp%d", writers))
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := refs.Name(fmt.Sprintf("refs/heads/w%d", w))
			prev := objects.ZeroHash
			for i := 1; !stop.Load(); i++ {
				next := hashOf(i)
				if err := rd.Update(ctx, repo, []refs.Update{{Name: name, Old: prev, New: next}}, nil, "bench"); err != nil {
					log.Fatal(err)
				}
				prev = next
				total.Add(1)
			}
		}(w)
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// weirLatency times n atomic updates of a code ref and a data ref together.
func weirLatency(ctx context.Context, rd *refs.DB, n int) (p50, p99 time.Duration) {
	lat := make([]time.Duration, 0, n)
	prev := objects.ZeroHash
	for i := 1; i <= n; i++ {
		next := hashOf(i)
		t0 := time.Now()
		err := rd.Update(ctx, "lat", []refs.Update{
			{Name: "refs/heads/main", Old: prev, New: next},
			{Name: "refs/data/main", Old: prev, New: next},
		}, nil, "bench")
		lat = append(lat, time.Since(t0))
		if err != nil {
			log.Fatal(err)
		}
		prev = next
	}
	return percentiles(lat)
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	lat = slices.Clone(lat)
	slices.Sort(lat)
	return lat[len(lat)*50/100], lat[len(lat)*99/100]
}

func git(dir string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
		"GIT_AUTHOR_NAME=B", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=B", "GIT_COMMITTER_EMAIL=b@example.com")
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// gitSetup makes a repo with two commits to swing refs between.
func gitSetup(dir string) (a, b string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	git(dir, "init", "-q")
	git(dir, "config", "core.logAllRefUpdates", "always")
	tree := git(dir, "write-tree")
	a = git(dir, "commit-tree", "-m", "a", tree)
	b = git(dir, "commit-tree", "-m", "b", tree)
	return a, b
}

// updateRef is one long-running `git update-ref --stdin` process.
type updateRef struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startUpdateRef(dir string, fsync bool) *updateRef {
	args := []string{}
	if fsync {
		args = append(args, "-c", "core.fsync=reference", "-c", "core.fsyncMethod=fsync")
	}
	args = append(args, "update-ref", "--stdin")
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	return &updateRef{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

// tx runs one transaction and waits for git to acknowledge its commit.
func (u *updateRef) tx(lines ...string) {
	fmt.Fprintf(u.in, "start\n%s\ncommit\n", strings.Join(lines, "\n"))
	for _, want := range []string{"start: ok", "commit: ok"} {
		line, err := u.out.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			log.Fatalf("git update-ref: got %q (%v), want %q", line, err, want)
		}
	}
}

func (u *updateRef) close() {
	u.in.Close()
	_ = u.cmd.Wait()
}

func gitThroughput(dir, a, b string, d time.Duration, fsync bool) float64 {
	ref := "refs/heads/tp-nofsync"
	if fsync {
		ref = "refs/heads/tp-fsync"
	}
	u := startUpdateRef(dir, fsync)
	defer u.close()
	u.tx("create " + ref + " " + a)
	cur, other := a, b
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		u.tx(fmt.Sprintf("update %s %s %s", ref, other, cur))
		cur, other = other, cur
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}
