package pipeline

import "context"

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

// SQLParse is what parsing one query found: the things it reads, or why
// it is refused (Err, and then no Refs).
type SQLParse struct {
	Refs []SQLRef
	Err  *SQLError
}

// SQLParser parses the queries of a pipeline's SQL models and
// expectations, each of which must be exactly one SELECT, and says what
// each reads: one SQLParse per query, in order. It is called once per
// plan with every query, so that an implementation that starts a process
// (hooks runs weir-node in a sandbox: this package links no SQL engine)
// starts one per push, not one per query. Its error means the parser
// could not run at all; a query it refuses is an SQLParse.Err.
// Implementations must not execute anything.
type SQLParser interface {
	ParseSQL(ctx context.Context, queries []string) ([]SQLParse, error)
}
