package hooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// Where SandboxSQL's sandbox finds the queries and leaves its answer.
const (
	sqlInput  = "_sql"
	sqlAnswer = "sqlrefs.json"
)

// SandboxSQL is the planner's SQL parser (pipeline.SQLParser) of the
// pipeline hook: the server never parses pushed SQL itself and links no
// SQL engine. For each plan it runs the runner's sqlrefs command
// (weir-node, contract.SQLRefsArgs) in one sandbox of Runner, like a
// node's: no network, the queries as read-only files under /in, the
// answer (contract.SQLAnswer) in /out, the limits below. The answer is
// read with contract.ParseSQLAnswer, which accepts nothing but a valid
// answer for exactly these queries; what a hostile answer could still say
// (that a model reads other tables) is what a Python model may declare,
// and the planner checks it the same way.
type SandboxSQL struct {
	Runner exec.Runner
	// WorkDir holds, for the length of one call, the queries and the
	// answer (a folder of its own per call).
	WorkDir string
	// Limits bound the sandbox; zero fields take the Runner's defaults.
	// Its output is bounded by contract.MaxSQLAnswer whatever they say.
	Limits exec.Limits
}

var _ pipeline.SQLParser = (*SandboxSQL)(nil)

// ErrSQLParser is a parser sandbox that gave no valid answer.
var ErrSQLParser = errors.New("hooks: SQL parser")

// ParseSQL parses queries in one sandbox.
func (s *SandboxSQL) ParseSQL(ctx context.Context, queries []string) ([]pipeline.SQLParse, error) {
	if err := os.MkdirAll(s.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSQLParser, err)
	}
	dir, err := os.MkdirTemp(s.WorkDir, "sql-")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSQLParser, err)
	}
	defer os.RemoveAll(dir)
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	for _, d := range []string{src, out} {
		// The sandbox's uid reads the queries.
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSQLParser, err)
		}
	}
	for i, q := range queries {
		if err := os.WriteFile(filepath.Join(src, contract.SQLSourceFile(i)), []byte(q), 0o644); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSQLParser, err)
		}
	}
	args := contract.SQLRefsArgs{
		Sources: exec.InputsDir + "/" + sqlInput,
		Count:   len(queries),
		Answer:  exec.OutputDir + "/" + sqlAnswer,
	}
	lim := s.Limits
	lim.CPU = 1 // DuckDB's parser is one thread
	lim.OutputBytes = contract.MaxSQLAnswer
	var id [4]byte
	_, _ = rand.Read(id[:])
	res, err := s.Runner.Run(ctx, exec.Spec{
		ID:            "sql-" + hex.EncodeToString(id[:]),
		Args:          append([]string{exec.RunnerPath}, args.Argv()...),
		Env:           []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"},
		Inputs:        map[string]string{sqlInput: src},
		Output:        out,
		Weir:          true,
		Limits:        lim,
		AsyncTeardown: true,
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrSQLParser, err)
	case res.Reason == exec.ReasonAborted && ctx.Err() != nil:
		return nil, ctx.Err()
	case res.Reason != exec.ReasonOK:
		why := res.Message
		for _, l := range lastLines(res.Output, 1) {
			why += ": " + clipLine(l, 200)
		}
		return nil, fmt.Errorf("%w failed: %s", ErrSQLParser, why)
	}
	b, err := readBounded(filepath.Join(out, sqlAnswer), contract.MaxSQLAnswer)
	if err != nil {
		return nil, fmt.Errorf("%w: no answer: %v", ErrSQLParser, err)
	}
	ans, err := contract.ParseSQLAnswer(b, len(queries))
	if err != nil {
		return nil, fmt.Errorf("%w: %v; weir-node must come from the same build as weir", ErrSQLParser, err)
	}
	return fromSQLAnswer(ans), nil
}

// fromSQLAnswer is the planner's view of a runner's answer.
func fromSQLAnswer(a contract.SQLAnswer) []pipeline.SQLParse {
	out := make([]pipeline.SQLParse, len(a.Queries))
	for i, q := range a.Queries {
		if q.Error != nil {
			out[i].Err = &pipeline.SQLError{Offset: q.Error.Offset, Msg: q.Error.Message}
			continue
		}
		for _, r := range q.Refs {
			out[i].Refs = append(out[i].Refs, pipeline.SQLRef{
				Catalog: r.Catalog, Schema: r.Schema, Table: r.Table, Function: r.Function, Offset: r.Offset,
			})
		}
	}
	return out
}

// readBounded reads file, refusing one of more than max bytes.
func readBounded(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("more than %d bytes", max)
	}
	return b, nil
}
