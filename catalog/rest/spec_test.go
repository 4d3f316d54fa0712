package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/catalog/rest"
)

const prefix = "/iceberg/v1/team%2Fdemo/main"

// do sends one request and returns the status and the decoded JSON body.
func do(t *testing.T, s *server, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, data := send(t, s, method, path, body)
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, data)
		}
	}
	return code, out
}

func errType(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	typ, _ := e["type"].(string)
	return typ
}

const longSchema = `{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":false},{"id":2,"name":"name","type":"string","required":false}]}`

// TestStageCreateRaw drives a staged create with plain HTTP, as the spec
// describes it: the create answers the table's initial metadata and
// writes nothing; the commit with assert-create makes the table, in one
// data commit; a second such commit, or a staged create of an existing
// table, is refused.
func TestStageCreateRaw(t *testing.T) {
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales")
	before := s.head(t, "main")

	code, body := do(t, s, "POST", prefix+"/namespaces/sales/tables",
		`{"name":"staged","schema":`+longSchema+`,"stage-create":true,"properties":{"owner":"ana"}}`)
	if code != 200 {
		t.Fatalf("stage-create = %d %v", code, body)
	}
	if _, ok := body["metadata-location"]; ok {
		t.Fatalf("staged create answered a metadata-location (nothing was written): %v", body["metadata-location"])
	}
	meta, _ := body["metadata"].(map[string]any)
	loc, _ := meta["location"].(string)
	uuid, _ := meta["table-uuid"].(string)
	if !strings.HasSuffix(loc, "/team@demo/sales/staged") || uuid == "" {
		t.Fatalf("staged metadata: location %q uuid %q", loc, uuid)
	}
	if props, _ := meta["properties"].(map[string]any); props["owner"] != "ana" {
		t.Fatalf("staged metadata properties %v", meta["properties"])
	}
	if after := s.head(t, "main"); after != before {
		t.Fatalf("stage-create moved refs/data/main from %s to %s", before, after)
	}
	if code, body := do(t, s, "GET", prefix+"/namespaces/sales/tables/staged", ""); code != 404 || errType(body) != "NoSuchTableException" {
		t.Fatalf("staged table visible before its commit: %d %v", code, body)
	}
	if code, body := do(t, s, "GET", prefix+"/namespaces/sales/tables", ""); code != 200 || len(body["identifiers"].([]any)) != 0 {
		t.Fatalf("list tables after stage-create = %d %v", code, body)
	}

	// Phase 2: the create's updates under assert-create.
	commit := `{"requirements":[{"type":"assert-create"}],"updates":[
		{"action":"assign-uuid","uuid":"` + uuid + `"},
		{"action":"upgrade-format-version","format-version":2},
		{"action":"add-schema","schema":` + longSchema + `},
		{"action":"set-current-schema","schema-id":-1},
		{"action":"add-spec","spec":{"spec-id":0,"fields":[]}},
		{"action":"set-default-spec","spec-id":-1},
		{"action":"add-sort-order","sort-order":{"order-id":0,"fields":[]}},
		{"action":"set-default-sort-order","sort-order-id":-1},
		{"action":"set-location","location":"` + loc + `"},
		{"action":"set-properties","updates":{"owner":"ana"}}]}`
	code, body = do(t, s, "POST", prefix+"/namespaces/sales/tables/staged", commit)
	if code != 200 {
		t.Fatalf("commit of the staged create = %d %v", code, body)
	}
	if ml, _ := body["metadata-location"].(string); !strings.HasPrefix(ml, loc+"/metadata/00000-") {
		t.Fatalf("metadata-location after the commit: %q", ml)
	}
	created := s.head(t, "main")
	obj, err := s.objs.Get(context.Background(), repo, created)
	if err != nil {
		t.Fatal(err)
	}
	if msg := string(obj.Data); !strings.Contains(msg, "parent "+before.String()) || !strings.Contains(msg, "weir: create table sales.staged") {
		t.Fatalf("the create is not one data commit on top of %s:\n%s", before, msg)
	}
	tbl, err := s.client(t, "main", nil).LoadTable(context.Background(), table.Identifier{"sales", "staged"})
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Metadata().TableUUID().String() != uuid || tbl.Properties()["owner"] != "ana" || len(tbl.Schema().Fields()) != 2 {
		t.Fatalf("created table: uuid %s props %v schema %s", tbl.Metadata().TableUUID(), tbl.Properties(), tbl.Schema())
	}

	// The same create again loses: the table exists now.
	if code, body := do(t, s, "POST", prefix+"/namespaces/sales/tables/staged", commit); code != 409 || errType(body) != "CommitFailedException" {
		t.Fatalf("second assert-create commit = %d %v", code, body)
	}
	for _, tc := range []struct {
		name, path, body string
		code             int
		typ              string
	}{
		{"existing table", prefix + "/namespaces/sales/tables", `{"name":"staged","schema":` + longSchema + `,"stage-create":true}`, 409, "AlreadyExistsException"},
		{"unknown namespace", prefix + "/namespaces/nope/tables", `{"name":"t","schema":` + longSchema + `,"stage-create":true}`, 404, "NoSuchNamespaceException"},
		{"bad name", prefix + "/namespaces/sales/tables", `{"name":"../x","schema":` + longSchema + `,"stage-create":true}`, 400, "BadRequestException"},
		{"no schema", prefix + "/namespaces/sales/tables", `{"name":"t","stage-create":true}`, 400, "BadRequestException"},
		{"location outside", prefix + "/namespaces/sales/tables", `{"name":"t","location":"file:///etc","schema":` + longSchema + `,"stage-create":true}`, 400, "BadRequestException"},
		{"commit without assert-create", prefix + "/namespaces/sales/tables/other", `{"requirements":[],"updates":[{"action":"set-location","location":"` + loc + `x"}]}`, 404, "NoSuchTableException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := s.head(t, "main")
			code, body := do(t, s, "POST", tc.path, tc.body)
			if code != tc.code || errType(body) != tc.typ {
				t.Fatalf("= %d %v, want %d %s", code, body, tc.code, tc.typ)
			}
			if s.head(t, "main") != head {
				t.Fatal("a refused request moved refs/data/main")
			}
		})
	}

	// On a data tag (read-only) a staged create is forbidden.
	if _, err := s.cat.Tag(context.Background(), repo, "v1", "main"); err != nil {
		t.Fatal(err)
	}
	code, body = do(t, s, "POST", "/iceberg/v1/team%2Fdemo/v1/namespaces/sales/tables", `{"name":"t","schema":`+longSchema+`,"stage-create":true}`)
	if code != 403 || errType(body) != "ForbiddenException" {
		t.Fatalf("stage-create on a tag = %d %v", code, body)
	}
}

// TestStageCreateClient is iceberg-go's own staged create (CreateTable
// with staged updates): one request with stage-create, one commit with
// assert-create; the table has the staged updates and is one data commit.
func TestStageCreateClient(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cat := s.client(t, "main", nil)
	setup(t, cat, "sales")
	before := s.head(t, "main")
	tbl, err := cat.CreateTable(ctx, table.Identifier{"sales", "orders"}, icebergSchema,
		icebergcat.WithProperties(iceberg.Properties{"owner": "ana"}),
		icebergcat.WithStagedUpdates(table.NewSetPropertiesUpdate(iceberg.Properties{"stage": "yes"})))
	if err != nil {
		t.Fatal(err)
	}
	if p := tbl.Properties(); p["owner"] != "ana" || p["stage"] != "yes" {
		t.Fatalf("created table properties %v", p)
	}
	head := s.head(t, "main")
	obj, _ := s.objs.Get(ctx, repo, head)
	if !strings.Contains(string(obj.Data), "parent "+before.String()) {
		t.Fatalf("staged create is not one data commit on top of %s:\n%s", before, obj.Data)
	}
	tabs, err := s.cat.Tables(ctx, repo, head)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tabs[catalog.TableName{Namespace: "sales", Name: "orders"}]
	if !ok || p.MetadataLocation != tbl.MetadataLocation() {
		t.Fatalf("pointer %+v, table at %s", p, tbl.MetadataLocation())
	}
	loaded, err := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Schema().Equals(tbl.Schema()) || len(loaded.Schema().Fields()) != 2 {
		t.Fatalf("loaded schema %s, created %s", loaded.Schema(), tbl.Schema())
	}
	// Built from its updates alone: no placeholder schema before the real one.
	if n := len(loaded.Metadata().Schemas()); n != 1 {
		t.Fatalf("created table has %d schemas, want 1: %v", n, loaded.Metadata().Schemas())
	}
	at := arrowTable(0, 7)
	defer at.Release()
	if _, err := loaded.AppendTable(ctx, at, 100, nil); err != nil {
		t.Fatal(err)
	}
	loaded, _ = cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if got := scanIDs(t, loaded); !slices.Equal(got, seq(0, 7)) {
		t.Fatalf("scan of the staged-created table = %v", got)
	}

	// A second staged create of the same name is refused at once.
	_, err = cat.CreateTable(ctx, table.Identifier{"sales", "orders"}, icebergSchema,
		icebergcat.WithStagedUpdates(table.NewSetPropertiesUpdate(iceberg.Properties{"x": "y"})))
	if !errors.Is(err, icebergcat.ErrTableAlreadyExists) {
		t.Fatalf("second staged create = %v", err)
	}
}

// list pages through path with pageSize n and returns the names of every
// page.
func listPages(t *testing.T, s *server, path, key string, n int) [][]string {
	t.Helper()
	var pages [][]string
	token := ""
	for range 100 {
		code, body := do(t, s, "GET", fmt.Sprintf("%s?pageSize=%d&pageToken=%s", path, n, token), "")
		if code != 200 {
			t.Fatalf("list page = %d %v", code, body)
		}
		var names []string
		for _, it := range body[key].([]any) {
			switch v := it.(type) {
			case map[string]any: // a table identifier
				names = append(names, v["name"].(string))
			case []any: // a namespace
				names = append(names, v[0].(string))
			}
		}
		pages = append(pages, names)
		next, present := body["next-page-token"]
		if !present {
			t.Fatalf("paginated response has no next-page-token field: %v", body)
		}
		if next == nil {
			return pages
		}
		token = next.(string)
	}
	t.Fatal("pagination did not end in 100 pages")
	return nil
}

// TestPagination: 250 tables listed 100 per page come back in order, with
// no duplicate and no gap; without pageToken everything comes at once;
// bad tokens and sizes are 400s; namespaces page the same way, and so does
// iceberg-go's client.
func TestPagination(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	ic, err := s.cat.Iceberg(ctx, repo, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.CreateNamespace(ctx, table.Identifier{"sales"}, nil); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 250 {
		name := fmt.Sprintf("t%03d", i)
		want = append(want, name)
		if _, err := ic.CreateTable(ctx, table.Identifier{"sales", name}, icebergSchema); err != nil {
			t.Fatal(err)
		}
	}
	tablesPath := prefix + "/namespaces/sales/tables"
	pages := listPages(t, s, tablesPath, "identifiers", 100)
	if len(pages) != 3 || len(pages[0]) != 100 || len(pages[1]) != 100 || len(pages[2]) != 50 {
		t.Fatalf("page sizes %d/%d/%d (pages %d), want 100/100/50", len(pages[0]), len(pages[1]), len(pages[len(pages)-1]), len(pages))
	}
	if got := slices.Concat(pages...); !slices.Equal(got, want) {
		t.Fatalf("pages together = %v\nwant %v", got, want)
	}

	// Tables created and dropped between pages: nothing repeats, nothing
	// that existed throughout is skipped.
	code, body := do(t, s, "GET", tablesPath+"?pageSize=100&pageToken=", "")
	if code != 200 {
		t.Fatal(code, body)
	}
	tok := body["next-page-token"].(string)
	if err := ic.DropTable(ctx, table.Identifier{"sales", "t150"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.CreateTable(ctx, table.Identifier{"sales", "t050x"}, icebergSchema); err != nil { // sorts into page 1, already read
		t.Fatal(err)
	}
	code, body = do(t, s, "GET", tablesPath+"?pageSize=100&pageToken="+tok, "")
	if code != 200 {
		t.Fatal(code, body)
	}
	second := body["identifiers"].([]any)
	if first := second[0].(map[string]any)["name"]; first != "t100" || len(second) != 100 {
		t.Fatalf("page after concurrent changes starts at %v with %d names", first, len(second))
	}

	// No pageToken: everything, next-page-token null (pageSize alone does not paginate).
	code, body = do(t, s, "GET", tablesPath+"?pageSize=10", "")
	if code != 200 || len(body["identifiers"].([]any)) != 250 || body["next-page-token"] != nil {
		t.Fatalf("list without pageToken = %d, %d names, next %v", code, len(body["identifiers"].([]any)), body["next-page-token"])
	}

	// iceberg-go's client sees all of them once.
	var viaClient []string
	for id, err := range s.client(t, "main", nil).ListTables(ctx, table.Identifier{"sales"}) {
		if err != nil {
			t.Fatal(err)
		}
		viaClient = append(viaClient, id[1])
	}
	now := append(slices.DeleteFunc(slices.Clone(want), func(n string) bool { return n == "t150" }), "t050x")
	slices.Sort(now)
	if !slices.Equal(viaClient, now) {
		t.Fatalf("iceberg-go ListTables: %d names %v", len(viaClient), viaClient)
	}

	// Namespaces.
	for i := range 12 {
		if err := ic.CreateNamespace(ctx, table.Identifier{fmt.Sprintf("ns%02d", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	nsPages := listPages(t, s, prefix+"/namespaces", "namespaces", 5)
	if len(nsPages) != 3 || len(slices.Concat(nsPages...)) != 13 || !slices.IsSorted(slices.Concat(nsPages...)) {
		t.Fatalf("namespace pages %v", nsPages)
	}

	before := s.head(t, "main")
	for _, tc := range []struct{ name, path, msg string }{
		{"garbage token", tablesPath + "?pageToken=%21%21%21", "not a page token this server issued"},
		{"forged token", tablesPath + "?pageToken=djEAdGFibGVzAHNhbGVzAC4u", "not a page token this server issued"},
		{"token of another listing", prefix + "/namespaces?pageToken=" + tok, "another listing"}, // a token of the tables listing,
		{"zero size", tablesPath + "?pageToken=&pageSize=0", "positive integer"},
		{"negative size", tablesPath + "?pageToken=&pageSize=-3", "positive integer"},
		{"size not a number", tablesPath + "?pageSize=ten", "positive integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, s, "GET", tc.path, "")
			e, _ := body["error"].(map[string]any)
			if code != 400 || e["type"] != "BadRequestException" || !strings.Contains(fmt.Sprint(e["message"]), tc.msg) {
				t.Fatalf("= %d %v, want 400 ~%q", code, body, tc.msg)
			}
		})
	}
	if s.head(t, "main") != before {
		t.Fatal("a listing moved refs/data/main")
	}
}

// TestNoCredentialsVendedByDefault: LoadTable's config tells a reader
// where an S3 warehouse is (endpoint, region, addressing) but not the
// server's keys, unless WithVendedCredentials is on.
func TestNoCredentialsVendedByDefault(t *testing.T) {
	wh, err := catalog.NewS3Warehouse(catalog.S3Config{
		Bucket: "lake", Endpoint: "http://127.0.0.1:1", Region: "eu-west-3", PathStyle: true,
		AccessKeyID: "AKIDSERVER", SecretAccessKey: "server-secret-key", CacheDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, vend := range []bool{false, true} {
		t.Run(fmt.Sprintf("vend=%t", vend), func(t *testing.T) {
			s := newServer(t, wh)
			var h http.Handler = rest.NewRESTHandler(s.cat, rest.WithVendedCredentials(vend))
			if !vend {
				h = rest.NewRESTHandler(s.cat) // the default
			}
			s.srv.Config.Handler = http.StripPrefix("/iceberg", h)
			// A staged create needs no storage: its config is LoadTable's.
			code, body := do(t, s, "POST", prefix+"/namespaces", `{"namespace":["sales"]}`)
			if code != 200 {
				t.Fatal(code, body)
			}
			code, body = do(t, s, "POST", prefix+"/namespaces/sales/tables", `{"name":"t","schema":`+longSchema+`,"stage-create":true}`)
			if code != 200 {
				t.Fatal(code, body)
			}
			cfg, _ := body["config"].(map[string]any)
			if cfg["s3.endpoint"] != "http://127.0.0.1:1" || cfg["s3.region"] != "eu-west-3" {
				t.Fatalf("config lacks where the warehouse is: %v", cfg)
			}
			raw, _ := json.Marshal(body)
			hasKey := strings.Contains(string(raw), "server-secret-key") || strings.Contains(string(raw), "AKIDSERVER")
			if hasKey != vend {
				t.Fatalf("vend=%t: response carries the server's keys: %t\n%s", vend, hasKey, raw)
			}
		})
	}
	if s := fmt.Sprintf("%v %+v %#v", wh, catalog.S3Config{AccessKeyID: "AKIDSERVER", SecretAccessKey: "server-secret-key"}, catalog.S3Config{SecretAccessKey: "server-secret-key"}); strings.Contains(s, "server-secret-key") {
		t.Fatalf("printing an S3 config shows the key: %s", s)
	}
}

// TestNamespacePropertiesConflict: a key both removed and updated is the
// spec's 422, and changes nothing.
func TestNamespacePropertiesConflict(t *testing.T) {
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales")
	before := s.head(t, "main")
	code, body := do(t, s, "POST", prefix+"/namespaces/sales/properties", `{"removals":["a"],"updates":{"a":"b"}}`)
	if code != 422 || errType(body) != "UnprocessableEntityException" {
		t.Fatalf("= %d %v, want 422 UnprocessableEntityException", code, body)
	}
	if s.head(t, "main") != before {
		t.Fatal("refused update moved refs/data/main")
	}
}
