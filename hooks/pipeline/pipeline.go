package pipeline

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/weir-dev/weir/exec"
)

// Table is a qualified table name, "<namespace>.<name>", lower case.
type Table string

// identRE is one namespace or table name.
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidIdent reports whether s is a valid namespace or table name: lower
// case ASCII letters, digits and '_', not starting with a digit, at most 63
// characters.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// ParseTable parses "ns.name", or "name" qualified with defaultNS.
func ParseTable(s, defaultNS string) (Table, error) {
	s = strings.TrimSpace(s)
	ns, name, ok := strings.Cut(s, ".")
	if !ok {
		ns, name = defaultNS, s
	}
	if !ValidIdent(ns) || !ValidIdent(name) {
		return "", fmt.Errorf("bad table name %q (want namespace.name, lower case letters, digits and _)", s)
	}
	return Table(ns + "." + name), nil
}

// Namespace returns the part before the dot.
func (t Table) Namespace() string { ns, _, _ := strings.Cut(string(t), "."); return ns }

// Name returns the part after the dot.
func (t Table) Name() string { _, n, _ := strings.Cut(string(t), "."); return n }

// EnvSuffix is the table as used in environment variable names:
// "clean.revenue" -> "CLEAN_REVENUE".
func (t Table) EnvSuffix() string {
	return strings.ToUpper(strings.ReplaceAll(string(t), ".", "_"))
}

// Kind is what a node is.
type Kind string

// Node kinds.
const (
	KindSeed        Kind = "seed"   // seeds/*.csv turned into a table
	KindSQL         Kind = "sql"    // models/*.sql
	KindPython      Kind = "python" // models/*.py
	KindExpectation Kind = "expect" // expectations/*.sql
)

// Materialization says how a node's output replaces its table.
type Materialization string

// Materializations.
const (
	Replace Materialization = "replace" // the output is the whole new table (default)
	Append  Materialization = "append"  // the output's rows are added to the table
)

// Node is one step of a pipeline.
type Node struct {
	// Name is what progress lines and refusals show: the output table for
	// seeds and models ("clean.revenue"), "expect <name>" for expectations.
	Name string
	Kind Kind
	// File is the node's path in the commit ("models/revenue.py").
	File string
	// Source is the file's content (SQL text, Python script or CSV).
	Source []byte
	// Inputs are the tables the node reads, sorted. For SQL nodes Plan
	// fills them from the query; for Python nodes they come from the header.
	Inputs []Table
	// Outputs are the tables the node writes, sorted: one for seeds and SQL
	// models, one or more for Python models, none for expectations.
	Outputs []Table
	// Runtime is the exec runtime the node runs in (exec.HostRuntime by default).
	Runtime string
	// Limits bound the node's sandbox; zero fields take the server's defaults.
	Limits exec.Limits
	// Materialize says how the outputs replace their tables.
	Materialize Materialization

	// inputLines maps an input to the line in File that names it.
	inputLines map[Table]int
	// deps are the indices (in Plan.Nodes) of the nodes this one waits for.
	deps []int
}

// Deps returns the indices in Plan.Nodes of the nodes n reads from.
func (n *Node) Deps() []int { return n.deps }

// Pipeline is the parsed, unplanned content of a commit.
type Pipeline struct {
	Config Config
	Nodes  []*Node // in path order
}

// Expectations returns the pipeline with its expectations alone: what a
// data push to the branch must pass. Its nodes are shared with p.
func (p *Pipeline) Expectations() *Pipeline {
	out := &Pipeline{Config: p.Config}
	for _, n := range p.Nodes {
		if n.Kind == KindExpectation {
			out.Nodes = append(out.Nodes, n)
		}
	}
	return out
}

// Models counts the nodes that write tables (seeds and models).
func (p *Pipeline) Models() int {
	c := 0
	for _, n := range p.Nodes {
		if n.Kind != KindExpectation {
			c++
		}
	}
	return c
}

// Problem is one reason a pipeline cannot run, located in a file.
type Problem struct {
	File string // path in the commit; "" when not about one file
	Line int    // 1-based; 0 when not about one line
	Msg  string
}

func (p Problem) String() string {
	switch {
	case p.File == "":
		return p.Msg
	case p.Line == 0:
		return p.File + ": " + p.Msg
	default:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
}

// Error is a refused pipeline: every problem found, in file order.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "pipeline: invalid"
	}
	s := e.Problems[0].String()
	if len(e.Problems) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(e.Problems)-1)
	}
	return s
}

func (e *Error) add(file string, line int, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (e *Error) err() error {
	if len(e.Problems) == 0 {
		return nil
	}
	sort.SliceStable(e.Problems, func(i, j int) bool {
		if e.Problems[i].File != e.Problems[j].File {
			return e.Problems[i].File < e.Problems[j].File
		}
		return e.Problems[i].Line < e.Problems[j].Line
	})
	return e
}

// lineOf returns the 1-based line of byte offset off in src.
func lineOf(src []byte, off int) int {
	if off < 0 {
		return 0
	}
	if off > len(src) {
		off = len(src)
	}
	return 1 + strings.Count(string(src[:off]), "\n")
}
