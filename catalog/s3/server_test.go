package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/weir-dev/weir/catalog"
)

// fixture is an endpoint over a fresh local warehouse with two repos'
// folders, each holding a few files.
type fixture struct {
	dir string
	srv *Server
	url string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	wh, err := catalog.NewLocalWarehouse(filepath.Join(dir, "warehouse"), catalog.WithS3Names())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{
		"team@a/sales/orders/data/1.parquet",
		"team@a/sales/orders/data/2.parquet",
		"team@a/sales/orders/metadata/00001.metadata.json",
		"team@a/sales/users/data/1.parquet",
		"team@b/sales/orders/data/secret.parquet",
	} {
		p := filepath.Join(dir, "warehouse", f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("content of "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A file outside every repo's folder, and a symlink to it.
	os.WriteFile(filepath.Join(dir, "outside"), []byte("server secret"), 0o600)
	os.Symlink(filepath.Join(dir, "outside"), filepath.Join(dir, "warehouse", "team@a", "sales", "link"))
	srv, err := NewServer(wh, NewVendor(bytes.Repeat([]byte{7}, 32)), filepath.Join(dir, "staging"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &fixture{dir: dir, srv: srv, url: ts.URL}
}

func (f *fixture) client(t *testing.T, c Credentials) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
	})
}

func (f *fixture) vend(t *testing.T, seg string, scope Scope, write string) Credentials {
	t.Helper()
	c, err := f.srv.v.Vend(seg, scope, write, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err == nil {
		return "ok"
	}
	return "other: " + err.Error()
}

func get(ctx context.Context, c *s3.Client, key string, rng string) (string, error) {
	in := &s3.GetObjectInput{Bucket: aws.String("weir"), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func TestReadScope(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(t, f.vend(t, "team@a", ScopeRead, ""))

	got, err := get(ctx, c, "team@a/sales/orders/data/1.parquet", "")
	if err != nil || got != "content of team@a/sales/orders/data/1.parquet" {
		t.Fatalf("get: %q %v", got, err)
	}
	got, err = get(ctx, c, "team@a/sales/orders/data/1.parquet", "bytes=11-16")
	if err != nil || got != "team@a" {
		t.Fatalf("ranged get: %q %v", got, err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("weir"), Key: aws.String("team@a/sales/users/data/1.parquet")})
	if err != nil || aws.ToInt64(h.ContentLength) != int64(len("content of team@a/sales/users/data/1.parquet")) {
		t.Fatalf("head: %v %v", h, err)
	}
	if _, err := get(ctx, c, "team@a/sales/orders/data/none.parquet", ""); code(err) != "NoSuchKey" {
		t.Errorf("missing key: %s", code(err))
	}

	// List with a delimiter, then page one key at a time.
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("weir"), Prefix: aws.String("team@a/sales/"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var cps []string
	for _, p := range l.CommonPrefixes {
		cps = append(cps, aws.ToString(p.Prefix))
	}
	if strings.Join(cps, ",") != "team@a/sales/orders/,team@a/sales/users/" || len(l.Contents) != 0 {
		t.Errorf("list with delimiter: prefixes %v contents %d (the symlink is not a file)", cps, len(l.Contents))
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("weir"), Prefix: aws.String("team@a/sales/orders/"), MaxKeys: aws.Int32(1)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	want := []string{"team@a/sales/orders/data/1.parquet", "team@a/sales/orders/data/2.parquet", "team@a/sales/orders/metadata/00001.metadata.json"}
	if !sort.StringsAreSorted(keys) || strings.Join(keys, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("paged list: %v in %d pages, want %v in 3", keys, pages, want)
	}

	// Refusals: another repo, writes, deletes.
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"get other repo", "AccessDenied", func() error { _, err := get(ctx, c, "team@b/sales/orders/data/secret.parquet", ""); return err }()},
		{"list other repo", "AccessDenied", func() error {
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("weir"), Prefix: aws.String("team@b/")})
			return err
		}()},
		{"list everything", "AccessDenied", func() error {
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("weir")})
			return err
		}()},
		{"put", "AccessDenied", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("weir"), Key: aws.String("team@a/sales/orders/data/3.parquet"), Body: strings.NewReader("x")})
			return err
		}()},
		{"delete", "AccessDenied", func() error {
			_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("weir"), Key: aws.String("team@a/sales/orders/data/1.parquet")})
			return err
		}()},
		{"symlink out", "AccessDenied", func() error { _, err := get(ctx, c, "team@a/sales/link", ""); return err }()},
	} {
		if code(tc.err) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, code(tc.err), tc.want)
		}
	}
}

func TestHostileKeys(t *testing.T) {
	f := newFixture(t)
	c := f.vend(t, "team@a", ScopeWrite, "team@a/sales/orders/")
	cl := f.client(t, c)
	ctx := context.Background()
	for _, key := range []string{
		"team@a/sales/orders/../../team@b/sales/orders/data/secret.parquet",
		"team@a/../team@b/sales/orders/data/secret.parquet",
		"team@a/sales/orders//data/1.parquet",
		"team@a/sales/orders/./data/1.parquet",
		"team@a/sales/orders/data/%2e%2e/x",
		"team@a/sales/orders/data/1.parquet\x00.json",
		"team@a/sales/orders/data/" + strings.Repeat("a", 5000),
		"team@a/sales/orders/data/a\\b",
		"../outside",
		"..",
	} {
		_, gerr := get(ctx, cl, key, "")
		_, perr := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("weir"), Key: aws.String(key), Body: strings.NewReader("owned")})
		for _, e := range []error{gerr, perr} {
			if c := code(e); c != "InvalidArgument" && c != "AccessDenied" {
				t.Errorf("key %q: %s, want InvalidArgument or AccessDenied", key, c)
			}
		}
	}
	// Raw requests the SDK would clean up: an encoded slash and dot-dot
	// in the path, signed as sent.
	for _, raw := range []string{"/weir/team@a/sales/orders/data/..%2F..%2F..%2F..%2Foutside", "/weir/team@a/sales/orders/%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside"} {
		req, _ := http.NewRequest("GET", f.url+raw, nil)
		resp := signAndDo(t, req, c)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !bytes.Contains(body, []byte("InvalidArgument")) || bytes.Contains(body, []byte("server secret")) {
			t.Errorf("%s: %d %s", raw, resp.StatusCode, body)
		}
	}
	// Nothing was written anywhere.
	var files []string
	filepath.Walk(f.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.Contains(p, "owned") {
			files = append(files, p)
		}
		return nil
	})
	if b, _ := os.ReadFile(filepath.Join(f.dir, "outside")); string(b) != "server secret" || len(files) != 0 {
		t.Errorf("a hostile key changed files: %v", files)
	}
}

func TestWriteScope(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cl := f.client(t, f.vend(t, "team@a", ScopeWrite, "team@a/sales/orders/"))
	put := func(key, body string) error {
		_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("weir"), Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	if err := put("team@a/sales/orders/data/3.parquet", "three"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "warehouse/team@a/sales/orders/data/3.parquet")); string(b) != "three" {
		t.Errorf("put wrote %q", b)
	}
	if c := code(put("team@a/sales/orders/data/1.parquet", "overwrite")); c != "AccessDenied" {
		t.Errorf("overwrite: %s", c)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "warehouse/team@a/sales/orders/data/1.parquet")); string(b) != "content of team@a/sales/orders/data/1.parquet" {
		t.Errorf("overwrite changed the file: %q", b)
	}
	if c := code(put("team@a/sales/users/data/9.parquet", "other table")); c != "AccessDenied" {
		t.Errorf("put in another table: %s", c)
	}
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("weir"), Key: aws.String("team@a/sales/orders/data/2.parquet")}); code(err) != "AccessDenied" {
		t.Errorf("delete an existing file: %s", code(err))
	}
	if _, err := os.Stat(filepath.Join(f.dir, "warehouse/team@a/sales/orders/data/2.parquet")); err != nil {
		t.Errorf("delete removed the file")
	}

	// Multipart: two parts, completed; then an aborted one leaves nothing.
	key := "team@a/sales/orders/data/big.parquet"
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("weir"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	part1 := bytes.Repeat([]byte("a"), 5<<20)
	var parts []types.CompletedPart
	for i, body := range [][]byte{part1, []byte("tail")} {
		up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("weir"), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := get(ctx, cl, key, ""); code(err) != "NoSuchKey" {
		t.Errorf("an uncompleted upload is visible: %s", code(err))
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("weir"), Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	got, err := get(ctx, cl, key, "bytes=5242878-")
	if err != nil || got != "aatail" {
		t.Errorf("completed upload's end: %q %v", got, err)
	}
	cr2, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("weir"), Key: aws.String(key + "2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("weir"), Key: aws.String(key + "2"), UploadId: cr2.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("weir"), Key: aws.String(key + "2"), UploadId: cr2.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("x")}); code(err) != "NoSuchUpload" {
		t.Errorf("part after abort: %s", code(err))
	}
	// An upload id for another key, or a made-up one, names no file.
	if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("weir"), Key: aws.String("team@a/sales/orders/x"), UploadId: aws.String("../../warehouse"), PartNumber: aws.Int32(1), Body: strings.NewReader("x")}); code(err) != "NoSuchUpload" {
		t.Errorf("bad upload id: %s", code(err))
	}
	if ents, _ := os.ReadDir(filepath.Join(f.dir, "staging")); len(ents) != 0 {
		t.Errorf("staging keeps %d entries after complete and abort", len(ents))
	}
}

func TestCredentialChecks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	good := f.vend(t, "team@a", ScopeRead, "")
	key := "team@a/sales/orders/data/1.parquet"
	tampered := good
	tampered.SecretAccessKey = "A" + good.SecretAccessKey[1:]
	if tampered.SecretAccessKey == good.SecretAccessKey {
		tampered.SecretAccessKey = "B" + good.SecretAccessKey[1:]
	}
	otherRepo := f.vend(t, "team@b", ScopeRead, "")
	forged := good
	forged.SessionToken = strings.Replace(good.SessionToken, ".", "x.", 1)
	swapped := good
	swapped.SessionToken = otherRepo.SessionToken // team@b's token under team@a's keys
	otherServer := NewVendor(bytes.Repeat([]byte{8}, 32))
	foreign, _ := otherServer.Vend("team@a", ScopeRead, "", 0)
	noToken := good
	noToken.SessionToken = ""
	for _, tc := range []struct {
		name string
		c    Credentials
		want string
	}{
		{"good", good, "ok"},
		{"tampered secret", tampered, "SignatureDoesNotMatch"},
		{"altered token", forged, "InvalidToken"},
		{"token of another grant", swapped, "InvalidAccessKeyId"},
		{"another server's secret", foreign, "InvalidToken"},
		{"no token", noToken, "InvalidToken"},
		{"other repo's credentials", otherRepo, "AccessDenied"},
	} {
		_, err := get(ctx, f.client(t, tc.c), key, "")
		if code(err) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, code(err), tc.want)
		}
	}
	// Expiry: the same credentials, a minute after they expire.
	f.srv.v.now = func() time.Time { return good.Expires.Add(time.Minute) }
	cl := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(good.AccessKeyID, good.SecretAccessKey, good.SessionToken)})
	if _, err := get(ctx, cl, key, ""); code(err) != "ExpiredToken" {
		t.Errorf("expired: %s", code(err))
	}
	// Anonymous.
	resp, err := http.Get(f.url + "/weir/" + key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || bytes.Contains(body, []byte("content of")) {
		t.Errorf("anonymous: %d %s", resp.StatusCode, body)
	}
}

func TestVendorSecretFile(t *testing.T) {
	dir := t.TempDir()
	v1, err := OpenVendor(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi, err)
	}
	v2, err := OpenVendor(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := v1.Vend("r", ScopeRead, "", 0)
	if _, _, err := v2.check(c.SessionToken, c.AccessKeyID); err != nil {
		t.Errorf("a reopened vendor refuses the first one's credentials: %v", err)
	}
	os.Chmod(filepath.Join(dir, SecretFile), 0o644)
	if _, err := OpenVendor(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable secret is accepted: %v", err)
	}
	if _, err := v1.Vend("r", ScopeWrite, "other/t/", 0); err == nil {
		t.Error("a write prefix outside the repo is vended")
	}
	_ = fmt.Sprint
}

// TestTableProps: what the REST catalog vends. A table named s3://weir/
// gets the endpoint, path style, region and credentials: read-only, or
// adding keys under that table alone; a file:// table gets nothing.
func TestTableProps(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, ok, err := f.srv.TableProps(f.url, "team/a", "file://"+filepath.Join(f.dir, "warehouse")+"/team@a/sales/orders", true); ok || err != nil {
		t.Errorf("a file:// table gets S3 props: %v %v", ok, err)
	}
	if _, ok, _ := f.srv.TableProps(f.url, "team/a", "s3://weir/team@b/sales/orders", false); ok {
		t.Error("props for another repo's location")
	}
	client := func(p map[string]string) *s3.Client {
		if p["s3.endpoint"] != f.url || p["s3.path-style-access"] != "true" || p["s3.region"] != Region {
			t.Fatalf("props %v", p)
		}
		return f.client(t, Credentials{AccessKeyID: p["s3.access-key-id"], SecretAccessKey: p["s3.secret-access-key"], SessionToken: p["s3.session-token"]})
	}
	put := func(c *s3.Client, key string) string {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("weir"), Key: aws.String(key), Body: strings.NewReader("x")})
		return code(err)
	}
	ro, ok, err := f.srv.TableProps(f.url, "team/a", "s3://weir/team@a/sales/orders", false)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if c := put(client(ro), "team@a/sales/orders/data/ro.parquet"); c != "AccessDenied" {
		t.Errorf("read-only props write: %s", c)
	}
	if _, err := get(ctx, client(ro), "team@a/sales/users/data/1.parquet", ""); err != nil {
		t.Errorf("read-only props cannot read the repo's other table: %v", err)
	}
	rw, _, _ := f.srv.TableProps(f.url, "team/a", "s3://weir/team@a/sales/orders", true)
	if c := put(client(rw), "team@a/sales/orders/data/rw.parquet"); c != "ok" {
		t.Errorf("write props cannot add a file under the table: %s", c)
	}
	if c := put(client(rw), "team@a/sales/orders2/data/rw.parquet"); c != "AccessDenied" {
		t.Errorf("write props add a file under a table whose name extends this one's: %s", c)
	}
}
