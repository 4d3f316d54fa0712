// Command s3 benchmarks the S3 endpoint (catalog/s3): read throughput of
// a table's files through the endpoint against reading the same files
// from disk, in the same run, the way engines read Parquet: parallel
// ranged reads of a fixed size.
//
// It writes -size bytes of random data as -files data files of one
// table in a local warehouse, starts the endpoint on loopback with a
// credential vended for the repo (read scope), and then, for -rounds
// rounds, reads every file once from disk (os.File.ReadAt) and once
// through the endpoint (aws-sdk-go-v2 GetObject with a Range header),
// each with -par readers taking -range-byte ranges from one queue. Disk
// and endpoint alternate within a round. Two cases: warm, both reading
// the same page cache (the endpoint's copies and HTTP against one copy
// out of memory), and cold, the files' pages dropped from the cache
// (posix_fadvise DONTNEED on these files only) before each pass, so both
// read the device. The figure is the best round of each. It prints MB/s,
// the ratios endpoint/disk and the load average.
//
// Run: go run ./bench/s3 [-size 1073741824] [-files 16] [-range 8388608] [-par 8]
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/weir-dev/weir/catalog"
	s3ep "github.com/weir-dev/weir/catalog/s3"
)

func main() {
	size := flag.Int64("size", 1<<30, "total bytes of the table's files")
	files := flag.Int("files", 16, "number of data files")
	rng := flag.Int64("range", 8<<20, "bytes per ranged read")
	par := flag.Int("par", 8, "parallel readers")
	rounds := flag.Int("rounds", 3, "rounds (best of each side is reported)")
	keep := flag.String("dir", "", "work folder (default: a temporary one, removed)")
	nginx := flag.String("nginx", "", "path of an nginx binary (Debian's: apt-get download nginx; dpkg -x): adds the side nginx, the same ranged reads from nginx (sendfile on) on loopback, read with net/http")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	sides := flag.String("sides", "disk,http,endpoint", "what to read through, in this order each round: disk (ReadAt), http (the peer: a plain HTTP server that only calls http.ServeContent on the file, read with net/http), endpoint (the S3 endpoint, read with aws-sdk-go-v2); also http-sdk (the peer read with aws-sdk-go-v2)")
	sndbuf := flag.Int("sndbuf", 0, "experiment: SO_SNDBUF of the servers' sockets (0: the kernel's autotuning)")
	rcvbuf := flag.Int("rcvbuf", 0, "experiment: SO_RCVBUF of the clients' sockets (0: the kernel's autotuning)")
	cases := flag.String("cases", "warm,cold", "warm (page cache), cold (pages dropped before each pass), or both")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*size, *files, *rng, *par, *rounds, *keep, *sndbuf, *rcvbuf, *nginx, strings.Split(*sides, ","), strings.Split(*cases, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "bench/s3:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type job struct {
	file int
	off  int64
	n    int64
}

func run(size int64, nfiles int, rng int64, par, rounds int, dir string, sndbuf, rcvbuf int, nginx string, sides, cases []string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "weir-bench-s3-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	wh, err := catalog.NewLocalWarehouse(filepath.Join(dir, "warehouse"), catalog.WithS3Names())
	if err != nil {
		return err
	}
	per := size / int64(nfiles)
	var paths, keys []string
	buf := make([]byte, 4<<20)
	for i := range nfiles {
		key := fmt.Sprintf("bench/ns/t/data/%05d.parquet", i)
		p := filepath.Join(dir, "warehouse", filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		paths, keys = append(paths, p), append(keys, key)
		if fi, err := os.Stat(p); err == nil && fi.Size() == per {
			continue // -dir kept from an earlier run
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		for left := per; left > 0; {
			n := min(left, int64(len(buf)))
			rand.Read(buf[:n])
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
			left -= n
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	var jobs []job
	for i := range nfiles {
		for off := int64(0); off < per; off += rng {
			jobs = append(jobs, job{i, off, min(rng, per-off)})
		}
	}

	srv, err := s3ep.NewServer(wh, s3ep.NewVendor([]byte("bench-secret-0123456789abcdef-0123456789")), filepath.Join(dir, "staging"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	lc := net.ListenConfig{Control: sockopt(unix.SO_SNDBUF, sndbuf)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, srv)
	c, err := srv.Vendor().Vend("bench", s3ep.ScopeRead, "", time.Hour)
	if err != nil {
		return err
	}
	client := awss3.New(awss3.Options{
		Region:       s3ep.Region,
		BaseEndpoint: aws.String("http://" + ln.Addr().String()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		HTTPClient:   &http.Client{Transport: newTransport(par, rcvbuf)},
	})
	ctx := context.Background()

	// The peer: the same files over plain HTTP from a server that does
	// nothing but http.ServeContent (sendfile for a range), read with
	// net/http: the bound of HTTP over loopback on this machine.
	pln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	whDir := filepath.Join(dir, "warehouse")
	go http.Serve(pln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(whDir, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"), catalog.LocalBucket+"/"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	}))
	peer := &http.Client{Transport: newTransport(par, rcvbuf)}
	peerURL := "http://" + pln.Addr().String() + "/"

	disk := func(buf []byte, j job) error {
		f, err := os.Open(paths[j.file])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.ReadAt(buf[:j.n], j.off)
		return err
	}
	full := func(body io.Reader, buf []byte, n int64) error {
		got, err := io.ReadFull(body, buf[:n])
		if err == nil && int64(got) != n {
			err = fmt.Errorf("short read %d of %d", got, n)
		}
		return err
	}
	httpGet := func(base string, buf []byte, j job) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+keys[j.file], nil)
		if err != nil {
			return err
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", j.off, j.off+j.n-1))
		resp, err := peer.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent {
			return fmt.Errorf("peer: %s", resp.Status)
		}
		return full(resp.Body, buf, j.n)
	}
	httpPeer := func(buf []byte, j job) error { return httpGet(peerURL, buf, j) }
	// extraCPU is CPU spent outside this process by a side's server
	// (nginx), counted into its CPU s/GiB.
	extraCPU := map[string]func() time.Duration{}
	var nginxRead func([]byte, job) error
	if nginx != "" {
		base, cpu, stop, err := startNginx(nginx, dir, whDir)
		if err != nil {
			return err
		}
		defer stop()
		nginxRead = func(buf []byte, j job) error { return httpGet(base, buf, j) }
		extraCPU["nginx"] = cpu
	}
	endpoint := func(buf []byte, j job) error {
		out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(catalog.LocalBucket), Key: aws.String(keys[j.file]),
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", j.off, j.off+j.n-1))})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		return full(out.Body, buf, j.n)
	}
	// http-sdk: the peer read with the endpoint's client (the SDK signs,
	// the peer ignores it), which splits the endpoint's cost into the
	// client's and the server's.
	peerSDK := awss3.New(awss3.Options{
		Region:       s3ep.Region,
		BaseEndpoint: aws.String("http://" + pln.Addr().String()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		HTTPClient:   &http.Client{Transport: newTransport(par, rcvbuf)},
	})
	httpSDK := func(buf []byte, j job) error {
		out, err := peerSDK.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(catalog.LocalBucket), Key: aws.String(keys[j.file]),
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", j.off, j.off+j.n-1))})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		return full(out.Body, buf, j.n)
	}
	readers := map[string]func([]byte, job) error{"disk": disk, "http": httpPeer, "http-sdk": httpSDK, "endpoint": endpoint}
	if nginxRead != nil {
		readers["nginx"] = nginxRead
	}
	for _, side := range sides {
		if readers[side] == nil {
			return fmt.Errorf("-sides: no side %q (disk, http, http-sdk, endpoint; nginx with -nginx)", side)
		}
	}
	for _, c := range cases {
		if c != "warm" && c != "cold" {
			return fmt.Errorf("-cases: no case %q (warm, cold)", c)
		}
	}
	// Each reader has one destination buffer for the whole run (as an
	// engine's buffer pool), touched once so no pass pays its page faults.
	bufs := make([][]byte, par)
	for i := range bufs {
		bufs[i] = make([]byte, rng)
		for k := 0; k < len(bufs[i]); k += 4096 {
			bufs[i][k] = 1
		}
	}
	// measure reads every job once and returns MB/s and the process's CPU
	// seconds (user+system, server and client together) per GiB read.
	measure := func(read func([]byte, job) error, extra func() time.Duration) (float64, float64, error) {
		if extra == nil {
			extra = func() time.Duration { return 0 }
		}
		q := make(chan job, len(jobs))
		for _, j := range jobs {
			q <- j
		}
		close(q)
		var wg sync.WaitGroup
		errs := make(chan error, par)
		cpu0 := cpuTime() + extra()
		start := time.Now()
		for i := range par {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := bufs[i]
				for j := range q {
					if err := read(buf, j); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return 0, 0, err
		}
		total := float64(per * int64(nfiles))
		return total / time.Since(start).Seconds() / 1e6, (cpuTime() + extra() - cpu0).Seconds() / (total / (1 << 30)), nil
	}
	drop := func() error {
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			f.Sync()
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	best := map[string]float64{}
	cpu := map[string]float64{}
	for r := range rounds {
		for _, c := range cases {
			for _, side := range sides {
				if c == "cold" {
					if err := drop(); err != nil {
						return err
					}
				}
				v, perGiB, err := measure(readers[side], extraCPU[side])
				if err != nil {
					return fmt.Errorf("%s: %w", side, err)
				}
				k := side + " " + c
				fmt.Printf("round %d: %-14s %6.0f MB/s  %5.2f CPU s/GiB\n", r+1, k, v, perGiB)
				best[k] = max(best[k], v)
				if c, ok := cpu[k]; !ok || perGiB < c {
					cpu[k] = perGiB
				}
			}
		}
	}
	up, _ := exec.Command("uptime").Output()
	fmt.Printf("table: %d files, %d MiB; %d parallel readers of %d KiB ranges; best of %d rounds (MB/s and CPU s/GiB each); GOMAXPROCS %d\n", nfiles, per*int64(nfiles)>>20, par, rng>>10, rounds, runtime.GOMAXPROCS(0))
	for _, c := range cases {
		d := best["disk "+c]
		fmt.Printf("%s:\n", map[string]string{"warm": "warm (page cache)", "cold": "cold (pages dropped)"}[c])
		for _, side := range sides {
			k := side + " " + c
			line := fmt.Sprintf("  %-9s %6.0f MB/s  %5.2f CPU s/GiB", side, best[k], cpu[k])
			if side != "disk" && d > 0 {
				line += fmt.Sprintf("  /disk %.2f", best[k]/d)
			}
			if side == "endpoint" && best["http "+c] > 0 {
				line += fmt.Sprintf("  /http %.2f", best[k]/best["http "+c])
			}
			fmt.Println(line)
		}
	}
	fmt.Printf("goal: endpoint/disk >= 0.8\nload: %s\n", strings.TrimSpace(string(up)))
	return nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sockopt returns a Control that sets the socket option opt to v (0: leave it).
func sockopt(opt, v int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		if v == 0 {
			return nil
		}
		var err error
		c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, v) })
		return err
	}
}

// newTransport is the clients' HTTP transport: one idle connection kept
// per reader, and SO_RCVBUF rcvbuf (0: the kernel's autotuning).
func newTransport(par, rcvbuf int) *http.Transport {
	d := &net.Dialer{Control: sockopt(unix.SO_RCVBUF, rcvbuf)}
	return &http.Transport{MaxIdleConnsPerHost: par, DialContext: d.DialContext}
}

// startNginx runs nginx (one process, sendfile on, no logs) on a free
// loopback port serving root, and returns its base URL, a reader of its
// CPU time, and a stop function.
func startNginx(bin, dir, root string) (string, func() time.Duration, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	nd := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(nd, 0o700); err != nil {
		return "", nil, nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server { listen %[2]s; root %[3]s; }
}
`, nd, addr, root)
	if err := os.WriteFile(filepath.Join(nd, "nginx.conf"), []byte(conf), 0o600); err != nil {
		return "", nil, nil, err
	}
	cmd := exec.Command(bin, "-p", nd, "-c", filepath.Join(nd, "nginx.conf"), "-e", filepath.Join(nd, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, nil, fmt.Errorf("-nginx: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			stop()
			return "", nil, nil, fmt.Errorf("-nginx: not listening on %s after 10 s (see %s/error.log)", addr, nd)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu := func() time.Duration {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if err != nil {
			return 0
		}
		// Fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th, in clock ticks (100 a second).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(u+st) * 10 * time.Millisecond
	}
	return "http://" + addr + "/", cpu, stop, nil
}
