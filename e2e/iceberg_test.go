package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// getJSON GETs url and decodes the JSON answer.
func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	rsp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	data, _ := io.ReadAll(rsp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %s", url, rsp.StatusCode, data)
	}
	return rsp.StatusCode, out
}

// TestIcebergRESTOnS3Warehouse runs weir serve on an S3 warehouse (gofakes3, in
// this process, on loopback) chosen by flags: a pipeline push writes its
// tables to the bucket, a second push reads them back from it, the SSH
// query and the Iceberg REST catalog see the same tables (one catalog),
// LoadTable's config says where the bucket is but carries no key, and the
// server's log never shows the secret key.
func TestIcebergRESTOnS3Warehouse(t *testing.T) {
	needSandboxes(t)
	backend := s3mem.New()
	if err := backend.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3srv.Close)
	const secret = "e2e-secret-access-key-0123456789"
	s := startWeir(t, t.TempDir(), "--warehouse", "s3://lake/wh", "--s3-endpoint", s3srv.URL, "--s3-path-style",
		"--s3-access-key-id", "AKIDE2E", "--s3-secret-access-key", secret)

	dir := exampleRepo(t)
	out := git(t, dir, "push", s.URL("orders"), "main")
	if !strings.Contains(out, "remote: weir: main advanced") {
		t.Fatalf("push on an S3 warehouse:\n%s", out)
	}
	list, err := backend.ListBucket("lake", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var parquet, metadata int
	for _, o := range list.Contents {
		switch {
		case strings.HasPrefix(o.Key, "wh/orders/main/") && strings.HasSuffix(o.Key, ".parquet"):
			parquet++
		case strings.HasPrefix(o.Key, "wh/orders/main/") && strings.HasSuffix(o.Key, ".metadata.json"):
			metadata++
		}
	}
	if parquet < 3 || metadata < 3 {
		t.Fatalf("bucket after the push: %d Parquet, %d metadata files (want 3 tables)", parquet, metadata)
	}
	if got := query(t, s, "orders", "main", "SELECT count(*) AS n, sum(orders) AS o FROM main.revenue"); got != "n\to\n8\t34\n" {
		t.Fatalf("query over the S3 warehouse: %q", got)
	}

	// A pipeline that reads a table already on the branch: its input
	// comes from the bucket.
	for _, p := range []string{"models/clean_orders.sql", "models/revenue.py", "seeds/raw_orders.csv", "expectations/revenue_positive.sql"} {
		git(t, dir, "rm", "-q", p) // the tables they made stay on the branch
	}
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "models", "top.sql"), []byte("SELECT customer FROM revenue ORDER BY total DESC LIMIT 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "weir.toml"), []byte("namespace = \"main\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "models/top.sql", "weir.toml")
	git(t, dir, "commit", "-q", "-m", "top customer from the branch's revenue")
	if out := git(t, dir, "push", s.URL("orders"), "main"); !strings.Contains(out, "main.top") || !strings.Contains(out, "main advanced") {
		t.Fatalf("second push (reads main.revenue from S3):\n%s", out)
	}
	if got := query(t, s, "orders", "main", "SELECT customer FROM main.top"); got != "customer\nglobex\n" {
		t.Fatalf("query of the second push's table: %q", got)
	}

	// The REST catalog is the same catalog: it sees the pipeline's tables
	// in the bucket, tells readers where the bucket is, and vends no key.
	code, cfg := getJSON(t, s.HTTP+"/iceberg/v1/config?warehouse=orders@main")
	if code != 200 {
		t.Fatalf("config: %d %v", code, cfg)
	}
	code, tbl := getJSON(t, s.HTTP+"/iceberg/v1/orders/main/namespaces/main/tables/top")
	if code != 200 {
		t.Fatalf("load table: %d %v", code, tbl)
	}
	if ml, _ := tbl["metadata-location"].(string); !strings.HasPrefix(ml, "s3://lake/wh/orders/main/top/metadata/") {
		t.Fatalf("metadata-location %q is not in the bucket", ml)
	}
	conf, _ := tbl["config"].(map[string]any)
	if conf["s3.endpoint"] != s3srv.URL {
		t.Fatalf("LoadTable config does not say where the bucket is: %v", conf)
	}
	raw, _ := json.Marshal(tbl)
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), "AKIDE2E") {
		t.Fatalf("LoadTable vends the server's keys by default:\n%s", raw)
	}
	s.Stop()
	if strings.Contains(s.Log.String(), secret) {
		t.Fatalf("the server log shows the secret key:\n%s", s.Log.String())
	}
}
