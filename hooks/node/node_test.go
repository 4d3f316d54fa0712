package node

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stage makes Dirs for one node and writes its source.
func stage(t *testing.T, name, src string) (Dirs, string) {
	t.Helper()
	root := t.TempDir()
	d := Dirs{In: filepath.Join(root, "in"), Out: filepath.Join(root, "out"), Tmp: filepath.Join(root, "tmp")}
	for _, p := range []string{d.In, d.Out, d.Tmp, filepath.Join(d.In, CodeInput)} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := filepath.Join(d.In, CodeInput, name)
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return d, f
}

// link puts a previous node's output file in as input table tb.
func link(t *testing.T, d Dirs, tb, file string) {
	t.Helper()
	dir := d.InputDir(tb)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "part-0.parquet"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func query(t *testing.T, q string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	// seed
	d1, f1 := stage(t, "orders.csv", "id,customer,amount\n1,ann,10.5\n2,bob,-3\n3,ann,4.5\n4,cy,7\n")
	n, err := Seed(ctx, &Job{Dirs: d1, Source: f1, Outputs: []string{"raw.orders"}})
	if err != nil || n != 4 {
		t.Fatalf("seed: %d %v", n, err)
	}
	seedOut := d1.OutputFile("raw.orders")

	// sql, with a param holding quotes and a newline
	d2, f2 := stage(t, "clean_orders.sql", "SELECT id, customer, amount, getvariable('tag') AS tag\nFROM raw.orders\nWHERE amount > 0;\n")
	link(t, d2, "raw.orders", seedOut)
	tag := "it's \"x\",\n;DROP"
	n, err = SQL(ctx, &Job{Dirs: d2, Source: f2, Namespace: "clean", Inputs: []string{"raw.orders"}, Outputs: []string{"clean.orders"}, Params: map[string]string{"tag": tag}})
	if err != nil || n != 3 {
		t.Fatalf("sql: %d %v", n, err)
	}
	cleanOut := d2.OutputFile("clean.orders")
	if got := query(t, "SELECT string_agg(DISTINCT tag) FROM '"+cleanOut+"'"); got != tag {
		t.Fatalf("param came back as %q", got)
	}

	// python
	d3, f3 := stage(t, "revenue.py", `# weir: inputs = clean.orders
# weir: outputs = clean.revenue
import csv, os
tot = {}
with open(os.environ["WEIR_IN_CLEAN_ORDERS"]) as f:
    for r in csv.DictReader(f):
        tot[r["customer"]] = tot.get(r["customer"], 0) + float(r["amount"])
with open(os.environ["WEIR_OUT_CLEAN_REVENUE"], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer", "total", "param"])
    for c in sorted(tot):
        w.writerow([c, tot[c], os.environ.get("WEIR_PARAM_tag")])
print("customers", len(tot))
`)
	link(t, d3, "clean.orders", cleanOut)
	var out bytes.Buffer
	counts, err := Python(ctx, &Job{Dirs: d3, Source: f3, Inputs: []string{"clean.orders"}, Outputs: []string{"clean.revenue"}, Params: map[string]string{"tag": tag}, Stdout: &out})
	if err != nil || counts["clean.revenue"] != 2 {
		t.Fatalf("python: %v %v\n%s", counts, err, out.String())
	}
	if !strings.Contains(out.String(), "customers 2") {
		t.Fatalf("python output %q", out.String())
	}
	revOut := d3.OutputFile("clean.revenue")
	if got := query(t, "SELECT string_agg(customer || '=' || total, ',' ORDER BY customer) FROM '"+revOut+"'"); got != "ann=15.0,cy=7.0" {
		t.Fatalf("revenue rows %q", got)
	}
	if got := query(t, "SELECT any_value(param) FROM '"+revOut+"'"); got != tag {
		t.Fatalf("python param %q", got)
	}

	// expectations: pass, then fail
	d4, f4 := stage(t, "pos.sql", "SELECT * FROM clean.revenue WHERE total <= 0")
	link(t, d4, "clean.revenue", revOut)
	if n, err := Expectation(ctx, &Job{Dirs: d4, Source: f4, Inputs: []string{"clean.revenue"}}); err != nil || n != 0 {
		t.Fatalf("expectation: %d %v", n, err)
	}
	d5, f5 := stage(t, "small.sql", "SELECT customer, total FROM clean.revenue WHERE total < 10")
	link(t, d5, "clean.revenue", revOut)
	out.Reset()
	n, err = Expectation(ctx, &Job{Dirs: d5, Source: f5, Inputs: []string{"clean.revenue"}, Stdout: &out})
	if !errors.Is(err, ErrExpectation) || n != 1 {
		t.Fatalf("failing expectation: %d %v", n, err)
	}
	if want := "1 failing rows; first 1:\ncustomer | total\ncy | 7\n"; out.String() != want {
		t.Fatalf("expectation printed %q, want %q", out.String(), want)
	}
}

func TestLockedDown(t *testing.T) {
	ctx := context.Background()
	secret := filepath.Join(t.TempDir(), "secret.csv")
	os.WriteFile(secret, []byte("a\n1\n"), 0o644)
	for _, q := range []string{
		"SELECT * FROM read_csv('" + secret + "')",
		"SELECT * FROM '" + secret + "'",
		"SELECT 1; COPY (SELECT 1) TO '" + secret + "'",
		"SELECT 1) TO '" + secret + "' (FORMAT csv); SELECT (1",
		"SELECT current_setting('enable_external_access') AS x FROM (SELECT 1) -- ",
	} {
		d, f := stage(t, "m.sql", q)
		_, err := SQL(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"main.m"}})
		if strings.HasSuffix(q, "-- ") {
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if got := query(t, "SELECT any_value(x)::VARCHAR FROM '"+d.OutputFile("main.m")+"'"); got != "false" {
				t.Fatalf("enable_external_access = %s", got)
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s: ran", q)
		}
		if b, _ := os.ReadFile(secret); string(b) != "a\n1\n" {
			t.Fatalf("%s: secret changed to %q", q, b)
		}
	}
	d, f := stage(t, "m.sql", "SELECT 1 AS a")
	if _, err := SQL(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"main.m"}}); err != nil {
		t.Fatal(err)
	}
}

func TestPythonFailure(t *testing.T) {
	d, f := stage(t, "bad.py", "# weir: outputs = main.x\nimport sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
	var out bytes.Buffer
	_, err := Python(context.Background(), &Job{Dirs: d, Source: f, Outputs: []string{"main.x"}, Stdout: &out})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(out.String(), "boom") {
		t.Fatalf("err %v out %q", err, out.String())
	}
	d, f = stage(t, "none.py", "# weir: outputs = main.x\n")
	_, err = Python(context.Background(), &Job{Dirs: d, Source: f, Outputs: []string{"main.x"}})
	if err == nil || !strings.Contains(err.Error(), "wrote no output for main.x") {
		t.Fatalf("err %v", err)
	}
}

// TestGate: a gated node starts DuckDB, then reads nothing until "go"
// arrives (its input may appear only then); a gate closed without "go"
// stops it before any input is read.
func TestGate(t *testing.T) {
	ctx := context.Background()
	d1, f1 := stage(t, "s.csv", "id,v\n1,a\n2,b\n")
	if _, err := Seed(ctx, &Job{Dirs: d1, Source: f1, Outputs: []string{"main.s"}}); err != nil {
		t.Fatal(err)
	}
	d2, f2 := stage(t, "m.sql", "SELECT id FROM main.s WHERE v = 'b'")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var n int64
	go func() {
		var err error
		n, err = SQL(ctx, &Job{Dirs: d2, Source: f2, Namespace: "main", Inputs: []string{"main.s"}, Outputs: []string{"main.m"}, Gate: pr})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the node ran before its gate opened: %v", err)
	default:
	}
	link(t, d2, "main.s", d1.OutputFile("main.s")) // the input appears only now
	pw.WriteString("go\n")
	pw.Close()
	if err := <-done; err != nil || n != 1 {
		t.Fatalf("gated SQL: %d rows, %v", n, err)
	}

	d3, f3 := stage(t, "m.sql", "SELECT 1 AS x")
	_, err = SQL(ctx, &Job{Dirs: d3, Source: f3, Outputs: []string{"main.m"}, Gate: strings.NewReader("")})
	if !errors.Is(err, ErrNotReleased) {
		t.Fatalf("gate closed without go: %v", err)
	}
	if _, err := os.Stat(d3.OutputFile("main.m")); err == nil {
		t.Fatal("a node whose gate never opened wrote its output")
	}
}

// TestJobSettings: DuckDB runs the job's threads and memory limit, and the
// node's SQL cannot change them.
func TestJobSettings(t *testing.T) {
	ctx := context.Background()
	d, _ := stage(t, "m.sql", "SELECT 1")
	j := &Job{Dirs: d, Threads: 3, MemoryLimit: 300 << 20}
	db, conn, err := j.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close(db, conn)
	var threads int
	var mem string
	if err := conn.QueryRowContext(ctx, "SELECT current_setting('threads')::INTEGER, current_setting('memory_limit')::VARCHAR").Scan(&threads, &mem); err != nil {
		t.Fatal(err)
	}
	if threads != 3 || !strings.HasPrefix(mem, "300") {
		t.Errorf("threads %d, memory_limit %s; want 3 and 300 MiB", threads, mem)
	}
	if _, err := conn.ExecContext(ctx, "SET threads=8"); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("SET threads in the node's SQL: %v, want refused (configuration locked)", err)
	}
}
