package hooks

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// Staging a node: everything a node needs before it can run, laid out
// under the run's folder (r.dir):
//
//	<i>/code/<file>          the node's source
//	lib/lib/...              the commit's lib/, once per run, bound into
//	                         every Python node at /in/_lib (pylib.go)
//	<i>/in/<table>/part-N    its inputs, hard links to Parquet files (copies
//	                         when the warehouse is on another filesystem)
//	<i>/out/                 what it writes: <table>.parquet per output
//
// The inputs that exist before the run are linked while its sandbox is
// built; those made in this run ("late") once the node starts.

// preparer is a Runner that can build a node's sandbox ahead of time
// (*exec.Sandboxes): the hook prepares the next nodes' sandboxes while
// earlier nodes run.
type preparer interface {
	Prepare(ctx context.Context, spec exec.Spec) (*exec.Prepared, error)
}

// staged is one node made ready to run: its folders, source and the inputs
// that exist before the run are in place, its spec is built and, with a
// preparer, its sandbox is built and parked.
type staged struct {
	done     chan struct{} // closed when staging has finished
	spec     exec.Spec
	late     []pipeline.Table // inputs made in this run: linked when the node starts
	prepared *exec.Prepared   // nil: run with Runner.Run
	err      error            // *NodeFailedError
}

// ready returns a channel closed when staging has finished and, with a
// preparer, the sandbox has been built (or failed to be).
func (st *staged) ready() <-chan struct{} {
	c := make(chan struct{})
	go func() {
		<-st.done
		if st.prepared != nil {
			<-st.prepared.Ready()
		}
		close(c)
	}()
	return c
}

// nodeError is node n's failure, for the pusher.
func nodeError(n *pipeline.Node, format string, args ...any) error {
	return &NodeFailedError{Node: n.Name, Reason: fmt.Sprintf(format, args...)}
}

// stage starts making node i ready to run, in the background: folders,
// source, the inputs that exist before the run (hard links), the spec,
// and with a preparer the sandbox. staged.done says when it has finished.
func (r *run) stage(ctx context.Context, i int) *staged {
	st := &staged{done: make(chan struct{})}
	go func() {
		defer close(st.done)
		st.err = r.stageNode(ctx, i, st)
	}()
	return st
}

func (r *run) stageNode(ctx context.Context, i int, st *staged) error {
	n := r.plan.Nodes[i]
	nd := filepath.Join(r.dir, strconv.Itoa(i))
	inputs, early, err := r.stageFolders(nd, n, st)
	if err != nil {
		return err
	}
	p, canPrepare := r.h.cfg.Runner.(preparer)
	// A node that waits for earlier nodes of the run starts its runner
	// now: process and DuckDB start-up happen while those nodes run, and
	// the runner waits for "go" (sent when its inputs are linked) before
	// reading any input or running any of the node's code.
	gate := canPrepare && len(st.late) > 0
	st.spec = r.nodeSpec(i, inputs, filepath.Join(nd, "out"), gate)
	if canPrepare {
		prepared, err := p.Prepare(ctx, st.spec)
		if err != nil {
			return nodeError(n, "sandbox: %v", err)
		}
		st.prepared = prepared
	}
	// The sandbox builds meanwhile; its input dirs are bound already and
	// show these files, which are in place before the node runs.
	for _, t := range early {
		files, err := r.inputFiles(ctx, t)
		if err != nil {
			return nodeError(n, "input %s: %v", t, err)
		}
		if err := linkFiles(inputs[string(t)], files); err != nil {
			return nodeError(n, "stage input %s: %v", t, err)
		}
	}
	return nil
}

// stageFolders makes node n's folders under nd and writes its source. It
// returns the node's inputs (name -> folder, the code's too) and those on
// the branch already (early); those made in this run go to st.late.
func (r *run) stageFolders(nd string, n *pipeline.Node, st *staged) (inputs map[string]string, early []pipeline.Table, err error) {
	code := filepath.Join(nd, "code")
	for _, d := range []string{code, filepath.Join(nd, "out")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, nodeError(n, "cannot stage: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(code, path.Base(n.File)), n.Source, 0o644); err != nil {
		return nil, nil, nodeError(n, "cannot stage: %v", err)
	}
	inputs = map[string]string{contract.CodeInput: code}
	if n.Kind == pipeline.KindPython {
		lib, err := r.libDir()
		if err != nil {
			return nil, nil, nodeError(n, "%v", err)
		}
		if lib != "" {
			inputs[contract.LibInput] = lib
		}
	}
	for _, t := range n.Inputs {
		dir := filepath.Join(nd, "in", string(t))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, nodeError(n, "stage input %s: %v", t, err)
		}
		inputs[string(t)] = dir
		if r.plan.Producer(t) != nil {
			st.late = append(st.late, t) // made in this run: linked at start
		} else {
			early = append(early, t) // on the branch already: linked once the sandbox is on its way
		}
	}
	return inputs, early, nil
}

// nodeSpec is the sandbox of node i: its runner's command line and
// environment, its folders and its limits.
func (r *run) nodeSpec(i int, inputs map[string]string, outDir string, gate bool) exec.Spec {
	n := r.plan.Nodes[i]
	lim := r.nodeLimits(n)
	ca := contract.Args{
		Kind:      string(n.Kind),
		Source:    exec.InputsDir + "/" + contract.CodeInput + "/" + path.Base(n.File),
		Namespace: r.plan.Config.Namespace,
		// The runner's result comes back on the sandbox's report pipe,
		// which only the runner holds: never from what the node prints.
		ResultFD: exec.ReportFD,
		// DuckDB in the node uses the cores the sandbox may use, and keeps
		// its buffers to half the sandbox's memory: the rest is for its
		// /tmp and /out files (tmpfs, counted in the same limit) and
		// everything else.
		Threads:     int(math.Ceil(lim.CPU)),
		MemoryLimit: lim.Memory / 2,
		Gate:        gate,
	}
	if n.Kind == pipeline.KindPython {
		// For the model's messages and environment (WEIR_RUNTIME).
		ca.File, ca.Runtime = n.File, n.Runtime
	}
	for _, t := range n.Inputs {
		ca.Inputs = append(ca.Inputs, string(t))
	}
	for _, t := range n.Outputs {
		ca.Outputs = append(ca.Outputs, string(t))
	}
	return exec.Spec{
		ID:      fmt.Sprintf("%s-%d", r.id, i),
		Runtime: n.Runtime,
		Args:    append([]string{exec.RunnerPath}, ca.Argv()...),
		Env:     r.nodeEnv(),
		Inputs:  inputs,
		Output:  outDir,
		Weir:    true,
		Limits:  lim,
		Gate:    gate,
		Report:  true,
		// The next node need not wait for this one's sandbox to be gone.
		AsyncTeardown: true,
	}
}

// nodeLimits are n's limits from weir.toml, each capped by MaxLimits (and
// taken from it when weir.toml sets none).
func (r *run) nodeLimits(n *pipeline.Node) exec.Limits {
	lim, max := sandboxLimits(n.Limits), r.h.cfg.MaxLimits
	if lim.Wall <= 0 || lim.Wall > max.Wall {
		lim.Wall = max.Wall
	}
	if lim.Memory <= 0 || lim.Memory > max.Memory {
		lim.Memory = max.Memory
	}
	if lim.CPU <= 0 || lim.CPU > max.CPU {
		lim.CPU = max.CPU
	}
	return lim
}

// nodeEnv is a node's environment: a fixed PATH, HOME and LANG, and the
// push's parameters (-o param.NAME=VALUE), verbatim, sorted by name.
func (r *run) nodeEnv() []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"}
	names := make([]string, 0, len(r.opts.params))
	for k := range r.opts.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env = append(env, contract.ParamEnvPrefix+k+"="+r.opts.params[k])
	}
	return env
}

// inputFiles are the Parquet files of table t as the node must see it:
// made in this run (replace: the new file; append: the old files and the
// new one), else the table's files at the start data.
func (r *run) inputFiles(ctx context.Context, t pipeline.Table) ([]string, error) {
	tn := catalog.TableName{Namespace: t.Namespace(), Name: t.Name()}
	r.mu.Lock()
	made, ok := r.outputs[t]
	r.mu.Unlock()
	if ok {
		if p := r.plan.Producer(t); p != nil && p.Materialize == pipeline.Append && !r.start.IsZero() {
			if old, err := r.tables.ReadTableFiles(ctx, r.push.Repo, r.start, tn); err == nil {
				return append(old, made), nil
			}
		}
		return []string{made}, nil
	}
	return r.tables.ReadTableFiles(ctx, r.push.Repo, r.start, tn)
}

// linkFiles hard-links (or copies) files into dir as part-N.parquet.
func linkFiles(dir string, files []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, f := range files {
		dst := filepath.Join(dir, fmt.Sprintf("part-%05d.parquet", i))
		if err := os.Link(f, dst); err == nil {
			continue
		}
		if err := copyFile(f, dst); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
