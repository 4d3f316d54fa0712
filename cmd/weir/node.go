package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
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
		sb, err := exec.New(exec.Config{StateDir: sandboxStateDir(a.DataDir), WeirBinary: runnerBinary()})
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

// serveCatalog returns the catalog of a's repos over its local warehouse.
func serveCatalog(a *serveApp) (*catalog.Catalog, error) {
	if c, ok := serveCatalogs.Load(a); ok {
		return c.(*catalog.Catalog), nil
	}
	wh, err := catalog.NewLocalWarehouse(a.Warehouse)
	if err != nil {
		return nil, err
	}
	c, _ := serveCatalogs.LoadOrStore(a, catalog.New(a.Objects, a.Refs, wh))
	return c.(*catalog.Catalog), nil
}
