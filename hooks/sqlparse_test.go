package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// fakeRunner stands in for the sandboxes: it checks the parser's spec,
// reads the queries it was given and leaves answer in /out.
type fakeRunner struct {
	t       *testing.T
	answer  func(queries []string) string // what the "runner" writes
	result  exec.Result
	queries []string
}

func (f *fakeRunner) Run(_ context.Context, spec exec.Spec) (*exec.Result, error) {
	t := f.t
	want := append([]string{exec.RunnerPath}, contract.SQLRefsArgs{Sources: "/in/_sql", Answer: "/out/sqlrefs.json"}.Argv()...)
	if !reflect.DeepEqual(spec.Args, want) || !spec.Weir || spec.Report || spec.Gate || len(spec.Inputs) != 1 ||
		spec.Limits.CPU != 1 || spec.Limits.OutputBytes != contract.MaxSQLAnswer || spec.Limits.Wall != time.Minute {
		t.Errorf("parser spec %+v", spec)
	}
	for _, e := range spec.Env {
		if strings.HasPrefix(e, "WEIR_PARAM_") {
			t.Errorf("parser env %q", e)
		}
	}
	ents, err := os.ReadDir(spec.Inputs[sqlInput])
	if err != nil {
		t.Fatal(err)
	}
	f.queries = nil
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(spec.Inputs[sqlInput], e.Name()))
		f.queries = append(f.queries, string(b))
	}
	if a := f.answer(f.queries); a != "" {
		if err := os.WriteFile(filepath.Join(spec.Output, sqlAnswer), []byte(a), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := f.result
	return &res, nil
}

// TestSandboxSQLAnswers: what the parser sandbox answers reaches the
// planner only as a valid answer for exactly the queries asked; anything
// else (no answer, a malformed one, one for other queries, a sandbox that
// failed) is an ErrSQLParser, and nothing of it is left in WorkDir.
func TestSandboxSQLAnswers(t *testing.T) {
	queries := []string{"SELECT * FROM raw.orders", "SELECT a,\nFROM WHERE"}
	good := `{"queries":[{"refs":[{"schema":"raw","table":"orders","offset":14}]},{"error":{"message":"syntax error at or near \"WHERE\"","offset":15}}]}` + "\n"
	ok := exec.Result{Reason: exec.ReasonOK}
	for _, tc := range []struct {
		name   string
		answer string
		result exec.Result
		err    string // "" for success
	}{
		{"good", good, ok, ""},
		{"no answer", "", ok, "no answer"},
		{"malformed", `{"queries":[{"refs":[{"table":"a","function":"f","offset":1}]},{}]}` + "\n", ok, "malformed SQL answer: query 0 ref 0: a function with a table name; weir-node must come from the same build as weir"},
		{"too few", `{"queries":[{}]}` + "\n", ok, "1 answers for 2 queries"},
		{"not canonical", strings.Replace(good, `"offset":14`, `"offset": 14`, 1), ok, "not in canonical form"},
		{"sandbox failed", good, exec.Result{Reason: exec.ReasonMemory, Message: "out of memory (limit 2.0 GiB)", Output: []byte("loading\nweir-node sqlrefs: boom\n")},
			"hooks: SQL parser failed: out of memory (limit 2.0 GiB): weir-node sqlrefs: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			f := &fakeRunner{t: t, answer: func([]string) string { return tc.answer }, result: tc.result}
			s := &SandboxSQL{Runner: f, WorkDir: work, Limits: exec.Limits{Wall: time.Minute}}
			got, err := s.ParseSQL(context.Background(), queries)
			if !slices.Equal(f.queries, queries) {
				t.Errorf("the sandbox got %q, want %q", f.queries, queries)
			}
			if left, _ := os.ReadDir(work); len(left) > 0 {
				t.Errorf("left in WorkDir: %v", left)
			}
			if tc.err != "" {
				if !errors.Is(err, ErrSQLParser) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrSQLParser with %q", err, tc.err)
				}
				return
			}
			want := []pipeline.SQLParse{
				{Refs: []pipeline.SQLRef{{Schema: "raw", Table: "orders", Offset: 14}}},
				{Err: &pipeline.SQLError{Offset: 15, Msg: `syntax error at or near "WHERE"`}},
			}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseSQL = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

// countingSandboxes counts the parser sandboxes prepared ahead (gated)
// and when the plan needs them.
type countingSandboxes struct {
	*exec.Sandboxes
	mu           sync.Mutex
	gated, plain int
}

func (c *countingSandboxes) Prepare(ctx context.Context, spec exec.Spec) (*exec.Prepared, error) {
	c.mu.Lock()
	if spec.Gate {
		c.gated++
	} else {
		c.plain++
	}
	c.mu.Unlock()
	return c.Sandboxes.Prepare(ctx, spec)
}

func (c *countingSandboxes) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gated, c.plain
}

// TestSandboxSQLInSandboxes parses with the runner (this test binary, as
// weir-node) in real sandboxes: the first plan starts its own parser; a
// push's end (StartAhead) starts the next one ahead, which the next plan
// uses (or replaces with its own when it is gone); Close closes the one
// waiting and starts no more.
func TestSandboxSQLInSandboxes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	sb, err := exec.New(exec.Config{StateDir: filepath.Join(t.TempDir(), "exec")})
	if err != nil {
		t.Skipf("sandboxes unavailable on this host: %v", err)
	}
	defer sb.Close()
	c := &countingSandboxes{Sandboxes: sb}
	s := &SandboxSQL{Runner: c, WorkDir: t.TempDir()}
	defer s.Close()
	ctx := context.Background()
	s.StartAhead() // before any plan: nothing
	queries := []string{"-- a model\nSELECT *\nFROM raw.orders o JOIN clean.x USING (id)", "SELECT 1; SELECT 2", "WITH t AS (SELECT 1) SELECT * FROM t, range(3)"}
	want := []pipeline.SQLParse{
		{Refs: []pipeline.SQLRef{{Schema: "raw", Table: "orders", Offset: 25}, {Schema: "clean", Table: "x", Offset: 43}}},
		{Err: &pipeline.SQLError{Offset: -1, Msg: "2 statements: a model or expectation is one SELECT statement"}},
		{Refs: []pipeline.SQLRef{{Function: "range", Offset: 38}}},
	}
	for i := range 3 {
		got, err := s.ParseSQL(ctx, queries)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("plan %d: ParseSQL = %+v, %v; want %+v", i, got, err, want)
		}
		gated, plain := c.counts()
		if gated != i || plain != 1 {
			t.Fatalf("after plan %d: %d parsers started ahead, %d by plans; want %d and 1", i, gated, plain, i)
		}
		s.StartAhead()
		s.StartAhead() // one at a time
		deadline := time.Now().Add(time.Minute)
		for {
			s.mu.Lock()
			ready := s.waiting != nil
			s.mu.Unlock()
			if ready || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if gated, _ := c.counts(); gated != i+1 {
			t.Fatalf("after StartAhead: %d parsers started ahead, want %d", gated, i+1)
		}
	}
	// A parser started ahead that is gone when the plan comes (closed
	// here; killed, say): the plan starts one of its own.
	s.mu.Lock()
	s.waiting.prepared.Close()
	s.mu.Unlock()
	if got, err := s.ParseSQL(ctx, queries); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after the one ahead was gone: ParseSQL = %+v, %v", got, err)
	}
	if gated, plain := c.counts(); gated != 3 || plain != 2 {
		t.Fatalf("after the one ahead was gone: %d started ahead, %d by plans; want 3 and 2", gated, plain)
	}
	s.Close()
	s.mu.Lock()
	waiting := s.waiting
	s.mu.Unlock()
	s.StartAhead()
	if gated, _ := c.counts(); waiting != nil || gated != 3 {
		t.Fatalf("after Close: waiting %v, %d started ahead", waiting, gated)
	}
	if _, err := s.ParseSQL(ctx, queries[:1]); err != nil {
		t.Fatalf("a plan after Close: %v", err)
	}
}
