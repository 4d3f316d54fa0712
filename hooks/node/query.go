package node

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/weir-dev/weir/hooks/contract"
)

// QueryOptions bound a read-only query.
type QueryOptions struct {
	MaxRows int           // rows printed at most (default 10,000)
	Timeout time.Duration // default 60 s
	Memory  string        // DuckDB memory_limit (default "1GB")
}

// QueryFile is one Parquet file of a table, for Query.
type QueryFile struct {
	Path string // where the file is on this machine: opened by Query, never shown
	Name string // how answers and errors name the file (a location relative to the repo)
}

// Query runs one SELECT over tables (ns.table -> its Parquet files) and
// writes the result to w as tab-separated values with a header line. It
// runs in the caller's process, so it is locked down harder than a node:
// each table is a view over its exact files, the only paths DuckDB may
// then open (allowed_paths) are those files, external access is disabled,
// the configuration is locked, and anything but one SELECT is refused
// before it runs.
//
// Nothing it answers shows a path of this machine: Query opens each file
// itself and DuckDB reads it as /proc/self/fd/<n> (so view definitions,
// settings and errors carry no server path), DuckDB's home, extension and
// secret folders are blanked, and errors name files by QueryFile.Name.
func Query(ctx context.Context, tables map[string][]QueryFile, q string, w io.Writer, o QueryOptions) (err error) {
	if o.MaxRows <= 0 {
		o.MaxRows = 10000
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Memory == "" {
		o.Memory = "1GB"
	}
	names := make([]string, 0, len(tables))
	for t := range tables {
		names = append(names, t)
	}
	sort.Strings(names)
	// Each file open for the whole query, named by its descriptor. They
	// are closed last, after DuckDB (deferred first).
	var open []*os.File
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	fdName := map[string]string{}
	paths := map[string][]string{}
	for _, t := range names {
		for i, qf := range tables[t] {
			name := qf.Name
			if name == "" {
				name = fmt.Sprintf("%s file %d", t, i+1)
			}
			f, err := os.Open(qf.Path)
			if err != nil {
				return fmt.Errorf("table %s: open %s: %w", t, name, errors.Unwrap(err))
			}
			open = append(open, f)
			p := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
			fdName[p] = name
			paths[t] = append(paths[t], p)
		}
	}
	defer func() {
		if err != nil {
			err = errors.New(fdRE.ReplaceAllStringFunc(err.Error(), func(p string) string {
				if n, ok := fdName[p]; ok {
					return n
				}
				return "(a file)"
			}))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	db, err := sql.Open("duckdb", "?threads=2") // as SET below, from the start
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	exec := func(s string) error {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		return nil
	}
	for _, s := range []string{
		"SET autoinstall_known_extensions=false",
		"SET autoload_known_extensions=false",
		"SET allow_persistent_secrets=false",
		"SET home_directory=''",
		"SET extension_directory='weir-none'",
		"SET secret_directory='weir-none'",
		"SET threads=2",
		"SET memory_limit=" + quote(o.Memory),
	} {
		if err := exec(s); err != nil {
			return err
		}
	}
	schemas := map[string]bool{}
	var allowed []string
	for _, t := range names {
		// The namespace may be nested ("sales.eu.orders" is view orders
		// in schema "sales.eu"): the name is after the last dot.
		i := strings.LastIndexByte(t, '.')
		if i < 0 {
			return fmt.Errorf("table %q is not ns.table", t)
		}
		ns, name := t[:i], t[i+1:]
		if !schemas[ns] {
			schemas[ns] = true
			if err := exec("CREATE SCHEMA IF NOT EXISTS " + ident(ns)); err != nil {
				return err
			}
		}
		var files []string
		for _, p := range paths[t] {
			files = append(files, quote(p))
			allowed = append(allowed, quote(p))
		}
		if len(files) == 0 {
			continue
		}
		// The error names the table, not the statement: DuckDB's context
		// lines would quote it, cut at any length.
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE VIEW %s.%s AS SELECT * FROM read_parquet([%s])", ident(ns), ident(name), strings.Join(files, ","))); err != nil {
			msg, _, _ := strings.Cut(err.Error(), "\n\nLINE ")
			return fmt.Errorf("table %s cannot be read: %s", t, msg)
		}
	}
	for _, s := range []string{
		"SET allowed_directories=[]",
		"SET allowed_paths=[" + strings.Join(allowed, ",") + "]",
		"SET enable_external_access=false",
		"SET lock_configuration=true",
	} {
		if err := exec(s); err != nil {
			return err
		}
	}
	q = strings.TrimRight(q, " \t\r\n;")
	if err := checkOneSelect(ctx, conn, q); err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, "SELECT * FROM ("+q+"\n) LIMIT "+fmt.Sprint(o.MaxRows+1))
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, strings.Join(cols, "\t"))
	// A DATE scans as a time.Time at midnight UTC: printed as the date.
	dates := make([]bool, len(cols))
	if cts, err := rows.ColumnTypes(); err == nil && len(cts) == len(cols) {
		for i, ct := range cts {
			dates[i] = ct.DatabaseTypeName() == "DATE"
		}
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if n == o.MaxRows {
			fmt.Fprintf(w, "(more than %d rows; add a LIMIT)\n", o.MaxRows)
			break
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			if t, ok := v.(time.Time); ok && dates[i] {
				v = t.Format(time.DateOnly)
			}
			cells[i] = tsvCell(v)
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
		n++
	}
	return rows.Err()
}

// fdRE matches the names Query gives DuckDB for its files.
var fdRE = regexp.MustCompile(`/proc/self/fd/[0-9]+`)

func tsvCell(v any) string {
	if v == nil {
		return "NULL"
	}
	var s string
	switch x := v.(type) {
	case []byte:
		s = string(x)
	case time.Time:
		s = x.Format(time.RFC3339Nano)
	default:
		s = fmt.Sprint(x)
	}
	return strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`, `\`, `\\`).Replace(s)
}

// QueryMain is "weir-node query --request FILE [--result-fd FD]"
// (contract.QueryArgs): Query run on the contract.QueryRequest in FILE,
// its answer on stdout. With --result-fd (weir query over SSH, in a
// sandbox whose stderr is merged into stdout) the verdict is one
// contract.Result on that descriptor, kept from the query the way Main
// keeps a node's (claimResult), and nothing is printed on stderr; without
// (weir query --data, a plain process) a failure is printed on stderr as
// "weir query: <why>". It returns the exit status: 0 answered, 1 failed,
// 2 usage.
func QueryMain(args []string, stdout, stderr io.Writer) int {
	a, err := contract.ParseQueryArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "weir-node query: %v\nusage: weir-node query --request FILE [--result-fd FD]\n", err)
		return 2
	}
	var result *os.File
	if a.ResultFD != contract.NoResult {
		if result, err = claimResult(a.ResultFD); err != nil {
			fmt.Fprintf(stderr, "weir-node query: result descriptor %d: %v\n", a.ResultFD, err)
			return 2
		}
		defer result.Close()
	}
	err = runQuery(a.Request, stdout)
	if result != nil {
		res := contract.OK()
		if err != nil {
			res = contract.Failed(err.Error())
		}
		b, werr := res.Encode()
		if werr == nil {
			_, werr = result.Write(b)
		}
		if werr != nil {
			return 1
		}
	} else if err != nil {
		fmt.Fprintf(stderr, "weir query: %v\n", err)
	}
	if err != nil {
		return 1
	}
	return 0
}

// runQuery runs the request in file, writing the answer to w.
func runQuery(file string, w io.Writer) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read the request: %w", errors.Unwrap(err))
	}
	req, err := contract.ParseQueryRequest(b)
	if err != nil {
		return err
	}
	tables := make(map[string][]QueryFile, len(req.Tables))
	for _, t := range req.Tables {
		files := make([]QueryFile, 0, len(t.Files))
		for _, f := range t.Files {
			files = append(files, QueryFile{Path: f.Path, Name: f.Name})
		}
		tables[t.Name] = files
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	bw := bufio.NewWriter(w)
	err = Query(ctx, tables, req.SQL, bw, QueryOptions{MaxRows: req.MaxRows, Timeout: req.Timeout, Memory: req.Memory})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}
