package node

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weir-dev/weir/hooks/contract"
)

// The exchange between the runner and the weir Python module.
//
// The runner writes, before the model's code runs, $WEIR_IO (weir-io.json
// under Tmp):
//
//	{"inputs":  {"ns.t": {"csv": PATH, "parquet": DIR, "rows": N,
//	                      "columns": [{"name": "amount", "type": "DECIMAL(12,2)",
//	                                   "nulls": N, "empties": N, "null_mask": PATH}, ...]}},
//	 "outputs": {"ns.t": {"csv": PATH, "parquet": PATH, "schema": PATH}}}
//
// Each input's CSV is DuckDB's COPY of the table (NULL is an empty field,
// so is '' in a VARCHAR column: a column holding both gets null_mask, a
// file of one 0/1 per row); its types are DESCRIBE's. The module writes
// an output as CSV and, beside it, the schema file:
//
//	{"columns": [{"name": "amount", "type": "DECIMAL(12,2)", "null_flag": false}, ...]}
//
// The CSV has a header line, the columns in that order, then one BOOLEAN
// column per column with null_flag (true: the value is NULL, for VARCHAR
// columns, where an empty field is ''; a VARCHAR column without the flag
// has no NULLs). The schema file is the script's,
// so hostile: outputSchema bounds it and accepts only the types of
// outputTypes; the CSV is read with those types and nothing inferred.

//go:embed py/weir/*.py
var pyModule embed.FS

// exchange is $WEIR_IO.
type exchange struct {
	Inputs  map[string]exchangeIn  `json:"inputs"`
	Outputs map[string]exchangeOut `json:"outputs"`
}

type exchangeIn struct {
	CSV     string           `json:"csv"`
	Parquet string           `json:"parquet"`
	Rows    int64            `json:"rows"`
	Columns []exchangeColumn `json:"columns"`
}

type exchangeColumn struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nulls    int64  `json:"nulls"`
	Empties  int64  `json:"empties"`
	NullMask string `json:"null_mask,omitempty"`
}

type exchangeOut struct {
	CSV     string `json:"csv"`
	Parquet string `json:"parquet"`
	Schema  string `json:"schema"`
}

// writeModule writes the weir package under tmp and returns the folder to
// put on PYTHONPATH.
func writeModule(tmp string) (string, error) {
	dir := filepath.Join(tmp, "weir-py")
	err := fs.WalkDir(pyModule, "py", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(p, "py"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := pyModule.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o444)
	})
	return dir, err
}

// inputCSV is where exportInput writes input table t under dir.
func inputCSV(dir, t string) string { return filepath.Join(dir, t+".csv") }

// exportInput writes input table t (the i-th) as CSV under dir with its
// column types, NULL and empty-string counts.
func exportInput(ctx context.Context, conn *sql.Conn, t, dir string, i int) (exchangeIn, error) {
	ns, name, _ := strings.Cut(t, ".")
	tab := ident(ns) + "." + ident(name)
	in := exchangeIn{CSV: inputCSV(dir, t)}
	rows, err := conn.QueryContext(ctx, "SELECT column_name, column_type FROM (DESCRIBE "+tab+")")
	if err != nil {
		return in, err
	}
	for rows.Next() {
		var c exchangeColumn
		if err := rows.Scan(&c.Name, &c.Type); err != nil {
			rows.Close()
			return in, err
		}
		in.Columns = append(in.Columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return in, err
	}
	// One scan counts the rows, each column's NULLs and each VARCHAR's
	// empty strings: the module needs them to tell int64 from Int64 and
	// NULL from '' (both an empty field in the CSV).
	exprs := []string{"count(*)"}
	for _, c := range in.Columns {
		exprs = append(exprs, "count(*) - count("+ident(c.Name)+")")
		if c.Type == "VARCHAR" {
			exprs = append(exprs, "count(*) FILTER (WHERE "+ident(c.Name)+" = '')")
		}
	}
	vals := make([]int64, len(exprs))
	ptrs := make([]any, len(exprs))
	for k := range vals {
		ptrs[k] = &vals[k]
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+tab).Scan(ptrs...); err != nil {
		return in, err
	}
	in.Rows = vals[0]
	k := 1
	for ci := range in.Columns {
		c := &in.Columns[ci]
		c.Nulls = vals[k]
		k++
		if c.Type == "VARCHAR" {
			c.Empties = vals[k]
			k++
			if c.Nulls > 0 && c.Empties > 0 {
				c.NullMask = filepath.Join(dir, fmt.Sprintf("%d-%d.nulls", i, ci))
				q := fmt.Sprintf("COPY (SELECT CASE WHEN %s IS NULL THEN 1 ELSE 0 END FROM %s) TO %s (FORMAT csv, HEADER false)", ident(c.Name), tab, quote(c.NullMask))
				if _, err := conn.ExecContext(ctx, q); err != nil {
					return in, err
				}
			}
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY %s TO %s (FORMAT csv, HEADER)", tab, quote(in.CSV))); err != nil {
		return in, err
	}
	return in, nil
}

// Bounds of an output's schema file, which the script writes.
const (
	maxSchemaBytes = 1 << 20
	maxColumns     = 4096
	maxColumnName  = 255
)

// outputTypes are the column types an output may declare, besides
// DECIMAL(p,s) with 1 <= p <= 38 and 0 <= s <= p.
var outputTypes = map[string]bool{
	"BOOLEAN": true, "TINYINT": true, "SMALLINT": true, "INTEGER": true, "BIGINT": true, "HUGEINT": true,
	"UTINYINT": true, "USMALLINT": true, "UINTEGER": true, "UBIGINT": true, "UHUGEINT": true,
	"FLOAT": true, "DOUBLE": true, "VARCHAR": true, "DATE": true, "TIME": true, "TIMESTAMP": true,
	"TIMESTAMP WITH TIME ZONE": true, "UUID": true, "BLOB": true,
}

var decimalRE = regexp.MustCompile(`^DECIMAL\(([0-9]{1,2}),([0-9]{1,2})\)$`)

// outputColumn is one column of an output's schema file.
type outputColumn struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	NullFlag bool   `json:"null_flag"`
}

// errSchema prefixes what is wrong with a schema file.
var errSchema = errors.New("the schema the weir module wrote beside the CSV")

// outputSchema reads and checks the schema file at p.
func outputSchema(p string) ([]outputColumn, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSchemaBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSchemaBytes {
		return nil, fmt.Errorf("%w is larger than %d bytes", errSchema, maxSchemaBytes)
	}
	var s struct {
		Columns []outputColumn `json:"columns"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w does not parse: %v; write outputs with weir.write", errSchema, err)
	}
	if len(s.Columns) == 0 || len(s.Columns) > maxColumns {
		return nil, fmt.Errorf("%w has %d columns; a table has 1 to %d", errSchema, len(s.Columns), maxColumns)
	}
	seen := map[string]bool{}
	for _, c := range s.Columns {
		if c.Name == "" || len(c.Name) > maxColumnName || !utf8.ValidString(c.Name) || strings.ContainsFunc(c.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("%w names a column %q: a name is 1 to %d bytes of UTF-8 without control characters", errSchema, contract.OneLine(c.Name, 80), maxColumnName)
		}
		if k := strings.ToLower(c.Name); seen[k] {
			return nil, fmt.Errorf("%w names column %q twice (names are case-insensitive)", errSchema, c.Name)
		} else {
			seen[k] = true
		}
		if !validType(c.Type) {
			return nil, fmt.Errorf("%w gives column %q the type %q, which is not one of %s or DECIMAL(p,s)", errSchema, c.Name, contract.OneLine(c.Type, 80), typeList())
		}
		if c.NullFlag && c.Type != "VARCHAR" {
			return nil, fmt.Errorf("%w flags NULLs of column %q, which is not VARCHAR", errSchema, c.Name)
		}
	}
	return s.Columns, nil
}

func validType(t string) bool {
	if outputTypes[t] {
		return true
	}
	m := decimalRE.FindStringSubmatch(t)
	if m == nil {
		return false
	}
	p, _ := strconv.Atoi(m[1])
	s, _ := strconv.Atoi(m[2])
	return p >= 1 && p <= 38 && s <= p
}

func typeList() string {
	var ts []string
	for t := range outputTypes {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return strings.Join(ts, ", ")
}

// typedCSV is the query that reads an output's CSV with the columns cols:
// no sniffing, nothing inferred. The CSV's columns get positional names
// (c0, c1, ..., then f0, f1, ... for the NULL flags) so that no name the
// script chose is spliced into the read_csv call; the SELECT renames them.
func typedCSV(path string, cols []outputColumn) string {
	var spec, sel []string
	flags := 0
	for i, c := range cols {
		spec = append(spec, fmt.Sprintf("'c%d': %s", i, quote(c.Type)))
	}
	for i, c := range cols {
		v := fmt.Sprintf("c%d", i)
		if c.NullFlag {
			f := fmt.Sprintf("f%d", flags)
			flags++
			spec = append(spec, fmt.Sprintf("'%s': 'BOOLEAN'", f))
			v = fmt.Sprintf("CASE WHEN %s THEN NULL ELSE coalesce(%s, '') END", f, v)
		} else if c.Type == "VARCHAR" {
			// No flag: the column has no NULLs, an empty field is ''.
			v = fmt.Sprintf("coalesce(%s, '')", v)
		}
		sel = append(sel, v+" AS "+ident(c.Name))
	}
	return "SELECT " + strings.Join(sel, ", ") + " FROM read_csv(" + quote(path) +
		`, header=true, auto_detect=false, delim=',', quote='"', escape='"', nullstr='', allow_quoted_nulls=false, strict_mode=true, columns={` +
		strings.Join(spec, ", ") + "})"
}
