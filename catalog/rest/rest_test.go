package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/catalogtest"
	icebergrest "github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/catalog/rest"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

const repo = objects.RepoName("team/demo")

type server struct {
	objs      *objects.Store
	refs      *refs.DB
	cat       *catalog.Catalog
	srv       *httptest.Server
	conflicts atomic.Int64 // 409 answers
}

// newServer starts Weir's REST catalog on loopback over real Pebble (in
// memory) and a local warehouse, with repo team/demo holding one code
// commit on refs/heads/main.
func newServer(t testing.TB, wh catalog.Warehouse) *server {
	t.Helper()
	db, err := pebblekv.OpenFS("db", vfs.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	objs := objects.New(db, objects.Limits{})
	rs := refs.NewDB(objs)
	if wh == nil {
		lw, err := catalog.NewLocalWarehouse(filepath.Join(t.TempDir(), "warehouse"))
		if err != nil {
			t.Fatal(err)
		}
		wh = lw
	}
	ctx := context.Background()
	tree, err := objs.Put(ctx, repo, plumbing.TreeObject, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, err := objs.Put(ctx, repo, plumbing.CommitObject, []byte("tree "+tree.String()+"\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\ncode\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", New: code}}, nil, "test"); err != nil {
		t.Fatal(err)
	}
	s := &server{objs: objs, refs: rs, cat: catalog.New(objs, rs, wh)}
	h := rest.NewRESTHandler(s.cat)
	mux := http.NewServeMux()
	mux.Handle("/iceberg/", http.StripPrefix("/iceberg", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == http.StatusConflict {
			s.conflicts.Add(1)
		}
	})))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

// client returns iceberg-go's own REST client at branch rev.
func (s *server) client(t testing.TB, rev string, extra iceberg.Properties) icebergcat.Catalog {
	t.Helper()
	props := iceberg.Properties{"type": "rest", "uri": s.srv.URL + "/iceberg", "warehouse": string(repo) + "@" + rev}
	for k, v := range extra {
		props[k] = v
	}
	cat, err := icebergcat.Load(context.Background(), "weir", props)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, ok := cat.(icebergcat.Closer); ok {
			c.Close()
		}
	})
	return cat
}

func (s *server) head(t testing.TB, branch string) objects.Hash {
	t.Helper()
	h, err := s.refs.Resolve(context.Background(), repo, catalog.DataRef(branch))
	if errors.Is(err, refs.ErrNotFound) {
		return objects.ZeroHash
	}
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestConformance(t *testing.T) {
	catalogtest.RunCatalogTests(t, catalogtest.Config{
		SupportsNamespaceProperties: true,
		NewCatalog: func(t *testing.T) icebergcat.Catalog {
			return newServer(t, nil).client(t, "main", nil)
		},
	})
}

var arrowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func arrowTable(from, n int) arrow.Table {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrowSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("n%d", i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(arrowSchema, []arrow.RecordBatch{rec})
}

var icebergSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
	iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String},
)

func scanIDs(t testing.TB, tbl *table.Table) []int64 {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var ids []int64
	for _, ch := range at.Column(0).Data().Chunks() {
		ids = append(ids, ch.(*array.Int64).Int64Values()...)
	}
	slices.Sort(ids)
	return ids
}

func seq(from, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(from + i)
	}
	return out
}

func setup(t testing.TB, cat icebergcat.Catalog, ns string, tables ...string) {
	t.Helper()
	ctx := context.Background()
	if err := cat.CreateNamespace(ctx, table.Identifier{ns}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tn := range tables {
		if _, err := cat.CreateTable(ctx, table.Identifier{ns, tn}, icebergSchema,
			icebergcat.WithProperties(iceberg.Properties{table.CommitNumRetriesKey: "10", table.CommitMinRetryWaitMsKey: "1", table.CommitMaxRetryWaitMsKey: "20"})); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendAndScan(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cat := s.client(t, "main", nil)
	setup(t, cat, "sales", "orders")
	tbl, err := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	at := arrowTable(0, 100)
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 1000, nil); err != nil {
		t.Fatal(err)
	}
	tbl, err = cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if got := scanIDs(t, tbl); !slices.Equal(got, seq(0, 100)) {
		t.Fatalf("scan = %v", got)
	}

	// The write is a data commit on refs/data/main whose pointer counts the rows.
	head := s.head(t, "main")
	tabs, err := s.cat.Tables(ctx, repo, head)
	if err != nil {
		t.Fatal(err)
	}
	p := tabs[catalog.TableName{Namespace: "sales", Name: "orders"}]
	if p.Rows != 100 || p.MetadataLocation != tbl.MetadataLocation() {
		t.Fatalf("pointer %+v, table at %s", p, tbl.MetadataLocation())
	}
	o, err := s.objs.Get(ctx, repo, head)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(o.Data)
	for _, want := range []string{"weir: append 100 rows to sales.orders", "Run: iceberg-", "Code-Commit: ", "Table-Changes: append 100 rows to sales.orders"} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit %q lacks %q", msg, want)
		}
	}

	// The Go API sees the same files.
	files, err := s.cat.ReadTableFiles(ctx, repo, head, catalog.TableName{Namespace: "sales", Name: "orders"})
	if err != nil || len(files) != 1 {
		t.Fatalf("ReadTableFiles = %v, %v", files, err)
	}
}

func TestConcurrentAppendsOneTable(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales", "orders")
	const writers = 2
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := make(chan struct{})
	for i := range writers {
		cat := s.client(t, "main", nil)
		tbl, err := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := arrowTable(i*1000, 10)
			defer at.Release()
			<-start
			_, errs[i] = tbl.AppendTable(ctx, at, 100, nil) // both loaded the same version
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	tbl, err := s.client(t, "main", nil).LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	want := append(seq(0, 10), seq(1000, 10)...)
	if got := scanIDs(t, tbl); !slices.Equal(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
	// Both loaded the same version: the server applied the second append
	// on top of the first (catalog/rebase.go), so no client had to retry.
	if s.cat.Rebases() != 1 || s.conflicts.Load() != 0 {
		t.Fatalf("got %d server rebases and %d 409s; want the second append rebased by the server, no 409", s.cat.Rebases(), s.conflicts.Load())
	}
}

func TestMultiTableTransactionAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cat := s.client(t, "main", nil)
	setup(t, cat, "sales", "orders", "users")
	before := s.head(t, "main")
	orders, _ := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	users, _ := cat.LoadTable(ctx, table.Identifier{"sales", "users"})

	tc, ok := cat.(icebergcat.TransactionalCatalog)
	if !ok {
		t.Fatal("REST client is not transactional")
	}
	good := table.TableCommit{
		Identifier:   table.Identifier{"sales", "orders"},
		Requirements: []table.Requirement{table.AssertTableUUID(orders.Metadata().TableUUID())},
		Updates:      []table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{"owner": "ana"})},
	}
	bad := table.TableCommit{ // the second table's requirement fails
		Identifier:   table.Identifier{"sales", "users"},
		Requirements: []table.Requirement{table.AssertCurrentSchemaID(users.Metadata().CurrentSchema().ID + 7)},
		Updates:      []table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{"owner": "bob"})},
	}
	err := tc.CommitTransaction(ctx, []table.TableCommit{good, bad})
	if !errors.Is(err, table.ErrCommitFailed) {
		t.Fatalf("failing transaction = %v", err)
	}
	if after := s.head(t, "main"); after != before {
		t.Fatalf("refs/data/main moved from %s to %s", before, after)
	}
	o2, _ := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if o2.Properties()["owner"] != "" || o2.MetadataLocation() != orders.MetadataLocation() {
		t.Fatalf("orders changed: %v %s", o2.Properties(), o2.MetadataLocation())
	}

	// The same transaction without the bad requirement lands both, in one commit.
	bad.Requirements = nil
	if err := tc.CommitTransaction(ctx, []table.TableCommit{good, bad}); err != nil {
		t.Fatal(err)
	}
	after := s.head(t, "main")
	o3, _ := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	u3, _ := cat.LoadTable(ctx, table.Identifier{"sales", "users"})
	if o3.Properties()["owner"] != "ana" || u3.Properties()["owner"] != "bob" {
		t.Fatalf("transaction did not land: %v %v", o3.Properties(), u3.Properties())
	}
	obj, _ := s.objs.Get(ctx, repo, after)
	if !strings.Contains(string(obj.Data), "parent "+before.String()) {
		t.Fatalf("transaction is not one commit on top of %s:\n%s", before, obj.Data)
	}
}

func TestBranchIsolationThroughREST(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	mainCat := s.client(t, "main", nil)
	setup(t, mainCat, "sales", "orders")
	tbl, _ := mainCat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	at := arrowTable(0, 5)
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 100, nil); err != nil {
		t.Fatal(err)
	}
	mainHead := s.head(t, "main")
	if _, err := s.cat.CreateBranch(ctx, repo, "feature", "main"); err != nil {
		t.Fatal(err)
	}
	feat := s.client(t, "feature", nil)
	ft, err := feat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	at2 := arrowTable(100, 3)
	defer at2.Release()
	if _, err := ft.AppendTable(ctx, at2, 100, nil); err != nil {
		t.Fatal(err)
	}
	if s.head(t, "main") != mainHead {
		t.Fatal("writing on feature moved main")
	}
	mt, _ := mainCat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if got := scanIDs(t, mt); !slices.Equal(got, seq(0, 5)) {
		t.Fatalf("main sees %v", got)
	}
	ft, _ = feat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if got := scanIDs(t, ft); len(got) != 8 {
		t.Fatalf("feature sees %v", got)
	}
	if _, err := s.cat.Merge(ctx, repo, "feature", "main"); err != nil {
		t.Fatal(err)
	}
	mt, _ = mainCat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if got := scanIDs(t, mt); len(got) != 8 {
		t.Fatalf("main after merge sees %v", got)
	}

	// A data tag is a read-only view.
	if _, err := s.cat.Tag(ctx, repo, "v1", "main"); err != nil {
		t.Fatal(err)
	}
	tagged := s.client(t, "v1", nil)
	if _, err := tagged.LoadTable(ctx, table.Identifier{"sales", "orders"}); err != nil {
		t.Fatal(err)
	}
	err = tagged.CreateNamespace(ctx, table.Identifier{"other"}, nil)
	if !errors.Is(err, icebergrest.ErrForbidden) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write to a tag = %v", err)
	}
}

// send sends one HTTP request and returns the status and the body.
func send(t *testing.T, s *server, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	data, _ := io.ReadAll(rsp.Body)
	return rsp.StatusCode, data
}

// raw sends one HTTP request and decodes an error body if any.
func raw(t *testing.T, s *server, method, path, body string) (int, string, string) {
	t.Helper()
	status, data := send(t, s, method, path, body)
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	if e.Error.Code != 0 && e.Error.Code != status {
		t.Errorf("%s %s: body code %d != status %d", method, path, e.Error.Code, status)
	}
	return status, e.Error.Type, e.Error.Message
}

func TestBadInput(t *testing.T) {
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales", "orders")
	before := s.head(t, "main")
	p := "/iceberg/v1/team%2Fdemo/main"
	schema := `{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":false}]}`
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		typ, msg                 string
	}{
		{"malformed json", "POST", p + "/namespaces", `{"namespace":`, 400, "BadRequestException", "malformed request body"},
		{"wrong json type", "POST", p + "/namespaces", `{"namespace":"x"}`, 400, "BadRequestException", "malformed request body"},
		{"missing namespace", "POST", p + "/namespaces", `{}`, 400, "BadRequestException", "missing namespace"},
		{"trailing data", "POST", p + "/namespaces", `{"namespace":["a"]} {}`, 400, "BadRequestException", "trailing"},
		{"dotdot namespace", "POST", p + "/namespaces", `{"namespace":[".."]}`, 400, "BadRequestException", "not allowed"},
		{"slash namespace", "POST", p + "/namespaces", `{"namespace":["a/b"]}`, 400, "BadRequestException", "not allowed"},
		{"empty namespace", "POST", p + "/namespaces", `{"namespace":[""]}`, 400, "BadRequestException", "empty name"},
		{"nul namespace", "POST", p + "/namespaces", `{"namespace":["a\u0000b"]}`, 400, "BadRequestException", "not allowed"},
		{"nested namespace without its parent", "POST", p + "/namespaces", `{"namespace":["a","b"]}`, 404, "NoSuchNamespaceException", "create it first"},
		{"dotted namespace level", "POST", p + "/namespaces", `{"namespace":["sales","a.b"]}`, 400, "BadRequestException", "not allowed"},
		{"unknown namespace load", "GET", p + "/namespaces/nope", "", 404, "NoSuchNamespaceException", "nope"},
		{"unknown namespace tables", "GET", p + "/namespaces/nope/tables", "", 404, "NoSuchNamespaceException", "nope"},
		{"unknown namespace create table", "POST", p + "/namespaces/nope/tables", `{"name":"t","schema":` + schema + `}`, 404, "NoSuchNamespaceException", "nope"},
		{"unknown table", "GET", p + "/namespaces/sales/tables/nope", "", 404, "NoSuchTableException", "sales.nope"},
		{"dotdot table", "POST", p + "/namespaces/sales/tables", `{"name":"..","schema":` + schema + `}`, 400, "BadRequestException", "not allowed"},
		{"slash table", "POST", p + "/namespaces/sales/tables", `{"name":"a/b","schema":` + schema + `}`, 400, "BadRequestException", "not allowed"},
		{"nul table in path", "GET", p + "/namespaces/sales/tables/a%00b", "", 400, "BadRequestException", "not allowed"},
		{"no schema", "POST", p + "/namespaces/sales/tables", `{"name":"t"}`, 400, "BadRequestException", "missing schema"},
		{"location outside warehouse", "POST", p + "/namespaces/sales/tables", `{"name":"t","location":"file:///etc","schema":` + schema + `}`, 400, "BadRequestException", "outside"},
		{"bad update", "POST", p + "/namespaces/sales/tables/orders", `{"updates":[{"action":"no-such-action"}]}`, 400, "BadRequestException", "malformed"},
		{"manifest list outside warehouse", "POST", p + "/namespaces/sales/tables/orders", `{"updates":[{"action":"add-snapshot","snapshot":{"snapshot-id":1,"timestamp-ms":4000000000000,"manifest-list":"file:///etc/x.avro","summary":{"operation":"append"},"sequence-number":1,"schema-id":0}}]}`, 400, "BadRequestException", "outside this repo's warehouse"},
		{"identifier mismatch", "POST", p + "/namespaces/sales/tables/orders", `{"identifier":{"namespace":["sales"],"name":"other"},"updates":[]}`, 400, "BadRequestException", "does not match"},
		{"empty transaction", "POST", p + "/transactions/commit", `{"table-changes":[]}`, 400, "BadRequestException", "empty"},
		{"unknown repo", "GET", "/iceberg/v1/nope/main/namespaces", "", 404, "NotFoundException", "repo nope does not exist"},
		{"bad repo", "GET", "/iceberg/v1/..%2Fetc/main/namespaces", "", 400, "BadRequestException", "invalid repo name"},
		{"unknown branch", "GET", p[:len(p)-4] + "nobranch/namespaces", "", 404, "NotFoundException", "not a data branch"},
		{"bad warehouse", "GET", "/iceberg/v1/config?warehouse=team/demo", "", 400, "BadRequestException", "<repo>@<branch>"},
		{"method", "PUT", p + "/namespaces", "", 405, "BadRequestException", "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, typ, msg := raw(t, s, tc.method, tc.path, tc.body)
			if code != tc.code || typ != tc.typ || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%s %s = %d %s %q, want %d %s ~%q", tc.method, tc.path, code, typ, msg, tc.code, tc.typ, tc.msg)
			}
		})
	}
	if after := s.head(t, "main"); after != before {
		t.Fatalf("bad requests moved refs/data/main from %s to %s", before, after)
	}
}

func TestAuthorizer(t *testing.T) {
	s := newServer(t, nil)
	h := rest.NewRESTHandler(s.cat)
	req := httptest.NewRequest("GET", "/v1/config", nil)
	req.RemoteAddr = "10.1.2.3:4567"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "NotAuthorizedException") {
		t.Fatalf("remote request = %d %s", rec.Code, rec.Body)
	}
	h = rest.NewRESTHandler(s.cat, rest.WithAuthorizer(func(r *http.Request) (access.Identity, bool) {
		return "ana", r.Header.Get("Authorization") == "Bearer good"
	}))
	req = httptest.NewRequest("GET", "/v1/config", nil)
	req.RemoteAddr = "10.1.2.3:4567"
	req.Header.Set("Authorization", "Bearer good")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("authorized request = %d %s", rec.Code, rec.Body)
	}
}

func TestRepoAccess(t *testing.T) {
	s := newServer(t, nil)
	var branches []string
	h := rest.NewRESTHandler(s.cat, rest.WithRepoAccess(func(id access.Identity, r objects.RepoName, branch string, write bool) error {
		branches = append(branches, branch)
		if write {
			return fmt.Errorf("%s may not write to repo %s", id, r)
		}
		return nil
	}))
	req := httptest.NewRequest("POST", "/v1/team%2Fdemo/main/namespaces", strings.NewReader(`{"namespace":["x"]}`))
	req.RemoteAddr = "127.0.0.1:1"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "may not write to repo team/demo") {
		t.Fatalf("write without permission = %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest("GET", "/v1/team%2Fdemo/main/namespaces", nil)
	req.RemoteAddr = "127.0.0.1:1"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("read = %d %s", rec.Code, rec.Body)
	}
	if s.head(t, "main") != objects.ZeroHash {
		t.Fatal("refused write created a data ref")
	}
	if len(branches) != 2 || branches[0] != "main" || branches[1] != "main" {
		t.Fatalf("RepoAccess saw branches %q, want the request's", branches)
	}
}
