package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers the "rest" catalog type
	_ "github.com/apache/iceberg-go/io/gocloud/s3"
	"github.com/apache/iceberg-go/table"
)

// vended is the storage config a table load answered.
type vended map[string]string

func loadConfig(t *testing.T, s *weirServer, repo, rev, tbl string) (vended, string) {
	t.Helper()
	code, body := restCall(t, "GET", s.HTTP+"/iceberg/v1/"+repo+"/"+rev+"/namespaces/ns/tables/"+tbl, "")
	if code != 200 {
		t.Fatalf("load %s@%s ns.%s: %d %v", repo, rev, tbl, code, body)
	}
	v := vended{}
	cfg, _ := body["config"].(map[string]any)
	for k, x := range cfg {
		v[k], _ = x.(string)
	}
	ml, _ := body["metadata-location"].(string)
	return v, ml
}

// aws runs Debian's awscli (/usr/bin/aws, never a pyenv shim) against
// the endpoint with credentials c, in an empty home (no config, no
// metadata service), and returns its output and whether it succeeded.
func aws(t *testing.T, s *weirServer, c vended, args ...string) (string, bool) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("/usr/bin/aws", append([]string{"--endpoint-url", s.S3, "--no-cli-pager"}, args...)...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_EC2_METADATA_DISABLED=true",
		"AWS_DEFAULT_REGION=" + c["s3.region"], "AWS_ACCESS_KEY_ID=" + c["s3.access-key-id"],
		"AWS_SECRET_ACCESS_KEY=" + c["s3.secret-access-key"], "AWS_SESSION_TOKEN=" + c["s3.session-token"]}
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func needAWS(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		t.Skip("Debian awscli is not installed (/usr/bin/aws): apt-get install awscli, or run ./test.sh")
	}
}

// TestS3EndpointVendedCredentials: weir serve --s3 serves the local
// warehouse. iceberg-go, given only the REST catalog's answer, creates a
// table, appends and scans it with its S3 FileIO through the endpoint;
// Debian's awscli lists and reads the table's files with the vended
// credentials and is refused for another repo's keys, for writes with a
// commit's (read-only) credentials, for overwrites and deletes, for
// hostile keys, with a tampered secret, and after the credentials expire.
func TestS3EndpointVendedCredentials(t *testing.T) {
	needAWS(t)
	ctx := context.Background()
	data := t.TempDir()
	s := startWeir(t, data)
	if s.S3 == "" {
		t.Fatal("weir serve did not print its S3 endpoint")
	}
	wh := filepath.Join(data, "warehouse")
	for _, repo := range []string{"alpha", "beta"} {
		git(t, newWorkRepo(t, 1), "push", "-q", s.URL(repo), "main")
	}

	// iceberg-go: create, append (data and metadata files go through the
	// endpoint), scan back.
	tbl := icebergAppend(t, s, "alpha", "t", 5)
	if loc := tbl.Location(); loc != "s3://weir/alpha/ns/t" {
		t.Fatalf("a new table's location is %q, want s3://weir/alpha/ns/t", loc)
	}
	icebergAppend(t, s, "beta", "t", 2)
	cat, err := icebergcat.Load(ctx, "weir", iceberg.Properties{"type": "rest", "uri": s.HTTP + "/iceberg", "warehouse": "alpha@main"})
	if err != nil {
		t.Fatal(err)
	}
	lt, err := cat.LoadTable(ctx, table.Identifier{"ns", "t"})
	if err != nil {
		t.Fatal(err)
	}
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{100, 101, 102}, nil)
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{array.NewRecordBatch(sc, []arrow.Array{b.NewArray()}, 3)})
	defer at.Release()
	if lt, err = lt.AppendTable(ctx, at, 3, nil); err != nil {
		t.Fatalf("second append through the endpoint: %v", err)
	}
	scanned, err := lt.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scan through the endpoint: %v", err)
	}
	if scanned.NumRows() != 8 {
		t.Fatalf("scan: %d rows, want 8", scanned.NumRows())
	}
	scanned.Release()
	if !strings.Contains(s.Log.String(), "s3: key added") {
		t.Fatalf("iceberg-go wrote no file through the endpoint:\n%s", s.Log.String())
	}
	var parquet []string
	filepath.Walk(filepath.Join(wh, "alpha", "ns", "t", "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			parquet = append(parquet, p)
		}
		return nil
	})
	if len(parquet) != 2 {
		t.Fatalf("%d Parquet files under the table's folder, want 2", len(parquet))
	}

	// The branch's credentials: what the REST catalog vended.
	cfg, ml := loadConfig(t, s, "alpha", "main", "t")
	for _, k := range []string{"s3.endpoint", "s3.path-style-access", "s3.region", "s3.access-key-id", "s3.secret-access-key", "s3.session-token"} {
		if cfg[k] == "" {
			t.Fatalf("load table config lacks %s: %v", k, cfg)
		}
	}
	if cfg["s3.endpoint"] != s.S3 || cfg["s3.path-style-access"] != "true" || !strings.HasPrefix(ml, "s3://weir/alpha/ns/t/metadata/") {
		t.Fatalf("config %v, metadata-location %s", cfg, ml)
	}

	// awscli lists and reads the table's files.
	out, ok := aws(t, s, cfg, "s3", "ls", "--recursive", "s3://weir/alpha/ns/t/")
	if !ok || strings.Count(out, ".parquet") != 2 || !strings.Contains(out, ".metadata.json") {
		t.Fatalf("aws s3 ls: %v\n%s", ok, out)
	}
	rel, _ := filepath.Rel(wh, parquet[0])
	dst := filepath.Join(t.TempDir(), "copy.parquet")
	if out, ok := aws(t, s, cfg, "s3", "cp", "s3://weir/"+rel, dst); !ok {
		t.Fatalf("aws s3 cp: %s", out)
	}
	want, _ := os.ReadFile(parquet[0])
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) || len(want) == 0 {
		t.Fatalf("aws s3 cp read %d bytes, the file has %d", len(got), len(want))
	}
	if out, ok := aws(t, s, cfg, "s3api", "get-object", "--bucket", "weir", "--key", rel, "--range", "bytes=0-3", filepath.Join(t.TempDir(), "head")); !ok || !strings.Contains(out, `"ContentLength": 4`) {
		t.Fatalf("ranged get: %v\n%s", ok, out)
	}

	// A new file under the table: allowed; overwrite, delete, another
	// table: refused.
	src := filepath.Join(t.TempDir(), "new.parquet")
	os.WriteFile(src, []byte("new file"), 0o644)
	if out, ok := aws(t, s, cfg, "s3", "cp", src, "s3://weir/alpha/ns/t/data/extra.parquet"); !ok {
		t.Fatalf("put a new file under the table: %s", out)
	}
	// awscli uploads files over 8 MiB in parts (a multipart upload).
	big := filepath.Join(t.TempDir(), "big.parquet")
	bigData := bytes.Repeat([]byte("0123456789abcdef"), 10<<16) // 10 MiB
	os.WriteFile(big, bigData, 0o644)
	if out, ok := aws(t, s, cfg, "s3", "cp", big, "s3://weir/alpha/ns/t/data/big.parquet"); !ok {
		t.Fatalf("multipart upload: %s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(wh, "alpha", "ns", "t", "data", "big.parquet")); !bytes.Equal(got, bigData) {
		t.Fatalf("multipart upload wrote %d bytes, want %d", len(got), len(bigData))
	}
	if !strings.Contains(s.Log.String(), "key=alpha/ns/t/data/big.parquet bytes=10485760") {
		t.Fatalf("the upload is not in the log:\n%s", s.Log.String())
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "s3-staging")); len(ents) != 0 {
		t.Fatalf("staging keeps %d entries", len(ents))
	}
	for name, args := range map[string][]string{
		"overwrite":       {"s3", "cp", src, "s3://weir/" + rel},
		"delete":          {"s3", "rm", "s3://weir/" + rel},
		"another table":   {"s3", "cp", src, "s3://weir/alpha/ns/other/data/x.parquet"},
		"another repo":    {"s3api", "get-object", "--bucket", "weir", "--key", "beta/ns/t/metadata/x", filepath.Join(t.TempDir(), "o")},
		"list other repo": {"s3", "ls", "s3://weir/beta/"},
	} {
		if out, ok := aws(t, s, cfg, args...); ok || !strings.Contains(out, "AccessDenied") {
			t.Errorf("%s: ok=%v\n%s", name, ok, out)
		}
	}
	if got, _ := os.ReadFile(parquet[0]); !bytes.Equal(got, want) {
		t.Fatal("an overwrite changed a table file")
	}
	if _, err := os.Stat(filepath.Join(wh, "alpha", "ns", "other")); err == nil {
		t.Fatal("a write to another table made its folder")
	}

	// Hostile keys: refused before they name a file.
	for _, key := range []string{"alpha/../beta/ns/t/" + strings.TrimPrefix(rel, "alpha/ns/t/"), "alpha/ns/t/data/%2e%2e/x", "alpha//ns/t", "../" + filepath.Base(data)} {
		out, ok := aws(t, s, cfg, "s3api", "get-object", "--bucket", "weir", "--key", key, filepath.Join(t.TempDir(), "o"))
		if ok || !(strings.Contains(out, "InvalidArgument") || strings.Contains(out, "AccessDenied")) {
			t.Errorf("hostile key %q: ok=%v\n%s", key, ok, out)
		}
	}

	// A commit's credentials are read-only.
	head := strings.Fields(git(t, "", "ls-remote", s.URL("alpha"), "refs/data/main"))[0]
	ro, _ := loadConfig(t, s, "alpha", head, "t")
	if out, ok := aws(t, s, ro, "s3", "ls", "--recursive", "s3://weir/alpha/ns/t/"); !ok || strings.Count(out, ".parquet") != 4 { // two appends, extra, big
		t.Fatalf("read with a commit's credentials: %v\n%s", ok, out)
	}
	if out, ok := aws(t, s, ro, "s3", "cp", src, "s3://weir/alpha/ns/t/data/ro.parquet"); ok || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("write with a commit's credentials: ok=%v\n%s", ok, out)
	}

	// Beta's credentials cannot read alpha.
	bcfg, _ := loadConfig(t, s, "beta", "main", "t")
	if out, ok := aws(t, s, bcfg, "s3api", "get-object", "--bucket", "weir", "--key", rel, filepath.Join(t.TempDir(), "o")); ok || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("beta's credentials read alpha: ok=%v\n%s", ok, out)
	}

	// A tampered secret.
	bad := vended{}
	for k, v := range cfg {
		bad[k] = v
	}
	bad["s3.secret-access-key"] = strings.ToUpper(cfg["s3.secret-access-key"][:4]) + "x" + cfg["s3.secret-access-key"][5:]
	if out, ok := aws(t, s, bad, "s3", "ls", "s3://weir/alpha/"); ok || !strings.Contains(out, "SignatureDoesNotMatch") {
		t.Fatalf("tampered secret: ok=%v\n%s", ok, out)
	}

	// Expiry: the server restarted with one-second credentials (the
	// vending secret in the data dir survives the restart, so the old
	// credentials still work).
	if out, ok := aws(t, s, cfg, "s3", "ls", "s3://weir/alpha/"); !ok {
		t.Fatalf("before the restart: %s", out)
	}
	s.args = append(s.args, "--s3-credential-ttl", "1s")
	s.Restart()
	if out, ok := aws(t, s, cfg, "s3", "ls", "s3://weir/alpha/"); !ok {
		t.Fatalf("credentials vended before a restart: %s", out)
	}
	short, _ := loadConfig(t, s, "alpha", "main", "t")
	time.Sleep(2 * time.Second)
	if out, ok := aws(t, s, short, "s3", "ls", "s3://weir/alpha/"); ok || !strings.Contains(out, "ExpiredToken") {
		t.Fatalf("expired credentials: ok=%v\n%s", ok, out)
	}
	if fi, err := os.Stat(filepath.Join(data, "s3-vending.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("vending secret: %v %v", fi, err)
	}
}

// npmS3Modules installs iceberg-js, @aws-sdk/client-s3 and
// @duckdb/node-api (which ships DuckDB's binary) once under
// ~/.cache/weir-test/npm-s3 and returns that folder; it skips the test
// when npm cannot install them.
func npmS3Modules(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: apt-get install nodejs npm")
	}
	home, _ := os.UserHomeDir()
	dir := filepath.Join(home, ".cache", "weir-test", "npm-s3")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "iceberg-js", "package.json")); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@aws-sdk", "client-s3", "package.json")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api", "package.json")); err == nil {
				return dir
			}
		}
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"weir-s3-e2e","private":true}`), 0o644)
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "iceberg-js@1.0.0", "@aws-sdk/client-s3@3", "@duckdb/node-api")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm cannot install iceberg-js, @aws-sdk/client-s3 and @duckdb/node-api (%v): %s", err, tail(string(out), 500))
	}
	return dir
}

// TestS3IcebergJS: iceberg-js loads a table through the REST catalog, and
// the AWS SDK for JavaScript reads its metadata file through the S3
// endpoint with nothing but the config the catalog vended (the location
// is s3://weir/...: no file path to open); the same credentials cannot
// read another repo's key nor overwrite the file.
func TestS3IcebergJS(t *testing.T) {
	mods := npmS3Modules(t)
	s := startWeir(t, t.TempDir())
	for _, repo := range []string{"alpha", "beta"} {
		git(t, newWorkRepo(t, 1), "push", "-q", s.URL(repo), "main")
		icebergAppend(t, s, repo, "t", 3)
	}
	got := node(t, mods, "icebergjs.mjs", s.HTTP+"/iceberg", "alpha@main", "ns", "t")
	if loc, _ := got["location"].(string); !strings.HasPrefix(loc, "s3://weir/alpha/ns/t/metadata/") {
		t.Fatalf("metadata-location %v", got["location"])
	}
	if got["s3UUID"] == nil || got["s3UUID"] != got["restUUID"] || got["s3Snapshot"] != got["restSnapshot"] {
		t.Fatalf("the metadata read through the endpoint is not the table iceberg-js loaded: %v", got)
	}
	if got["otherRepo"] != "AccessDenied" || got["overwrite"] != "AccessDenied" {
		t.Fatalf("refusals: %v", got)
	}
}

// node runs the script testdata/s3/<script> from the modules folder and
// decodes the JSON line it prints last.
func node(t *testing.T, mods, script string, args ...string) map[string]any {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "s3", script))
	if err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(mods, script)
	if err := os.WriteFile(js, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", append([]string{js}, args...)...)
	cmd.Dir = mods
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
	var got map[string]any
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("node %s output: %s", script, out)
	}
	return got
}

// TestS3DuckDB: DuckDB counts a table's rows from the Parquet files the
// endpoint lists and returns, fetched with nothing but the vended config
// (DuckDB's httpfs cannot be installed offline, so it reads the bytes the
// endpoint returned); two appends of 3 and 2 rows, ids 0-2 and 0-1.
func TestS3DuckDB(t *testing.T) {
	mods := npmS3Modules(t)
	s := startWeir(t, t.TempDir())
	git(t, newWorkRepo(t, 1), "push", "-q", s.URL("alpha"), "main")
	icebergAppend(t, s, "alpha", "t", 3)
	icebergAppend(t, s, "alpha", "u", 1) // another table: not counted
	ctx := context.Background()
	cat, err := icebergcat.Load(ctx, "weir", iceberg.Properties{"type": "rest", "uri": s.HTTP + "/iceberg", "warehouse": "alpha@main"})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.LoadTable(ctx, table.Identifier{"ns", "t"})
	if err != nil {
		t.Fatal(err)
	}
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{0, 1}, nil)
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{array.NewRecordBatch(sc, []arrow.Array{b.NewArray()}, 2)})
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 2, nil); err != nil {
		t.Fatal(err)
	}
	got := node(t, mods, "duckdb.mjs", s.HTTP+"/iceberg", "alpha", "main", "ns", "t", t.TempDir())
	if got["files"] != float64(2) || got["rows"] != float64(5) || got["sum"] != float64(4) {
		t.Fatalf("DuckDB over the endpoint's files: %v, want 2 files, 5 rows, sum 4", got)
	}
}
