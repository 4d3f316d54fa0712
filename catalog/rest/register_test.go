package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/catalog"
)

// appended makes sales.orders with 3 rows (iceberg-go's client) and
// returns its metadata location and the server's local path of it.
func appended(t *testing.T, s *server) (loc, local string) {
	t.Helper()
	ctx := context.Background()
	cat := s.client(t, "main", nil)
	setup(t, cat, "sales", "orders")
	tbl, err := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	at := arrowTable(0, 3)
	defer at.Release()
	if tbl, err = tbl.AppendTable(ctx, at, 1000, nil); err != nil {
		t.Fatal(err)
	}
	return tbl.MetadataLocation(), strings.TrimPrefix(tbl.MetadataLocation(), "file://")
}

// TestRegisterTable: POST .../namespaces/{ns}/register makes a table of
// a metadata file in the repo's part of the warehouse, in one data commit
// whose pointer counts the rows from the manifests; iceberg-go reads it.
// A file outside the repo's part (another repo's, /etc, a ".." path), a
// metadata file naming a manifest list outside it, a missing file, an
// existing name without overwrite and a tag are refused, changing
// nothing.
func TestRegisterTable(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	loc, local := appended(t, s)
	before := s.head(t, "main")

	code, body := do(t, s, "POST", prefix+"/namespaces/sales/register", `{"name":"copy","metadata-location":"`+loc+`"}`)
	if code != 200 || body["metadata-location"] != loc {
		t.Fatalf("register = %d %v", code, body)
	}
	head := s.head(t, "main")
	obj, err := s.objs.Get(ctx, repo, head)
	if err != nil {
		t.Fatal(err)
	}
	if msg := string(obj.Data); !strings.Contains(msg, "parent "+before.String()) || !strings.Contains(msg, "weir: register table sales.copy from sales/orders/metadata/") || !strings.Contains(msg, ": 3 rows") {
		t.Fatalf("register is not one data commit saying what it did:\n%s", msg)
	}
	tabs, err := s.cat.Tables(ctx, repo, head)
	if err != nil {
		t.Fatal(err)
	}
	if p := tabs[catalog.TableName{Namespace: "sales", Name: "copy"}]; p.Rows != 3 || p.Files != 1 || p.MetadataLocation != loc {
		t.Fatalf("registered pointer %+v", p)
	}
	tbl, err := s.client(t, "main", nil).LoadTable(ctx, table.Identifier{"sales", "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if got := scanIDs(t, tbl); !slices.Equal(got, seq(0, 3)) {
		t.Fatalf("scan of the registered table = %v", got)
	}

	// A metadata file not named as the server names them is registered
	// through a copy under such a name; the next commit follows it.
	hadoop := filepath.Join(filepath.Dir(local), "v1.metadata.json")
	data, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hadoop, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, body = do(t, s, "POST", prefix+"/namespaces/sales/register", `{"name":"hadoop","metadata-location":"file://`+hadoop+`"}`)
	if ml, _ := body["metadata-location"].(string); code != 200 || !strings.Contains(ml, "/sales/orders/metadata/00000-") {
		t.Fatalf("register v1.metadata.json = %d %v", code, body)
	}
	htbl, err := s.client(t, "main", nil).LoadTable(ctx, table.Identifier{"sales", "hadoop"})
	if err != nil {
		t.Fatal(err)
	}
	at := arrowTable(3, 2)
	defer at.Release()
	if htbl, err = htbl.AppendTable(ctx, at, 1000, nil); err != nil {
		t.Fatalf("append to the registered table: %v", err)
	}
	if got := scanIDs(t, htbl); !slices.Equal(got, seq(0, 5)) {
		t.Fatalf("scan after the append = %v", got)
	}

	// A metadata file in the repo's folder that names a manifest list
	// outside it.
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, sn := range m["snapshots"].([]any) {
		sn.(map[string]any)["manifest-list"] = "file:///etc/passwd"
	}
	forged, _ := json.Marshal(m)
	forgedPath := filepath.Join(filepath.Dir(local), "00009-forged.metadata.json")
	if err := os.WriteFile(forgedPath, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	// Another repo's metadata file, in its own part of the warehouse.
	other := filepath.Join(strings.TrimSuffix(local, local[strings.Index(local, "/team@demo/"):]), "team@other", "x", "metadata", "00000-x.metadata.json")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}
	repoDir := strings.TrimSuffix(local, local[strings.Index(local, "/sales/"):])

	head = s.head(t, "main")
	for _, tc := range []struct {
		name, path, body string
		code             int
		typ, msg         string
	}{
		{"existing table", prefix + "/namespaces/sales/register", `{"name":"copy","metadata-location":"` + loc + `"}`, 409, "AlreadyExistsException", "overwrite"},
		{"outside the warehouse", prefix + "/namespaces/sales/register", `{"name":"t","metadata-location":"file:///etc/passwd"}`, 400, "BadRequestException", "metadata-location"},
		{"another repo's file", prefix + "/namespaces/sales/register", `{"name":"t","metadata-location":"file://` + other + `"}`, 400, "BadRequestException", "metadata-location"},
		{"dot-dot", prefix + "/namespaces/sales/register", `{"name":"t","metadata-location":"file://` + repoDir + `/../team@other/x/metadata/00000-x.metadata.json"}`, 400, "BadRequestException", "metadata-location"},
		{"manifest list outside", prefix + "/namespaces/sales/register", `{"name":"t","metadata-location":"file://` + forgedPath + `"}`, 400, "BadRequestException", "manifest list"},
		{"missing file", prefix + "/namespaces/sales/register", `{"name":"t","metadata-location":"file://` + repoDir + `/sales/orders/metadata/00042-none.metadata.json"}`, 400, "BadRequestException", "cannot read metadata file sales/orders/metadata/00042-none.metadata.json"},
		{"no namespace", prefix + "/namespaces/nope/register", `{"name":"t","metadata-location":"` + loc + `"}`, 404, "NoSuchNamespaceException", "nope"},
		{"no name", prefix + "/namespaces/sales/register", `{"metadata-location":"` + loc + `"}`, 400, "BadRequestException", "name"},
		{"no location", prefix + "/namespaces/sales/register", `{"name":"t"}`, 400, "BadRequestException", "metadata-location"},
		{"bad name", prefix + "/namespaces/sales/register", `{"name":"../t","metadata-location":"` + loc + `"}`, 400, "BadRequestException", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, typ, msg := raw(t, s, "POST", tc.path, tc.body)
			if code != tc.code || typ != tc.typ || !strings.Contains(msg, tc.msg) {
				t.Fatalf("= %d %s %q, want %d %s containing %q", code, typ, msg, tc.code, tc.typ, tc.msg)
			}
			if strings.Contains(msg, repoDir) {
				t.Errorf("the error shows the server's path: %q", msg)
			}
			if s.head(t, "main") != head {
				t.Fatal("a refused register moved refs/data/main")
			}
		})
	}

	// overwrite replaces the table.
	code, body = do(t, s, "POST", prefix+"/namespaces/sales/register", `{"name":"copy","metadata-location":"`+htbl.MetadataLocation()+`","overwrite":true}`)
	if code != 200 || body["metadata-location"] != htbl.MetadataLocation() {
		t.Fatalf("register with overwrite = %d %v", code, body)
	}
	tabs, err = s.cat.Tables(ctx, repo, s.head(t, "main"))
	if err != nil {
		t.Fatal(err)
	}
	if p := tabs[catalog.TableName{Namespace: "sales", Name: "copy"}]; p.Rows != 5 {
		t.Fatalf("pointer after overwrite %+v", p)
	}

	// On a data tag (read-only) it is forbidden.
	if _, err := s.cat.Tag(ctx, repo, "v1", "main"); err != nil {
		t.Fatal(err)
	}
	if code, typ, _ := raw(t, s, "POST", "/iceberg/v1/team%2Fdemo/v1/namespaces/sales/register", `{"name":"t2","metadata-location":"`+loc+`"}`); code != 403 || typ != "ForbiddenException" {
		t.Fatalf("register on a tag = %d %s", code, typ)
	}
}

// TestLoadTableETag: a load answers an ETag; If-None-Match with it is a
// 304 with no body until the table changes, then a 200 with a new tag.
func TestLoadTableETag(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	appended(t, s)
	get := func(inm string) (int, string, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", s.srv.URL+prefix+"/namespaces/sales/tables/orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer rsp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := rsp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return rsp.StatusCode, rsp.Header.Get("ETag"), []byte(b.String())
	}
	code, tag, body := get("")
	if code != 200 || !strings.HasPrefix(tag, `"`) || len(body) == 0 {
		t.Fatalf("load = %d, ETag %q", code, tag)
	}
	for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
		if code, _, body := get(inm); code != http.StatusNotModified || len(body) != 0 {
			t.Fatalf("If-None-Match %s = %d with %d bytes, want 304 and none", inm, code, len(body))
		}
	}
	if code, _, _ := get(`"other"`); code != 200 {
		t.Fatalf("If-None-Match of another tag = %d", code)
	}

	tbl, err := s.client(t, "main", nil).LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	at := arrowTable(3, 1)
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 1000, nil); err != nil {
		t.Fatal(err)
	}
	code, tag2, body := get(tag)
	if code != 200 || tag2 == tag || len(body) == 0 {
		t.Fatalf("after a commit, If-None-Match of the old tag = %d, ETag %q (was %q)", code, tag2, tag)
	}
}

// TestConfigUnknownBranch: /v1/config for a branch the repo does not
// have is a 404 naming it; a branch a first write creates (a code branch)
// and a data tag are found.
func TestConfigUnknownBranch(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	appended(t, s)
	if _, err := s.cat.Tag(ctx, repo, "v1", "main"); err != nil {
		t.Fatal(err)
	}
	code, typ, msg := raw(t, s, "GET", "/iceberg/v1/config?warehouse=team/demo@nope", "")
	if code != 404 || typ != "NotFoundException" || !strings.Contains(msg, `"nope"`) || !strings.Contains(msg, "team/demo") {
		t.Fatalf("config of a missing branch = %d %s %q", code, typ, msg)
	}
	for _, wh := range []string{"team/demo@main", "team/demo@v1"} {
		if code, body := do(t, s, "GET", "/iceberg/v1/config?warehouse="+wh, ""); code != 200 || body["overrides"].(map[string]any)["prefix"] == nil {
			t.Fatalf("config of %s = %d %v", wh, code, body)
		}
	}
}
