package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// CommandQuery is the runner's first argument for "weir query":
// "<runner> query --request FILE [--result-fd FD]".
const CommandQuery = "query"

// MaxQueryRequest bounds an encoded QueryRequest.
const MaxQueryRequest = 64 << 20

// QueryArgs is the command line of CommandQuery. The runner reads the
// QueryRequest in Request, prints the answer on stdout (tab-separated
// values with a header line) and nothing else there. With ResultFD, its
// verdict is one Result on that descriptor (Failed says why the query
// failed) and it prints nothing on stderr, which a sandbox merges into
// stdout; without, it prints "weir query: <why>" on stderr and exits 1.
type QueryArgs struct {
	Request  string
	ResultFD int // NoResult for none
}

// Argv is a's command line after the runner's own path, starting with
// CommandQuery.
func (a QueryArgs) Argv() []string {
	argv := []string{CommandQuery, "--request", a.Request}
	if a.ResultFD != NoResult {
		argv = append(argv, "--result-fd", strconv.Itoa(a.ResultFD))
	}
	return argv
}

// ParseQueryArgs parses the arguments after CommandQuery.
func ParseQueryArgs(args []string) (QueryArgs, error) {
	a := QueryArgs{ResultFD: NoResult}
	fs := flag.NewFlagSet(CommandQuery, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.Request, "request", "", "the request file")
	fs.IntVar(&a.ResultFD, "result-fd", NoResult, "descriptor to write the result on")
	if err := fs.Parse(args); err != nil {
		return a, fmt.Errorf("%w: %v", ErrArgs, err)
	}
	switch {
	case fs.NArg() > 0:
		return a, fmt.Errorf("%w: unexpected argument %q", ErrArgs, fs.Arg(0))
	case a.Request == "":
		return a, fmt.Errorf("%w: --request is required", ErrArgs)
	case a.ResultFD != NoResult && a.ResultFD < 3:
		return a, fmt.Errorf("%w: --result-fd %d is stdin, stdout or stderr", ErrArgs, a.ResultFD)
	}
	return a, nil
}

// QueryRequest is one read-only query over a repo's tables at one data
// commit, as weir hands it to the runner (one JSON object):
//
//	{"sql":"SELECT ...","max_rows":10000,"timeout_ns":60000000000,"memory":"1GB",
//	 "tables":[{"name":"main.revenue","files":[{"path":"/in/t0/00000.parquet",
//	            "name":"main/revenue/data/00000-0-....parquet"}]}]}
//
// Path is where the runner finds a file (inside a sandbox, under /in);
// Name is how answers and errors name it: a location relative to the
// repo, never a path of the server.
type QueryRequest struct {
	SQL     string        `json:"sql"`
	MaxRows int           `json:"max_rows"`
	Timeout time.Duration `json:"timeout_ns"`
	Memory  string        `json:"memory"` // DuckDB's memory_limit ("" = the runner's default)
	Tables  []QueryTable  `json:"tables"`
}

// QueryTable is one table of a QueryRequest: "ns.table" and its Parquet
// files.
type QueryTable struct {
	Name  string      `json:"name"`
	Files []QueryFile `json:"files"`
}

// QueryFile is one Parquet file of a QueryTable.
type QueryFile struct {
	Path string `json:"path"`
	Name string `json:"name"`
}

// ErrBadQueryRequest is a request the runner cannot read.
var ErrBadQueryRequest = errors.New("contract: malformed query request")

// EncodeQueryRequest is r as the runner reads it.
func EncodeQueryRequest(r QueryRequest) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadQueryRequest, err)
	}
	if len(b) > MaxQueryRequest {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadQueryRequest, len(b), MaxQueryRequest)
	}
	return append(b, '\n'), nil
}

// ParseQueryRequest reads a request: one JSON object with no unknown
// field and nothing after it, at most MaxQueryRequest bytes, with a query
// and no negative bound.
func ParseQueryRequest(b []byte) (QueryRequest, error) {
	var r QueryRequest
	if len(b) > MaxQueryRequest {
		return r, fmt.Errorf("%w: %d bytes, more than %d", ErrBadQueryRequest, len(b), MaxQueryRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return QueryRequest{}, fmt.Errorf("%w: %v", ErrBadQueryRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return QueryRequest{}, fmt.Errorf("%w: more than one value", ErrBadQueryRequest)
	}
	if r.SQL == "" || r.MaxRows < 0 || r.Timeout < 0 {
		return QueryRequest{}, fmt.Errorf("%w: no query, or a negative bound", ErrBadQueryRequest)
	}
	return r, nil
}
