package hooks_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/catalog"
	wexec "github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

const repo = objects.RepoName("demo")

// world is one server's stores, catalog and hook.
type world struct {
	objs *objects.Store
	refs *refs.DB
	cat  *catalog.Catalog
	hook *hooks.Pipeline
	git  string // a C git work tree standing in for the client
}

var (
	sbOnce sync.Once
	sb     *wexec.Sandboxes
	sbErr  error
)

func sandboxes(t *testing.T) *wexec.Sandboxes {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	sbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-hooks-exec-")
		if err != nil {
			sbErr = err
			return
		}
		sb, sbErr = wexec.New(wexec.Config{StateDir: dir})
	})
	if sbErr != nil {
		t.Skipf("sandboxes unavailable on this host: %v", sbErr)
	}
	return sb
}

func newWorld(t *testing.T) *world { return newWorldWith(t, hooks.PipelineConfig{}) }

// newWorldWith is newWorld with cfg's Parallel, KeepAlive, Scheduler and
// MaxPriority (and MergeTrain).
func newWorldWith(t *testing.T, cfg hooks.PipelineConfig) *world {
	t.Helper()
	db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{objs: objects.New(db, objects.Limits{})}
	w.refs = refs.NewDB(w.objs)
	wh, err := catalog.NewLocalWarehouse(filepath.Join(t.TempDir(), "warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	w.cat = catalog.New(w.objs, w.refs, wh)
	w.hook, err = hooks.NewPipeline(hooks.PipelineConfig{
		Refs: w.refs, Catalog: w.cat, Runner: sandboxes(t), WorkDir: t.TempDir(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Parallel: cfg.Parallel, KeepAlive: cfg.KeepAlive,
		Scheduler: cfg.Scheduler, MaxPriority: cfg.MaxPriority, MergeTrain: cfg.MergeTrain,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.hook.Close() })
	w.git = t.TempDir()
	w.run(t, "git", "init", "-q", "-b", "main", ".")
	return w
}

func (w *world) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = w.git
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (content "" deletes) and commits them.
func (w *world) commit(t *testing.T, files map[string]string) objects.Hash {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(w.git, p)
		if c == "" {
			os.Remove(full)
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.run(t, "git", "add", "-A")
	w.run(t, "git", "commit", "-q", "--allow-empty", "-m", "change")
	return objects.Hash(parseHash(t, w.run(t, "git", "rev-parse", "HEAD")))
}

func parseHash(t *testing.T, s string) objects.Hash {
	var h objects.Hash
	if len(s) != 40 {
		t.Fatalf("bad hash %q", s)
	}
	for i := 0; i < 20; i++ {
		var b byte
		for _, c := range s[2*i : 2*i+2] {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= byte(c - '0')
			default:
				b |= byte(c-'a') + 10
			}
		}
		h[i] = b
	}
	return h
}

// push sends HEAD's history as branch, runs the hook like gitserver does
// and commits what it decided. It returns the result and the progress.
func (w *world) push(t *testing.T, branch string, opts ...string) (*hooks.Result, string) {
	t.Helper()
	newH := parseHash(t, w.run(t, "git", "rev-parse", "HEAD"))
	old := w.ref(t, refs.HeadsPrefix+branch)
	res, prog, err := w.pushCommit(t, branch, old, newH, opts...)
	if err != nil {
		t.Fatalf("commit push: %v\n%s", err, prog)
	}
	return res, prog
}

// pushCommit is push of commit newH from old, returning the error of the
// final compare-and-swap instead of failing.
func (w *world) pushCommit(t *testing.T, branch string, old, newH objects.Hash, opts ...string) (*hooks.Result, string, error) {
	t.Helper()
	ctx := context.Background()
	name := refs.Name(refs.HeadsPrefix + branch)
	cmd := exec.Command("git", "pack-objects", "--revs", "--stdout", "-q")
	cmd.Dir = w.git
	cmd.Stdin = strings.NewReader(newH.String() + "\n")
	pack, err := cmd.Output()
	if err != nil {
		t.Error(err)
		return nil, "", err
	}
	q := w.objs.NewQuarantine(repo)
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		t.Error(err)
		return nil, "", err
	}
	prog := &lockedBuffer{}
	res, err := w.hook.PreReceive(ctx, &hooks.Push{
		Repo: repo, Quarantine: q, Options: opts, Pusher: "test", Progress: prog,
		Commands: []hooks.Command{{Name: name, Old: old, New: newH}},
	})
	if err != nil {
		t.Error(err)
		return nil, "", err
	}
	// Commit as gitserver does: the hook's updates for the outcome, the
	// data ref only with its code ref; a refusal by Finish or a lost
	// compare-and-swap is asked again as a refusal; then the hook reports.
	refused := maps.Clone(res.Refused)
	err = w.commitHook(t, res, refused, name, old, newH, q, nil)
	if res.Report != nil {
		res.Report(refused)
	}
	return res, prog.String(), err
}

// errFinishRefused is what commitHook returns when Finish refused the
// command.
var errFinishRefused = errors.New("refused by Finish")

// commitHook commits a push of name from old to newH with the hook's
// result as gitserver's commitPush does: before each attempt it asks
// Finish for the outcome (a refusal from Finish refuses the command and
// asks again); a stale update of Finish's own is asked again, at most 8
// times; a stale command is refused. before, if set, runs just before
// each compare-and-swap with its attempt number. It updates refused and
// returns the first compare-and-swap error or refusal by Finish, nil when
// the command landed.
func (w *world) commitHook(t *testing.T, res *hooks.Result, refused map[refs.Name]string, name refs.Name, old, newH objects.Hash, q *objects.Quarantine, before func(attempt int)) error {
	t.Helper()
	ctx := context.Background()
	var first error
	retries := 0
	for attempt := 0; attempt < 16; attempt++ {
		var updates, finished []refs.Update
		extra := slices.Clone(res.Updates)
		if res.Finish != nil {
			var refuse map[refs.Name]string
			finished, refuse = res.Finish(ctx, refused)
			if why, ok := refuse[name]; ok && refused[name] == "" {
				refused[name] = why
				if first == nil {
					first = fmt.Errorf("%w: %s", errFinishRefused, why)
				}
				continue
			}
			extra = append(extra, finished...)
		}
		_, no := refused[name]
		if !no {
			updates = append(updates, refs.Update{Name: name, Old: old, New: newH})
		}
		for _, u := range extra {
			if !no || !strings.HasPrefix(string(u.Name), refs.DataPrefix) {
				updates = append(updates, u)
			}
		}
		if len(updates) == 0 {
			return first
		}
		if before != nil {
			before(attempt)
		}
		err := w.refs.Update(ctx, repo, updates, q, "push")
		if err == nil {
			return first
		}
		if first == nil {
			first = err
		}
		var se *refs.StaleError
		if !errors.As(err, &se) || no {
			t.Errorf("commit the push: %v", err)
			return first
		}
		if se.Name != name && retries < 8 && slices.ContainsFunc(finished, func(u refs.Update) bool { return u.Name == se.Name }) {
			retries++
			continue
		}
		refused[name] = "stale info"
	}
	t.Errorf("commit the push: too many attempts")
	return first
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (w *world) ref(t *testing.T, name string) objects.Hash {
	h, err := w.refs.Resolve(context.Background(), repo, refs.Name(name))
	if err != nil {
		return objects.ZeroHash
	}
	return h
}

// query runs q over the tables of data commit d.
func (w *world) query(t *testing.T, d objects.Hash, q string) string {
	t.Helper()
	ctx := context.Background()
	tabs, err := w.cat.Tables(ctx, repo, d)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, _ := db.Conn(ctx)
	defer conn.Close()
	for tn := range tabs {
		files, err := w.cat.ReadTableFiles(ctx, repo, d, tn)
		if err != nil {
			t.Fatal(err)
		}
		conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+tn.Namespace+`"`)
		list := "'" + strings.Join(files, "','") + "'"
		if _, err := conn.ExecContext(ctx, `CREATE VIEW "`+tn.Namespace+`"."`+tn.Name+`" AS SELECT * FROM read_parquet([`+list+`])`); err != nil {
			t.Fatal(err)
		}
	}
	var s sql.NullString
	if err := conn.QueryRowContext(ctx, q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

var example = map[string]string{
	"weir.toml":            "namespace = \"clean\"\n",
	"seeds/raw/orders.csv": "id,customer,amount\n1,ann,10\n2,bob,-3\n3,ann,5\n4,cy,7\n",
	"models/orders.sql":    "SELECT id, customer, amount FROM raw.orders WHERE amount > 0",
	"models/revenue.py": `# weir: inputs = clean.orders
# weir: outputs = clean.revenue
import csv, os
tot = {}
with open(os.environ["WEIR_IN_CLEAN_ORDERS"]) as f:
    for r in csv.DictReader(f):
        tot[r["customer"]] = tot.get(r["customer"], 0) + int(r["amount"])
with open(os.environ["WEIR_OUT_CLEAN_REVENUE"], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer", "total"])
    for c in sorted(tot):
        w.writerow([c, tot[c]])
`,
	"expectations/revenue_positive.sql": "SELECT * FROM clean.revenue WHERE total <= 0",
}

func TestPipelineSuccessThenFailure(t *testing.T) {
	w := newWorld(t)
	w.commit(t, example)
	res, prog := w.push(t, "main")
	if len(res.Refused) > 0 {
		t.Fatalf("refused: %v\n%s", res.Refused, prog)
	}
	for _, want := range []string{"(3 models, 1 expectation)", "raw.orders", "seed", "4 rows", "clean.revenue", "python", "expect revenue_positive ok", "weir: main advanced: code "} {
		if !strings.Contains(prog, want) {
			t.Errorf("progress lacks %q:\n%s", want, prog)
		}
	}
	data := w.ref(t, "refs/data/main")
	if data.IsZero() {
		t.Fatalf("no refs/data/main\n%s", prog)
	}
	if got := w.query(t, data, "SELECT string_agg(customer || '=' || total, ',' ORDER BY customer) FROM clean.revenue"); got != "ann=15,cy=7" {
		t.Fatalf("revenue %q", got)
	}
	code := w.ref(t, "refs/heads/main")

	// A failing expectation: refused, branch untouched, run kept.
	w.commit(t, map[string]string{"expectations/few.sql": "SELECT * FROM clean.revenue WHERE total < 10"})
	res, prog = w.push(t, "main")
	why := res.Refused["refs/heads/main"]
	if !strings.HasPrefix(why, "weir: expect few failed: 1 failing rows; run r-") || !strings.HasSuffix(why, " kept") {
		t.Fatalf("refusal %q\n%s", why, prog)
	}
	if w.ref(t, "refs/data/main") != data || w.ref(t, "refs/heads/main") != code {
		t.Fatal("branch moved after a failed run")
	}
	if !strings.Contains(prog, "cy | 7") {
		t.Fatalf("failing rows not shown:\n%s", prog)
	}
	id := strings.Fields(why)[len(strings.Fields(why))-2]
	for _, part := range []string{"code", "data", "log"} {
		if w.ref(t, "refs/runs/"+id+"/"+part).IsZero() {
			t.Fatalf("refs/runs/%s/%s missing", id, part)
		}
	}

	// A failing model names the node and the error.
	w.commit(t, map[string]string{"expectations/few.sql": "", "models/orders.sql": "SELECT id, customer, amount, no_such_column FROM raw.orders"})
	res, prog = w.push(t, "main")
	why = res.Refused["refs/heads/main"]
	if !strings.HasPrefix(why, "weir: clean.orders failed: ") || !strings.Contains(why, "no_such_column") {
		t.Fatalf("refusal %q\n%s", why, prog)
	}

	// A plan problem runs nothing.
	w.commit(t, map[string]string{"models/orders.sql": "SELECT * FROM raw.ordrs"})
	res, prog = w.push(t, "main")
	why = res.Refused["refs/heads/main"]
	if !strings.Contains(why, "models/orders.sql:1: reads raw.ordrs, which is neither on branch main nor made by the pipeline") {
		t.Fatalf("refusal %q\n%s", why, prog)
	}
	if w.ref(t, "refs/data/main") != data || w.ref(t, "refs/heads/main") != code {
		t.Fatal("branch moved after a refused plan")
	}
}

func TestPipelineParamsAndDryRun(t *testing.T) {
	w := newWorld(t)
	w.commit(t, map[string]string{
		"models/p.sql": "SELECT getvariable('tag') AS tag",
		"models/q.py":  "# weir: outputs = main.q\nimport os\nopen(os.environ['WEIR_OUT_MAIN_Q'],'w').write('tag\\n\"' + os.environ['WEIR_PARAM_tag'].replace('\"','\"\"') + '\"\\n')\n",
	})
	res, prog := w.push(t, "main", "dry-run")
	if res.Refused["refs/heads/main"] != "weir: dry run, nothing changed" || !w.ref(t, "refs/data/main").IsZero() {
		t.Fatalf("dry run: %v\n%s", res.Refused, prog)
	}
	if !strings.Contains(prog, "main.p") || !strings.Contains(prog, "models/q.py") {
		t.Fatalf("dry run plan:\n%s", prog)
	}
	tag := "a'b\"c,d;e\nf $(g)"
	res, prog = w.push(t, "main", "param.tag="+tag)
	if len(res.Refused) > 0 {
		t.Fatalf("refused: %v\n%s", res.Refused, prog)
	}
	d := w.ref(t, "refs/data/main")
	if got := w.query(t, d, "SELECT tag FROM main.p"); got != tag {
		t.Fatalf("sql param %q", got)
	}
	if got := w.query(t, d, "SELECT tag FROM main.q"); got != tag {
		t.Fatalf("python param %q", got)
	}
}

func TestPipelineConcurrentPushes(t *testing.T) {
	w := newWorld(t)
	base := w.commit(t, map[string]string{"models/a.sql": "SELECT 1 AS x"})
	if res, prog := w.push(t, "main"); len(res.Refused) > 0 {
		t.Fatalf("%v\n%s", res.Refused, prog)
	}
	// Two different commits on top of main, and a feature branch.
	c1 := w.commit(t, map[string]string{"models/a.sql": "SELECT 2 AS x"})
	w.run(t, "git", "reset", "-q", "--hard", base.String())
	c2 := w.commit(t, map[string]string{"models/a.sql": "SELECT 3 AS x"})
	w.run(t, "git", "reset", "-q", "--hard", base.String())
	c3 := w.commit(t, map[string]string{"models/a.sql": "SELECT 4 AS x"})

	type outcome struct {
		branch string
		res    *hooks.Result
		err    error
	}
	var wg sync.WaitGroup
	outs := make([]outcome, 3)
	for i, p := range []struct {
		branch string
		old    objects.Hash
		commit objects.Hash
	}{{"main", base, c1}, {"main", base, c2}, {"feature", objects.ZeroHash, c3}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _, err := w.pushCommit(t, p.branch, p.old, p.commit)
			outs[i] = outcome{p.branch, res, err}
		}()
	}
	wg.Wait()
	won := 0
	for _, o := range outs[:2] {
		if len(o.res.Refused) > 0 {
			t.Fatalf("refused: %v", o.res.Refused)
		}
		if o.err == nil {
			won++
		} else if !errors.Is(o.err, refs.ErrStale) {
			t.Fatalf("loser's error %v is not refs.ErrStale", o.err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of two racing pushes to main won, want exactly 1", won)
	}
	if outs[2].err != nil || len(outs[2].res.Refused) > 0 {
		t.Fatalf("feature push: %v %v", outs[2].err, outs[2].res.Refused)
	}
	// main's code and data are a pair from the same run.
	code := w.ref(t, "refs/heads/main")
	got := w.query(t, w.ref(t, "refs/data/main"), "SELECT x::VARCHAR FROM main.a")
	if (code == c1) != (got == "2") || (code == c2) != (got == "3") {
		t.Fatalf("main code %s with data x=%s", code, got)
	}
	if got := w.query(t, w.ref(t, "refs/data/feature"), "SELECT x::VARCHAR FROM main.a"); got != "4" {
		t.Fatalf("feature x=%s", got)
	}
}

func TestPipelineKeepAlive(t *testing.T) {
	w := newWorldWith(t, hooks.PipelineConfig{KeepAlive: time.Second})
	w.commit(t, map[string]string{"models/slow.py": "# weir: outputs = main.slow\nimport os, time\ntime.sleep(2.5)\nopen(os.environ['WEIR_OUT_MAIN_SLOW'], 'w').write('a\\n1\\n')\n"})
	res, prog := w.push(t, "main")
	if len(res.Refused) > 0 {
		t.Fatalf("%v\n%s", res.Refused, prog)
	}
	if !strings.Contains(prog, "weir: main.slow still running (1 s)\n") || !strings.Contains(prog, "weir: main.slow still running (2 s)\n") {
		t.Fatalf("no keep-alive lines:\n%s", prog)
	}
}

// TestPipelineTiming: -o timing ends the progress with where the run's
// time went; without it the line is only in the run log.
func TestPipelineTiming(t *testing.T) {
	w := newWorld(t)
	w.commit(t, example)
	line := regexp.MustCompile(`(?m)^weir: timing: plan \d+ ms, nodes \d+ ms \(run \d+ ms, sandbox \d+ ms\), commit \d+ ms$`)
	res, prog := w.push(t, "main", hooks.OptionTiming)
	if len(res.Refused) > 0 || !line.MatchString(prog) {
		t.Fatalf("refused %v, or no timing line:\n%s", res.Refused, prog)
	}

	w.commit(t, map[string]string{"models/orders.sql": example["models/orders.sql"] + "\n-- again\n"})
	res, prog = w.push(t, "main")
	if len(res.Refused) > 0 || line.MatchString(prog) {
		t.Fatalf("refused %v, or a timing line nobody asked for:\n%s", res.Refused, prog)
	}
	id := regexp.MustCompile(`weir: run (r-[0-9a-f]+) on main`).FindStringSubmatch(prog)
	if id == nil {
		t.Fatalf("no run id in:\n%s", prog)
	}
	logRef := w.ref(t, "refs/runs/"+id[1]+"/log")
	if log := w.blobAt(t, logRef, "log"); !line.MatchString(log) {
		t.Fatalf("run log lacks the timing line:\n%s", log)
	}
}

// blobAt returns the content of the file name in the tree of commit c.
func (w *world) blobAt(t *testing.T, c objects.Hash, name string) string {
	t.Helper()
	get := func(h objects.Hash) []byte {
		o, err := w.objs.Get(context.Background(), repo, h)
		if err != nil {
			t.Fatalf("object %s: %v", h, err)
		}
		return o.Data
	}
	tree := parseHash(t, strings.Fields(string(get(c)))[1])
	data := get(tree)
	for len(data) > 0 {
		nul := bytes.IndexByte(data, 0)
		entry, rest := string(data[:nul]), data[nul+1:]
		var h objects.Hash
		copy(h[:], rest[:20])
		data = rest[20:]
		if _, n, _ := strings.Cut(entry, " "); n == name {
			return string(get(h))
		}
	}
	t.Fatalf("no %s in the tree of %s", name, c)
	return ""
}
