package e2e

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// TestNestedNamespacesEndToEnd drives nested namespaces against the built
// binary with iceberg-go's REST client: namespaces sales, sales.eu and
// sales.eu.de, a table sales.eu.orders appended to and scanned, listed
// under its parent; hostile levels refused with nothing moved; C git
// shows the table at tables/sales.eu/orders of the data ref with its
// history; weir query and the web view read it; and after an offline `weir gc` with no
// grace the table still scans the same rows.
func TestNestedNamespacesEndToEnd(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	s := startWeir(t, data)
	dir := newWorkRepo(t, 1)
	git(t, dir, "push", "-q", s.URL("lake"), "main")
	cat, err := icebergcat.Load(ctx, "weir", iceberg.Properties{"type": "rest", "uri": s.HTTP + "/iceberg", "warehouse": "lake@main"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []table.Identifier{{"sales"}, {"sales", "eu"}, {"sales", "eu", "de"}} {
		if err := cat.CreateNamespace(ctx, ns, iceberg.Properties{"owner": "ana"}); err != nil {
			t.Fatalf("create namespace %v: %v", ns, err)
		}
	}
	kids, err := cat.ListNamespaces(ctx, table.Identifier{"sales", "eu"})
	if err != nil || len(kids) != 1 || !slices.Equal(kids[0], []string{"sales", "eu", "de"}) {
		t.Fatalf("children of sales.eu = %v %v", kids, err)
	}
	top, err := cat.ListNamespaces(ctx, nil)
	if err != nil || len(top) != 1 || !slices.Equal(top[0], []string{"sales"}) {
		t.Fatalf("top-level namespaces = %v %v", top, err)
	}
	ident := table.Identifier{"sales", "eu", "orders"}
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	isc, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, false)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.CreateTable(ctx, ident, isc)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{7, 8, 9}, nil)
	rec := array.NewRecordBatch(sc, []arrow.Array{b.NewArray()}, 3)
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 3, nil); err != nil {
		t.Fatal(err)
	}
	scan := func(what string) {
		t.Helper()
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			t.Fatalf("%s: load: %v", what, err)
		}
		got, err := tbl.Scan().ToArrowTable(ctx)
		if err != nil {
			t.Fatalf("%s: scan: %v", what, err)
		}
		defer got.Release()
		var ids []int64
		for _, ch := range got.Column(0).Data().Chunks() {
			ids = append(ids, ch.(*array.Int64).Int64Values()...)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []int64{7, 8, 9}) {
			t.Fatalf("%s: sales.eu.orders scans %v", what, ids)
		}
	}
	scan("after the append")
	var listed []string
	for id, err := range cat.ListTables(ctx, table.Identifier{"sales", "eu"}) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, strings.Join(id, "."))
	}
	if !slices.Equal(listed, []string{"sales.eu.orders"}) {
		t.Fatalf("tables of sales.eu = %v", listed)
	}

	// Hostile levels: a 400 each, the data ref where it was.
	before := lsRemote(t, s.URL("lake"))["refs/data/main"]
	p := s.HTTP + "/iceberg/v1/lake/main"
	for _, body := range []string{`{"namespace":["sales","a.b"]}`, `{"namespace":["sales",".."]}`, `{"namespace":["sales",""]}`, `{"namespace":["sales","a\u001fb"]}`, `{"namespace":["sales","x/y"]}`} {
		code, out := restCall(t, "POST", p+"/namespaces", body)
		if typ, msg := restError(out); code != 400 || typ != "BadRequestException" || msg == "" {
			t.Errorf("create %s = %d %v", body, code, out)
		}
	}
	if code, out := restCall(t, "GET", p+"/namespaces/sales%1F..%1Feu/tables/orders", ""); code != 400 {
		t.Errorf("load through a .. level = %d %v", code, out)
	}
	if after := lsRemote(t, s.URL("lake"))["refs/data/main"]; after != before {
		t.Fatalf("refused requests moved refs/data/main from %s to %s", before, after)
	}

	// What C git shows of the data ref.
	clone := t.TempDir()
	git(t, clone, "init", "-q")
	git(t, clone, "fetch", "-q", s.URL("lake"), "refs/data/main:refs/data/main")
	tree := git(t, clone, "ls-tree", "-r", "--name-only", "refs/data/main")
	for _, want := range []string{"tables/sales.eu/orders", "namespaces/sales", "namespaces/sales.eu", "namespaces/sales.eu.de"} {
		if !slices.Contains(strings.Split(tree, "\n"), want) {
			t.Errorf("git ls-tree refs/data/main has no %s:\n%s", want, tree)
		}
	}
	ptr := git(t, clone, "show", "refs/data/main:tables/sales.eu/orders")
	if !strings.Contains(ptr, "table sales.eu.orders\n") || !strings.Contains(ptr, "\nrows 3\n") || !strings.Contains(ptr, "metadata-location s3://weir/lake/sales.eu/orders/metadata/") {
		t.Errorf("git show of the pointer:\n%s", ptr)
	}
	log := git(t, clone, "log", "--format=%s", "refs/data/main", "--", "tables/sales.eu/orders")
	if l := strings.Split(strings.TrimSpace(log), "\n"); len(l) != 2 || !strings.HasPrefix(l[0], "weir: append 3 rows to sales.eu.orders") || !strings.HasPrefix(l[1], "weir: create table sales.eu.orders") {
		t.Errorf("git log of tables/sales.eu/orders:\n%s", log)
	}
	git(t, clone, "fsck", "--strict", "--no-dangling", "refs/data/main")

	// weir query names the table by its dotted namespace.
	out, err := sshWeir(t, s, "query", "lake", "main", `'SELECT sum(id) AS s FROM "sales.eu".orders'`)
	if err != nil || !strings.Contains(out, "s\n24\n") {
		t.Errorf("weir query of sales.eu.orders: %v\n%s", err, out)
	}

	// The web view's page of the table.
	rsp, err := http.Get(s.HTTP + "/ui/lake/-/table/sales.eu.orders/main")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if rsp.StatusCode != 200 || !strings.Contains(string(page), "sales.eu.orders") {
		t.Errorf("web page of sales.eu.orders = %d:\n%.2000s", rsp.StatusCode, page)
	}

	// An offline collection with no grace keeps every file of the table.
	s.Stop()
	gcOut, err := exec.Command(weirBin, "gc", "--data", data, "--gc-grace", "0", "--reflog-expiry", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("weir gc: %v\n%s", err, gcOut)
	}
	t.Logf("weir gc:\n%s", gcOut)
	s.Restart()
	cat, err = icebergcat.Load(ctx, "weir", iceberg.Properties{"type": "rest", "uri": s.HTTP + "/iceberg", "warehouse": "lake@main"})
	if err != nil {
		t.Fatal(err)
	}
	scan("after weir gc")
}
