package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Garbage collection (issue 14): after branches, a tag, a revert, a merge
// through refs/merge/main, failed runs and REST writes, weir gc (server
// stopped) and the periodic collection (server running) free the failed
// runs' refs, objects and partial files and an unreferenced pushed commit,
// print what they freed, and every ref still clones with fsck clean and
// every table still reads.

// warehouseFiles lists the files of repo's part of the warehouse with
// their sizes.
func warehouseFiles(t *testing.T, data, repo string) map[string]int64 {
	t.Helper()
	root := filepath.Join(data, "warehouse", strings.ReplaceAll(repo, "/", "@"))
	out := map[string]int64{}
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out[rel] = info.Size()
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// filesOf lists the files (by name) whose path contains part.
func filesOf(files map[string]int64, part string) []string {
	var out []string
	for n := range files {
		if strings.Contains(n, part) {
			out = append(out, n)
		}
	}
	return out
}

// failingPush pushes a commit adding a model (main.<table>) and an
// expectation that fails: every model runs, the run is refused and kept
// with its partial data. It returns the run id.
func failingPush(t *testing.T, dir, url, table string) string {
	t.Helper()
	writeFiles(t, dir, map[string]string{
		"models/" + table + ".sql":    "SELECT 42 AS answer\n",
		"expectations/never_true.sql": "SELECT 1 AS failing_row\n",
	}, "a pipeline that fails its expectation")
	out, err := gitRun(dir, gitEnv(), "push", url, "HEAD:main")
	m := runRE.FindStringSubmatch(out)
	if err == nil || m == nil || !strings.Contains(out, "partial data of the run") {
		t.Fatalf("failing push: %v\n%s", err, out)
	}
	git(t, dir, "reset", "-q", "--hard", "HEAD~1")
	return m[1]
}

// strayCommit pushes a commit of random content to a branch and deletes
// the branch: an object only an expired reflog names.
func strayCommit(t *testing.T, dir, url string) string {
	t.Helper()
	// An orphan branch without a pipeline: its push runs nothing.
	git(t, dir, "checkout", "-q", "--orphan", "stray")
	git(t, dir, "rm", "-q", "-rf", ".")
	writeFiles(t, dir, map[string]string{"stray-" + token(t) + ".txt": token(t)}, "stray")
	stray := revParse(t, dir, "HEAD")
	git(t, dir, "push", "-q", url, "stray")
	git(t, dir, "push", "-q", url, ":stray")
	git(t, dir, "checkout", "-q", "-f", "main")
	git(t, dir, "branch", "-q", "-D", "stray")
	return stray
}

// cloneAll mirrors every ref of url and runs git fsck on it.
func cloneAll(t *testing.T, url string) map[string]string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mirror")
	git(t, "", "clone", "-q", "--mirror", url, dir)
	if out, err := gitRun(dir, gitEnv(), "fsck", "--full", "--strict", "--no-dangling"); err != nil {
		t.Fatalf("git fsck of a clone of every ref: %v\n%s", err, out)
	}
	refs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(git(t, dir, "for-each-ref", "--format=%(objectname) %(refname)")), "\n") {
		if h, n, ok := strings.Cut(l, " "); ok {
			refs[n] = h
		}
	}
	return refs
}

var freedLine = regexp.MustCompile(`gc: (?:would free|freed) (\d+) objects \(([^)]*)\), (\d+) warehouse files \(([^)]*)\); expired (\d+) runs \((\d+) refs\), (\d+) reflog entries`)

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGCOfflineAndPeriodic(t *testing.T) {
	needSandboxes(t)
	data := t.TempDir()
	s := startWeir(t, data, "--gc-every", "0")
	url := s.URL("orders")
	dir := exampleRepo(t)
	git(t, dir, "push", "-q", url, "main")
	// A branch with a model of its own, and a tag.
	git(t, dir, "checkout", "-q", "-b", "feature")
	writeFiles(t, dir, map[string]string{"models/big_customers.sql": "SELECT customer FROM revenue WHERE total > 100\n"}, "big customers")
	git(t, dir, "push", "-q", url, "feature")
	git(t, dir, "checkout", "-q", "main")
	git(t, dir, "tag", "v1")
	git(t, dir, "push", "-q", url, "v1")
	// A change on main and its revert.
	writeFiles(t, dir, map[string]string{"models/customers.sql": "SELECT DISTINCT customer FROM clean_orders\n"}, "customers")
	git(t, dir, "push", "-q", url, "main")
	git(t, dir, "revert", "--no-edit", "HEAD")
	git(t, dir, "push", "-q", url, "main")
	// The feature lands through the merge queue.
	git(t, dir, "checkout", "-q", "feature")
	if out := git(t, dir, "push", url, "HEAD:refs/merge/main"); !strings.Contains(out, "main advanced") {
		t.Fatalf("merge request:\n%s", out)
	}
	git(t, dir, "checkout", "-q", "main")
	git(t, dir, "pull", "-q", "--no-rebase", url, "main")
	// REST writes on main.
	cat := restCatalog(t, s, "orders")
	restAppend(t, cat, "events", true, 0, 5)
	restAppend(t, cat, "events", false, 5, 5)
	// Two failed runs with partial data, and a stray commit.
	run1 := failingPush(t, dir, url, "partial_one")
	stray := strayCommit(t, dir, url)
	// The second repo is left for the periodic collection.
	url2 := s.URL("orders2")
	dir2 := exampleRepo(t)
	git(t, dir2, "push", "-q", url2, "main")
	run2 := failingPush(t, dir2, url2, "partial_two")
	strayCommit(t, dir2, url2)
	before := lsRemote(t, url)
	if before["refs/runs/"+run1+"/data"] == "" || before["refs/tags/v1"] == "" || before["refs/data/feature"] == "" {
		t.Fatalf("refs before gc: %v", before)
	}
	s.Stop()

	// Offline: a dry run, then the collection; grace 0 (the server is
	// stopped: nothing is in flight), failed runs and reflogs expire now.
	filesBefore := warehouseFiles(t, data, "orders")
	partial := filesOf(filesBefore, "main/partial_one/")
	if len(partial) < 3 {
		t.Fatalf("the failed run's partial files: %v", partial)
	}
	args := []string{"gc", "--data", data, "--repo", "orders", "--gc-grace", "0", "--keep-failed-runs", "0", "--reflog-expiry", "0"}
	dry, err := exec.Command(weirBin, append(args, "--dry-run")...).CombinedOutput()
	if err != nil {
		t.Fatalf("weir gc --dry-run: %v\n%s", err, dry)
	}
	if got := warehouseFiles(t, data, "orders"); len(got) != len(filesBefore) {
		t.Fatalf("dry run deleted files: %d -> %d", len(filesBefore), len(got))
	}
	out, err := exec.Command(weirBin, append(args, "-v")...).CombinedOutput()
	if err != nil {
		t.Fatalf("weir gc: %v\n%s", err, out)
	}
	t.Logf("weir gc --dry-run:\n%s\nweir gc:\n%s", dry, tail(string(out), 400))
	dm, m := freedLine.FindStringSubmatch(string(dry)), freedLine.FindStringSubmatch(string(out))
	if dm == nil || m == nil {
		t.Fatalf("no summary line:\n%s\n%s", dry, out)
	}
	if dm[1] != m[1] || dm[3] != m[3] || dm[4] != m[4] || dm[5] != m[5] {
		t.Errorf("the dry run said %q, the collection did %q", dm[0], m[0])
	}
	filesAfter := warehouseFiles(t, data, "orders")
	var gone int
	var goneBytes int64
	for n, size := range filesBefore {
		if _, ok := filesAfter[n]; !ok {
			gone++
			goneBytes += size
		}
	}
	if atoi(t, m[3]) != gone || gone == 0 {
		t.Errorf("gc printed %s files freed; %d files disappeared", m[3], gone)
	}
	if want := "(" + strconv.FormatInt(goneBytes, 10) + " bytes)"; goneBytes < 1024 && !strings.Contains(m[0], want) {
		t.Errorf("gc printed %q; %d bytes disappeared", m[0], goneBytes)
	}
	for _, p := range partial {
		if _, ok := filesAfter[p]; ok {
			t.Errorf("the failed run's file %s was kept", p)
		}
	}
	if atoi(t, m[5]) != 1 || atoi(t, m[6]) != 3 {
		t.Errorf("runs expired: %q (want run %s, 3 refs)", m[0], run1)
	}
	if !strings.Contains(string(out), "orders: deleted object "+stray) || !strings.Contains(string(out), "orders: deleted run "+run1) {
		t.Errorf("gc -v does not list the stray commit %s or the run %s:\n%s", stray, run1, out)
	}
	listed := strings.Count(string(out), "orders: deleted object ")
	if atoi(t, m[1]) != listed || listed == 0 {
		t.Errorf("gc printed %s objects freed, listed %d", m[1], listed)
	}
	// Every ref clones, fsck clean; every table reads.
	s.Restart()
	url = s.URL("orders")
	refs := cloneAll(t, url)
	for name, h := range before {
		if name == "HEAD" {
			continue // symbolic: for-each-ref does not list it
		}
		if strings.HasPrefix(name, "refs/runs/"+run1+"/") {
			if _, ok := refs[name]; ok {
				t.Errorf("%s survived its retention", name)
			}
			continue
		}
		if refs[name] != h {
			t.Errorf("%s: %s before gc, %q after", name, h, refs[name])
		}
	}
	for ref, sql := range map[string]string{
		"main":    "SELECT count(*) AS n FROM main.revenue",
		"feature": "SELECT count(*) AS n FROM main.big_customers",
	} {
		if got := query(t, s, "orders", ref, sql); !regexp.MustCompile(`^n\n[1-9]\d*\n$`).MatchString(got) {
			t.Errorf("query %s at %s: %q", sql, ref, got)
		}
	}
	if got := query(t, s, "orders", "main", "SELECT count(*) AS n, sum(id) AS s FROM ext.events"); got != "n\ts\n10\t45\n" {
		t.Errorf("REST-written table after gc: %q", got)
	}
	if got := query(t, s, "orders", "main", "SELECT count(*) AS n FROM main.big_customers"); !strings.HasPrefix(got, "n\n") {
		t.Errorf("the merged table after gc: %q", got)
	}
	s.Stop()

	// Periodic: the server collects orders2 by itself.
	before2 := warehouseFiles(t, data, "orders2")
	partial2 := filesOf(before2, "main/partial_two/")
	if len(partial2) < 3 {
		t.Fatalf("orders2's partial files: %v", partial2)
	}
	s = startWeir(t, data, "--gc-every", "1s", "--gc-grace", "0", "--keep-failed-runs", "0", "--reflog-expiry", "0")
	url, url2 = s.URL("orders"), s.URL("orders2")
	// weir gc while the server holds the database says so, and what to do.
	if out, err := exec.Command(weirBin, "gc", "--data", data).CombinedOutput(); err == nil || !strings.Contains(string(out), "the server is running, and it collects by itself every --gc-every") {
		t.Errorf("weir gc beside a running server: %v\n%s", err, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.Log.String(), "msg=\"gc done\"") {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic collection within 60s:\n%s", s.Log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if m := regexp.MustCompile(`msg="gc done" dry_run=false objects=(\d+) object_bytes=\d+ files=(\d+)`).FindStringSubmatch(s.Log.String()); m == nil || m[1] == "0" || m[2] != strconv.Itoa(len(before2)-len(warehouseFiles(t, data, "orders2"))) {
		t.Errorf("periodic collection: %v; %d files disappeared\n%s", m, len(before2)-len(warehouseFiles(t, data, "orders2")), s.Log.String())
	}
	// What the collections freed is in /metrics too: at least what the
	// first one logged, at most the sum of every "gc done" line logged
	// once the scrape is taken (a collection logs, then records).
	var fams map[string]*dto.MetricFamily
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		fams = scrape(t, s, "")
		if n, _ := metricValue(fams, "weir_gc_runs_total", map[string]string{"result": "ok"}); n >= 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("weir_gc_runs_total{result=\"ok\"} stayed 0 after a logged collection")
		}
	}
	var freed []int
	for _, m := range regexp.MustCompile(`msg="gc done" dry_run=false objects=(\d+)`).FindAllStringSubmatch(s.Log.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		freed = append(freed, n)
	}
	sum := 0
	for _, n := range freed {
		sum += n
	}
	if n, _ := metricValue(fams, "weir_gc_freed_objects_total", nil); int(n) < freed[0] || int(n) > sum {
		t.Errorf("weir_gc_freed_objects_total = %v; the log says %v", n, freed)
	}
	after2 := warehouseFiles(t, data, "orders2")
	for _, p := range partial2 {
		if _, ok := after2[p]; ok {
			t.Errorf("orders2: the failed run's file %s was kept", p)
		}
	}
	refs2 := cloneAll(t, url2)
	for n := range refs2 {
		if strings.HasPrefix(n, "refs/runs/"+run2+"/") {
			t.Errorf("orders2: %s survived", n)
		}
	}
	if refs2["refs/heads/main"] == "" || refs2["refs/data/main"] == "" {
		t.Errorf("orders2 refs: %v", refs2)
	}
	if got := query(t, s, "orders2", "main", "SELECT count(*) AS n, sum(orders) AS o FROM main.revenue"); got != "n\to\n8\t34\n" {
		t.Errorf("orders2 after the periodic collection: %q", got)
	}
	// And orders, collected twice now, still reads.
	cloneAll(t, url)
	if got := query(t, s, "orders", "main", "SELECT count(*) AS n FROM ext.events"); got != "n\n10\n" {
		t.Errorf("orders after the periodic collection: %q", got)
	}
}
