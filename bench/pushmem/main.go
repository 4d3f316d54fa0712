// Command pushmem measures the peak memory of a weir server under three
// hostile or heavy pushes, each against a freshly started server:
//
//	bomb        one smart-HTTP push of a ~4 KB pack: a 64 KiB random blob and
//	            -bomb-deltas ofs-deltas against it, each declaring a 256 MiB
//	            result made of copies of the blob (a delta bomb)
//	flood       one smart-HTTP push of -flood-mb MB of commands (deletes of
//	            refs with 1000-byte names) and no pack
//	concurrent  -pushes C git pushes at once, each of a new repo with
//	            -push-mb MB of random files (no compression, no deltas)
//	overlimit   (not run by default) one such C git push against a server
//	            started with --max-pack-bytes at half its size
//
// For each it prints the server's peak resident memory (VmHWM from
// /proc/<pid>/status, polled while the case runs, so a server killed at
// the cap still has a figure) and what the client saw. Run it against the
// weir under test and, with -peer, against another build (e.g. main's) to
// get the ratio:
//
//	go build -o /tmp/weir-main/ ./cmd/weir      # in a checkout of main
//	go run ./bench/pushmem -peer /tmp/weir-main/weir
//
// Run as root, each server goes into a memory cgroup (v1 or v2) capped at
// -cap-mb, so a server that would take tens of gigabytes (the bomb against
// a build without the limits) is killed at the cap instead of the machine
// running out of memory; the row then says so. The goal is a peak under
// 512 MB in every case, with the bomb and the flood refused and every
// concurrent push accepted.
package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/bench/internal/host"
)

var (
	weirBin    = flag.String("weir", "", "weir binary under test (default: build ./cmd/weir into a temp dir)")
	peerBin    = flag.String("peer", "", "another weir binary to measure the same way (e.g. main's)")
	cases      = flag.String("cases", "bomb,flood,concurrent", "comma-separated cases")
	bombDeltas = flag.Int("bomb-deltas", 100, "bomb: deltas of 256 MiB each against the 64 KiB blob")
	floodMB    = flag.Int("flood-mb", 512, "flood: megabytes of command lines")
	pushes     = flag.Int("pushes", 4, "concurrent: pushes at once")
	pushMB     = flag.Int("push-mb", 200, "concurrent: megabytes of random data per push")
	capMB      = flag.Int64("cap-mb", 6144, "memory cgroup cap of each server, in MB (0: none)")
	extraArgs  = flag.String("args", "", "extra weir serve flags, space-separated, for every binary")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pushmem:", err)
		os.Exit(1)
	}
}

type build struct{ name, path string }

func run() error {
	tmp, err := os.MkdirTemp("", "pushmem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bins := []build{}
	if *weirBin == "" {
		out := filepath.Join(tmp, "bin")
		cmd := exec.Command("go", "build", "-o", out+"/", "./cmd/weir")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/weir (run from the module root): %w", err)
		}
		*weirBin = filepath.Join(out, "weir")
	}
	bins = append(bins, build{"weir", *weirBin})
	if *peerBin != "" {
		bins = append(bins, build{"peer", *peerBin})
	}
	fmt.Printf("pushmem: load %s, %d-delta bomb, %d MB flood, %d x %d MB pushes, cap %d MB\n",
		host.LoadAvg(), *bombDeltas, *floodMB, *pushes, *pushMB, *capMB)
	var concurrentRepos []string
	for _, c := range strings.Split(*cases, ",") {
		if c == "concurrent" || c == "overlimit" {
			if concurrentRepos, err = makeRepos(filepath.Join(tmp, "repos"), *pushes, *pushMB); err != nil {
				return err
			}
		}
	}
	fmt.Printf("%-10s %-5s %10s  %s\n", "case", "bin", "peak RSS", "outcome")
	for _, c := range strings.Split(*cases, ",") {
		for _, b := range bins {
			var extra []string
			if c == "overlimit" {
				extra = []string{"--max-pack-bytes", strconv.Itoa(*pushMB << 19)}
			}
			srv, err := startServer(b.path, filepath.Join(tmp, "data-"+b.name+"-"+c), extra...)
			if err != nil {
				return err
			}
			var outcome string
			switch c {
			case "bomb":
				outcome = pushBomb(srv.http, *bombDeltas)
			case "flood":
				outcome = pushFlood(srv.http, *floodMB)
			case "concurrent":
				outcome = pushConcurrent(srv.http, concurrentRepos)
			case "overlimit":
				outcome = pushConcurrent(srv.http, concurrentRepos[:1])
			default:
				srv.stop()
				return fmt.Errorf("unknown case %q", c)
			}
			peak, died := srv.stop()
			if died != "" {
				outcome += "; server " + died
			}
			fmt.Printf("%-10s %-5s %7d MB  %s\n", c, b.name, peak>>20, outcome)
		}
	}
	return nil
}

// server is one weir serve with its peak-memory poller.
type server struct {
	cmd    *exec.Cmd
	http   string
	peak   atomic.Int64
	done   chan struct{}
	cgroup string
	log    *bytes.Buffer
}

var listenLine = regexp.MustCompile(`^weir serve: http (\S+)`)

func startServer(bin, data string, extra ...string) (*server, error) {
	args := append([]string{"serve", "--data", data, "--http", "127.0.0.1:0", "--ssh", ""}, extra...)
	if *extraArgs != "" {
		args = append(args, strings.Fields(*extraArgs)...)
	}
	cmd := exec.Command(bin, args...)
	s := &server{cmd: cmd, done: make(chan struct{}), log: &bytes.Buffer{}}
	cmd.Stderr = s.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.cgroup = capMemory(cmd.Process.Pid)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v := vmHWM(cmd.Process.Pid); v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
			u, err := url.Parse(strings.Replace(m[1], "<repo>.git", "x", 1))
			if err != nil {
				return nil, err
			}
			s.http = "http://" + u.Host
			go io.Copy(io.Discard, stdout)
			return s, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("%s did not start:\n%s", bin, s.log)
}

// stop ends the server and returns its peak RSS and, if it had died, how.
func (s *server) stop() (int64, string) {
	if v := vmHWM(s.cmd.Process.Pid); v > s.peak.Load() {
		s.peak.Store(v)
	}
	died := ""
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		died = "was dead before the end of the case (OOM-killed at the cap?)"
	}
	waited := make(chan error, 1)
	go func() { waited <- s.cmd.Wait() }()
	select {
	case err := <-waited:
		if died == "" && err != nil && strings.Contains(err.Error(), "killed") {
			died = "killed: " + err.Error()
		}
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-waited
	}
	close(s.done)
	if s.cgroup != "" {
		removeCgroup(s.cgroup)
	}
	return s.peak.Load(), died
}

// removeCgroup removes dir and the cgroups the server made inside it
// (package exec nests its sandboxes' cgroups under the server's own; a
// server killed at the cap leaves them behind), deepest first.
func removeCgroup(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}

// vmHWM is the peak resident set size of pid, in bytes (0 if gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// capMemory puts pid in a fresh memory cgroup capped at -cap-mb and
// returns its directory ("" when it cannot: not root, no cgroup).
func capMemory(pid int) string {
	if *capMB <= 0 {
		return ""
	}
	name := fmt.Sprintf("weir-pushmem-%d", pid)
	limit := strconv.FormatInt(*capMB<<20, 10)
	for _, c := range []struct{ dir, file string }{
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes"}, // v1
		{"/sys/fs/cgroup", "memory.max"},                   // v2
	} {
		if _, err := os.Stat(filepath.Join(c.dir, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(c.dir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		if os.WriteFile(filepath.Join(dir, c.file), []byte(limit), 0o644) != nil ||
			os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644) != nil {
			os.Remove(dir)
			continue
		}
		return dir
	}
	fmt.Fprintf(os.Stderr, "pushmem: no memory cgroup for the server (not root?): running without the %d MB cap\n", *capMB)
	return ""
}

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

const zeroID = "0000000000000000000000000000000000000000"

// post sends one receive-pack request body and summarises the answer.
func post(base, repo string, body io.Reader) string {
	resp, err := http.Post(base+"/"+repo+".git/git-receive-pack", "application/x-git-receive-pack-request", body)
	if err != nil {
		return "request failed: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	n, _ := io.Copy(io.Discard, resp.Body)
	text := string(b)
	if i := strings.Index(text, "unpack "); i >= 0 {
		text = text[i:]
	}
	if i := strings.IndexAny(text, "\n"); i >= 0 {
		text = text[:i]
	}
	if len(text) > 140 {
		text = text[:140] + "..."
	}
	return fmt.Sprintf("HTTP %d, %d-byte answer: %q", resp.StatusCode, int64(len(b))+n, text)
}

// bombPack is a pack of a 64 KiB random blob and n ofs-deltas, each a
// 256 MiB result of 4096 copies of the blob.
func bombPack(n int) (pack []byte, blob string) {
	base := make([]byte, 64<<10)
	rand.Read(base)
	var delta []byte
	delta = binary.AppendUvarint(delta, uint64(len(base)))
	delta = binary.AppendUvarint(delta, 256<<20)
	delta = append(delta, bytes.Repeat([]byte{0x80}, 4096)...) // copy offset 0, size 0x10000
	var body bytes.Buffer
	entry := func(kind byte, size int, prefix, data []byte) {
		c := kind<<4 | byte(size&0x0f)
		size >>= 4
		for size > 0 {
			body.WriteByte(c | 0x80)
			c = byte(size & 0x7f)
			size >>= 7
		}
		body.WriteByte(c)
		body.Write(prefix)
		zw := zlib.NewWriter(&body)
		zw.Write(data)
		zw.Close()
	}
	offsets := []int{12}
	entry(3, len(base), nil, base)
	for i := 0; i < n; i++ {
		off := 12 + body.Len()
		rel := off - offsets[0]
		// ofs-delta offset encoding (gitformat-pack).
		var enc []byte
		enc = append(enc, byte(rel&0x7f))
		for rel >>= 7; rel > 0; rel >>= 7 {
			rel--
			enc = append([]byte{0x80 | byte(rel&0x7f)}, enc...)
		}
		entry(6, len(delta), enc, delta)
	}
	var out bytes.Buffer
	out.WriteString("PACK")
	binary.Write(&out, binary.BigEndian, uint32(2))
	binary.Write(&out, binary.BigEndian, uint32(n+1))
	out.Write(body.Bytes())
	sum := sha1.Sum(out.Bytes())
	out.Write(sum[:])
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(base))
	h.Write(base)
	return out.Bytes(), fmt.Sprintf("%x", h.Sum(nil))
}

func pushBomb(base string, n int) string {
	pack, blob := bombPack(n)
	body := pkt(zeroID+" "+blob+" refs/heads/bomb\x00report-status\n") + "0000" + string(pack)
	return fmt.Sprintf("%d-byte pack: ", len(pack)) + post(base, "bomb", strings.NewReader(body))
}

func pushFlood(base string, mb int) string {
	pr, pw := io.Pipe()
	go func() {
		name := strings.Repeat("x", 1000)
		line := 0
		var sent int64
		bw := bufio.NewWriterSize(pw, 1<<20)
		for sent < int64(mb)<<20 {
			l := fmt.Sprintf("%s %s refs/heads/%s%08d", zeroID, zeroID, name, line)
			if line == 0 {
				l += "\x00report-status"
			}
			s := pkt(l + "\n")
			if _, err := bw.WriteString(s); err != nil {
				pw.CloseWithError(err)
				return
			}
			sent += int64(len(s))
			line++
		}
		bw.WriteString("0000")
		pw.CloseWithError(bw.Flush())
	}()
	return post(base, "flood", pr)
}

// makeRepos creates n repos, each one commit of mb MB of random files.
func makeRepos(dir string, n, mb int) ([]string, error) {
	var out []string
	buf := make([]byte, 1<<20)
	for i := 0; i < n; i++ {
		repo := filepath.Join(dir, fmt.Sprintf("r%d", i))
		if err := os.MkdirAll(repo, 0o755); err != nil {
			return nil, err
		}
		for j := 0; j < mb; j++ {
			rand.Read(buf)
			if err := os.WriteFile(filepath.Join(repo, fmt.Sprintf("f%03d.bin", j)), buf, 0o644); err != nil {
				return nil, err
			}
		}
		for _, args := range [][]string{
			{"init", "-q", "-b", "main"},
			{"-c", "core.compression=0", "add", "."},
			{"-c", "user.name=bench", "-c", "user.email=bench@weir", "commit", "-qm", "random data"},
		} {
			if out, err := gitCmd(repo, args...).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("git %v: %v\n%s", args, err, out)
			}
		}
		out = append(out, repo)
	}
	return out, nil
}

func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0")
	return cmd
}

func pushConcurrent(base string, repos []string) string {
	var wg sync.WaitGroup
	results := make([]string, len(repos))
	start := time.Now()
	for i, repo := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("%s/push%d.git", base, i)
			out, err := gitCmd(repo, "-c", "pack.compression=0", "-c", "pack.window=0", "-c", "http.postBuffer=1048576",
				"push", "-q", url, "main").CombinedOutput()
			if err != nil {
				results[i] = "FAILED: " + strings.TrimSpace(string(out))
				return
			}
			results[i] = "ok"
		}()
	}
	wg.Wait()
	ok := 0
	var failed []string
	for _, r := range results {
		if r == "ok" {
			ok++
		} else {
			failed = append(failed, r)
		}
	}
	s := fmt.Sprintf("%d/%d pushes accepted in %v", ok, len(repos), time.Since(start).Round(100*time.Millisecond))
	if len(failed) > 0 {
		s += "; " + strings.Join(failed, "; ")
	}
	return s
}
