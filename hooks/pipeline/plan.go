package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// AllowedTableFunctions are the table functions a query may call: they
// generate rows and read nothing.
var AllowedTableFunctions = map[string]bool{
	"range": true, "generate_series": true, "unnest": true,
}

// Env is what Build needs to know besides the pipeline.
type Env struct {
	// Branch names the branch in messages ("main").
	Branch string
	// Existing are the tables in the branch's current data.
	Existing map[Table]bool
	// Runtimes is the allow-list of runtimes; nil allows only "host".
	Runtimes map[string]bool
	// SQL parses SQL models and expectations.
	SQL SQLParser
}

// Plan is a pipeline ready to run: its nodes in an order where every node
// comes after the nodes it reads from, expectations last.
type Plan struct {
	Config Config
	Nodes  []*Node
}

// Models counts the plan's seeds and models.
func (p *Plan) Models() int { return (&Pipeline{Nodes: p.Nodes}).Models() }

// Expectations counts the plan's expectations.
func (p *Plan) Expectations() int { return len(p.Nodes) - p.Models() }

// Producer returns the node that writes t, or nil.
func (p *Plan) Producer(t Table) *Node {
	for _, n := range p.Nodes {
		for _, o := range n.Outputs {
			if o == t {
				return n
			}
		}
	}
	return nil
}

// Build plans pl: it infers SQL inputs, checks runtimes, writers, reads and
// cycles, and orders the nodes. It runs nothing. Every problem found is in
// the returned *Error.
func Build(ctx context.Context, pl *Pipeline, env Env) (*Plan, error) {
	var perr Error
	runtimes := env.Runtimes
	if runtimes == nil {
		runtimes = map[string]bool{"host": true}
	}
	ns := pl.Config.Namespace
	nodes := pl.Nodes

	parsed, err := parseSQL(ctx, nodes, env.SQL)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if !runtimes[n.Runtime] {
			perr.add(n.File, 0, "unknown runtime %q (available: %s)", n.Runtime, joinKeys(runtimes))
		}
		sp, ok := parsed[n]
		if !ok {
			continue
		}
		if sp.Err != nil {
			perr.add(n.File, lineOf(n.Source, sp.Err.Offset), "%s", sp.Err.Msg)
			continue
		}
		n.inputLines = map[Table]int{}
		seen := map[Table]bool{}
		for _, r := range sp.Refs {
			line := lineOf(n.Source, r.Offset)
			if r.Function != "" {
				if !AllowedTableFunctions[r.Function] {
					perr.add(n.File, line, "table function %s() is not allowed: read declared tables by name (ns.table)", r.Function)
				}
				continue
			}
			if r.Catalog != "" {
				perr.add(n.File, line, "%s.%s.%s: three-part names are not allowed (use ns.table)", r.Catalog, r.Schema, r.Table)
				continue
			}
			name := strings.ToLower(r.Table)
			if r.Schema != "" {
				name = strings.ToLower(r.Schema) + "." + name
			}
			t, err := ParseTable(name, ns)
			if err != nil {
				perr.add(n.File, line, "reads %q, which is not a table name (ns.table); nodes read only declared tables", r.Table)
				continue
			}
			if !seen[t] {
				seen[t] = true
				n.Inputs = append(n.Inputs, t)
				n.inputLines[t] = line
			}
		}
		sortTables(n.Inputs)
	}

	for _, n := range nodes {
		if n.Kind != KindPython {
			continue
		}
		seenEnv := map[string]Table{}
		for _, t := range append(append([]Table(nil), n.Inputs...), n.Outputs...) {
			if prev, ok := seenEnv[t.EnvSuffix()]; ok && prev != t {
				perr.add(n.File, n.inputLines[t], "%s and %s both map to WEIR_*_%s: rename one", prev, t, t.EnvSuffix())
			}
			seenEnv[t.EnvSuffix()] = t
		}
	}

	producer := map[Table]int{}
	for i, n := range nodes {
		for _, o := range n.Outputs {
			if j, dup := producer[o]; dup {
				perr.add(n.File, 0, "writes %s, which %s also writes: one table, one writer", o, nodes[j].File)
				continue
			}
			producer[o] = i
		}
	}
	for i, n := range nodes {
		n.deps = nil
		for _, in := range n.Inputs {
			if j, ok := producer[in]; ok {
				n.deps = append(n.deps, j)
				continue
			}
			if !env.Existing[in] {
				perr.add(n.File, n.inputLines[in], "reads %s, which is neither on branch %s nor made by the pipeline", in, env.Branch)
			}
		}
		_ = i
	}
	if cyc := findCycle(nodes); cyc != nil {
		parts := make([]string, len(cyc))
		for i, j := range cyc {
			parts[i] = nodes[j].File
		}
		perr.add("", 0, "cycle: %s", strings.Join(parts, " -> "))
	}
	if err := perr.err(); err != nil {
		return nil, err
	}

	// Kahn's algorithm; ties broken by kind (expectations last) then path.
	order := make([]int, 0, len(nodes))
	indeg := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i, n := range nodes {
		indeg[i] = len(n.deps)
		for _, d := range n.deps {
			users[d] = append(users[d], i)
		}
	}
	less := func(a, b int) bool {
		ea, eb := nodes[a].Kind == KindExpectation, nodes[b].Kind == KindExpectation
		if ea != eb {
			return eb
		}
		return nodes[a].File < nodes[b].File
	}
	var ready []int
	for i := range nodes {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(a, b int) bool { return less(ready[a], ready[b]) })
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	// Expectations last: they depend only on models, so moving them keeps
	// the order topological.
	sort.SliceStable(order, func(a, b int) bool {
		return nodes[order[a]].Kind != KindExpectation && nodes[order[b]].Kind == KindExpectation
	})
	pos := make([]int, len(nodes))
	for k, i := range order {
		pos[i] = k
	}
	plan := &Plan{Config: pl.Config, Nodes: make([]*Node, len(nodes))}
	for k, i := range order {
		n := nodes[i]
		deps := make([]int, len(n.deps))
		for d, j := range n.deps {
			deps[d] = pos[j]
		}
		sort.Ints(deps)
		n.deps = deps
		plan.Nodes[k] = n
	}
	return plan, nil
}

// ErrNoSQLParser is Build's error for a pipeline with SQL and an Env
// without a SQL parser.
var ErrNoSQLParser = errors.New("pipeline: no SQL parser")

// parseSQL parses the queries of nodes' SQL models and expectations with
// one call to p, and returns what it found for each such node.
func parseSQL(ctx context.Context, nodes []*Node, p SQLParser) (map[*Node]SQLParse, error) {
	var sqlNodes []*Node
	var queries []string
	for _, n := range nodes {
		if n.Kind == KindSQL || n.Kind == KindExpectation {
			sqlNodes = append(sqlNodes, n)
			queries = append(queries, string(n.Source))
		}
	}
	if len(queries) == 0 {
		return nil, nil
	}
	if p == nil {
		return nil, ErrNoSQLParser
	}
	got, err := p.ParseSQL(ctx, queries)
	if err != nil {
		return nil, err
	}
	if len(got) != len(queries) {
		return nil, fmt.Errorf("pipeline: the SQL parser answered %d of %d queries", len(got), len(queries))
	}
	out := make(map[*Node]SQLParse, len(sqlNodes))
	for i, n := range sqlNodes {
		out[n] = got[i]
	}
	return out, nil
}

// findCycle returns the node indices of one cycle, first node repeated at
// the end, or nil. It starts from the lowest file path so the answer is
// stable.
func findCycle(nodes []*Node) []int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(nodes))
	var stack []int
	var found []int
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, i)
		deps := append([]int(nil), nodes[i].deps...)
		sort.Slice(deps, func(a, b int) bool { return nodes[deps[a]].File < nodes[deps[b]].File })
		for _, d := range deps {
			switch color[d] {
			case grey:
				for k, s := range stack {
					if s == d {
						// stack[k:] reads d <- ... ; report in data-flow order.
						cyc := append([]int(nil), stack[k:]...)
						for a, b := 0, len(cyc)-1; a < b; a, b = a+1, b-1 {
							cyc[a], cyc[b] = cyc[b], cyc[a]
						}
						m := 0
						for c := range cyc {
							if nodes[cyc[c]].File < nodes[cyc[m]].File {
								m = c
							}
						}
						cyc = append(cyc[m:], cyc[:m]...)
						found = append(cyc, cyc[0])
						return true
					}
				}
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	idx := make([]int, len(nodes))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return nodes[idx[a]].File < nodes[idx[b]].File })
	for _, i := range idx {
		if color[i] == white && visit(i) {
			return found
		}
	}
	return nil
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k, ok := range m {
		if ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
