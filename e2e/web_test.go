package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium is Debian's headless browser, or a skip saying how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("the web view's browser test needs Debian's chromium: apt-get install -y chromium")
	}
	return p
}

// browse runs headless chromium on url with extra (--dump-dom, or
// --screenshot=FILE) and returns its stdout.
func browse(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s %v: %v\n%s", url, extra, err, stderr.String())
	}
	return string(out)
}

// runIDs are the runs a repo keeps (refs/runs/<id>/log).
func runIDs(t *testing.T, url string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for name := range lsRemote(t, url) {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(name, "refs/runs/"), "/log"); ok && id != name {
			ids[id] = true
		}
	}
	return ids
}

// newRun is the one run in after that is not in before.
func newRun(t *testing.T, before, after map[string]bool) string {
	t.Helper()
	var got []string
	for id := range after {
		if !before[id] {
			got = append(got, id)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want one new run, got %v", got)
	}
	return got[0]
}

// TestWebView: examples/orders pushed twice (the second push adds
// main.extra) and a third push whose Python node prints HTML and fails;
// then the web view in headless Chromium, as a person would read it: the
// repos, the branch, the runs with their states, the failed run with its
// failing node and its log shown as text (no script of it runs), the
// revenue table with its columns, rows and lineage (the run and the code
// commit that wrote it), the diff main~1..main. Screenshots land in the
// test's temp dir (or $WEIR_TEST_SCREENSHOTS, kept). Then, with no
// anonymous access, the pages are 401 without a token and 404 for an
// identity that cannot read the repo.
func TestWebView(t *testing.T) {
	needSandboxes(t)
	bin := chromium(t)
	data := t.TempDir()
	s := startWeir(t, data)
	dir := exampleRepo(t)
	url := s.URL("orders")
	git(t, dir, "push", "-q", url, "main")
	first := runIDs(t, url)
	firstCode := revParse(t, dir, "HEAD")

	os.WriteFile(filepath.Join(dir, "models", "extra.sql"), []byte("SELECT 1 AS x\n"), 0o644)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "extra")
	git(t, dir, "push", "-q", url, "main")
	second := runIDs(t, url)
	okRun := newRun(t, first, second)
	goodCode := revParse(t, dir, "HEAD")
	firstRun := newRun(t, nil, first)

	// A node whose output is hostile HTML, and fails.
	os.WriteFile(filepath.Join(dir, "models", "shout.py"), []byte(`# weir: inputs = main.clean_orders
# weir: outputs = main.shout
print("<script>document.title='pwned'</script><b>bold</b><img src=x onerror=\"document.title='pwned'\">")
raise SystemExit(3)
`), 0o644)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "shout")
	out := gitFails(t, dir, "push", url, "main")
	m := runRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("failed push names no kept run:\n%s", out)
	}
	failed := m[1]

	page := func(path string) string {
		t.Helper()
		dom := browse(t, bin, s.HTTP+path, "--dump-dom")
		if strings.Contains(dom, "pwned</title>") || strings.Contains(dom, "<script") || strings.Contains(dom, "<img") {
			t.Fatalf("%s: the page runs or carries node output as HTML:\n%s", path, dom)
		}
		return dom
	}
	want := func(path, dom string, texts ...string) {
		t.Helper()
		for _, s := range texts {
			if !strings.Contains(dom, s) {
				t.Errorf("%s lacks %q:\n%s", path, s, dom)
			}
		}
	}
	shot := func(path, name string) {
		t.Helper()
		dir := t.TempDir()
		if keep := os.Getenv("WEIR_TEST_SCREENSHOTS"); keep != "" {
			dir = keep // kept after the test, e.g. as CI artifacts
		}
		file := filepath.Join(dir, name)
		browse(t, bin, s.HTTP+path, "--screenshot="+file, "--window-size=1200,900")
		if st, err := os.Stat(file); err != nil || st.Size() < 1000 {
			t.Fatalf("screenshot of %s: %v", path, err)
		}
		t.Logf("screenshot of %s: %s", path, file)
	}

	want("/", page("/"), `href="/ui/orders"`)
	want("/ui/orders", page("/ui/orders"), "<b>main</b>", goodCode[:7], "extra")

	runs := page("/ui/orders/-/runs")
	want("/ui/orders/-/runs", runs, failed, okRun, firstRun)
	if !regexp.MustCompile(failed+`</a></td>\s*<td><span class="state state-failed">failed</span>`).MatchString(runs) ||
		!regexp.MustCompile(okRun+`</a></td>\s*<td><span class="state state-succeeded">succeeded</span>`).MatchString(runs) {
		t.Errorf("runs list lacks the states of %s (failed) and %s (succeeded):\n%s", failed, okRun, runs)
	}

	path := "/ui/orders/-/runs/" + failed
	run := page(path)
	want(path, run, `id="state">failed</span>`, "main.shout failed", "exit status 3", "main.revenue",
		// The node's output, shown as text.
		"&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;&lt;img src=x onerror=\"document.title='pwned'\"&gt;")
	if !regexp.MustCompile(`<td>main\.shout</td><td>[^<]+</td><td class="num">[^<]+</td><td class="bar-cell"><div class="bar w\d+ fail"></div>`).MatchString(run) {
		t.Errorf("run page lacks main.shout's failed timing bar:\n%s", run)
	}
	shot(path, "run.png")

	path = "/ui/orders/-/table/main.revenue/main"
	tbl := page(path)
	want(path, tbl, `<dd id="rows">8</dd>`, "<td>customer</td>", "<td>orders</td>", "<td>total</td>",
		`href="/ui/orders/-/runs/`+okRun+`"`, `href="/ui/orders/-/runs/`+firstRun+`"`, goodCode[:7], firstCode[:7])
	_, history, _ := strings.Cut(tbl, `id="history"`)
	if n := strings.Count(history, "<tr>") - 1; n != 2 {
		t.Errorf("revenue's history has %d versions, want 2 (one per landed run):\n%s", n, history)
	}
	shot(path, "table.png")

	path = "/ui/orders/-/diff/main~1..main"
	want(path, page(path), "main.extra", "1 added, 0 removed", "+1")

	// No anonymous access: 401 without a token; bob, who may read only
	// "other", gets 404 for every page of orders and is not shown it.
	s.Stop()
	bobTok := func() string {
		weirCLI(t, "user", "add", "bob", "--data", data)
		weirCLI(t, "user", "grant", "bob", "other", "read", "--data", data)
		return strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	}()
	s.args = []string{"--assume-remote"}
	s.Restart()
	pages := []string{"/ui/orders", "/ui/orders/-/runs", "/ui/orders/-/runs/" + failed, "/ui/orders/-/tables/main",
		"/ui/orders/-/table/main.revenue/main", "/ui/orders/-/diff/main~1..main"}
	for _, p := range append([]string{"/"}, pages...) {
		if r := httpGet(t, s.HTTP+p, "", ""); r.status != 401 || !strings.Contains(r.body, "authentication required") {
			t.Errorf("anonymous GET %s with --assume-remote: %d", p, r.status)
		}
	}
	for _, p := range pages {
		if r := httpGet(t, s.HTTP+p, "bob", bobTok); r.status != 404 || strings.Contains(r.body, failed) || strings.Contains(r.body, "revenue") {
			t.Errorf("bob GET %s: %d %s", p, r.status, r.body)
		}
	}
	if r := httpGet(t, s.HTTP+"/", "bob", bobTok); r.status != 200 || strings.Contains(r.body, "orders") {
		t.Errorf("bob's repo list: %d %s", r.status, r.body)
	}
}
