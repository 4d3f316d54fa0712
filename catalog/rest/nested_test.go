package rest_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/catalog"
)

// idents turns a list-namespaces or list-tables body's array into
// strings, levels joined by '/' (a character no level holds).
func idents(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, x := range v.([]any) {
		var levels []string
		switch x := x.(type) {
		case []any:
			for _, l := range x {
				levels = append(levels, l.(string))
			}
		case map[string]any: // a table identifier
			for _, l := range x["namespace"].([]any) {
				levels = append(levels, l.(string))
			}
			levels = append(levels, "#"+x["name"].(string))
		}
		out = append(out, strings.Join(levels, "/"))
	}
	return out
}

// TestNestedNamespaces drives nested namespaces through the REST catalog
// with plain HTTP, as the spec has them (levels joined by %1F in a URL,
// parent on list namespaces), and a table in one through iceberg-go's
// own client: created, listed, loaded, appended to, scanned and dropped.
// A table and a child namespace of the same name live side by side.
func TestNestedNamespaces(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	for _, ns := range []string{`["sales"]`, `["sales","eu"]`, `["sales","eu","de"]`, `["sales","us"]`, `["hr"]`} {
		if code, body := do(t, s, "POST", prefix+"/namespaces", `{"namespace":`+ns+`,"properties":{"owner":"ana"}}`); code != 200 {
			t.Fatalf("create namespace %s = %d %v", ns, code, body)
		}
	}
	for _, tc := range []struct{ parent, want string }{
		{"", "hr sales"},
		{"?parent=sales", "sales/eu sales/us"},
		{"?parent=sales%1Feu", "sales/eu/de"},
		{"?parent=sales%1Feu%1Fde", ""},
		{"?parent=hr", ""},
	} {
		code, body := do(t, s, "GET", prefix+"/namespaces"+tc.parent, "")
		if code != 200 || strings.Join(idents(t, body["namespaces"]), " ") != tc.want {
			t.Errorf("list namespaces%s = %d %v, want %q", tc.parent, code, body, tc.want)
		}
	}
	if code, body := do(t, s, "GET", prefix+"/namespaces?parent=sales%1Fnope", ""); code != 404 || errType(body) != "NoSuchNamespaceException" {
		t.Errorf("children of a missing namespace = %d %v", code, body)
	}
	code, body := do(t, s, "GET", prefix+"/namespaces/sales%1Feu%1Fde", "")
	if code != 200 || strings.Join(idents(t, []any{body["namespace"]}), "") != "sales/eu/de" || body["properties"].(map[string]any)["owner"] != "ana" {
		t.Fatalf("load namespace sales.eu.de = %d %v", code, body)
	}
	if code, _ := do(t, s, "HEAD", prefix+"/namespaces/sales%1Feu", ""); code != 204 {
		t.Fatalf("HEAD sales.eu = %d", code)
	}
	if code, body := do(t, s, "POST", prefix+"/namespaces/sales%1Feu/properties", `{"updates":{"region":"eu"}}`); code != 200 {
		t.Fatalf("update properties of sales.eu = %d %v", code, body)
	}

	// A table "eu" in sales beside the namespace sales.eu, and a table
	// "orders" in sales.eu, through iceberg-go's REST client.
	cat := s.client(t, "main", nil)
	for _, id := range []table.Identifier{{"sales", "eu"}, {"sales", "eu", "orders"}} {
		if _, err := cat.CreateTable(ctx, id, icebergSchema); err != nil {
			t.Fatalf("create table %v: %v", id, err)
		}
	}
	tbl, err := cat.LoadTable(ctx, table.Identifier{"sales", "eu", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(tbl.Location(), "/sales.eu/orders") {
		t.Errorf("table sales.eu.orders is at %s, want its folder sales.eu/orders", tbl.Location())
	}
	tx := tbl.NewTransaction()
	if err := tx.AppendTable(ctx, arrowTable(0, 5), 5, nil); err != nil {
		t.Fatal(err)
	}
	if tbl, err = tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tbl, err = cat.LoadTable(ctx, table.Identifier{"sales", "eu", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if got := scanIDs(t, tbl); !slices.Equal(got, seq(0, 5)) {
		t.Fatalf("sales.eu.orders scans %v", got)
	}
	if got := scanIDs(t, mustLoad(t, cat, "sales", "eu")); len(got) != 0 {
		t.Fatalf("table sales.eu (beside namespace sales.eu) scans %v", got)
	}
	code, body = do(t, s, "GET", prefix+"/namespaces/sales%1Feu/tables", "")
	if code != 200 || strings.Join(idents(t, body["identifiers"]), " ") != "sales/eu/#orders" {
		t.Fatalf("tables of sales.eu = %d %v", code, body)
	}
	code, body = do(t, s, "GET", prefix+"/namespaces/sales/tables", "")
	if code != 200 || strings.Join(idents(t, body["identifiers"]), " ") != "sales/#eu" {
		t.Fatalf("tables of sales = %d %v", code, body)
	}

	// The data commit holds the table at tables/sales.eu/orders, its
	// pointer naming it sales.eu.orders with the rows appended.
	head := s.head(t, "main")
	tabs, err := s.cat.Tables(ctx, repo, head)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tabs[catalog.TableName{Namespace: "sales.eu", Name: "orders"}]
	if !ok || p.Rows != 5 || p.Table.String() != "sales.eu.orders" {
		t.Fatalf("pointer of sales.eu.orders = %v %+v (tables %v)", ok, p, tabs)
	}
	if p, ok := tabs[catalog.TableName{Namespace: "sales", Name: "eu"}]; !ok || p.Rows != 0 {
		t.Fatalf("pointer of sales.eu = %v %+v", ok, p)
	}

	// Only empty namespaces are dropped: not one with a child namespace,
	// nor one with a table.
	for _, ns := range []string{"sales", "sales%1Feu"} {
		if code, body := do(t, s, "DELETE", prefix+"/namespaces/"+ns, ""); code != 409 || errType(body) != "NamespaceNotEmptyException" {
			t.Errorf("drop non-empty %s = %d %v", ns, code, body)
		}
	}
	if s.head(t, "main") != head {
		t.Fatal("a refused drop moved refs/data/main")
	}
	if code, body := do(t, s, "DELETE", prefix+"/namespaces/sales%1Feu/tables/orders", ""); code != 204 {
		t.Fatalf("drop table sales.eu.orders = %d %v", code, body)
	}
	for _, ns := range []string{"sales%1Feu%1Fde", "sales%1Feu"} {
		if code, body := do(t, s, "DELETE", prefix+"/namespaces/"+ns, ""); code != 204 {
			t.Fatalf("drop %s = %d %v", ns, code, body)
		}
	}
	code, body = do(t, s, "GET", prefix+"/namespaces?parent=sales", "")
	if code != 200 || strings.Join(idents(t, body["namespaces"]), " ") != "sales/us" {
		t.Fatalf("children of sales after the drops = %d %v", code, body)
	}
	if _, err := cat.LoadTable(ctx, table.Identifier{"sales", "eu"}); err != nil {
		t.Fatalf("table sales.eu after namespace sales.eu was dropped: %v", err)
	}
}

func mustLoad(t *testing.T, cat interface {
	LoadTable(context.Context, table.Identifier) (*table.Table, error)
}, ident ...string) *table.Table {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), ident)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// TestNestedNamespaceHostileLevels: a namespace level that could be read
// as a path, a separator or another level, too many levels and a name too
// long are each a 400 that says what is wrong, and nothing is written.
func TestNestedNamespaceHostileLevels(t *testing.T) {
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales", "orders")
	if code, body := do(t, s, "POST", prefix+"/namespaces", `{"namespace":["sales","eu"]}`); code != 200 {
		t.Fatalf("create sales.eu = %d %v", code, body)
	}
	head := s.head(t, "main")
	deep := make([]string, catalog.MaxNamespaceDepth+1)
	for i := range deep {
		deep[i] = `"sales"`
	}
	long := `"` + strings.Repeat("a", catalog.MaxNameLen) + `"`
	for _, tc := range []struct{ name, method, path, body, msg string }{
		{"dot in a level", "POST", "/namespaces", `{"namespace":["sales","eu.de"]}`, "'.' not allowed"},
		{"dot-dot level", "POST", "/namespaces", `{"namespace":["sales",".."]}`, "not allowed"},
		{"dot level", "POST", "/namespaces", `{"namespace":["sales","."]}`, "not allowed"},
		{"slash in a level", "POST", "/namespaces", `{"namespace":["sales","a/b"]}`, "not allowed"},
		{"unit separator in a level", "POST", "/namespaces", `{"namespace":["sales","a\u001fb"]}`, "not allowed"},
		{"NUL in a level", "POST", "/namespaces", `{"namespace":["sales","a\u0000b"]}`, "not allowed"},
		{"empty level", "POST", "/namespaces", `{"namespace":["sales",""]}`, "empty name"},
		{"upper case level", "POST", "/namespaces", `{"namespace":["sales","EU"]}`, "not allowed"},
		{"level too long", "POST", "/namespaces", `{"namespace":["sales",` + `"` + strings.Repeat("a", catalog.MaxNameLen+1) + `"]}`, "longer than"},
		{"too deep", "POST", "/namespaces", `{"namespace":[` + strings.Join(deep, ",") + `]}`, "at most 16"},
		{"too long joined", "POST", "/namespaces", `{"namespace":["sales",` + long + `,` + long + `]}`, "at most 255"},
		{"empty level in a URL", "GET", "/namespaces/sales%1F%1Feu", "", "empty name"},
		{"trailing separator in a URL", "GET", "/namespaces/sales%1F/tables", "", "empty name"},
		{"dot-dot level in a URL", "GET", "/namespaces/sales%1F..%1Feu/tables/orders", "", "not allowed"},
		{"slash level in a URL", "POST", "/namespaces/sales%1Fa%2Fb/tables", `{"name":"t","schema":` + longSchema + `}`, "not allowed"},
		{"dotted level in a URL", "DELETE", "/namespaces/sales%1Feu.de", "", "not allowed"},
		{"dotted level in a parent", "GET", "/namespaces?parent=sales.eu", "", "not allowed"},
		{"dotted table name", "POST", "/namespaces/sales%1Feu/tables", `{"name":"a.b","schema":` + longSchema + `}`, "not allowed"},
		{"too deep table", "POST", "/namespaces/" + strings.Repeat("sales%1F", catalog.MaxNamespaceDepth) + "x/tables", `{"name":"t","schema":` + longSchema + `}`, "at most 16"},
		{"rename into a bad level", "POST", "/tables/rename", `{"source":{"namespace":["sales"],"name":"orders"},"destination":{"namespace":["sales","a.b"],"name":"orders"}}`, "not allowed"},
	} {
		code, typ, msg := raw(t, s, tc.method, prefix+tc.path, tc.body)
		if code != 400 || typ != "BadRequestException" || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %s %s = %d %s %q, want 400 ~%q", tc.name, tc.method, tc.path, code, typ, msg, tc.msg)
		}
	}
	if s.head(t, "main") != head {
		t.Fatal("a refused request moved refs/data/main")
	}
	// A level is compared whole: sales.eu exists, "sales" "eu" spelled as
	// one dotted level does not reach it.
	if code, body := do(t, s, "GET", prefix+"/namespaces/"+url.PathEscape("sales.eu"), ""); code != 400 {
		t.Fatalf("GET sales.eu as one level = %d %v", code, body)
	}
}
