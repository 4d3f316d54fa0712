package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver
)

// SQLRef is one thing a query reads: a table, or a table function.
type SQLRef struct {
	Catalog, Schema, Table string // for a table
	Function               string // for a table function ("read_csv")
	Offset                 int    // byte offset in the query; -1 if unknown
}

// SQLError is a query the parser refused.
type SQLError struct {
	Offset int // byte offset in the query; -1 if unknown
	Msg    string
}

func (e *SQLError) Error() string { return e.Msg }

// SQLParser parses one SELECT and says what it reads. Implementations must
// not execute anything.
type SQLParser interface {
	Refs(ctx context.Context, query string) ([]SQLRef, error)
}

// DuckDB parses SQL with DuckDB's own parser (json_serialize_sql) in an
// in-memory database with external access disabled. It is safe for
// concurrent use.
type DuckDB struct {
	once sync.Once
	db   *sql.DB
	err  error
}

func (d *DuckDB) open() {
	d.db, d.err = sql.Open("duckdb", "")
	if d.err != nil {
		return
	}
	for _, q := range []string{
		"SET autoinstall_known_extensions=false",
		"SET autoload_known_extensions=false",
		"SET enable_external_access=false",
		"SET lock_configuration=true",
	} {
		if _, err := d.db.Exec(q); err != nil {
			d.err = fmt.Errorf("pipeline: duckdb %s: %w", q, err)
			return
		}
	}
}

// Close releases the DuckDB database.
func (d *DuckDB) Close() error {
	if d.db != nil {
		return d.db.Close()
	}
	return nil
}

// Refs parses query, which must be exactly one SELECT statement.
func (d *DuckDB) Refs(ctx context.Context, query string) ([]SQLRef, error) {
	d.once.Do(d.open)
	if d.err != nil {
		return nil, d.err
	}
	var js string
	if err := d.db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&js); err != nil {
		return nil, fmt.Errorf("pipeline: parse sql: %w", err)
	}
	return refsFromJSON(js)
}

// refsFromJSON walks json_serialize_sql's output.
func refsFromJSON(js string) ([]SQLRef, error) {
	var top struct {
		Error        bool              `json:"error"`
		ErrorMessage string            `json:"error_message"`
		Position     json.RawMessage   `json:"position"`
		Statements   []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &top); err != nil {
		return nil, fmt.Errorf("pipeline: parse sql: %w", err)
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
		msg := top.ErrorMessage
		if strings.Contains(msg, "Only SELECT") || strings.Contains(msg, "only SELECT") {
			msg = "not a SELECT: a model or expectation is one SELECT statement"
		}
		return nil, &SQLError{Offset: off, Msg: msg}
	}
	switch len(top.Statements) {
	case 0:
		return nil, &SQLError{Offset: -1, Msg: "no SELECT statement"}
	case 1:
	default:
		return nil, &SQLError{Offset: -1, Msg: fmt.Sprintf("%d statements: a model or expectation is one SELECT statement", len(top.Statements))}
	}
	var tree any
	if err := json.Unmarshal(top.Statements[0], &tree); err != nil {
		return nil, fmt.Errorf("pipeline: parse sql: %w", err)
	}
	ctes := map[string]bool{}
	var refs []SQLRef
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
			if f, ok := x["query_location"].(float64); ok && f < 1e12 {
				off = int(f)
			}
			switch x["type"] {
			case "BASE_TABLE":
				r := SQLRef{Offset: off}
				r.Catalog, _ = x["catalog_name"].(string)
				r.Schema, _ = x["schema_name"].(string)
				r.Table, _ = x["table_name"].(string)
				refs = append(refs, r)
			case "TABLE_FUNCTION":
				if fn, ok := x["function"].(map[string]any); ok {
					name, _ := fn["function_name"].(string)
					refs = append(refs, SQLRef{Function: strings.ToLower(name), Offset: off})
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
	return out, nil
}
