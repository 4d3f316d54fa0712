package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers type "rest"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// lockedBuffer is a log sink read while the server writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// parseServe parses weir serve's flags as runServe does into a config.
func parseServe(t *testing.T, args ...string) (serveConfig, string) {
	t.Helper()
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.flags(fs)
	var help bytes.Buffer
	fs.SetOutput(&help)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	fs.PrintDefaults()
	return cfg, help.String()
}

// TestServeOneCatalogOnS3: weir serve's flags choose an S3 warehouse, and
// the Iceberg REST catalog and the SSH query command are one catalog over
// it: rows appended through REST (with the client's own S3 keys) land in
// the bucket and the SSH query reads them back. LoadTable's config has no
// key, and neither the log nor --help ever shows one.
func TestServeOneCatalogOnS3(t *testing.T) {
	ctx := context.Background()
	backend := s3mem.New()
	if err := backend.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3srv.Close)
	const secret = "serve-test-secret-key-42"
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret-from-the-environment")
	t.Setenv("WEIR_WAREHOUSE", "") // the flags choose
	cfg, help := parseServe(t, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--node-parallel", "1",
		"--warehouse", "s3://lake/wh", "--s3-endpoint", s3srv.URL, "--s3-path-style", "--s3-region", "eu-west-3",
		"--s3-access-key-id", "AKIDSERVE", "--s3-secret-access-key", secret)
	for _, f := range []string{"-warehouse", "-s3-endpoint", "-s3-region", "-s3-path-style", "-s3-access-key-id", "-s3-secret-access-key", "-iceberg-vend-credentials"} {
		if !strings.Contains(help, f) {
			t.Errorf("--help lacks %s", f)
		}
	}
	if strings.Contains(help, secret) || strings.Contains(help, "env-secret-from-the-environment") {
		t.Errorf("--help shows a secret key:\n%s", help)
	}
	runnerOnPath(t) // weir query runs in weir-node
	var logs lockedBuffer
	a, err := newServeApp(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.run(runCtx, io.Discard) }()
	shutdown := sync.OnceFunc(func() { stop(); <-done })
	t.Cleanup(shutdown)

	if cat := a.Catalog; !strings.HasPrefix(cat.Warehouse().Root(), "s3://lake/wh") {
		t.Fatalf("serve's catalog at %s", cat.Warehouse().Root())
	}

	// A repo with one code commit (as a first push makes it).
	repo := objects.RepoName("team/demo")
	tree, _ := a.Objects.Put(ctx, repo, plumbing.TreeObject, nil)
	code, _ := a.Objects.Put(ctx, repo, plumbing.CommitObject, []byte("tree "+tree.String()+"\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\ncode\n"))
	if err := a.Refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", New: code}}, nil, "test"); err != nil {
		t.Fatal(err)
	}

	base := "http://" + a.httpLn.Addr().String() + "/iceberg"
	rc, err := icebergcat.Load(ctx, "weir", iceberg.Properties{"type": "rest", "uri": base, "warehouse": "team/demo@main",
		icebergio.S3AccessKeyID: "AKIDCLIENT", icebergio.S3SecretAccessKey: "client-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.CreateNamespace(ctx, table.Identifier{"sales"}, nil); err != nil {
		t.Fatal(err)
	}
	sch := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64})
	tbl, err := rc.CreateTable(ctx, table.Identifier{"sales", "orders"}, sch)
	if err != nil {
		t.Fatal(err)
	}
	as := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3, 4, 5}, nil)
	rec := b.NewRecordBatch()
	at := array.NewTableFromRecords(as, []arrow.RecordBatch{rec})
	defer at.Release()
	rec.Release()
	b.Release()
	if _, err := tbl.AppendTable(ctx, at, 100, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tbl.MetadataLocation(), "s3://lake/wh/team@demo/sales/orders/") {
		t.Fatalf("table metadata at %s, not in the bucket", tbl.MetadataLocation())
	}
	list, err := backend.ListBucket("lake", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var parquet int
	for _, o := range list.Contents {
		if strings.HasPrefix(o.Key, "wh/team@demo/sales/orders/data/") && strings.HasSuffix(o.Key, ".parquet") {
			parquet++
		}
	}
	if parquet != 1 {
		t.Fatalf("%d Parquet files in the bucket, want 1", parquet)
	}

	// The SSH query command reads the same table through the same catalog.
	var stdout, stderr bytes.Buffer
	status := a.SSH.Commands["query"](ctx, &gitserver.SSHRequest{
		Args: []string{"query", "team/demo", "main", "SELECT count(*) AS n, sum(id) AS s FROM sales.orders"}, Identity: "anonymous",
		Stdout: &stdout, Stderr: &stderr, Can: func(objects.RepoName, access.Permission) bool { return true },
	})
	if status != 0 || stdout.String() != "n\ts\n5\t15\n" {
		t.Fatalf("ssh query = %d %q %q", status, stdout.String(), stderr.String())
	}

	// LoadTable's config: where the bucket is, no key.
	rsp, err := http.Get(base + "/v1/team%2Fdemo/main/namespaces/sales/tables/orders")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	var loaded struct {
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal(body, &loaded); err != nil || rsp.StatusCode != 200 {
		t.Fatalf("load table = %d %s", rsp.StatusCode, body)
	}
	if loaded.Config["s3.endpoint"] != s3srv.URL || loaded.Config["s3.region"] != "eu-west-3" {
		t.Fatalf("config %v does not say where the bucket is", loaded.Config)
	}
	if bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte("AKIDSERVE")) {
		t.Fatalf("LoadTable vends the server's keys:\n%s", body)
	}
	shutdown()
	if l := logs.String(); strings.Contains(l, secret) || !strings.Contains(l, "warehouse=s3://lake/wh") {
		t.Fatalf("server log (must name the warehouse, never the key):\n%s", l)
	}
}

// TestServeWarehouseFlagErrors: half a key pair and a bad s3:// URL are
// refused at start, naming the flag.
func TestServeWarehouseFlagErrors(t *testing.T) {
	t.Setenv("WEIR_WAREHOUSE", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--warehouse", "s3://lake/wh", "--s3-access-key-id", "AKID"}, "--s3-access-key-id and --s3-secret-access-key go together"},
		{[]string{"--warehouse", "s3:///nobucket"}, "want s3://bucket/prefix"},
	} {
		cfg, _ := parseServe(t, append([]string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--ssh", "", "--s3", ""}, tc.args...)...)
		a, err := newServeApp(cfg, io.Discard)
		if err == nil {
			a.close()
			t.Fatalf("%v: no error", tc.args)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: %v, want ~%q", tc.args, err, tc.want)
		}
	}
}
