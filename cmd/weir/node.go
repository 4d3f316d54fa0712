package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/node"
)

func init() {
	register(command{
		name:    "node",
		summary: "run one pipeline node (inside a sandbox; internal)",
		hidden:  true,
		run:     runNode,
	})
}

// runNode is "weir node <sql|expect|python|seed> ...": see node.Main. The
// pipeline hook runs it inside a sandbox with this binary mounted read-only.
func runNode(args []string) error {
	if code := node.Main(args, os.Stdout, os.Stderr); code != 0 {
		os.Exit(code)
	}
	return nil
}

// nodeConfig is weir serve's configuration of pipeline nodes: the limits
// every node gets (weir.toml may lower them, never raise them), the
// registered runtimes (the package allow-list) and how many nodes run at
// once.
var nodeConfig struct {
	limits   exec.Limits
	runtimes runtimeFlags
	parallel int
}

// runtimeFlags is the repeatable --runtime NAME=ROOTFS flag.
type runtimeFlags map[string]string

func (r *runtimeFlags) String() string {
	var out []string
	for name, dir := range *r {
		out = append(out, name+"="+dir)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (r *runtimeFlags) Set(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want NAME=ROOTFS, got %q", v)
	}
	if name == exec.HostRuntime {
		return fmt.Errorf("runtime %q is built in", name)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("runtime %s: %s is not a directory (an unpacked root filesystem)", name, dir)
	}
	if *r == nil {
		*r = runtimeFlags{}
	}
	(*r)[name] = dir
	return nil
}

func init() {
	serveFlags = append(serveFlags, func(fs *flag.FlagSet) {
		d := exec.DefaultLimits()
		l := &nodeConfig.limits
		fs.DurationVar(&l.Wall, "node-timeout", d.Wall, "pipeline nodes: wall-clock limit of one node (weir.toml may lower it)")
		fs.Int64Var(&l.Memory, "node-memory-bytes", d.Memory, "pipeline nodes: memory limit of one node, in bytes")
		fs.Int64Var(&l.Pids, "node-pids", d.Pids, "pipeline nodes: processes and threads one node may have at once")
		fs.Float64Var(&l.CPU, "node-cpus", d.CPU, "pipeline nodes: CPU cores one node may use (default: every core); a SQL node's DuckDB runs as many threads")
		fs.Int64Var(&l.OutputBytes, "node-output-bytes", d.OutputBytes, "pipeline nodes: bytes one node may write to its outputs")
		fs.Int64Var(&l.TmpBytes, "node-tmp-bytes", d.TmpBytes, "pipeline nodes: size of one node's /tmp, in bytes")
		fs.Uint64Var(&l.OpenFiles, "node-open-files", d.OpenFiles, "pipeline nodes: open files of one node")
		fs.IntVar(&nodeConfig.parallel, "node-parallel", runtime.NumCPU(), "pipeline nodes: how many nodes of one run may run at once")
		fs.Var(&nodeConfig.runtimes, "runtime", "NAME=ROOTFS: register a runtime nodes may ask for (an unpacked OCI image folder); repeatable. 'host' (the host's /usr, /etc read-only) is built in")
	})
}

// The pipeline hook in weir serve: pushes run their pipeline in sandboxes
// (exec, state under /run/weir/exec-<hash of the data dir>) on the repo's tables (catalog, warehouse
// <data>/warehouse), and move code and data refs together.
func init() {
	serveSetup = append(serveSetup, func(a *serveApp) error {
		cat, err := serveCatalog(a)
		if err != nil {
			return err
		}
		var runner exec.Runner
		sb, err := exec.New(exec.Config{
			StateDir:   sandboxStateDir(a.DataDir),
			WeirBinary: runnerBinary(),
			Runtimes:   nodeConfig.runtimes,
			Defaults:   nodeConfig.limits,
		})
		if err != nil {
			// Plain Git still works; pipelines are refused with the reason.
			a.Logger.Warn("sandboxes unavailable: pushes with a pipeline will be refused", "err", err)
			runner = noSandboxes{err}
		} else {
			a.closers = append(a.closers, sb.Close)
			runner = sb
		}
		work := filepath.Join(a.DataDir, "runs")
		os.RemoveAll(work) // staging of runs a crash interrupted
		h, err := hooks.NewPipeline(hooks.PipelineConfig{
			Refs: a.Refs, Catalog: cat, Runner: runner, WorkDir: work, Logger: a.Logger,
			Runtimes: slices.Sorted(maps.Keys(nodeConfig.runtimes)), Parallel: nodeConfig.parallel,
			MaxLimits: nodeConfig.limits, Rules: a.Access.Branch,
			HidePaths: []string{a.DataDir, sandboxStateDir(a.DataDir)},
		})
		if err != nil {
			return err
		}
		a.Git.Hook = h
		return nil
	})
}

// runnerBinary is the binary mounted in sandboxes as the node runner:
// weir-node next to this binary when it was installed with it (it starts in
// ~10 ms; weir's own package set takes ~200 ms), else "" for this binary,
// whose "weir node" command does the same.
func runnerBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	cand := filepath.Join(filepath.Dir(exe), "weir-node")
	if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() {
		return cand
	}
	return ""
}

// sandboxStateDir is the exec state dir of the server whose data dir is
// data: under /run/weir (a tmpfs, away from the binary, so libcontainer
// can seal the binary instead of copying it per sandbox), one per data dir
// so that two servers never sweep each other's sandboxes.
func sandboxStateDir(data string) string {
	sum := sha256.Sum256([]byte(data))
	if st, err := os.Stat("/run"); err == nil && st.IsDir() {
		// Searchable (not listable) by others: a sandbox's user namespace
		// maps its root to an unprivileged host uid that must reach the
		// rootfs skeleton below; without it exec falls back to no userns.
		if os.MkdirAll("/run/weir", 0o711) == nil {
			os.Chmod("/run/weir", 0o711)
		}
		return filepath.Join("/run/weir", "exec-"+hex.EncodeToString(sum[:6]))
	}
	return filepath.Join(data, "exec")
}

// noSandboxes is the runner of a server whose host cannot run sandboxes.
type noSandboxes struct{ err error }

// Run refuses every node.
func (n noSandboxes) Run(context.Context, exec.Spec) (*exec.Result, error) {
	return nil, fmt.Errorf("this server cannot run sandboxes: %v", n.err)
}

// serveCatalogs holds the one catalog of each serveApp.
var serveCatalogs sync.Map // *serveApp -> *catalog.Catalog

// serveCatalog returns the one catalog of a's repos: the Iceberg REST
// catalog, the pipeline hook and the SSH query command all use it. Its
// warehouse is the one weir serve's flags choose (--warehouse, --s3-*;
// the environment is the fallback, <data>/warehouse the default).
func serveCatalog(a *serveApp) (*catalog.Catalog, error) {
	if c, ok := serveCatalogs.Load(a); ok {
		return c.(*catalog.Catalog), nil
	}
	wh, err := openWarehouse(a.DataDir, serveWarehouse.flags)
	if err != nil {
		return nil, fmt.Errorf("warehouse: %w", err)
	}
	c, loaded := serveCatalogs.LoadOrStore(a, catalog.New(a.Objects, a.Refs, wh))
	if !loaded {
		a.closers = append(a.closers, func() error { serveCatalogs.Delete(a); return nil })
	}
	return c.(*catalog.Catalog), nil
}
