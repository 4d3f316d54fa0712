package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runJSON is the part of GET /api/repos/<repo>/runs/<id> the tests read.
type runJSON struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Branch string `json:"branch"`
	Code   string `json:"code_commit"`
	Data   string `json:"data_commit"`
	Kept   string `json:"kept"`
	Nodes  []struct {
		Node, Result string
	} `json:"nodes"`
	Tables []struct {
		Table string
		Rows  int64
	} `json:"tables"`
	Log string `json:"log"`
}

// TestRunsListed: a good push and a failing one on main, then the runs
// as an operator sees them: "weir runs" filtered, "weir run REPO latest"
// with the failing node, its partial data and log, the same as JSON over
// HTTP, the same again after a restart (read from refs/runs/<id>/), and
// nothing for an identity without read access. Revisions: weir query
// takes main~1 and the short id the failed push printed.
func TestRunsListed(t *testing.T) {
	needSandboxes(t)
	data := t.TempDir()
	s := startWeir(t, data)
	dir := exampleRepo(t)
	git(t, dir, "push", "-q", s.URL("orders"), "main")
	firstData := lsRemote(t, s.URL("orders"))["refs/data/main"]

	// A second good push: main's data gets a second commit (main.extra).
	os.WriteFile(filepath.Join(dir, "models", "extra.sql"), []byte("SELECT 1 AS x\n"), 0o644)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "extra")
	git(t, dir, "push", "-q", s.URL("orders"), "main")
	good := revParse(t, dir, "HEAD")

	// A failing expectation: the run fails after its models wrote data.
	os.WriteFile(filepath.Join(dir, "expectations", "big_spenders.sql"), []byte("SELECT customer, total FROM main.revenue WHERE total > 1000\n"), 0o644)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "big spenders")
	out := gitFails(t, dir, "push", s.URL("orders"), "main")
	m := runRE.FindStringSubmatch(out)
	pm := regexp.MustCompile(`partial data of the run: ([0-9a-f]{7})`).FindStringSubmatch(out)
	if m == nil || pm == nil {
		t.Fatalf("failed push names no kept run or partial data:\n%s", out)
	}
	failed, partial := m[1], pm[1]

	runs := func(args ...string) []runRow {
		t.Helper()
		o, err := sshWeir(t, s, append([]string{"runs", "orders"}, args...)...)
		if err != nil {
			t.Fatalf("weir runs %v: %v\n%s", args, err, o)
		}
		var rows []runRow
		for _, l := range strings.Split(strings.TrimSpace(o), "\n")[1:] {
			f := strings.Fields(l)
			rows = append(rows, runRow{id: f[0], state: f[1], branch: f[2]})
		}
		return rows
	}
	allRuns := runs()
	if len(allRuns) != 3 || allRuns[0].id != failed {
		t.Fatalf("weir runs: %+v, want 3 runs, newest %s", allRuns, failed)
	}
	if rows := runs("--state", "failed"); len(rows) != 1 || rows[0].id != failed || rows[0].state != "failed" {
		t.Fatalf("--state failed: %+v", rows)
	}
	if rows := runs("--state", "succeeded", "--limit", "1"); len(rows) != 1 || rows[0].state != "succeeded" || rows[0].branch != "main@"+good[:7] {
		t.Fatalf("--state succeeded --limit 1: %+v", rows)
	}
	if rows := runs("--branch", "dev"); len(rows) != 0 {
		t.Fatalf("--branch dev: %+v", rows)
	}
	if o, err := sshWeir(t, s, "runs", "orders", "--state", "exploded"); err == nil || !strings.Contains(o, `--state "exploded": want one of queued, running, succeeded, failed`) {
		t.Fatalf("--state exploded: %v %s", err, o)
	}

	checkRun := func(t *testing.T, o string) {
		t.Helper()
		for _, want := range []string{
			"run:        " + failed, "state:      failed", "branch:     main", "code:       " + revParse(t, dir, "HEAD"),
			"data:       " + partial, "kept:       refs/runs/" + failed + "/",
			"expect big_spenders", "expect revenue_positive", "main.revenue", "8 rows",
			"log:", "globex | 1670.96", "weir: expect big_spenders failed: 5 failing rows",
		} {
			if !strings.Contains(o, want) {
				t.Errorf("weir run lacks %q:\n%s", want, o)
			}
		}
	}
	o, err := sshWeir(t, s, "run", "orders", "latest")
	if err != nil {
		t.Fatalf("weir run orders latest: %v\n%s", err, o)
	}
	checkRun(t, o)
	t.Logf("weir run orders latest:\n%s", o)
	if o, err := sshWeir(t, s, "run", "orders", "r-00000000"); err == nil || !strings.Contains(o, "weir run: no such run: orders has no run r-00000000") {
		t.Fatalf("unknown run: %v %s", err, o)
	}
	if o, err := sshWeir(t, s, "run", "orders", "../../heads/main"); err == nil || !strings.Contains(o, "is not a run id") {
		t.Fatalf("hostile run id: %v %s", err, o)
	}

	// A run that landed: its data is main's, its tables with their rows.
	okRun := runs("--state", "succeeded", "--limit", "1")[0].id
	o, err = sshWeir(t, s, "run", "orders", okRun)
	mainData := lsRemote(t, s.URL("orders"))["refs/data/main"]
	for _, want := range []string{"state:      succeeded", "data:       " + mainData, "main.extra", "1 rows", "code:       " + good} {
		if err != nil || !strings.Contains(o, want) {
			t.Errorf("weir run %s lacks %q: %v\n%s", okRun, want, err, o)
		}
	}

	getRun := func(url string) runJSON {
		t.Helper()
		r := httpGet(t, url, "", "")
		var v runJSON
		if r.status != 200 || json.Unmarshal([]byte(r.body), &v) != nil {
			t.Fatalf("GET %s: %d %s", url, r.status, r.body)
		}
		return v
	}
	v := getRun(s.HTTP + "/api/repos/orders/runs/latest")
	if v.ID != failed || v.State != "failed" || v.Branch != "main" || !strings.HasPrefix(v.Data, partial) || v.Kept != "refs/runs/"+failed+"/" ||
		!strings.Contains(v.Log, "5 failing rows") || len(v.Tables) == 0 {
		t.Fatalf("GET runs/latest: %+v", v)
	}
	var sawFail bool
	for _, n := range v.Nodes {
		sawFail = sawFail || n.Node == "expect big_spenders" && n.Result != "ok"
	}
	if !sawFail {
		t.Fatalf("GET runs/latest: nodes %+v lack the failing expectation", v.Nodes)
	}
	r := httpGet(t, s.HTTP+"/api/repos/orders/runs?state=failed", "", "")
	if r.status != 200 || strings.Count(r.body, `"id"`) != 1 || !strings.Contains(r.body, `"id": "`+failed+`"`) {
		t.Fatalf("GET runs?state=failed: %d %s", r.status, r.body)
	}

	// Revisions: main~1 is the first good push's data; the short id the
	// failed push printed is its partial data.
	if got := query(t, s, "orders", "main~1", "SELECT count(*) AS n FROM main.revenue"); got != "n\n8\n" {
		t.Fatalf("query main~1: %q", got)
	}
	if o, err := sshWeir(t, s, "query", "orders", "main~1", "'SELECT * FROM main.extra'"); err == nil {
		t.Fatalf("main~1 has main.extra: %s", o)
	}
	// main@{1}: the data ref one update ago (its reflog), the first push's.
	if got := query(t, s, "orders", "main@{1}", "SELECT count(*) AS n FROM main.revenue"); got != "n\n8\n" {
		t.Fatalf("query main@{1}: %q", got)
	}
	if o, err := sshWeir(t, s, "query", "orders", "main@{1}", "'SELECT * FROM main.extra'"); err == nil {
		t.Fatalf("main@{1} has main.extra: %s", o)
	}
	if o, err := sshWeir(t, s, "query", "orders", "main@{9}", "'SELECT 1'"); err == nil || !strings.Contains(o, "has only 2 entries") {
		t.Fatalf("query main@{9}: %v %s", err, o)
	}
	if got := query(t, s, "orders", firstData[:9], "SELECT count(*) AS n FROM main.revenue"); got != "n\n8\n" {
		t.Fatalf("query %s: %q", firstData[:9], got)
	}
	if got := query(t, s, "orders", partial, "SELECT count(*) AS n FROM main.revenue"); got != "n\n8\n" {
		t.Fatalf("query %s (partial data): %q", partial, got)
	}
	if o, err := sshWeir(t, s, "query", "orders", "main~9", "'SELECT 1'"); err == nil || !strings.Contains(o, "has no parent") {
		t.Fatalf("query main~9: %v %s", err, o)
	}

	// After a restart the scheduler has forgotten; refs/runs/<id> has not.
	// Then with no anonymous access, bob (no grant on orders) gets nothing.
	s.Stop()
	if local, err := exec.Command(weirBin, "query", "--data", data, "--repo", "orders", "--ref", "main~1", "SELECT count(*) AS n FROM main.revenue").CombinedOutput(); err != nil || string(local) != "n\n8\n" {
		t.Fatalf("weir query --ref main~1 (offline): %v %q", err, local)
	}
	keys := t.TempDir()
	bob := newKey(t, keys, "bob")
	weirCLI(t, "user", "add", "bob", "--key", bob+".pub", "--data", data)
	weirCLI(t, "user", "grant", "bob", "other", "read", "--data", data)
	bobTok := strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	authKeys := filepath.Join(keys, "authorized_keys")
	pub, _ := os.ReadFile(sshKey + ".pub")
	os.WriteFile(authKeys, pub, 0o600)
	s.args = []string{"--assume-remote", "--authorized-keys", authKeys}
	s.Restart()
	o, err = sshWeir(t, s, "run", "orders", failed)
	if err != nil {
		t.Fatalf("weir run after restart: %v\n%s", err, o)
	}
	checkRun(t, o)
	if strings.Contains(o, "queue wait") {
		t.Errorf("after a restart weir run claims a queue wait:\n%s", o)
	}
	// weir runs lists the kept runs: the same runs, newest first.
	if rows := runs(); fmt.Sprint(rows) != fmt.Sprint(allRuns) {
		t.Fatalf("weir runs after a restart:\n%+v\nwant\n%+v", rows, allRuns)
	}
	if rows := runs("--limit", "1"); len(rows) != 1 || rows[0].id != failed {
		t.Fatalf("--limit 1 after a restart: %+v", rows)
	}
	if rows := runs("--state", "succeeded"); len(rows) != 2 || rows[0].id != allRuns[1].id || rows[1].id != allRuns[2].id {
		t.Fatalf("--state succeeded after a restart: %+v", rows)
	}
	if o, err := sshWeir(t, s, "runs", "orders"); err != nil || !regexp.MustCompile(`(?m)^`+failed+` +failed +main@[0-9a-f]{7} +\S+ +- +- `).MatchString(o) {
		t.Fatalf("weir runs after a restart shows a wait or a duration it cannot know: %v\n%s", err, o)
	}
	if o, err := sshWeir(t, s, "run", "orders", "latest"); err != nil || !strings.Contains(o, "run:        "+failed) {
		t.Fatalf("weir run latest after a restart: %v\n%s", err, o)
	}
	if r := httpGet(t, s.HTTP+"/api/repos/orders/runs/latest", "", ""); r.status != 401 {
		t.Fatalf("anonymous GET with --assume-remote: %d %s", r.status, r.body)
	}
	for _, u := range []string{"/api/repos/orders/runs/latest", "/api/repos/orders/runs/" + failed, "/api/repos/orders/runs"} {
		if r := httpGet(t, s.HTTP+u, "bob", bobTok); r.status != 404 || strings.Contains(r.body, failed) {
			t.Fatalf("bob GET %s: %d %s", u, r.status, r.body)
		}
	}
	for _, args := range [][]string{{"run", "orders", "latest"}, {"runs", "orders"}} {
		if o, err := sshWeirAs(t, s, bob, args...); err == nil || strings.Contains(o, failed) || !strings.Contains(o, `repo "orders" not found or not readable`) {
			t.Fatalf("bob weir %v: %v %s", args, err, o)
		}
	}
}
