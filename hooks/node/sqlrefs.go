package node

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/weir-dev/weir/hooks/contract"
)

// SQLRefsMain is "weir-node sqlrefs --sources DIR --answer FILE
// [--gate]" (contract.SQLRefsArgs): the planner's SQL parser, run by the
// pipeline hook in a sandbox, once per plan. It parses every query in DIR
// with DuckDB's parser (ParseSQL: nothing runs) and writes one
// contract.SQLAnswer to FILE. With --gate it opens DuckDB first, then
// waits for "go" on stdin. It returns the exit status: 0 answered, 1
// failed (the reason on stderr), 2 usage.
func SQLRefsMain(args []string, stdout, stderr io.Writer) int {
	a, err := contract.ParseSQLRefsArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "weir-node sqlrefs: %v\nusage: weir-node sqlrefs --sources DIR --answer FILE [--gate]\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	p, err := OpenParser(ctx)
	if err == nil {
		defer p.Close()
		if a.Gate {
			line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
			if strings.TrimSpace(line) != "go" {
				err = ErrNotReleased
			}
		}
	}
	var queries []string
	if err == nil {
		queries, err = readQueries(a.Sources)
	}
	var ans contract.SQLAnswer
	if err == nil {
		ans, err = p.Parse(ctx, queries)
	}
	if err == nil {
		var b []byte
		if b, err = contract.EncodeSQLAnswer(ans); err == nil {
			err = os.WriteFile(a.Answer, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "weir-node sqlrefs: %v\n", err)
		return 1
	}
	return 0
}

// readQueries reads the queries in dir (contract.SQLSources).
func readQueries(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	n, err := contract.SQLSources(names)
	if err != nil {
		return nil, err
	}
	queries := make([]string, n)
	for i := range queries {
		b, err := os.ReadFile(filepath.Join(dir, contract.SQLSourceFile(i)))
		if err != nil {
			return nil, err
		}
		queries[i] = string(b)
	}
	return queries, nil
}

// ParseSQL parses queries with a Parser of its own.
func ParseSQL(ctx context.Context, queries []string) (contract.SQLAnswer, error) {
	p, err := OpenParser(ctx)
	if err != nil {
		return contract.SQLAnswer{}, err
	}
	defer p.Close()
	return p.Parse(ctx, queries)
}

// Parser is DuckDB's parser: an in-memory DuckDB with external access
// disabled and its configuration locked, used for json_serialize_sql
// only. It is not safe for concurrent use.
type Parser struct {
	db   *sql.DB
	conn *sql.Conn
}

// OpenParser starts DuckDB for parsing.
func OpenParser(ctx context.Context) (*Parser, error) {
	// One thread: parsing runs nothing in parallel, and DuckDB would
	// otherwise start one per core of the machine.
	db, err := sql.Open("duckdb", "?threads=1")
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	p := &Parser{db: db, conn: conn}
	for _, q := range []string{
		"SET autoinstall_known_extensions=false",
		"SET autoload_known_extensions=false",
		"SET enable_external_access=false",
		"SET lock_configuration=true",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			p.Close()
			return nil, fmt.Errorf("duckdb %s: %w", q, err)
		}
	}
	return p, nil
}

// Close closes DuckDB.
func (p *Parser) Close() {
	p.conn.Close()
	p.db.Close()
}

// Parse parses each query, which must be exactly one SELECT, with
// DuckDB's own parser (json_serialize_sql), and says what each reads.
// Nothing is executed. A query the parser refuses is an answer
// (contract.SQLQuery.Error), not an error; the error is for a parser that
// cannot run.
func (p *Parser) Parse(ctx context.Context, queries []string) (contract.SQLAnswer, error) {
	ans := contract.SQLAnswer{Queries: make([]contract.SQLQuery, len(queries))}
	for i, q := range queries {
		var js string
		if err := p.conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", q).Scan(&js); err != nil {
			return contract.SQLAnswer{}, fmt.Errorf("parse sql: %w", err)
		}
		var err error
		if ans.Queries[i], err = refsFromJSON(js); err != nil {
			return contract.SQLAnswer{}, err
		}
	}
	return ans, nil
}

// refsFromJSON walks json_serialize_sql's output: the tables and table
// functions one SELECT reads (not its CTEs), or why it is refused.
func refsFromJSON(js string) (contract.SQLQuery, error) {
	var top struct {
		Error        bool              `json:"error"`
		ErrorMessage string            `json:"error_message"`
		Position     json.RawMessage   `json:"position"`
		Statements   []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &top); err != nil {
		return contract.SQLQuery{}, fmt.Errorf("parse sql: %w", err)
	}
	refused := func(off int, msg string) (contract.SQLQuery, error) {
		return contract.SQLQuery{Error: &contract.SQLParseError{Offset: off, Message: contract.CutSQLMessage(msg)}}, nil
	}
	if top.Error {
		off := -1
		var ps string
		if json.Unmarshal(top.Position, &ps) == nil {
			if n, err := strconv.Atoi(ps); err == nil {
				off = n
			}
		} else {
			var n int
			if json.Unmarshal(top.Position, &n) == nil {
				off = n
			}
		}
		if off < -1 {
			off = -1
		}
		msg := top.ErrorMessage
		if strings.Contains(msg, "Only SELECT") || strings.Contains(msg, "only SELECT") {
			msg = "not a SELECT: a model or expectation is one SELECT statement"
		}
		return refused(off, msg)
	}
	switch len(top.Statements) {
	case 0:
		return refused(-1, "no SELECT statement")
	case 1:
	default:
		return refused(-1, fmt.Sprintf("%d statements: a model or expectation is one SELECT statement", len(top.Statements)))
	}
	var tree any
	if err := json.Unmarshal(top.Statements[0], &tree); err != nil {
		return contract.SQLQuery{}, fmt.Errorf("parse sql: %w", err)
	}
	ctes := map[string]bool{}
	var refs []contract.SQLRef
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if cm, ok := x["cte_map"].(map[string]any); ok {
				if entries, ok := cm["map"].([]any); ok {
					for _, e := range entries {
						if em, ok := e.(map[string]any); ok {
							if k, ok := em["key"].(string); ok {
								ctes[strings.ToLower(k)] = true
							}
						}
					}
				}
			}
			off := -1
			if f, ok := x["query_location"].(float64); ok && f >= 0 && f < 1e12 {
				off = int(f)
			}
			switch x["type"] {
			case "BASE_TABLE":
				r := contract.SQLRef{Offset: off}
				r.Catalog, _ = x["catalog_name"].(string)
				r.Schema, _ = x["schema_name"].(string)
				r.Table, _ = x["table_name"].(string)
				refs = append(refs, r)
			case "TABLE_FUNCTION":
				if fn, ok := x["function"].(map[string]any); ok {
					name, _ := fn["function_name"].(string)
					refs = append(refs, contract.SQLRef{Function: strings.ToLower(name), Offset: off})
				}
			}
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(tree)
	out := refs[:0]
	for _, r := range refs {
		if r.Function == "" && r.Catalog == "" && r.Schema == "" && ctes[strings.ToLower(r.Table)] {
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return contract.SQLQuery{}, nil
	}
	// In the order the query names them (the walk visits JSON objects in
	// no particular order): a table named twice is recorded where it is
	// first named.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return contract.SQLQuery{Refs: out}, nil
}
