package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/weir-dev/weir/catalog"
)

// benchKey is a data file at the depth of a table's data files.
const benchKey = "team@a/sales/orders/data/00000-0-a.parquet"

func benchServer(b *testing.B) (*Server, string) {
	dir := b.TempDir()
	wh, err := catalog.NewLocalWarehouse(filepath.Join(dir, "warehouse"), catalog.WithS3Names())
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "warehouse", filepath.FromSlash(benchKey))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(wh, NewVendor(bytes.Repeat([]byte{7}, 32)), filepath.Join(dir, "staging"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv, p
}

// BenchmarkGetObjectRequest is the endpoint's own work per GetObject
// (authentication, resolving the key, opening the file, headers, one
// byte of body), without the network: what a ranged read pays on top of
// BenchmarkPlainServeContent, the work of bench/s3's http peer.
func BenchmarkGetObjectRequest(b *testing.B) {
	srv, _ := benchServer(b)
	c, err := srv.v.Vend("team@a", ScopeRead, "", 0)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:7424/weir/"+benchKey, nil)
	req.Header.Set("Range", "bytes=4096-4096")
	sum := sha256.Sum256(nil)
	h := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", h)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}, req, h, "s3", Region, time.Now(), func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req.Clone(context.Background()))
		if w.Code != http.StatusPartialContent || w.Body.Len() != 1 {
			b.Fatalf("status %d, %d bytes: %s", w.Code, w.Body.Len(), w.Body.String())
		}
	}
}

// BenchmarkPlainServeContent is the same request served by opening the
// file and calling http.ServeContent, as bench/s3's http peer does.
func BenchmarkPlainServeContent(b *testing.B) {
	_, p := benchServer(b)
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:7424/weir/"+benchKey, nil)
	req.Header.Set("Range", "bytes=4096-4096")
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		w := httptest.NewRecorder()
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		http.ServeContent(w, req.Clone(context.Background()), "", time.Time{}, f)
		f.Close()
		if w.Code != http.StatusPartialContent || w.Body.Len() != 1 {
			b.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}

// reportCPU reports the process's CPU time per op (user and system), a
// figure that, unlike ns/op, does not count time spent waiting for a
// core on a shared machine. Call it before the loop and defer what it
// returns.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}
