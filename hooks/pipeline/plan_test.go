package pipeline

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The planner without a SQL engine: a fake parser that finds "FROM x" and
// "JOIN x" (x a name, ns.name, a.b.c, or f(...) for a table function) and
// refuses a query starting with "ERR <offset> <message>". The tests with
// DuckDB's own parser are in hooks/node (plan_test.go), where the engine is.

var fromRE = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([A-Za-z_'/][A-Za-z0-9_./']*)(\()?`)

// fakeSQL is a pipeline.SQLParser that records its calls.
type fakeSQL struct {
	calls [][]string
	err   error // returned by every call
	short bool  // answer one query too few
}

func (f *fakeSQL) ParseSQL(_ context.Context, queries []string) ([]SQLParse, error) {
	f.calls = append(f.calls, queries)
	if f.err != nil {
		return nil, f.err
	}
	out := make([]SQLParse, len(queries))
	for i, q := range queries {
		out[i] = fakeParse(q)
	}
	if f.short {
		out = out[1:]
	}
	return out, nil
}

func fakeParse(q string) SQLParse {
	if rest, ok := strings.CutPrefix(q, "ERR "); ok {
		rest, _, _ = strings.Cut(rest, "\n")
		off, msg, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(off)
		if err != nil {
			n = -1
		}
		return SQLParse{Err: &SQLError{Offset: n, Msg: msg}}
	}
	var p SQLParse
	for _, m := range fromRE.FindAllStringSubmatchIndex(q, -1) {
		name := q[m[2]:m[3]]
		if m[4] >= 0 {
			p.Refs = append(p.Refs, SQLRef{Function: strings.ToLower(name), Offset: m[2]})
			continue
		}
		r := SQLRef{Offset: m[2]}
		parts := strings.Split(name, ".")
		switch len(parts) {
		case 1:
			r.Table = parts[0]
		case 2:
			r.Schema, r.Table = parts[0], parts[1]
		default:
			r.Catalog, r.Schema, r.Table = parts[0], parts[1], strings.Join(parts[2:], ".")
		}
		p.Refs = append(p.Refs, r)
	}
	return p
}

func tablesStr(ts []Table) []string {
	var s []string
	for _, t := range ts {
		s = append(s, string(t))
	}
	return s
}

func buildWith(t *testing.T, p SQLParser, files map[string]string, existing ...Table) (*Plan, error) {
	t.Helper()
	fs := map[string][]byte{}
	for k, v := range files {
		fs[k] = []byte(v)
	}
	pl, err := Parse(fs)
	if err != nil {
		return nil, err
	}
	ex := map[Table]bool{}
	for _, e := range existing {
		ex[e] = true
	}
	return Build(context.Background(), pl, Env{Branch: "main", Existing: ex, SQL: p})
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string
		existing []Table
		want     []string // name|kind|inputs|deps, in plan order
	}{
		{"chain and expectation last", map[string]string{
			"seeds/raw/orders.csv":     "id\n1\n",
			"models/a.sql":             "SELECT * FROM raw.orders",
			"models/b.py":              "# weir: inputs = main.a\n# weir: outputs = main.b\n",
			"expectations/a_small.sql": "SELECT * FROM a WHERE false",
			"models/c.sql":             "SELECT * FROM b JOIN a ON true",
		}, nil, []string{
			"raw.orders|seed||", "main.a|sql|raw.orders|0", "main.b|python|main.a|1", "main.c|sql|main.a,main.b|1,2", "expect a_small|expect|main.a|1",
		}},
		{"diamond", map[string]string{
			"models/top.sql":   "SELECT * FROM raw.x",
			"models/left.sql":  "SELECT * FROM top",
			"models/right.sql": "SELECT * FROM top",
			"models/down.sql":  "SELECT * FROM left JOIN right ON true",
		}, []Table{"raw.x"}, []string{
			"main.top|sql|raw.x|", "main.left|sql|main.top|0", "main.right|sql|main.top|0", "main.down|sql|main.left,main.right|1,2",
		}},
		{"allowed table function and CTE-free reads", map[string]string{
			"models/n.sql": "SELECT * FROM range(3) JOIN raw.x ON true JOIN raw.x ON true",
		}, []Table{"raw.x"}, []string{"main.n|sql|raw.x|"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := buildWith(t, &fakeSQL{}, tc.files, tc.existing...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range p.Nodes {
				var deps []string
				for _, d := range n.Deps() {
					deps = append(deps, strconv.Itoa(d))
				}
				got = append(got, n.Name+"|"+string(n.Kind)+"|"+strings.Join(tablesStr(n.Inputs), ",")+"|"+strings.Join(deps, ","))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestBuildRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"cycle", map[string]string{"models/a.sql": "SELECT * FROM b", "models/b.sql": "SELECT * FROM a"},
			"cycle: models/a.sql -> models/b.sql -> models/a.sql"},
		{"unknown table on its line", map[string]string{"models/a.sql": "SELECT 1\nFROM range(3)\nJOIN raw.ordrs ON true"},
			"models/a.sql:3: reads raw.ordrs, which is neither on branch main nor made by the pipeline"},
		{"parse error on its line", map[string]string{"models/a.sql": "ERR 12 syntax error at or near \"WHERE\"\n\nx"},
			"models/a.sql:1: syntax error at or near \"WHERE\""},
		{"parse error at an offset on line 3", map[string]string{"expectations/e.sql": "ERR 34 boom\n---------------------\nx"},
			"expectations/e.sql:3: boom"},
		{"parse error without an offset", map[string]string{"models/a.sql": "ERR -1 2 statements: a model or expectation is one SELECT statement"},
			"models/a.sql: 2 statements"},
		{"file function", map[string]string{"models/a.sql": "SELECT * FROM read_csv('/etc/passwd')"},
			"models/a.sql:1: table function read_csv() is not allowed"},
		{"file scan", map[string]string{"models/a.sql": "SELECT * FROM '/etc/passwd'"}, "which is not a table name"},
		{"three part", map[string]string{"models/a.sql": "SELECT * FROM db.s.t"}, "db.s.t: three-part names are not allowed"},
		{"duplicate writer", map[string]string{"seeds/a.csv": "x\n1\n", "models/a.sql": "SELECT 1"},
			"seeds/a.csv: writes main.a, which models/a.sql also writes: one table, one writer"},
		{"every problem counted", map[string]string{
			"models/a.sql": "SELECT * FROM nope1",
			"models/b.sql": "SELECT * FROM read_csv('x') JOIN nope2 ON true",
		}, "models/a.sql:1: reads main.nope1, which is neither on branch main nor made by the pipeline (and 2 more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildWith(t, &fakeSQL{}, tc.files)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *Error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestBuildParsesOnce: the parser is called once per plan with every SQL
// model and expectation, in path order (expectations/ first), and not at all without SQL; a
// parser that fails, or answers too few, fails the plan with a plain
// error (the hook says the pipeline could not be planned), never a
// refusal naming a file.
func TestBuildParsesOnce(t *testing.T) {
	files := map[string]string{
		"seeds/s.csv":        "x\n1\n",
		"models/b.sql":       "SELECT * FROM s",
		"models/a.sql":       "SELECT * FROM s",
		"models/p.py":        "# weir: inputs = main.a\n# weir: outputs = main.p\n",
		"expectations/e.sql": "SELECT * FROM p WHERE false",
	}
	f := &fakeSQL{}
	if _, err := buildWith(t, f, files); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"SELECT * FROM p WHERE false", "SELECT * FROM s", "SELECT * FROM s"}}; !reflect.DeepEqual(f.calls, want) {
		t.Fatalf("parser calls %q, want %q", f.calls, want)
	}
	f = &fakeSQL{}
	if _, err := buildWith(t, f, map[string]string{"seeds/s.csv": "x\n1\n", "models/p.py": "# weir: inputs = main.s\n# weir: outputs = main.p\n"}); err != nil || len(f.calls) != 0 {
		t.Fatalf("without SQL: %v, %d parser calls", err, len(f.calls))
	}
	if _, err := buildWith(t, nil, map[string]string{"models/a.sql": "SELECT 1"}); !errors.Is(err, ErrNoSQLParser) {
		t.Fatalf("no parser: %v", err)
	}
	boom := errors.New("sandbox: boom")
	for name, p := range map[string]*fakeSQL{"fails": {err: boom}, "answers too few": {short: true}} {
		_, err := buildWith(t, p, files)
		var pe *Error
		if err == nil || errors.As(err, &pe) {
			t.Errorf("parser that %s: error %v, want a plain error", name, err)
		}
	}
}

// TestLimitsFromConfig: weir.toml's limits reach the node as the
// planner's own Limits.
func TestLimitsFromConfig(t *testing.T) {
	p, err := buildWith(t, &fakeSQL{}, map[string]string{
		"weir.toml":    "timeout = \"10s\"\nmemory_mb = 512\n[node.\"main.a\"]\ncpus = 0.5\ntimeout = \"2s\"\n",
		"models/a.sql": "SELECT 1",
		"models/b.sql": "SELECT 1",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Limits{
		"main.a": {Wall: 2 * time.Second, Memory: 512 << 20, CPU: 0.5},
		"main.b": {Wall: 10 * time.Second, Memory: 512 << 20},
	}
	for _, n := range p.Nodes {
		if n.Limits != want[n.Name] {
			t.Errorf("%s: limits %+v, want %+v", n.Name, n.Limits, want[n.Name])
		}
	}
}

// FuzzBuild plans arbitrary SQL and Python headers with the fake parser
// (no cgo: `CGO_ENABLED=0 go test -fuzz FuzzBuild ./hooks/pipeline/`).
// Build must never panic; it refuses with a *Error or plans, and a plan
// is in topological order (every dependency earlier, every input made by
// an earlier node or on the branch), with the expectations last.
func FuzzBuild(f *testing.F) {
	f.Add("SELECT * FROM b", "SELECT * FROM raw.x JOIN c ON true", "# weir: inputs = main.a\n# weir: outputs = main.c\n", "SELECT * FROM c")
	f.Add("SELECT * FROM range(3)", "SELECT * FROM a", "# weir: outputs = main.c, x.y\n", "SELECT * FROM x.y")
	f.Add("ERR 3 bad", "SELECT * FROM db.s.t", "# weir: inputs = raw.x\n# weir: outputs = main.c\n", "ERR -1 two")
	f.Add("SELECT * FROM a", "SELECT * FROM read_csv('/x')", "# weir: outputs = b\n", "SELECT * FROM '/etc/passwd'")
	f.Fuzz(func(t *testing.T, a, b, py, exp string) {
		files := map[string][]byte{
			"models/a.sql": []byte(a), "models/b.sql": []byte(b),
			"models/c.py": []byte(py), "expectations/e.sql": []byte(exp),
		}
		pl, err := Parse(files)
		if err != nil {
			return
		}
		existing := map[Table]bool{"raw.x": true}
		p, err := Build(context.Background(), pl, Env{Branch: "main", Existing: existing, SQL: &fakeSQL{}})
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error %T %v is not a *Error with problems", err, err)
			}
			return
		}
		made := map[Table]bool{}
		seenExp := false
		for i, n := range p.Nodes {
			for _, d := range n.Deps() {
				if d >= i {
					t.Fatalf("node %d (%s) depends on node %d", i, n.Name, d)
				}
			}
			for _, in := range n.Inputs {
				if !made[in] && !existing[in] {
					t.Fatalf("node %s reads %s before anything makes it", n.Name, in)
				}
			}
			for _, o := range n.Outputs {
				made[o] = true
			}
			if n.Kind == KindExpectation {
				seenExp = true
			} else if seenExp {
				t.Fatalf("node %s after an expectation", n.Name)
			}
		}
	})
}

// TestRuntimeChoice: a model's runtime comes from its header, else from
// weir.toml's [node."..."], else weir.toml's default, else host; a header
// and a [node] table that disagree, and a runtime the server lacks, are
// refused naming the file.
func TestRuntimeChoice(t *testing.T) {
	env := func(rts ...string) Env {
		m := map[string]bool{"host": true}
		for _, r := range rts {
			m[r] = true
		}
		return Env{Branch: "main", Runtimes: m, SQL: &fakeSQL{}}
	}
	plan := func(files map[string]string, e Env) (*Plan, error) {
		fs := map[string][]byte{}
		for k, v := range files {
			fs[k] = []byte(v)
		}
		pl, err := Parse(fs)
		if err != nil {
			return nil, err
		}
		return Build(context.Background(), pl, e)
	}
	p, err := plan(map[string]string{
		"weir.toml":          "runtime = \"pandas\"\n[node.\"models/c.py\"]\nruntime = \"host\"\n",
		"models/a.py":        "# weir: outputs = a\n",
		"models/b.py":        "#!/usr/bin/python3\n# weir: runtime = polars\n# weir: outputs = b\n",
		"models/c.py":        "# weir: outputs = c\n",
		"models/d.sql":       "SELECT 1",
		"models/e.py":        "# weir: runtime = \"host\"\n# weir: outputs = e\n",
		"models/f.py":        "# weir: runtime = host\n# weir: outputs = f\n",
		"expectations/x.sql": "SELECT 1 WHERE false",
	}, env("pandas", "polars"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range p.Nodes {
		got[n.File] = n.Runtime
	}
	want := map[string]string{"models/a.py": "pandas", "models/b.py": "polars", "models/c.py": "host", "models/d.sql": "pandas",
		"models/e.py": "host", "models/f.py": "host", "expectations/x.sql": "pandas"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runtimes %v, want %v", got, want)
	}

	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"unknown in header", map[string]string{"models/x.py": "# weir: runtime = polars\n# weir: outputs = x\n"},
			`models/x.py: unknown runtime "polars" (available: host, pandas)`},
		{"unknown in weir.toml", map[string]string{"weir.toml": "runtime = \"polars\"\n", "models/x.sql": "SELECT 1"},
			`models/x.sql: unknown runtime "polars" (available: host, pandas)`},
		{"header and node table disagree", map[string]string{
			"weir.toml":   "[node.\"models/x.py\"]\nruntime = \"host\"\n",
			"models/x.py": "# weir: runtime = pandas\n# weir: outputs = x\n"},
			`models/x.py: the header says runtime "pandas", weir.toml's [node."models/x.py"] says "host": keep one`},
		{"twice", map[string]string{"models/x.py": "# weir: runtime = pandas\n# weir: runtime = host\n# weir: outputs = x\n"},
			`models/x.py:2: runtime declared twice (already "pandas")`},
		{"a list", map[string]string{"models/x.py": "# weir: runtime = pandas, host\n# weir: outputs = x\n"},
			`models/x.py:1: runtime "pandas, host" is not a runtime name`},
		{"a path", map[string]string{"models/x.py": "# weir: runtime = ../etc\n# weir: outputs = x\n"},
			`models/x.py:1: runtime "../etc" is not a runtime name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan(tc.files, env("pandas"))
			var pe *Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant a *Error containing %q", err, tc.want)
			}
		})
	}
}
