package node

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

func TestFieldIDsOption(t *testing.T) {
	for _, tc := range []struct {
		cols [][2]string // name, DESCRIBE's type
		want string      // "" = no ids
	}{
		{[][2]string{{"a", "INTEGER"}, {"b c", "DECIMAL(18,2)"}, {"ts", "TIMESTAMP WITH TIME ZONE"}}, `{"a": 1, "b c": 2, "ts": 3}`},
		{[][2]string{{"s", `STRUCT(x INTEGER, "y, z(" VARCHAR[], w STRUCT(q BIGINT))`}, {"n", "BIGINT"}},
			`{"s": {__duckdb_field_id: 1, "x": 2, "y, z(": {__duckdb_field_id: 3, "element": 4}, "w": {__duckdb_field_id: 5, "q": 6}}, "n": 7}`},
		{[][2]string{{"m", "MAP(VARCHAR, STRUCT(v INTEGER))"}, {"l", "INTEGER[][]"}},
			`{"m": {__duckdb_field_id: 1, "key": 2, "value": {__duckdb_field_id: 3, "v": 4}}, "l": {__duckdb_field_id: 5, "element": {__duckdb_field_id: 6, "element": 7}}}`},
		{[][2]string{{"e", "ENUM('a', 'b)[', 'it''s')"}, {"f", "DOUBLE"}}, `{"e": 1, "f": 2}`},
		// No ids: a union, a fixed-size array, a map with a nested key,
		// names only case tells apart.
		{[][2]string{{"u", "UNION(a INTEGER, b VARCHAR)"}}, ""},
		{[][2]string{{"a", "INTEGER[3]"}}, ""},
		{[][2]string{{"m", "MAP(INTEGER[], VARCHAR)"}}, ""},
		{[][2]string{{"a", "INTEGER"}, {"A", "INTEGER"}}, ""},
		{[][2]string{{"s", "STRUCT(a INTEGER, A INTEGER)"}}, ""},
	} {
		var names []string
		var types []*duckType
		var perr error
		for _, c := range tc.cols {
			ty, err := parseDuckType(c[1])
			if err != nil {
				perr = err
				break
			}
			names, types = append(names, c[0]), append(types, ty)
		}
		got := ""
		if perr == nil {
			got, _ = fieldIDsOption(names, types)
		} else if !errors.Is(perr, errNoIDs) {
			t.Errorf("%v: %v", tc.cols, perr)
		}
		if got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.cols, got, tc.want)
		}
	}
	for _, bad := range []string{"", "STRUCT(", "STRUCT(a INTEGER", "MAP(INTEGER)", "DECIMAL(18,2", "ENUM('a)", "INTEGER[", "INTEGER)"} {
		if _, err := parseDuckType(bad); err == nil {
			t.Errorf("parseDuckType(%q) did not fail", bad)
		}
	}
}

// TestOutputsCarryFieldIDs: a seed's and a SQL model's outputs carry
// field ids 1..n on their columns; a model whose output has a type the
// runner does not number still writes its rows.
func TestOutputsCarryFieldIDs(t *testing.T) {
	ctx := context.Background()
	ids := func(p string) string {
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var s string
		if err := db.QueryRow("SELECT string_agg(name || '=' || coalesce(field_id::VARCHAR, '-'), ' ' ORDER BY name) FROM parquet_schema(?) WHERE name <> 'duckdb_schema'", p).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	d, f := stage(t, "orders.csv", "id,customer,amount\n1,ann,10.5\n2,bob,-3\n")
	if n, err := Seed(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"raw.orders"}}); err != nil || n != 2 {
		t.Fatalf("seed: %d %v", n, err)
	}
	if got, want := ids(d.OutputFile("raw.orders")), "amount=3 customer=2 id=1"; got != want {
		t.Errorf("seed output's field ids: %s, want %s", got, want)
	}
	d, f = stage(t, "m.sql", "SELECT 1 AS a, union_value(k := 2) AS u")
	if n, err := SQL(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"main.m"}}); err != nil || n != 1 {
		t.Fatalf("sql: %d %v", n, err)
	}
	if got := ids(d.OutputFile("main.m")); strings.ContainsAny(got, "0123456789") {
		t.Errorf("union output's field ids: %s, want none", got)
	}
}
