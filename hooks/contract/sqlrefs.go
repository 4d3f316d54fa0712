package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"unicode/utf8"
)

// CommandSQLRefs is the runner's first argument for plan-time SQL
// parsing: "<runner> sqlrefs --sources DIR --answer FILE [--gate]".
const CommandSQLRefs = "sqlrefs"

// Bounds of plan-time SQL parsing.
const (
	MaxSQLQueries = 4096     // queries in one request
	MaxSQLAnswer  = 16 << 20 // bytes of an encoded SQLAnswer
	MaxSQLMessage = 4 << 10  // bytes of one SQLParseError.Message
)

// SQLRefsArgs is the command line of CommandSQLRefs. The queries are the
// files of the folder Sources, named SQLSourceFile(0), SQLSourceFile(1),
// ... and nothing else, each the whole text of one model or expectation;
// the runner parses them all (nothing runs) and writes one SQLAnswer to
// Answer. With Gate, it starts its SQL engine, then waits for a line "go"
// on stdin before it looks at Sources (exec.Spec.Gate: the hook keeps a
// parser started ahead of the next plan and fills Sources when it comes).
type SQLRefsArgs struct {
	Sources string // folder of the queries
	Answer  string // file the SQLAnswer is written to
	Gate    bool
}

// SQLSourceFile is the name of query i in SQLRefsArgs.Sources.
func SQLSourceFile(i int) string { return fmt.Sprintf("%05d.sql", i) }

// Argv is a's command line after the runner's own path, starting with
// CommandSQLRefs.
func (a SQLRefsArgs) Argv() []string {
	argv := []string{CommandSQLRefs, "--sources", a.Sources, "--answer", a.Answer}
	if a.Gate {
		argv = append(argv, "--gate")
	}
	return argv
}

// ParseSQLRefsArgs parses the arguments after CommandSQLRefs.
func ParseSQLRefsArgs(args []string) (SQLRefsArgs, error) {
	var a SQLRefsArgs
	fs := flag.NewFlagSet(CommandSQLRefs, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.Sources, "sources", "", "folder of the queries")
	fs.StringVar(&a.Answer, "answer", "", "file to write the answer to")
	fs.BoolVar(&a.Gate, "gate", false, `wait for a line "go" on stdin before reading the queries`)
	if err := fs.Parse(args); err != nil {
		return a, fmt.Errorf("%w: %v", ErrArgs, err)
	}
	switch {
	case fs.NArg() > 0:
		return a, fmt.Errorf("%w: unexpected argument %q", ErrArgs, fs.Arg(0))
	case a.Sources == "" || a.Answer == "":
		return a, fmt.Errorf("%w: --sources and --answer are required", ErrArgs)
	}
	return a, nil
}

// SQLSources checks the names of the files in a SQLRefsArgs.Sources
// folder and returns how many queries it holds: the names must be exactly
// SQLSourceFile(0) to SQLSourceFile(n-1), 1 <= n <= MaxSQLQueries.
func SQLSources(names []string) (int, error) {
	if len(names) < 1 || len(names) > MaxSQLQueries {
		return 0, fmt.Errorf("%w: %d queries, want 1 to %d", ErrArgs, len(names), MaxSQLQueries)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	for i := range names {
		if !have[SQLSourceFile(i)] {
			return 0, fmt.Errorf("%w: the queries are not %s to %s", ErrArgs, SQLSourceFile(0), SQLSourceFile(len(names)-1))
		}
	}
	return len(names), nil
}

// SQLAnswer is what the runner answers to CommandSQLRefs: for each query,
// in order, what it reads or why the parser refused it. One JSON object
// and a newline, exactly as EncodeSQLAnswer writes it:
//
//	{"queries":[{"refs":[{"schema":"raw","table":"orders","offset":14}]},
//	            {"error":{"message":"syntax error at or near \"WHERE\"","offset":24}},
//	            {}]}
//
// (on one line; {} is a query that reads nothing). Offsets are byte
// offsets in the query, -1 where the parser gave none.
type SQLAnswer struct {
	Queries []SQLQuery `json:"queries"`
}

// SQLQuery is the answer for one query: Refs, or Error (never both).
type SQLQuery struct {
	Refs  []SQLRef       `json:"refs,omitempty"`
	Error *SQLParseError `json:"error,omitempty"`
}

// SQLRef is one thing a query reads: a table (Function empty; Catalog
// and Schema as written, possibly empty), or a table function (Function,
// lower case, and nothing else).
type SQLRef struct {
	Catalog  string `json:"catalog,omitempty"`
	Schema   string `json:"schema,omitempty"`
	Table    string `json:"table,omitempty"`
	Function string `json:"function,omitempty"`
	Offset   int    `json:"offset"`
}

// SQLParseError is a query the parser refused: its message (one at most
// MaxSQLMessage bytes long, not empty) and where.
type SQLParseError struct {
	Message string `json:"message"`
	Offset  int    `json:"offset"`
}

// ErrBadSQLAnswer is an SQLAnswer that is not exactly what
// EncodeSQLAnswer writes of a valid answer.
var ErrBadSQLAnswer = errors.New("contract: malformed SQL answer")

// CutSQLMessage makes s fit SQLParseError.Message: valid UTF-8 (invalid
// bytes become U+FFFD), at most MaxSQLMessage bytes (cut at a character
// boundary, ending in "..."), and not empty.
func CutSQLMessage(s string) string {
	s = string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
	if len(s) > MaxSQLMessage {
		cut := MaxSQLMessage - len("...")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	if s == "" {
		s = "the query does not parse"
	}
	return s
}

// check says what is wrong with a ("" if nothing).
func (a *SQLAnswer) check() string {
	if len(a.Queries) > MaxSQLQueries {
		return fmt.Sprintf("%d queries, more than %d", len(a.Queries), MaxSQLQueries)
	}
	for i, q := range a.Queries {
		if q.Error != nil {
			switch e := q.Error; {
			case len(q.Refs) > 0:
				return fmt.Sprintf("query %d has refs and an error", i)
			case e.Message == "" || len(e.Message) > MaxSQLMessage || !utf8.ValidString(e.Message):
				return fmt.Sprintf("query %d: error message empty, too long or not UTF-8", i)
			case e.Offset < -1:
				return fmt.Sprintf("query %d: offset %d", i, e.Offset)
			}
			continue
		}
		for j, r := range q.Refs {
			switch {
			case r.Offset < -1:
				return fmt.Sprintf("query %d ref %d: offset %d", i, j, r.Offset)
			case r.Function != "" && (r.Catalog != "" || r.Schema != "" || r.Table != ""):
				return fmt.Sprintf("query %d ref %d: a function with a table name", i, j)
			}
		}
	}
	return ""
}

// EncodeSQLAnswer is a's one encoding: compact JSON and a newline.
func EncodeSQLAnswer(a SQLAnswer) ([]byte, error) {
	if why := a.check(); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrBadSQLAnswer, why)
	}
	if a.Queries == nil {
		a.Queries = []SQLQuery{}
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSQLAnswer, err)
	}
	if len(b)+1 > MaxSQLAnswer {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadSQLAnswer, len(b)+1, MaxSQLAnswer)
	}
	return append(b, '\n'), nil
}

// ParseSQLAnswer reads the runner's answer to a request of n queries. It
// accepts exactly what EncodeSQLAnswer makes of a valid answer with n
// queries: anything else (too long, another field or spelling, a second
// value, a ref that is both a table and a function, another count) is an
// error wrapping ErrBadSQLAnswer.
func ParseSQLAnswer(b []byte, n int) (SQLAnswer, error) {
	var a SQLAnswer
	if len(b) > MaxSQLAnswer {
		return a, fmt.Errorf("%w: %d bytes, more than %d", ErrBadSQLAnswer, len(b), MaxSQLAnswer)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return SQLAnswer{}, fmt.Errorf("%w: %v", ErrBadSQLAnswer, err)
	}
	if len(a.Queries) != n {
		return SQLAnswer{}, fmt.Errorf("%w: %d answers for %d queries", ErrBadSQLAnswer, len(a.Queries), n)
	}
	canon, err := EncodeSQLAnswer(a)
	if err != nil {
		return SQLAnswer{}, err
	}
	if !bytes.Equal(canon, b) {
		return SQLAnswer{}, fmt.Errorf("%w: not in canonical form", ErrBadSQLAnswer)
	}
	return a, nil
}
