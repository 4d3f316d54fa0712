// Command sql measures a SQL model over a large table: rows per second
// through Weir against DuckDB alone running the same query on the same
// Parquet file, in the same run.
//
// It writes a table of -rows rows (10 million by default) as one Parquet
// file with DuckDB, imports it as main.events on the data branch main of
// an in-process server (Pebble and the warehouse on disk), and then, -n
// times each, interleaved:
//
//	weir    a push of a pipeline whose one SQL model reads main.events:
//	        the pre-receive hook plans it, runs the model in its sandbox
//	        (weir-node, DuckDB) and snapshots the output in Iceberg; the
//	        time is the hook's, from the push's commands to the data commit
//	duckdb  the same query in DuckDB (in process, its default settings),
//	        over a view of the same Parquet file, written to Parquet with
//	        COPY; the time is from opening the database to COPY's end
//
// A third line, for the split only, runs the model with weir-node as a
// plain process (no sandbox, no Git, no Iceberg): its distance to DuckDB
// alone is a fresh process's start-up, its distance to Weir the sandbox,
// the hook and the durable Iceberg commit.
//
// Two queries, each its own pipeline: "agg" aggregates the 10M rows to 10k
// (GROUP BY), "filter" keeps about a tenth of them (WHERE), so the output's
// conversion is part of the figure. The ratio is duckdb time / weir time
// (rows/s through Weir over rows/s of DuckDB alone); the goal is >= 0.85
// (issue 16).
//
// Run it as root (sandboxes) from the module root:
//
//	go run ./bench/sql                 # 10M rows, 5 runs of each query
//	go run ./bench/sql -rows 1000000 -n 3 -node-cpus 1
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/weir-dev/weir/bench/internal/host"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

func init() { exec.Init() }

// queries are the models, over main.events.
var queries = []struct{ name, sql string }{
	{"agg", "SELECT customer, count(*) AS orders, sum(amount) AS total, max(ordered_at) AS last_order\nFROM events\nGROUP BY customer"},
	{"filter", "SELECT id, customer, amount, ordered_at\nFROM events\nWHERE amount >= 900 AND status = 'paid'"},
}

func main() {
	rows := flag.Int("rows", 10_000_000, "rows in the input table")
	n := flag.Int("n", 5, "runs of each query, each side")
	bin := flag.String("bin", "", "folder holding weir-node and weir-sandbox-init (default: build them from this tree)")
	cpus := flag.Float64("node-cpus", 0, "CPU limit of a node (0: the server's default, as weir serve --node-cpus)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fatal(errors.New("run as root: pipeline nodes run in sandboxes"))
	}
	if err := run(*rows, *n, *bin, *cpus); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/sql:", err)
	os.Exit(1)
}

func run(rows, n int, bin string, cpus float64) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "weir-bench-sql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "bin")
		fmt.Println("building weir-node and weir-sandbox-init ...")
		if err := sh("", "go", "build", "-o", bin+"/", "./cmd/weir-node", "./exec/cmd/weir-sandbox-init"); err != nil {
			return err
		}
	}

	input := filepath.Join(tmp, "events.parquet")
	began := time.Now()
	if err := makeInput(ctx, input, rows); err != nil {
		return fmt.Errorf("make input: %w", err)
	}
	fi, _ := os.Stat(input)
	fmt.Printf("input: %d rows, %.0f MB of Parquet, made in %s\n", rows, float64(fi.Size())/1e6, time.Since(began).Round(time.Millisecond))

	// The server's stores, on disk, and the table on branch main.
	data := filepath.Join(tmp, "data")
	db, err := pebblekv.Open(filepath.Join(data, "pebble"), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	objs := objects.New(db, objects.Limits{})
	rs := refs.NewDB(objs)
	wh, err := catalog.NewLocalWarehouse(filepath.Join(data, "warehouse"))
	if err != nil {
		return err
	}
	cat := catalog.New(objs, rs, wh)
	const repo = objects.RepoName("bench")
	if _, err := cat.WriteBranch(ctx, repo, "main", []catalog.TableWrite{{
		Table: catalog.TableName{Namespace: "main", Name: "events"}, Files: []string{input},
	}}, catalog.CommitInfo{Message: "import events"}); err != nil {
		return fmt.Errorf("import: %w", err)
	}

	state, err := os.MkdirTemp("/run", "weir-bench-sql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	if err := os.Chmod(state, 0o711); err != nil {
		return err
	}
	lim := exec.Limits{CPU: cpus}
	sb, err := exec.New(exec.Config{
		StateDir: filepath.Join(state, "exec"), WeirBinary: filepath.Join(bin, "weir-node"),
		InitBinary: filepath.Join(bin, "weir-sandbox-init"), Defaults: lim,
	})
	if err != nil {
		return fmt.Errorf("sandboxes: %w", err)
	}
	defer sb.Close()
	hook, err := hooks.NewPipeline(hooks.PipelineConfig{
		Refs: rs, Catalog: cat, Runner: sb, WorkDir: filepath.Join(data, "runs"),
		Logger: slog.New(slog.DiscardHandler), MaxLimits: lim,
	})
	if err != nil {
		return err
	}
	nodeCPUs := exec.DefaultLimits().CPU
	if cpus > 0 {
		nodeCPUs = cpus
	}
	fmt.Printf("machine: %d CPUs, load average %s; node CPU limit %g\n", runtime.NumCPU(), host.LoadAvg(), nodeCPUs)

	t0, s0 := host.CPUTimes()
	for _, q := range queries {
		work := filepath.Join(tmp, "work-"+q.name)
		if err := os.MkdirAll(filepath.Join(work, "models"), 0o755); err != nil {
			return err
		}
		if err := sh(work, "git", "init", "-q", "-b", "main"); err != nil {
			return err
		}
		model := filepath.Join(work, "models", q.name+".sql")
		push := func(i int) (split, string, error) {
			if err := os.WriteFile(model, []byte(fmt.Sprintf("-- run %d\n%s\n", i, q.sql)), 0o644); err != nil {
				return split{}, "", err
			}
			if err := sh(work, "git", "add", "-A"); err != nil {
				return split{}, "", err
			}
			if err := sh(work, "git", "commit", "-q", "-m", fmt.Sprintf("run %d", i)); err != nil {
				return split{}, "", err
			}
			return pushOnce(ctx, hook, objs, repo, work)
		}
		peer := func() (time.Duration, int64, error) {
			return duckdbAlone(ctx, input, q.sql, filepath.Join(tmp, "duckdb-"+q.name+".parquet"))
		}
		bare := func() (time.Duration, error) {
			return bareNode(filepath.Join(bin, "weir-node"), input, q.sql, filepath.Join(tmp, "bare-"+q.name), nodeCPUs)
		}
		// Warm-ups: the page cache holds the input for both sides.
		if _, out, err := push(-1); err != nil {
			return fmt.Errorf("%s: %w\n%s", q.name, err, out)
		}
		if _, _, err := peer(); err != nil {
			return err
		}
		if _, err := bare(); err != nil {
			return err
		}
		var weir []split
		var alone, plain []time.Duration
		var outRows int64
		for i := 0; i < n; i++ {
			sp, out, err := push(i)
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", q.name, err, out)
			}
			weir = append(weir, sp)
			d, r, err := peer()
			if err != nil {
				return err
			}
			alone, outRows = append(alone, d), r
			if d, err = bare(); err != nil {
				return err
			}
			plain = append(plain, d)
		}
		col := func(f func(split) time.Duration) time.Duration {
			var ds []time.Duration
			for _, sp := range weir {
				ds = append(ds, f(sp))
			}
			return median(ds)
		}
		w, a := col(func(sp split) time.Duration { return sp.hook }), median(alone)
		fmt.Printf("\n%s: %d rows in, %d rows out (%d runs each, medians)\n", q.name, rows, outRows, n)
		fmt.Printf("  weir    %8s  %6.1f M rows/s  (plan %s, model in its sandbox %s, sandbox %s, Iceberg commit %s)\n",
			w.Round(time.Millisecond), mrows(rows, w), col(func(sp split) time.Duration { return sp.plan }),
			col(func(sp split) time.Duration { return sp.run }), col(func(sp split) time.Duration { return sp.sandbox }),
			col(func(sp split) time.Duration { return sp.commit }))
		fmt.Printf("  duckdb  %8s  %6.1f M rows/s\n", a.Round(time.Millisecond), mrows(rows, a))
		fmt.Printf("  (weir-node as a plain process, no sandbox, Git or Iceberg: %s)\n", median(plain).Round(time.Millisecond))
		fmt.Printf("  ratio weir/duckdb (rows/s): %.2f\n", float64(a)/float64(w))
	}
	fmt.Printf("\nload average: %s; CPU time stolen by the hypervisor during the runs: %s\n", host.LoadAvg(), host.StealSince(t0, s0))
	return nil
}

// makeInput writes rows rows of orders as one Parquet file.
func makeInput(ctx context.Context, path string, rows int) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, fmt.Sprintf(`COPY (
		SELECT i AS id,
		       'c' || lpad((hash(i) %% 10000)::VARCHAR, 5, '0') AS customer,
		       ((hash(i * 7) %% 100000) / 100)::DECIMAL(10,2) AS amount,
		       DATE '2024-01-01' + (i %% 366)::INTEGER AS ordered_at,
		       CASE WHEN i %% 10 = 0 THEN 'refunded' ELSE 'paid' END AS status
		FROM range(%d) t(i)
	) TO '%s' (FORMAT parquet)`, rows, path))
	return err
}

// timingRE matches the hook's -o timing line.
var timingRE = regexp.MustCompile(`weir: timing: plan (\d+) ms, nodes (\d+) ms \(run (\d+) ms, sandbox (\d+) ms\), commit (\d+) ms`)

// split is where one push's hook time went (the -o timing line).
type split struct{ hook, plan, run, sandbox, commit time.Duration }

// pushOnce pushes work's HEAD as a new refs/heads/main through the hook
// (the refs are not moved, so every run starts from the imported data) and
// returns where the hook's time went.
func pushOnce(ctx context.Context, hook *hooks.Pipeline, objs *objects.Store, repo objects.RepoName, work string) (split, string, error) {
	head, err := output(work, "git", "rev-parse", "HEAD")
	if err != nil {
		return split{}, "", err
	}
	tip, ok := objects.ParseHash([]byte(head))
	if !ok {
		return split{}, "", fmt.Errorf("bad commit name %q", head)
	}
	cmd := osexec.Command("git", "pack-objects", "--revs", "--stdout", "-q")
	cmd.Dir = work
	cmd.Stdin = strings.NewReader(head + "\n")
	pack, err := cmd.Output()
	if err != nil {
		return split{}, "", fmt.Errorf("pack-objects: %w", err)
	}
	q := objs.NewQuarantine(repo)
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		return split{}, "", err
	}
	var progress bytes.Buffer
	began := time.Now()
	res, err := hook.PreReceive(ctx, &hooks.Push{
		Repo: repo, Quarantine: q, Options: []string{hooks.OptionTiming}, Progress: &progress,
		Commands: []hooks.Command{{Name: "refs/heads/main", New: tip}},
	})
	took := time.Since(began)
	if err != nil {
		return split{}, progress.String(), err
	}
	if len(res.Refused) > 0 {
		return split{}, progress.String(), fmt.Errorf("refused: %v", res.Refused)
	}
	m := timingRE.FindStringSubmatch(progress.String())
	if m == nil {
		return split{}, progress.String(), errors.New("no timing line")
	}
	msOf := func(s string) time.Duration { v, _ := strconv.Atoi(s); return time.Duration(v) * time.Millisecond }
	return split{hook: took, plan: msOf(m[1]), run: msOf(m[3]), sandbox: msOf(m[4]), commit: msOf(m[5])}, progress.String(), nil
}

// bareNode runs the model with weir-node as a plain process (no sandbox,
// no Git, no Iceberg), with the settings the hook gives it: where the
// time between DuckDB alone and Weir goes, a fresh process or the rest.
func bareNode(node, input, query, dir string, cpus float64) (time.Duration, error) {
	os.RemoveAll(dir)
	in, out, tmp := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "tmp")
	for _, d := range []string{filepath.Join(in, "_code"), filepath.Join(in, "main.events"), out, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, err
		}
	}
	if err := os.Link(input, filepath.Join(in, "main.events", "part-00000.parquet")); err != nil {
		return 0, err
	}
	src := filepath.Join(in, "_code", "m.sql")
	if err := os.WriteFile(src, []byte(query), 0o644); err != nil {
		return 0, err
	}
	cmd := osexec.Command(node, "node", "sql", "--source", src, "--ns", "main", "--in", "main.events", "--out", "main.m",
		"--dir-in", in, "--dir-out", out, "--dir-tmp", tmp,
		"--threads", strconv.Itoa(int(math.Ceil(cpus))), "--memory-limit", strconv.FormatInt(exec.DefaultLimits().Memory/2, 10))
	cmd.Env = []string{"HOME=" + tmp}
	began := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("weir-node: %v\n%s", err, b)
	}
	return time.Since(began), nil
}

// duckdbAlone runs query over a view of input in a fresh in-process
// DuckDB with its default settings and writes the result to out.
func duckdbAlone(ctx context.Context, input, query, out string) (time.Duration, int64, error) {
	os.Remove(out)
	began := time.Now()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE VIEW events AS SELECT * FROM read_parquet('"+input+"')"); err != nil {
		return 0, 0, err
	}
	res, err := conn.ExecContext(ctx, "COPY ("+query+") TO '"+out+"' (FORMAT parquet)")
	if err != nil {
		return 0, 0, err
	}
	n, _ := res.RowsAffected()
	return time.Since(began), n, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func mrows(rows int, d time.Duration) float64 { return float64(rows) / d.Seconds() / 1e6 }

var gitEnv = []string{
	"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@localhost",
	"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@localhost",
	"GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent",
}

func sh(dir, name string, args ...string) error {
	_, err := output(dir, name, args...)
	return err
}

func output(dir, name string, args ...string) (string, error) {
	cmd := osexec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}
