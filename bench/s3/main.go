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
	"runtime/pprof"
	"strings"
	"sync"
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
	prof := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*size, *files, *rng, *par, *rounds, *keep); err != nil {
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

func run(size int64, nfiles int, rng int64, par, rounds int, dir string) error {
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
		paths, keys = append(paths, p), append(keys, key)
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
		HTTPClient:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: par}},
	})
	ctx := context.Background()

	disk := func(buf []byte, j job) error {
		f, err := os.Open(paths[j.file])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.ReadAt(buf[:j.n], j.off)
		return err
	}
	endpoint := func(buf []byte, j job) error {
		out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(catalog.LocalBucket), Key: aws.String(keys[j.file]),
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", j.off, j.off+j.n-1))})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		n, err := io.ReadFull(out.Body, buf[:j.n])
		if err == nil && int64(n) != j.n {
			err = fmt.Errorf("short read %d of %d", n, j.n)
		}
		return err
	}
	measure := func(read func([]byte, job) error) (float64, error) {
		q := make(chan job, len(jobs))
		for _, j := range jobs {
			q <- j
		}
		close(q)
		var wg sync.WaitGroup
		errs := make(chan error, par)
		start := time.Now()
		for range par {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, rng)
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
			return 0, err
		}
		return float64(per*int64(nfiles)) / time.Since(start).Seconds() / 1e6, nil
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
	for r := range rounds {
		for _, cold := range []bool{false, true} {
			for _, side := range []string{"disk", "endpoint"} {
				read := disk
				if side == "endpoint" {
					read = endpoint
				}
				if cold {
					if err := drop(); err != nil {
						return err
					}
				}
				v, err := measure(read)
				if err != nil {
					return fmt.Errorf("%s: %w", side, err)
				}
				k := fmt.Sprintf("%s cold=%t", side, cold)
				fmt.Printf("round %d: %-20s %6.0f MB/s\n", r+1, k, v)
				best[k] = max(best[k], v)
			}
		}
	}
	up, _ := exec.Command("uptime").Output()
	fmt.Printf("table: %d files, %d MiB; %d parallel readers of %d MiB ranges; best of %d rounds\n", nfiles, per*int64(nfiles)>>20, par, rng>>20, rounds)
	for _, cold := range []bool{false, true} {
		name := "warm (page cache)"
		if cold {
			name = "cold (pages dropped)"
		}
		d, e := best[fmt.Sprintf("disk cold=%t", cold)], best[fmt.Sprintf("endpoint cold=%t", cold)]
		fmt.Printf("%-21s disk %6.0f MB/s, S3 endpoint %6.0f MB/s, ratio %.2f (goal >= 0.8)\n", name+":", d, e, e/d)
	}
	fmt.Printf("load: %s\n", strings.TrimSpace(string(up)))
	return nil
}
