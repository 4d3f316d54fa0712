package node_test

import (
	"context"
	"strings"
	"testing"

	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/node"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// The planner's tests that need DuckDB's parser (moved here from
// hooks/pipeline, which links no SQL engine; their assertions are
// unchanged).

// contractParser is a pipeline.SQLParser that parses in this process with
// node.ParseSQL and hands the planner what the runner contract carries.
type contractParser struct{}

func (contractParser) ParseSQL(ctx context.Context, queries []string) ([]pipeline.SQLParse, error) {
	ans, err := node.ParseSQL(ctx, queries)
	if err != nil {
		return nil, err
	}
	b, err := contract.EncodeSQLAnswer(ans)
	if err != nil {
		return nil, err
	}
	if ans, err = contract.ParseSQLAnswer(b, len(queries)); err != nil {
		return nil, err
	}
	out := make([]pipeline.SQLParse, len(ans.Queries))
	for i, q := range ans.Queries {
		if q.Error != nil {
			out[i].Err = &pipeline.SQLError{Offset: q.Error.Offset, Msg: q.Error.Message}
			continue
		}
		for _, r := range q.Refs {
			out[i].Refs = append(out[i].Refs, pipeline.SQLRef{Catalog: r.Catalog, Schema: r.Schema, Table: r.Table, Function: r.Function, Offset: r.Offset})
		}
	}
	return out, nil
}

// parser is the planner's SQL parser as weir-node is: ParseSQL, its answer
// encoded and read back through the runner contract (what the hook's
// SandboxSQL does, without the sandbox).
var parser = contractParser{}

func plan(t *testing.T, files map[string]string, existing ...pipeline.Table) (*pipeline.Plan, error) {
	t.Helper()
	fs := map[string][]byte{}
	for k, v := range files {
		fs[k] = []byte(v)
	}
	pl, err := pipeline.Parse(fs)
	if err != nil {
		return nil, err
	}
	ex := map[pipeline.Table]bool{}
	for _, e := range existing {
		ex[e] = true
	}
	return pipeline.Build(context.Background(), pl, pipeline.Env{Branch: "main", Existing: ex, SQL: parser})
}

func TestPlanOK(t *testing.T) {
	p, err := plan(t, map[string]string{
		"weir.toml":                    "namespace = \"clean\"\n[node.\"models/revenue.py\"]\ntimeout = \"2s\"\nmaterialize = \"append\"\n",
		"seeds/raw/orders.csv":         "id,amount\n1,2\n",
		"models/orders.sql":            "-- cleaned\nWITH o AS (SELECT * FROM raw.orders)\nSELECT * FROM o WHERE amount > 0",
		"models/revenue.py":            "#!/usr/bin/python3\n# weir: inputs = orders\n# weir: outputs = clean.revenue\nprint(1)\n",
		"expectations/revenue_pos.sql": "SELECT * FROM revenue WHERE total < 0",
		"models/README.md":             "docs",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range p.Nodes {
		got = append(got, n.Name+"|"+string(n.Kind)+"|"+strings.Join(tablesStr(n.Inputs), ","))
	}
	want := []string{
		"raw.orders|seed|",
		"clean.orders|sql|raw.orders",
		"clean.revenue|python|clean.orders",
		"expect revenue_pos|expect|clean.revenue",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rev := p.Nodes[2]
	if rev.Limits.Wall.String() != "2s" || rev.Materialize != pipeline.Append || rev.Runtime != "host" {
		t.Fatalf("revenue config: %+v %s %s", rev.Limits, rev.Materialize, rev.Runtime)
	}
	if d := p.Nodes[3].Deps(); len(d) != 1 || d[0] != 2 {
		t.Fatalf("expectation deps %v", d)
	}
	if p.Models() != 3 || p.Expectations() != 1 {
		t.Fatalf("counts %d %d", p.Models(), p.Expectations())
	}
}

func tablesStr(ts []pipeline.Table) []string {
	var s []string
	for _, t := range ts {
		s = append(s, string(t))
	}
	return s
}

func TestPlanExistingTable(t *testing.T) {
	if _, err := plan(t, map[string]string{"models/x.sql": "SELECT * FROM raw.orders"}, "raw.orders"); err != nil {
		t.Fatal(err)
	}
}

func TestPlanRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"cycle", map[string]string{
			"models/a.sql": "SELECT * FROM b",
			"models/b.sql": "SELECT * FROM a",
		}, "cycle: models/a.sql -> models/b.sql -> models/a.sql"},
		{"cycle3", map[string]string{
			"models/a.sql": "SELECT * FROM c",
			"models/b.sql": "SELECT * FROM a",
			"models/c.py":  "# weir: inputs = main.b\n# weir: outputs = main.c\n",
		}, "cycle: models/a.sql -> models/b.sql -> models/c.py -> models/a.sql"},
		{"self", map[string]string{"models/a.sql": "SELECT * FROM a"}, "cycle: models/a.sql -> models/a.sql"},
		{"duplicate output", map[string]string{
			"seeds/orders.csv":  "a\n1\n",
			"models/orders.sql": "SELECT 1 AS a",
		}, "seeds/orders.csv: writes main.orders, which models/orders.sql also writes: one table, one writer"},
		{"unknown table", map[string]string{
			"models/a.sql": "SELECT 1\nFROM range(3)\nJOIN raw.ordrs ON true",
		}, "models/a.sql:3: reads raw.ordrs, which is neither on branch main nor made by the pipeline"},
		{"unknown table python", map[string]string{
			"models/a.py": "# weir: inputs = raw.x\n# weir: outputs = a\n",
		}, "models/a.py:1: reads raw.x, which is neither on branch main nor made by the pipeline"},
		{"bad sql", map[string]string{
			"models/a.sql": "-- comment\nSELECT a,\nFROM WHERE x",
		}, "models/a.sql:3: syntax error at or near \"WHERE\""},
		{"not select", map[string]string{"models/a.sql": "DROP TABLE x"}, "models/a.sql:"},
		{"two statements", map[string]string{"models/a.sql": "SELECT 1; SELECT 2"}, "models/a.sql: 2 statements"},
		{"file read", map[string]string{"models/a.sql": "SELECT * FROM read_csv('/etc/passwd')"}, "models/a.sql:1: table function read_csv() is not allowed"},
		{"file scan", map[string]string{"models/a.sql": "SELECT * FROM '/etc/passwd'"}, "which is not a table name"},
		{"three part", map[string]string{"models/a.sql": "SELECT * FROM db.s.t"}, "three-part names are not allowed"},
		{"bad runtime", map[string]string{
			"weir.toml":    "[node.\"main.a\"]\nruntime = \"docker\"\n",
			"models/a.sql": "SELECT 1",
		}, "models/a.sql: unknown runtime \"docker\" (available: host)"},
		{"unknown toml key", map[string]string{"weir.toml": "namespce = \"x\"\n", "models/a.sql": "SELECT 1"}, "weir.toml: unknown key namespce"},
		{"bad toml", map[string]string{"weir.toml": "a = \n", "models/a.sql": "SELECT 1"}, "weir.toml:1:"},
		{"bad timeout", map[string]string{"weir.toml": "timeout = \"soon\"\n", "models/a.sql": "SELECT 1"}, "timeout \"soon\" is not a positive duration"},
		{"unused node key", map[string]string{"weir.toml": "[node.\"models/b.sql\"]\ntimeout=\"1s\"\n", "models/a.sql": "SELECT 1"}, "[node.\"models/b.sql\"] matches no file"},
		{"bad file name", map[string]string{"models/Bad-Name.sql": "SELECT 1"}, "models/Bad-Name.sql: file name \"Bad-Name\" is not a valid table name"},
		{"too deep", map[string]string{"models/a/b/c.sql": "SELECT 1"}, "too deeply nested"},
		{"unknown kind", map[string]string{"models/a.rb": "1"}, "models/a.rb: unknown kind of file"},
		{"header no outputs", map[string]string{"models/a.py": "# weir: inputs =\nprint(1)\n"}, "models/a.py:1: no outputs declared"},
		{"header bad key", map[string]string{"models/a.py": "# weir: output = a\n"}, "models/a.py:1: unknown key \"output\""},
		{"header bad syntax", map[string]string{"models/a.py": "# weir: outputs a\n"}, "models/a.py:1: bad declaration"},
		{"header bad table", map[string]string{"models/a.py": "# weir: outputs = A.B\n"}, "models/a.py:1: bad table name \"A.B\""},
		{"header late", map[string]string{"models/a.py": "# weir: outputs = a\nimport os\n# weir: inputs = b\n"}, "models/a.py:3: \"# weir:\" declaration after the header"},
		{"env clash", map[string]string{"models/a.py": "# weir: outputs = a_b.c, a.b_c\n"}, "models/a.py:1: a.b_c and a_b.c both map to WEIR_*_A_B_C"},
		{"header dup", map[string]string{"models/a.py": "# weir: outputs = a\n# weir: inputs = main.a\n"}, "models/a.py:2: main.a declared twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan(t, tc.files)
			if err == nil {
				t.Fatalf("planned; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
