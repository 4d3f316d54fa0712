package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuery(t *testing.T) {
	ctx := context.Background()
	d, f := stage(t, "orders.csv", "id,who\n1,ann\n2,bob\n3,a\tb\n")
	if _, err := Seed(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"raw.orders"}}); err != nil {
		t.Fatal(err)
	}
	tables := map[string][]QueryFile{"raw.orders": {{Path: d.OutputFile("raw.orders"), Name: "raw/orders/data/a.parquet"}}}
	var out bytes.Buffer
	if err := Query(ctx, tables, "SELECT id, who FROM raw.orders ORDER BY id;", &out, QueryOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "id\twho\n1\tann\n2\tbob\n3\ta\\tb\n"; out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
	out.Reset()
	if err := Query(ctx, tables, "SELECT id FROM raw.orders ORDER BY id", &out, QueryOptions{MaxRows: 2}); err != nil {
		t.Fatal(err)
	}
	if want := "id\n1\n2\n(more than 2 rows; add a LIMIT)\n"; out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
	// A DATE prints as the date, a TIMESTAMP as the instant.
	out.Reset()
	if err := Query(ctx, tables, "SELECT DATE '2024-03-01' AS d, TIMESTAMP '2024-03-01 12:30:00' AS ts", &out, QueryOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "d\tts\n2024-03-01\t2024-03-01T12:30:00Z\n"; out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
	secret := filepath.Join(t.TempDir(), "s.csv")
	os.WriteFile(secret, []byte("x\n1\n"), 0o644)
	for _, q := range []string{
		"COPY raw.orders TO '" + d.OutputFile("raw.orders") + "'",
		"SELECT * FROM read_csv('" + secret + "')",
		"SELECT * FROM '" + secret + "'",
		"SELECT 1; SELECT 2",
		"ATTACH '" + secret + "' AS x",
		"SET enable_external_access=true",
	} {
		if err := Query(ctx, tables, q, &out, QueryOptions{}); err == nil {
			t.Errorf("%s: ran", q)
		} else if strings.Contains(q, "COPY") && !strings.Contains(err.Error(), "SELECT") && !strings.Contains(err.Error(), "parse") {
			t.Logf("%s: %v", q, err)
		}
	}
	if err := Query(ctx, tables, "SELECT count(*) FROM raw.orders", &out, QueryOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestQueryShowsNoPath: what a query answers, and its errors, name no path
// of this machine (not the files' folder, not the home folder): not the
// views' definitions, not DuckDB's settings, not a damaged file, which is
// named as the caller named it.
func TestQueryShowsNoPath(t *testing.T) {
	ctx := context.Background()
	d, f := stage(t, "orders.csv", "id,who\n1,ann\n2,bob\n")
	if _, err := Seed(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"raw.orders"}}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.parquet")
	if err := os.WriteFile(bad, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := map[string][]QueryFile{"raw.orders": {{Path: d.OutputFile("raw.orders"), Name: "raw/orders/data/a.parquet"}}}
	leaks := []string{os.TempDir(), filepath.Dir(d.OutputFile("raw.orders")), filepath.Dir(bad)}
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		leaks = append(leaks, home)
	}
	for _, c := range []struct {
		name    string
		tables  map[string][]QueryFile
		q       string
		fails   bool
		mention string
	}{
		{"rows", good, "SELECT who FROM raw.orders ORDER BY id", false, "ann"},
		{"views", good, "SELECT sql FROM duckdb_views() WHERE NOT internal", false, "read_parquet"},
		{"information_schema", good, "SELECT view_definition FROM information_schema.views WHERE table_name = 'orders'", false, "read_parquet"},
		{"allowed_paths", good, "SELECT current_setting('allowed_paths') AS p", false, "p"},
		{"settings", good, "SELECT name, value FROM duckdb_settings()", false, "allowed_paths"},
		{"secrets", good, "SELECT * FROM duckdb_secrets()", false, ""},
		{"extensions", good, "SELECT extension_name, install_path FROM duckdb_extensions()", true, "weir-none"},
		{"a path outside", good, "SELECT * FROM read_parquet('/etc/passwd')", true, "Permission"},
		{"another descriptor", good, "SELECT * FROM read_parquet('/proc/self/fd/0')", true, "Permission"},
		{"damaged file", map[string][]QueryFile{"raw.orders": good["raw.orders"], "raw.bad": {{Path: bad, Name: "raw/bad/data/b.parquet"}}}, "SELECT 1", true, "raw/bad/data/b.parquet"},
		{"missing file", map[string][]QueryFile{"raw.gone": {{Path: bad + ".gone", Name: "raw/gone/data/c.parquet"}}}, "SELECT 1", true, "raw/gone/data/c.parquet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Query(ctx, c.tables, c.q, &out, QueryOptions{})
			text := out.String()
			if err != nil {
				text += "\nerror: " + err.Error()
			}
			if (err != nil) != c.fails {
				t.Fatalf("%s: err %v, want failure %v\n%s", c.q, err, c.fails, text)
			}
			for _, l := range leaks {
				if strings.Contains(text, l) {
					t.Errorf("%s shows the path %s:\n%s", c.q, l, text)
				}
			}
			if !strings.Contains(text, c.mention) {
				t.Errorf("%s does not name %q:\n%s", c.q, c.mention, text)
			}
		})
	}
}
