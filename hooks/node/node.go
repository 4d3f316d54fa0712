package node

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/weir-dev/weir/hooks/contract"
)

// CodeInput is the name of the input dir holding the node's source.
const CodeInput = contract.CodeInput

// ParamEnvPrefix prefixes the environment variables that carry push
// parameters: "git push -o param.day=2024-01-01" becomes WEIR_PARAM_day.
const ParamEnvPrefix = contract.ParamEnvPrefix

// MaxShownRows is how many failing rows an expectation prints.
const MaxShownRows = 10

// ErrExpectation is returned when an expectation found failing rows.
var ErrExpectation = errors.New("node: expectation failed")

// Dirs are the node's folders: /in, /out and /tmp inside a sandbox, any
// folders in tests.
type Dirs struct {
	In, Out, Tmp string
}

// SandboxDirs are the folders inside a sandbox.
var SandboxDirs = Dirs{In: "/in", Out: "/out", Tmp: "/tmp"}

// InputDir is where table t's Parquet files are.
func (d Dirs) InputDir(t string) string { return filepath.Join(d.In, t) }

// OutputFile is where table t's output goes.
func (d Dirs) OutputFile(t string) string { return filepath.Join(d.Out, t+".parquet") }

// Job is one node run.
type Job struct {
	Dirs
	// Source is the path of the node's file (SQL, Python script, CSV).
	Source string
	// Namespace qualifies bare table names in SQL.
	Namespace string
	// Inputs and Outputs are "ns.table" names.
	Inputs, Outputs []string
	// Params are the push parameters (name -> opaque value).
	Params map[string]string
	// Python is the interpreter for Python models (default /usr/bin/python3).
	Python string
	// File is the node's path in the repository (models/x.py), for
	// messages; "" names the node by Source's base name.
	File string
	// Runtime is the name of the runtime the node runs in ("" is "host"):
	// a Python model sees it as WEIR_RUNTIME and its errors name it.
	Runtime string
	// Threads is how many threads DuckDB runs (0: 1): the sandbox's CPU
	// limit, rounded up, so a query uses the cores the node may use.
	Threads int
	// MemoryLimit caps DuckDB's buffers, in bytes (0: DuckDB's default);
	// it spills to Tmp past it. Set below the sandbox's memory limit, which
	// also counts the node's /tmp and /out files and everything else.
	MemoryLimit int64
	// LeaveOpen leaves DuckDB open when the node returns: for a process
	// that exits right after (the CLI), where closing would only free, at
	// some cost for a large query, memory the exit frees anyway. Outputs
	// are complete and closed either way.
	LeaveOpen bool
	// Stdout receives what the node prints.
	Stdout io.Writer
	// KillStrays, for a runner that is its sandbox's PID 1, kills every
	// other process of the sandbox once a Python script has exited, before
	// its outputs are read: nothing the script started may touch them, or
	// anything else, while the runner finishes the node.
	KillStrays bool
	// Gate, if set, is read up to its first line after DuckDB has started
	// and before any input is looked at; a line other than "go" (or EOF)
	// stops the node. The hook starts a node's runner this way while the
	// nodes it reads from still run (exec.Spec.Gate), so the runner's
	// start-up is off the pipeline's critical path.
	Gate io.Reader
}

// ErrNotReleased is returned when the gate closed without "go": the node
// was given up before it started.
var ErrNotReleased = errors.New("node: given up before it started")

// waitGate blocks until the gate says "go" (no gate: at once).
func (j *Job) waitGate() error {
	if j.Gate == nil {
		return nil
	}
	line, _ := bufio.NewReader(j.Gate).ReadString('\n')
	if strings.TrimSpace(line) != "go" {
		return ErrNotReleased
	}
	return nil
}

// ParamsFromEnv collects WEIR_PARAM_* from env ("K=V" strings).
func ParamsFromEnv(env []string) map[string]string {
	ps := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, ParamEnvPrefix) && len(k) > len(ParamEnvPrefix) {
			ps[k[len(ParamEnvPrefix):]] = v
		}
	}
	return ps
}

// quote makes s a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ident makes s a quoted SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// open starts an in-memory DuckDB on one connection, with the inputs as
// views ns.table over their Parquet files and the params as variables,
// then locks it to the node's dirs.
func (j *Job) open(ctx context.Context) (*sql.DB, *sql.Conn, error) {
	threads := max(j.Threads, 1)
	// Started with its threads (not one per core of the machine, stopped
	// again by SET threads): on a large machine that is dozens of threads
	// made and ended per node.
	db, err := sql.Open("duckdb", fmt.Sprintf("?threads=%d", threads))
	if err != nil {
		return nil, nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	fail := func(err error) (*sql.DB, *sql.Conn, error) {
		conn.Close()
		db.Close()
		return nil, nil, err
	}
	exec := func(q string) error {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		return nil
	}
	pre := []string{
		"SET autoinstall_known_extensions=false",
		"SET autoload_known_extensions=false",
		fmt.Sprintf("SET threads=%d", threads),
		"SET temp_directory=" + quote(filepath.Join(j.Tmp, "duckdb")),
	}
	if j.MemoryLimit > 0 {
		pre = append(pre, fmt.Sprintf("SET memory_limit='%dB'", j.MemoryLimit))
	}
	if j.Namespace != "" {
		pre = append(pre, "CREATE SCHEMA IF NOT EXISTS "+ident(j.Namespace))
	}
	for _, q := range pre {
		if err := exec(q); err != nil {
			return fail(err)
		}
	}
	// Up to here nothing depends on the inputs: a gated node waits here.
	if err := j.waitGate(); err != nil {
		return fail(err)
	}
	schemas := map[string]bool{}
	for _, t := range j.Inputs {
		ns, name, ok := strings.Cut(t, ".")
		if !ok {
			return fail(fmt.Errorf("input %q is not ns.table", t))
		}
		if !schemas[ns] {
			schemas[ns] = true
			if err := exec("CREATE SCHEMA IF NOT EXISTS " + ident(ns)); err != nil {
				return fail(err)
			}
		}
		glob := filepath.Join(j.InputDir(t), "*.parquet")
		if err := exec(fmt.Sprintf("CREATE VIEW %s.%s AS SELECT * FROM read_parquet(%s)", ident(ns), ident(name), quote(glob))); err != nil {
			return fail(err)
		}
	}
	names := make([]string, 0, len(j.Params))
	for k := range j.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := exec(fmt.Sprintf("SET VARIABLE %s = %s", ident(k), quote(j.Params[k]))); err != nil {
			return fail(err)
		}
	}
	if j.Namespace != "" {
		if err := exec("SET schema = " + quote(j.Namespace)); err != nil {
			return fail(err)
		}
	}
	dirs := []string{}
	for _, d := range []string{j.In, j.Out, j.Tmp} {
		if d != "" {
			dirs = append(dirs, quote(strings.TrimSuffix(d, "/")+"/"))
		}
	}
	for _, q := range []string{
		"SET allowed_directories=[" + strings.Join(dirs, ",") + "]",
		"SET enable_external_access=false",
		"SET lock_configuration=true",
	} {
		if err := exec(q); err != nil {
			return fail(err)
		}
	}
	return db, conn, nil
}

// close closes what open opened, unless the job leaves it open.
func (j *Job) close(db *sql.DB, conn *sql.Conn) {
	if j.LeaveOpen {
		return
	}
	conn.Close()
	db.Close()
}

// readSource returns the node's SQL with trailing semicolons and space
// removed, so it can be wrapped as a subquery.
func readSource(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	q := strings.TrimRight(string(b), " \t\r\n;")
	if strings.TrimSpace(q) == "" {
		return "", errors.New("empty query")
	}
	return q, nil
}

// checkOneSelect refuses anything but exactly one SELECT, with DuckDB's
// own parser, so that wrapping the query in COPY ( ... ) cannot be escaped.
func checkOneSelect(ctx context.Context, conn *sql.Conn, q string) error {
	var js string
	if err := conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", q).Scan(&js); err != nil {
		return err
	}
	var top struct {
		Error        bool              `json:"error"`
		ErrorMessage string            `json:"error_message"`
		Statements   []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &top); err != nil {
		return err
	}
	if top.Error {
		return fmt.Errorf("query does not parse: %s", top.ErrorMessage)
	}
	if len(top.Statements) != 1 {
		return fmt.Errorf("want one SELECT statement, got %d statements", len(top.Statements))
	}
	return nil
}

// SQL runs a SQL model: the query at j.Source over the inputs, written to
// the one output as Parquet. It returns the output's row count.
func SQL(ctx context.Context, j *Job) (int64, error) {
	if len(j.Outputs) != 1 {
		return 0, fmt.Errorf("a SQL model has one output, got %d", len(j.Outputs))
	}
	q, err := readSource(j.Source)
	if err != nil {
		return 0, err
	}
	db, conn, err := j.open(ctx)
	if err != nil {
		return 0, err
	}
	defer j.close(db, conn)
	if err := checkOneSelect(ctx, conn, q); err != nil {
		return 0, err
	}
	return copyTo(ctx, conn, q, j.OutputFile(j.Outputs[0]))
}

// copyTo writes the rows of query q to the Parquet file out and returns
// how many there were (COPY's own count: the file is not read back). The
// file carries the Iceberg field ids a new table would give its columns
// (fieldids.go), so the server need not write it again.
func copyTo(ctx context.Context, conn *sql.Conn, q, out string) (int64, error) {
	ids, err := outputFieldIDs(ctx, conn, q)
	if err != nil {
		return 0, err
	}
	opts := "FORMAT parquet"
	if ids != "" {
		opts += ", FIELD_IDS " + ids
	}
	res, err := conn.ExecContext(ctx, "COPY ("+q+"\n) TO "+quote(out)+" ("+opts+")")
	if err != nil && ids != "" && strings.Contains(err.Error(), "FIELD_IDS") {
		// Refused when binding, before any row: the server gives the ids.
		res, err = conn.ExecContext(ctx, "COPY ("+q+"\n) TO "+quote(out)+" (FORMAT parquet)")
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Expectation runs the query at j.Source; every row it returns is a
// failure. It prints the failing rows (up to MaxShownRows) and returns
// their count with ErrExpectation if there are any.
func Expectation(ctx context.Context, j *Job) (int64, error) {
	q, err := readSource(j.Source)
	if err != nil {
		return 0, err
	}
	db, conn, err := j.open(ctx)
	if err != nil {
		return 0, err
	}
	defer j.close(db, conn)
	if err := checkOneSelect(ctx, conn, q); err != nil {
		return 0, err
	}
	var total int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM ("+q+"\n)").Scan(&total); err != nil {
		return 0, err
	}
	if total == 0 {
		return 0, nil
	}
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT * FROM (%s\n) LIMIT %d", q, MaxShownRows))
	if err != nil {
		return total, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	w := j.Stdout
	if w == nil {
		w = io.Discard
	}
	fmt.Fprintf(w, "%d failing rows; first %d:\n", total, min(total, MaxShownRows))
	fmt.Fprintln(w, strings.Join(cols, " | "))
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return total, err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = cell(v)
		}
		fmt.Fprintln(w, strings.Join(cells, " | "))
	}
	return total, fmt.Errorf("%w: %d failing rows", ErrExpectation, total)
}

func cell(v any) string {
	if v == nil {
		return "NULL"
	}
	s := fmt.Sprint(v)
	s = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// Seed turns the CSV at j.Source (with a header line) into the one output
// as Parquet, inferring column types. It returns the row count.
func Seed(ctx context.Context, j *Job) (int64, error) {
	if len(j.Outputs) != 1 {
		return 0, fmt.Errorf("a seed has one output, got %d", len(j.Outputs))
	}
	j2 := *j
	j2.Inputs = nil
	db, conn, err := j2.open(ctx)
	if err != nil {
		return 0, err
	}
	defer j.close(db, conn)
	return copyTo(ctx, conn, "SELECT * FROM read_csv("+quote(j.Source)+", header=true, auto_detect=true)", j.OutputFile(j.Outputs[0]))
}
