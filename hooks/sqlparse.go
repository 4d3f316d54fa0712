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
	"sync"
	"time"

	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// Where a parser sandbox finds the queries and leaves its answer.
const (
	sqlInput  = "_sql"
	sqlAnswer = "sqlrefs.json"
)

// DefaultSQLIdle is how long SandboxSQL keeps a parser started ahead of
// the next plan.
const DefaultSQLIdle = 10 * time.Minute

// SandboxSQL is the planner's SQL parser (pipeline.SQLParser) of the
// pipeline hook: the server never parses pushed SQL itself and links no
// SQL engine. Each plan's queries are parsed by the runner's sqlrefs
// command (weir-node, contract.SQLRefsArgs) in one sandbox of Runner,
// like a node's: no network, the queries as read-only files under /in,
// the answer (contract.SQLAnswer) in /out, the limits below. The answer
// is read with contract.ParseSQLAnswer, which accepts nothing but a valid
// answer for exactly these queries; what a hostile answer could still say
// (that a model reads other tables) is what a Python model may declare,
// and the planner checks it the same way.
//
// With a Runner that can prepare sandboxes (*exec.Sandboxes), a plan
// need not wait for a sandbox and a runner to start: after each push
// (StartAhead) SandboxSQL prepares one parser sandbox, its runner started
// and waiting for its queries (exec.Spec.Gate; weir-node waits in about
// 35 MB), for the next plan. One that waits longer than Idle is closed.
// Close closes it for good.
// It is safe for concurrent use: concurrent plans that find none waiting
// start their own.
type SandboxSQL struct {
	Runner exec.Runner
	// WorkDir holds the queries and the answer of each parser sandbox, in
	// a folder of its own, while it lives.
	WorkDir string
	// Limits bound the sandbox; zero fields take the Runner's defaults.
	// Its output is bounded by contract.MaxSQLAnswer whatever they say.
	Limits exec.Limits
	// Idle is how long a parser started ahead waits for a plan (0:
	// DefaultSQLIdle; negative: none is started ahead).
	Idle time.Duration

	mu      sync.Mutex
	parsed  bool           // ParseSQL was called: StartAhead starts one
	waiting *parserSandbox // started ahead, not yet used
	filling bool           // one is being started ahead
	closed  bool
	bg      sync.WaitGroup // starts ahead in flight
	idle    *time.Timer    // closes waiting
}

var _ pipeline.SQLParser = (*SandboxSQL)(nil)

// ErrSQLParser is a parser sandbox that gave no valid answer.
var ErrSQLParser = errors.New("hooks: SQL parser")

// parserSandbox is one parser: its folder, and its sandbox when prepared
// ahead.
type parserSandbox struct {
	dir      string // removed by done
	src, out string // bound at /in/_sql and /out
	spec     exec.Spec
	prepared *exec.Prepared // nil: run with Runner.Run
	cancel   context.CancelFunc
}

// done closes what p holds.
func (p *parserSandbox) done() {
	if p.prepared != nil {
		p.prepared.Close() // nothing if it ran
	}
	if p.cancel != nil {
		p.cancel()
	}
	os.RemoveAll(p.dir)
}

// ParseSQL parses queries in one sandbox: the one started ahead, if one
// waits, else one of its own. A parser started ahead that failed (it may
// have died while it waited) is replaced by one of its own, once.
func (s *SandboxSQL) ParseSQL(ctx context.Context, queries []string) ([]pipeline.SQLParse, error) {
	s.mu.Lock()
	s.parsed = true
	s.mu.Unlock()
	if p := s.take(); p != nil {
		got, err := s.parseIn(ctx, p, queries)
		if err == nil || ctx.Err() != nil {
			return got, err
		}
	}
	p, err := s.start(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSQLParser, err)
	}
	return s.parseIn(ctx, p, queries)
}

// parseIn parses queries in p, and closes p.
func (s *SandboxSQL) parseIn(ctx context.Context, p *parserSandbox, queries []string) ([]pipeline.SQLParse, error) {
	defer p.done()
	for i, q := range queries {
		if err := os.WriteFile(filepath.Join(p.src, contract.SQLSourceFile(i)), []byte(q), 0o644); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSQLParser, err)
		}
	}
	var res *exec.Result
	var err error
	if p.prepared != nil {
		res, err = p.prepared.Run(ctx)
	} else {
		res, err = s.Runner.Run(ctx, p.spec)
	}
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
	b, err := readBounded(filepath.Join(p.out, sqlAnswer), contract.MaxSQLAnswer)
	if err != nil {
		return nil, fmt.Errorf("%w: no answer: %v", ErrSQLParser, err)
	}
	ans, err := contract.ParseSQLAnswer(b, len(queries))
	if err != nil {
		return nil, fmt.Errorf("%w: %v; weir-node must come from the same build as weir", ErrSQLParser, err)
	}
	return FromSQLAnswer(ans), nil
}

// take returns the parser started ahead, if there is one.
func (s *SandboxSQL) take() *parserSandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.waiting
	s.waiting = nil
	if s.idle != nil {
		s.idle.Stop()
	}
	return p
}

// start makes a parser's folders and spec and, with a Runner that can
// prepare, prepares its sandbox: gated when ahead (its runner starts now
// and waits for "go"), under a context of its own that done cancels.
func (s *SandboxSQL) start(ctx context.Context, ahead bool) (*parserSandbox, error) {
	if err := os.MkdirAll(s.WorkDir, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.WorkDir, "sql-")
	if err != nil {
		return nil, err
	}
	p := &parserSandbox{dir: dir, src: filepath.Join(dir, "src"), out: filepath.Join(dir, "out")}
	for _, d := range []string{p.src, p.out} {
		// The sandbox's uid reads the queries.
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	pr, canPrepare := s.Runner.(preparer)
	args := contract.SQLRefsArgs{
		Sources: exec.InputsDir + "/" + sqlInput,
		Answer:  exec.OutputDir + "/" + sqlAnswer,
		Gate:    canPrepare && ahead,
	}
	lim := s.Limits
	lim.CPU = 1 // DuckDB's parser is one thread
	lim.OutputBytes = contract.MaxSQLAnswer
	var id [4]byte
	_, _ = rand.Read(id[:])
	p.spec = exec.Spec{
		ID:            "sql-" + hex.EncodeToString(id[:]),
		Args:          append([]string{exec.RunnerPath}, args.Argv()...),
		Env:           []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"},
		Inputs:        map[string]string{sqlInput: p.src},
		Output:        p.out,
		Weir:          true,
		Limits:        lim,
		Gate:          args.Gate,
		AsyncTeardown: true,
	}
	if canPrepare {
		pctx := ctx
		if ahead {
			pctx, p.cancel = context.WithCancel(context.Background())
		}
		if p.prepared, err = pr.Prepare(pctx, p.spec); err != nil {
			p.done()
			return nil, err
		}
	}
	return p, nil
}

// StartAhead starts the next plan's parser in the background: its
// sandbox, its runner and DuckDB, which then wait for the plan's queries.
// It does nothing before the first plan that parsed SQL (a server without
// pipelines keeps nothing started), when one is waiting or starting, after
// Close, or when the Runner cannot prepare sandboxes. The hook calls it
// when a push has been decided: starting ahead then leaves the machine to
// the push's own nodes.
func (s *SandboxSQL) StartAhead() {
	if _, ok := s.Runner.(preparer); !ok || s.Idle < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.parsed || s.closed || s.waiting != nil || s.filling {
		return
	}
	s.filling = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		p, err := s.start(context.Background(), true)
		if err != nil {
			s.mu.Lock()
			s.filling = false
			s.mu.Unlock()
			return // the next plan starts its own
		}
		if !s.keep(p) {
			p.done()
		}
	}()
}

// keep makes p the parser waiting for the next plan, and reports whether
// it did (not when closed, or when one waits already).
func (s *SandboxSQL) keep(p *parserSandbox) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filling = false
	if s.closed || s.waiting != nil {
		return false
	}
	s.waiting = p
	idle := s.Idle
	if idle == 0 {
		idle = DefaultSQLIdle
	}
	if s.idle == nil {
		s.idle = time.AfterFunc(idle, s.dropIdle)
	} else {
		s.idle.Reset(idle)
	}
	return true
}

// dropIdle closes the parser that waited too long.
func (s *SandboxSQL) dropIdle() {
	if p := s.take(); p != nil {
		p.done()
	}
}

// Close closes the parser started ahead and stops starting more. Plans
// still parsing finish; later ones start their own sandbox.
func (s *SandboxSQL) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.bg.Wait()
	if p := s.take(); p != nil {
		p.done()
	}
	return nil
}

// FromSQLAnswer is the planner's view of a runner's answer (also what
// bench/pipeline's in-process parser hands the planner).
func FromSQLAnswer(a contract.SQLAnswer) []pipeline.SQLParse {
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

// startSQLAhead lets the SQL parser start the next plan's parser (see
// SandboxSQL.StartAhead) once a push has been decided.
func (h *Pipeline) startSQLAhead() {
	if a, ok := h.cfg.SQL.(interface{ StartAhead() }); ok {
		a.StartAhead()
	}
}

// Close releases what the hook keeps between pushes: the SQL parser
// started ahead (when SQL is a SandboxSQL, or any io.Closer). Call it
// before closing the Runner; pushes still running finish.
func (h *Pipeline) Close() error {
	if c, ok := h.cfg.SQL.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
