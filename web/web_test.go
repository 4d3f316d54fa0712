package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks/runs"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// fixture is a real store (in-memory kv, a local warehouse) holding
// team/demo: a code commit on main, two data commits written by two runs
// (sales.orders 2 rows, then 4 rows and a new sales.customers), the
// second run kept under refs/runs/ with a log full of HTML; and ui/tools,
// a plain Git repo whose name starts with the web view's prefix.
type fixture struct {
	t        *testing.T
	users    *access.Users
	acc      *access.Access
	local    http.Handler // loopback: anonymous reads
	remote   http.Handler // off loopback: tokens only
	code     objects.Hash
	data1    objects.Hash
	data2    objects.Hash
	bobToken string
}

const hostileLog = "weir: running 2 nodes\n== sales.orders (models/orders.py) ok in 12ms\n<script>alert('pwned')</script><b>bold</b><img src=x onerror=alert(1)>\n"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	objs, err := objects.Open(memkv.New(), objects.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := refs.NewDB(objs)
	wh, err := catalog.NewLocalWarehouse(filepath.Join(dir, "warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(objs, rdb, wh)
	f := &fixture{t: t}
	put := func(repo objects.RepoName, typ plumbing.ObjectType, data string) objects.Hash {
		h, err := objs.Put(ctx, repo, typ, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	setRef := func(repo objects.RepoName, name string, h objects.Hash) {
		if err := rdb.Update(ctx, repo, []refs.Update{{Name: refs.Name(name), New: h}}, nil, "test"); err != nil {
			t.Fatal(err)
		}
	}
	repo := objects.RepoName("team/demo")
	toml := put(repo, plumbing.BlobObject, "namespace = \"sales\"\n")
	tree := put(repo, plumbing.TreeObject, "100644 weir.toml\x00"+string(toml[:]))
	f.code = put(repo, plumbing.CommitObject, "tree "+tree.String()+"\nauthor Ana <ana@x> 1700000000 +0000\ncommitter Ana <ana@x> 1700000000 +0000\n\nadd the <orders> model\n")
	setRef(repo, "refs/heads/main", f.code)
	csv := func(name, body string) string {
		src := filepath.Join(dir, name+".csv")
		if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := catalog.FetchSource(ctx, src, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	orders := catalog.TableName{Namespace: "sales", Name: "orders"}
	customers := catalog.TableName{Namespace: "sales", Name: "customers"}
	if f.data1, err = cat.WriteBranch(ctx, repo, "main", []catalog.TableWrite{{Table: orders, Files: []string{csv("o1", "id,name\n1,ana\n2,bob\n")}}},
		catalog.CommitInfo{RunID: "r-0001", Message: "weir: run r-0001", CodeCommit: f.code}); err != nil {
		t.Fatal(err)
	}
	if f.data2, err = cat.WriteBranch(ctx, repo, "main", []catalog.TableWrite{
		{Table: orders, Files: []string{csv("o2", "id,name\n1,ana\n2,bob\n3,cy\n4,di\n")}},
		{Table: customers, Files: []string{csv("c", "id\n7\n")}},
	}, catalog.CommitInfo{RunID: "r-00ff", Message: "weir: run r-00ff", CodeCommit: f.code}); err != nil {
		t.Fatal(err)
	}
	// Run r-00ff's log, as hooks/runlog.go writes it.
	blob := put(repo, plumbing.BlobObject, hostileLog)
	var tb strings.Builder
	tb.WriteString("100644 log\x00")
	tb.Write(blob[:])
	ltree := put(repo, plumbing.TreeObject, tb.String())
	logc := put(repo, plumbing.CommitObject, fmt.Sprintf("tree %s\nauthor weir <weir@localhost> 1700000100 +0000\ncommitter weir <weir@localhost> 1700000100 +0000\n\n"+
		"weir: run r-00ff on main ok\n\nRun: r-00ff\nCode-Commit: %s\nPusher: ana\nData-Commit: %s\nNode: 40\tsales.orders\tok\nNode: 10\t<i>sales.customers</i>\tok\n", ltree, f.code, f.data2))
	setRef(repo, "refs/runs/r-00ff/log", logc)
	setRef(repo, "refs/runs/r-00ff/data", f.data2)
	setRef(repo, "refs/runs/r-00ff/code", f.code)
	setRef(repo, "refs/tags/data/v1", f.data1)
	// A branch whose name is HTML (Git allows <, >, & and quotes).
	setRef(repo, "refs/heads/x<i>y&'z\"#1", f.code)
	setRef(repo, "refs/data/x<i>y&'z\"#1", f.data1)

	tools := objects.RepoName("ui/tools")
	ttree := put(tools, plumbing.TreeObject, "")
	setRef(tools, "refs/heads/main", put(tools, plumbing.CommitObject, "tree "+ttree.String()+"\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\ntools\n"))

	f.users = access.OpenUsers(filepath.Join(dir, "users.json"))
	if err := f.users.AddUser("bob"); err != nil {
		t.Fatal(err)
	}
	if f.bobToken, _, err = f.users.NewToken("bob", "web"); err != nil {
		t.Fatal(err)
	}
	if err := f.users.Grant("bob", "ui/tools", access.PermRead); err != nil {
		t.Fatal(err)
	}
	if f.acc, err = access.New(access.Config{Users: f.users}); err != nil {
		t.Fatal(err)
	}
	git := &gitserver.Server{Objects: objs, Refs: rdb}
	mk := func(anon bool) http.Handler {
		a := f.acc.WithAnonymous(anon)
		h, err := New(Config{Access: a, Catalog: cat, Objects: objs, Runs: runs.NewSource(nil, cat, objs), Git: gitserver.NewHTTPHandler(git, a)})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/", gitserver.NewHTTPHandler(git, a))
		mux.Handle("/{$}", h)
		mux.Handle("/ui/", h)
		return mux
	}
	f.local, f.remote = mk(true), mk(false)
	return f
}

// get requests path from h (with token as the Basic password when set)
// and returns the status and body.
func get(t *testing.T, h http.Handler, method, path, token string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, "http://weir.test"+path, nil)
	if req.URL.RawPath == "" && strings.Contains(path, "%") {
		req.URL.RawPath = strings.SplitN(path, "?", 2)[0]
	}
	if token != "" {
		req.SetBasicAuth("bob", token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b), rec.Result().Header
}

func wantPage(t *testing.T, h http.Handler, path string, status int, texts ...string) string {
	t.Helper()
	code, body, hd := get(t, h, http.MethodGet, path, "")
	if code != status {
		t.Fatalf("GET %s = %d, want %d:\n%s", path, code, status, body)
	}
	for _, s := range texts {
		if !strings.Contains(body, s) {
			t.Errorf("GET %s: page lacks %q:\n%s", path, s, body)
		}
	}
	if ct := hd.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if strings.Contains(body, "style=") || strings.Contains(body, "<script") {
		t.Errorf("GET %s: an inline style or script, which the Content-Security-Policy blocks:\n%s", path, body)
	}
	if csp := hd.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
	}
	return body
}

// TestPages: every page shows what the store holds: repos, branches with
// code and data heads, tags, runs, a run's nodes and tables, a table's
// schema, rows and lineage, and the diff of two data commits.
func TestPages(t *testing.T) {
	f := newFixture(t)
	h := f.local
	wantPage(t, h, "/", 200, `href="/ui/team/demo"`, `href="/ui/ui/tools"`)
	wantPage(t, h, "/ui/", 200, `href="/ui/team/demo"`)
	wantPage(t, h, "/ui/team/demo", 200, "<b>main</b>", short(f.code), "add the &lt;orders&gt; model", short(f.data2),
		`href="/ui/team/demo/-/tables/main"`, `href="/ui/team/demo/-/diff/main~1..main"`, ">v1</a>", "data")
	wantPage(t, h, "/ui/team/demo", 200, "<b>x&lt;i&gt;y&amp;&#39;z&#34;#1</b>", `href="/ui/team/demo/-/tables/x%3Ci%3Ey&amp;%27z%22%231"`)
	wantPage(t, h, "/ui/team/demo/-/tables/x%3Ci%3Ey&%27z%22%231", 200, "Tables at x&lt;i&gt;y&amp;&#39;z&#34;#1", "r-0001")
	wantPage(t, h, "/ui/team/demo/-/runs", 200, `href="/ui/team/demo/-/runs/r-00ff"`, "state-succeeded", "ana")
	body := wantPage(t, h, "/ui/team/demo/-/runs/r-00ff", 200, "succeeded", f.code.String(), f.data2.String(),
		`<div class="bar w100"></div>`, `<div class="bar w25"></div>`, "&lt;i&gt;sales.customers&lt;/i&gt;",
		`href="/ui/team/demo/-/table/sales.orders/`+f.data2.String()+`"`, "<td class=\"num\">4</td>")
	wantPage(t, h, "/ui/team/demo/-/runs/latest", 200, "r-00ff")
	// The log is shown as text: no tag of it reaches the page.
	if !strings.Contains(body, "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("log not escaped as text:\n%s", body)
	}
	for _, bad := range []string{"<script", "<img", "<b>bold", "<i>sales"} {
		if strings.Contains(body, bad) {
			t.Errorf("run page carries %q from the log:\n%s", bad, body)
		}
	}
	wantPage(t, h, "/ui/team/demo/-/tables/main", 200, "sales.orders", "sales.customers", "r-00ff")
	wantPage(t, h, "/ui/team/demo/-/tables/v1", 200, "sales.orders", "r-0001")
	body = wantPage(t, h, "/ui/team/demo/-/table/sales.orders/main", 200, `<dd id="rows">4</dd>`, "<td>id</td>", "<td>name</td>", "<code>string</code>",
		short(f.data2), short(f.data1), `href="/ui/team/demo/-/runs/r-00ff"`, `href="/ui/team/demo/-/runs/r-0001"`, "add the &lt;orders&gt; model")
	_, history, _ := strings.Cut(body, `id="history"`)
	if n := strings.Count(history, `<span class="id">`+short(f.code)+"</span>"); n != 2 {
		t.Errorf("history names code commit %s %d times, want one per version:\n%s", short(f.code), n, body)
	}
	wantPage(t, h, "/ui/team/demo/-/table/sales.orders/main~1", 200, `<dd id="rows">2</dd>`)
	// Paging: from r-0001's commit the history has its version only.
	body = wantPage(t, h, "/ui/team/demo/-/table/sales.orders/main?from="+f.data1.String(), 200)
	if _, history, _ = strings.Cut(body, `id="history"`); !strings.Contains(history, "runs/r-0001") || strings.Contains(history, "runs/r-00ff") {
		t.Errorf("history from %s:\n%s", short(f.data1), history)
	}
	body = wantPage(t, h, "/ui/team/demo/-/diff/main~1..main", 200, "1 added, 0 removed, 1 changed, 0 unchanged", "sales.customers", "+2")
	if !strings.Contains(body, `<td class="num">2</td><td class="num">4</td>`) {
		t.Errorf("diff lacks orders 2 -> 4:\n%s", body)
	}
	wantPage(t, h, "/ui/team/demo/-/diff/main..v1", 200, "0 added, 1 removed, 1 changed")
	wantPage(t, h, "/ui/team/demo/-/diff/"+short(f.data2)+"..main", 200, "0 added, 0 removed, 0 changed, 2 unchanged")
	code, css, hd := get(t, h, http.MethodGet, "/ui/-/style.css", "")
	if code != 200 || !strings.Contains(css, ".bar") || hd.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("style.css = %d %q", code, hd.Get("Content-Type"))
	}
}

// TestGitPathsStayGit: Git's paths keep working beside the web view, a
// repo named ui/<x> included.
func TestGitPathsStayGit(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/ui/tools.git/info/refs?service=git-upload-pack", "/team/demo.git/info/refs?service=git-upload-pack", "/ui/tools/info/refs?service=git-upload-pack"} {
		code, body, hd := get(t, f.local, http.MethodGet, p, "")
		if code != 200 || !strings.Contains(body, "# service=git-upload-pack") || hd.Get("Content-Type") != "application/x-git-upload-pack-advertisement" {
			t.Errorf("GET %s = %d %q %q", p, code, hd.Get("Content-Type"), body)
		}
	}
}

// TestHostileURLs: every part of a URL is refused with a page that says
// what was wanted, never a panic or a server error.
func TestHostileURLs(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		path   string
		status int
		text   string
	}{
		{"/ui/..%2F..%2Fetc%2Fpasswd", 404, "not found or not readable"},
		{"/ui/%2e%2e/-/runs", 404, "not found or not readable"},
		{"/ui/team/demo/extra/segment", 404, "not found or not readable"},
		{"/ui/nobody/here", 404, "not found or not readable"},
		{"/ui/team/demo/-/nope", 404, "no such page"},
		{"/ui/team/demo/-/runs/r-zzzz", 404, "not a run id"},
		{"/ui/team/demo/-/runs/r-abcdef", 404, "has no run r-abcdef"},
		{"/ui/team/demo/-/runs/..%2F..%2Fheads%2Fmain", 404, "not a run id"},
		{"/ui/team/demo/-/runs?page=abc", 400, "want a number"},
		{"/ui/team/demo/-/runs?page=0", 400, "want a number"},
		{"/ui/team/demo/-/runs?state=exploded", 400, "want one of"},
		{"/ui/team/demo/-/tables/%2e%2e", 404, `&#34;..&#34; is not a data branch`},
		{"/ui/team/demo/-/tables/", 400, "no revision"},
		{"/ui/team/demo/-/tables/nosuch", 404, "not a data branch"},
		{"/ui/team/demo/-/tables/main~99", 404, "has no parent"},
		{"/ui/team/demo/-/tables/" + long, 400, "longer than 256"},
		{"/ui/team/demo/-/tables/main%00", 404, `&#34;main\x00&#34; is not a data branch`},
		{"/ui/team/demo/-/tables/main~1000000", 404, "too large"},
		{"/ui/team/demo/-/tables/" + short(f.code), 404, "not a data commit"},
		{"/ui/team/demo/-/table/sales.orders/nosuch", 404, "not a data branch"},
		{"/ui/team/demo/-/table/..%2F..%2Fetc/main", 400, "want &lt;namespace&gt;.&lt;table&gt;"},
		{"/ui/team/demo/-/table/sales.nosuch/main", 404, "no table sales.nosuch"},
		{"/ui/team/demo/-/table/Sales.Orders/main", 400, "want &lt;namespace&gt;.&lt;table&gt;"},
		{"/ui/team/demo/-/table/sales.orders/main?from=xyz", 400, "full commit id"},
		{"/ui/team/demo/-/table/sales.orders/main?from=" + strings.Repeat("0", 40), 400, "full commit id"},
		{"/ui/team/demo/-/table/sales.orders/main?from=" + strings.Repeat("1", 40), 404, "no such commit"},
		{"/ui/team/demo/-/table/sales.orders/main?from=" + f.code.String(), 404, "not a data commit"},
		{"/ui/team/demo/-/diff/main", 400, "want /-/diff/&lt;a&gt;..&lt;b&gt;"},
		{"/ui/team/demo/-/diff/..main", 400, "want /-/diff"},
		{"/ui/team/demo/-/diff/main..nosuch", 404, "not a data branch"},
		{"/ui/" + strings.Repeat("x/", 1100), 414, "longer than 2048"},
		{"/nothing-here", 404, ""}, // Git's 404
	} {
		code, body, _ := get(t, f.local, http.MethodGet, tc.path, "")
		if code != tc.status || !strings.Contains(body, tc.text) {
			t.Errorf("GET %s = %d, want %d with %q:\n%.600s", tc.path, code, tc.status, tc.text, body)
		}
		if strings.Contains(body, "<script") {
			t.Errorf("GET %s: page has a script", tc.path)
		}
	}
	if code, _, hd := get(t, f.local, http.MethodPost, "/ui/team/demo", ""); code != 405 || hd.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q", code, hd.Get("Allow"))
	}
}

// TestAccess: off loopback every page needs a token (401); an identity
// that may not read a repo gets 404 on each of its pages, as for a repo
// that does not exist, and the repo is not listed.
func TestAccess(t *testing.T) {
	f := newFixture(t)
	pages := []string{"/ui/team/demo", "/ui/team/demo/-/runs", "/ui/team/demo/-/runs/r-00ff", "/ui/team/demo/-/runs/latest",
		"/ui/team/demo/-/tables/main", "/ui/team/demo/-/table/sales.orders/main", "/ui/team/demo/-/diff/main~1..main"}
	for _, p := range append([]string{"/"}, pages...) {
		code, body, hd := get(t, f.remote, http.MethodGet, p, "")
		if code != 401 || hd.Get("WWW-Authenticate") != `Basic realm="weir"` || !strings.Contains(body, "authentication required") {
			t.Errorf("anonymous off loopback GET %s = %d %q", p, code, hd.Get("WWW-Authenticate"))
		}
		if code, _, _ := get(t, f.remote, http.MethodGet, p, "not-a-token"); code != 401 {
			t.Errorf("bad token GET %s = %d, want 401", p, code)
		}
	}
	for _, p := range pages {
		code, body, _ := get(t, f.remote, http.MethodGet, p, f.bobToken)
		if code != 404 || !strings.Contains(body, `repo &#34;team/demo&#34; not found or not readable`) || strings.Contains(body, "sales.orders") {
			t.Errorf("bob GET %s = %d:\n%.400s", p, code, body)
		}
	}
	code, body, _ := get(t, f.remote, http.MethodGet, "/", f.bobToken)
	if code != 200 || strings.Contains(body, "team/demo") || !strings.Contains(body, `href="/ui/ui/tools"`) {
		t.Errorf("bob's repo list = %d:\n%s", code, body)
	}
	if code, _, _ := get(t, f.remote, http.MethodGet, "/ui/ui/tools", f.bobToken); code != 200 {
		t.Errorf("bob GET /ui/ui/tools = %d, want 200", code)
	}
	// The grant takes effect at once (users.json is re-read).
	if err := f.users.Grant("bob", "team/demo", access.PermRead); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, f.remote, http.MethodGet, "/ui/team/demo/-/table/sales.orders/main", f.bobToken); code != 200 || !strings.Contains(body, `<dd id="rows">4</dd>`) {
		t.Errorf("bob with a grant = %d", code)
	}
}

func short(h objects.Hash) string { return h.String()[:7] }
