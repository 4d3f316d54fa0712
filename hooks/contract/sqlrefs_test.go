package contract

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSQLRefsArgs(t *testing.T) {
	for _, a := range []SQLRefsArgs{
		{Sources: "/in/_sql", Answer: "/out/sqlrefs.json"},
		{Sources: "/in/_sql", Answer: "/out/a", Gate: true},
	} {
		argv := a.Argv()
		if argv[0] != CommandSQLRefs {
			t.Fatalf("argv %q does not start with %q", argv, CommandSQLRefs)
		}
		got, err := ParseSQLRefsArgs(argv[1:])
		if err != nil || got != a {
			t.Fatalf("round trip of %+v: %+v %v", a, got, err)
		}
	}
	for _, bad := range [][]string{nil, {"--sources", "x"}, {"--answer", "y"}, {"--sources", "x", "--answer", "y", "z"}, {"--count", "1"}} {
		if _, err := ParseSQLRefsArgs(bad); !errors.Is(err, ErrArgs) {
			t.Errorf("ParseSQLRefsArgs(%q) = %v, want ErrArgs", bad, err)
		}
	}
}

func TestSQLSources(t *testing.T) {
	for _, tc := range []struct {
		names []string
		n     int
	}{
		{[]string{"00000.sql"}, 1},
		{[]string{"00002.sql", "00000.sql", "00001.sql"}, 3},
		{nil, 0},
		{[]string{"00001.sql"}, 0},
		{[]string{"00000.sql", "00000.sql"}, 0},
		{[]string{"00000.sql", "x"}, 0},
		{[]string{"0.sql"}, 0},
	} {
		n, err := SQLSources(tc.names)
		if n != tc.n || (tc.n == 0) != (err != nil) {
			t.Errorf("SQLSources(%q) = %d, %v; want %d", tc.names, n, err, tc.n)
		}
	}
}

func TestSQLAnswer(t *testing.T) {
	good := SQLAnswer{Queries: []SQLQuery{
		{Refs: []SQLRef{{Schema: "raw", Table: "orders", Offset: 14}, {Function: "range", Offset: -1}, {Catalog: "db", Schema: "s", Table: "t", Offset: 3}}},
		{Error: &SQLParseError{Message: `syntax error at or near "WHERE"`, Offset: 24}},
		{},
		{Refs: []SQLRef{{Table: "", Offset: 0}}}, // DuckDB's empty name: the planner refuses it
	}}
	b, err := EncodeSQLAnswer(good)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"queries":[{"refs":[{"schema":"raw","table":"orders","offset":14},{"function":"range","offset":-1},{"catalog":"db","schema":"s","table":"t","offset":3}]},{"error":{"message":"syntax error at or near \"WHERE\"","offset":24}},{},{"refs":[{"offset":0}]}]}` + "\n"
	if string(b) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b, want)
	}
	got, err := ParseSQLAnswer(b, 4)
	if err != nil || !reflect.DeepEqual(got, good) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, tc := range []struct {
		name, in string
		n        int
	}{
		{"wrong count", want, 3},
		{"empty", "", 1},
		{"no newline", strings.TrimSuffix(want, "\n"), 4},
		{"second value", want + want, 4},
		{"space", `{"queries": [{}]}` + "\n", 1},
		{"null queries", `{"queries":null}` + "\n", 0},
		{"empty refs", `{"queries":[{"refs":[]}]}` + "\n", 1},
		{"unknown field", `{"queries":[{"rows":1}]}` + "\n", 1},
		{"case-folded key", `{"QUERIES":[{}]}` + "\n", 1},
		{"repeated key", `{"queries":[{}],"queries":[{}]}` + "\n", 1},
		{"refs and error", `{"queries":[{"refs":[{"table":"a","offset":1}],"error":{"message":"x","offset":1}}]}` + "\n", 1},
		{"function with a table", `{"queries":[{"refs":[{"table":"a","function":"f","offset":1}]}]}` + "\n", 1},
		{"offset below -1", `{"queries":[{"refs":[{"table":"a","offset":-2}]}]}` + "\n", 1},
		{"empty message", `{"queries":[{"error":{"message":"","offset":1}}]}` + "\n", 1},
		{"long message", `{"queries":[{"error":{"message":"` + strings.Repeat("x", MaxSQLMessage+1) + `","offset":1}}]}` + "\n", 1},
		{"escaped", `{"queries":[{"refs":[{"table":"\u0061","offset":1}]}]}` + "\n", 1},
		{"invalid utf-8", "{\"queries\":[{\"refs\":[{\"table\":\"\xff\",\"offset\":1}]}]}\n", 1},
		{"float offset", `{"queries":[{"refs":[{"table":"a","offset":1.0}]}]}` + "\n", 1},
		{"too long", `{"queries":[{"refs":[{"table":"` + strings.Repeat("a", MaxSQLAnswer) + `","offset":1}]}]}` + "\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, err := ParseSQLAnswer([]byte(tc.in), tc.n); !errors.Is(err, ErrBadSQLAnswer) {
				t.Fatalf("ParseSQLAnswer accepted %.200q: %+v, %v", tc.in, a, err)
			}
		})
	}
	if _, err := EncodeSQLAnswer(SQLAnswer{Queries: []SQLQuery{{Refs: []SQLRef{{Function: "f", Schema: "s"}}}}}); !errors.Is(err, ErrBadSQLAnswer) {
		t.Fatalf("encoded a function with a schema: %v", err)
	}
}

func TestCutSQLMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"", "the query does not parse"},
		{"bad \xff", "bad \uFFFD"},
		{"two\nlines", "two\nlines"},
	} {
		if got := CutSQLMessage(tc.in); got != tc.want {
			t.Errorf("CutSQLMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := CutSQLMessage(strings.Repeat("é", MaxSQLMessage))
	if len(long) > MaxSQLMessage || !utf8.ValidString(long) || !strings.HasSuffix(long, "...") {
		t.Fatalf("long message cut to %d bytes: ...%q", len(long), long[len(long)-10:])
	}
}

// FuzzParseSQLAnswer: ParseSQLAnswer never panics and accepts only what
// EncodeSQLAnswer makes (so an answer it accepts encodes back to the same
// bytes, with the count it was asked for).
func FuzzParseSQLAnswer(f *testing.F) {
	for _, a := range []SQLAnswer{
		{Queries: []SQLQuery{{Refs: []SQLRef{{Schema: "raw", Table: "orders", Offset: 14}, {Function: "range", Offset: -1}}}}},
		{Queries: []SQLQuery{{Error: &SQLParseError{Message: "syntax error", Offset: 3}}, {}}},
	} {
		b, err := EncodeSQLAnswer(a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, len(a.Queries))
	}
	f.Add([]byte(`{"queries":[{"refs":[]}]}`+"\n"), 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		a, err := ParseSQLAnswer(b, n)
		if err != nil {
			if !errors.Is(err, ErrBadSQLAnswer) {
				t.Fatalf("error %v does not wrap ErrBadSQLAnswer", err)
			}
			return
		}
		if len(a.Queries) != n {
			t.Fatalf("accepted %d answers for %d queries", len(a.Queries), n)
		}
		canon, err := EncodeSQLAnswer(a)
		if err != nil || string(canon) != string(b) {
			t.Fatalf("accepted %q, which encodes as %q (%v)", b, canon, err)
		}
	})
}

func TestQueryArgsAndRequest(t *testing.T) {
	for _, a := range []QueryArgs{{Request: "/in/_query/request.json", ResultFD: 3}, {Request: "/tmp/r.json", ResultFD: NoResult}} {
		argv := a.Argv()
		got, err := ParseQueryArgs(argv[1:])
		if argv[0] != CommandQuery || err != nil || got != a {
			t.Fatalf("round trip of %+v: %q %+v %v", a, argv, got, err)
		}
	}
	for _, bad := range [][]string{nil, {"--request", "x", "--result-fd", "2"}, {"--request", "x", "y"}} {
		if _, err := ParseQueryArgs(bad); !errors.Is(err, ErrArgs) {
			t.Errorf("ParseQueryArgs(%q) = %v, want ErrArgs", bad, err)
		}
	}
	r := QueryRequest{SQL: "SELECT 1", MaxRows: 10, Timeout: time.Minute, Memory: "1GB",
		Tables: []QueryTable{{Name: "main.t", Files: []QueryFile{{Path: "/in/t0/00000.parquet", Name: "main/t/data/a.parquet"}}}}}
	b, err := EncodeQueryRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseQueryRequest(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"", "{}", `{"sql":"x","rows":1}`, `{"sql":"x"} {}`, `{"sql":"x","max_rows":-1}`} {
		if _, err := ParseQueryRequest([]byte(bad)); !errors.Is(err, ErrBadQueryRequest) {
			t.Errorf("ParseQueryRequest(%q) = %v, want ErrBadQueryRequest", bad, err)
		}
	}
}

func TestHandshake(t *testing.T) {
	h := Handshake{Contract: Version, Sources: strings.Repeat("ab", 32)}
	got, err := ParseHandshake(h.Encode())
	if err != nil || got != h {
		t.Fatalf("round trip of %+v: %+v %v", h, got, err)
	}
	if err := h.Check(got); err != nil {
		t.Fatalf("Check of itself: %v", err)
	}
	for _, other := range []Handshake{{Contract: Version + 1, Sources: h.Sources}, {Contract: Version, Sources: strings.Repeat("cd", 32)}} {
		if err := h.Check(other); !errors.Is(err, ErrHandshake) {
			t.Errorf("Check(%+v) = %v, want ErrHandshake", other, err)
		}
	}
	for _, bad := range []string{"", "weir-node contract 1 sources abc\n", "weir-node contract 1 sources " + strings.Repeat("AB", 32) + "\n",
		"weir-node contract 01 sources " + strings.Repeat("ab", 32) + "\n", string(h.Encode()) + "x", "usage: weir-node node ...\n"} {
		if _, err := ParseHandshake([]byte(bad)); !errors.Is(err, ErrHandshake) {
			t.Errorf("ParseHandshake(%q) = %v, want ErrHandshake", bad, err)
		}
	}
}
