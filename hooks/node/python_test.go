package node

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// typedSource is a SQL model whose table has one column of each type the
// weir module maps, NULLs and empty strings included.
const typedSource = `SELECT * FROM (VALUES
  (1, DATE '2024-01-02', 12.30::DECIMAL(12,2), TIMESTAMP '2024-01-02 03:04:05.5', 7::BIGINT, true, 'a,"b"', 0.1::DOUBLE),
  (2, DATE '2024-02-29', -0.05::DECIMAL(12,2), TIMESTAMP '2024-03-01 00:00:00', NULL, false, '', 1e300::DOUBLE),
  (3, DATE '1999-12-31', 100.00::DECIMAL(12,2), TIMESTAMP '1999-12-31 23:59:59', 9::BIGINT, NULL, NULL, NULL)
) t(id, day, amount, "at", n, ok, s, f)`

// typedModel reads main.src, checks in Python that each value has its
// type, adds a Decimal column and writes main.dst (body: the script's
// read-and-write lines, pandas or not).
const typedCheck = `
import datetime, decimal
def check(rows):
    for r in rows:
        assert isinstance(r["day"], datetime.date), r
        assert isinstance(r["amount"], decimal.Decimal), r
        assert r["id"] != 3 or str(r["amount"]) == "100.00", r["amount"]
    print("types ok")
`

// typedWant is main.dst as DuckDB sees it: types and values.
const typedWant = `id INTEGER|day DATE|amount DECIMAL(12,2)|at TIMESTAMP|n BIGINT|ok BOOLEAN|s VARCHAR|f DOUBLE|twice DECIMAL(5,2)
1|2024-01-02|12.30|2024-01-02 03:04:05.5|7|true|a,"b"|0.1|24.60
2|2024-02-29|-0.05|2024-03-01 00:00:00|NULL|false||1e+300|-0.10
3|1999-12-31|100.00|1999-12-31 23:59:59|9|NULL|NULL|NULL|200.00
`

// describe returns the Parquet file's columns and rows, '|'-separated.
func describe(t *testing.T, file string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	rows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '" + file + "')")
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var n, ty string
		rows.Scan(&n, &ty)
		cols = append(cols, n+" "+ty)
	}
	rows.Close()
	b.WriteString(strings.Join(cols, "|") + "\n")
	sel := "SELECT COLUMNS(*)::VARCHAR FROM '" + file + "' ORDER BY 1"
	rows, err = db.Query(sel)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = "NULL"
			if v.Valid {
				cells[i] = v.String
			}
		}
		b.WriteString(strings.Join(cells, "|") + "\n")
	}
	return b.String()
}

// typedInput runs typedSource and returns its output file.
func typedInput(t *testing.T) string {
	t.Helper()
	d, f := stage(t, "src.sql", typedSource)
	if _, err := SQL(context.Background(), &Job{Dirs: d, Source: f, Namespace: "main", Outputs: []string{"main.src"}}); err != nil {
		t.Fatal(err)
	}
	// DuckDB renders TIMESTAMP as text with .5 and DOUBLE 1e300 as 1e+300.
	return d.OutputFile("main.src")
}

func runTyped(t *testing.T, python, src string) (string, string) {
	t.Helper()
	in := typedInput(t)
	d, f := stage(t, "typed.py", src)
	link(t, d, "main.src", in)
	var out bytes.Buffer
	if _, err := Python(context.Background(), &Job{Dirs: d, Source: f, File: "models/typed.py", Python: python,
		Inputs: []string{"main.src"}, Outputs: []string{"main.dst"}, Stdout: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return describe(t, d.OutputFile("main.dst")), out.String()
}

// TestPythonTypesStdlib: without pandas (the host's python3), weir.read
// gives dates, Decimals with their scale, ints, bools, NULL apart from ''
// in a VARCHAR column; weir.write keeps every type, and a Decimal column
// computed in Python becomes DECIMAL(p,s) from its values.
func TestPythonTypesStdlib(t *testing.T) {
	if _, err := os.Stat(DefaultPython); err != nil {
		t.Skipf("no %s", DefaultPython)
	}
	got, out := runTyped(t, "", typedCheck+`
import weir
rows = weir.read("src")
assert type(rows).__name__ == "Table", type(rows)
check(rows)
assert rows[1]["s"] == "" and rows[2]["s"] is None and rows[1]["n"] is None, rows
for r in rows:
    r["twice"] = None if r["amount"] is None else r["amount"] * 2
weir.write("main.dst", rows)
`)
	if got != typedWant || !strings.Contains(out, "types ok") {
		t.Fatalf("main.dst:\n%s\nwant:\n%s\nout: %s", got, typedWant, out)
	}
}

// pandasPython returns an interpreter command for the pandas rootfs of
// WEIR_TEST_RUNTIME_PANDAS (run by chroot in a private mount namespace,
// with the host's /tmp bound at its /tmp, where the test's files are), or
// skips.
func pandasPython(t *testing.T) string {
	t.Helper()
	root := os.Getenv("WEIR_TEST_RUNTIME_PANDAS")
	if root == "" {
		t.Skip("WEIR_TEST_RUNTIME_PANDAS is not set (a rootfs with python3 and pandas): the pandas path is not tested")
	}
	if os.Geteuid() != 0 {
		t.Skip("the pandas rootfs is entered with chroot, which needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	if !strings.HasPrefix(t.TempDir(), "/tmp/") {
		t.Skip("the test's files are not under /tmp, which is what the rootfs sees")
	}
	w := filepath.Join(t.TempDir(), "python3")
	script := "#!/bin/sh\nexec /usr/bin/unshare -m /bin/sh -c 'mount --make-rprivate / && mount --bind /tmp \"$0/tmp\" && exec /usr/sbin/chroot \"$0\" /usr/bin/python3 \"$@\"' " +
		"'" + root + "' \"$@\"\n"
	if err := os.WriteFile(w, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPythonTypesPandas: the same round trip with pandas: DataFrame
// columns of date and Decimal objects, Int64 for an int column with NULLs,
// datetime64 for TIMESTAMP.
func TestPythonTypesPandas(t *testing.T) {
	py := pandasPython(t)
	got, out := runTyped(t, py, typedCheck+`
import weir
import pandas as pd
df = weir.read("main.src")
check(df.to_dict("records"))
assert str(df["n"].dtype) == "Int64", df.dtypes
assert str(df["id"].dtype) == "int32", df.dtypes
assert str(df["at"].dtype) == "datetime64[ns]", df.dtypes
assert df["s"][1] == "" and df["s"].isna()[2], df["s"]
df["twice"] = df["amount"] * 2
weir.write("main.dst", df)
print(df.dtypes.to_dict())
`)
	if got != typedWant || !strings.Contains(out, "types ok") {
		t.Fatalf("main.dst:\n%s\nwant:\n%s\nout: %s", got, typedWant, out)
	}
}
