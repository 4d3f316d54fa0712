// Package weir is the root of the Weir module. It holds one thing, which
// must live here because only the module root can embed files of several
// packages: the fingerprints of the sources the helper binaries are built
// from. weir and weir-node both carry the runner's, so that weir can
// refuse a weir-node built from another tree (hooks/contract, Handshake);
// weir and weir-sandbox-init both carry the sandbox init's, so that exec
// can refuse a stale weir-sandbox-init (exec.New).
//
// It must never import anything but the standard library: weir-node
// imports it, and whatever it links ends up in every node's runner.
package weir

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strings"
	"sync"
)

// runnerSources are the files weir-node is built from that can change
// what it does: the module's dependencies (go.mod, go.sum: DuckDB's
// version among them), the runner contract, the runner (with the weir
// Python module it writes for Python models) and its command.
//
//go:embed go.mod go.sum hooks/contract/*.go hooks/node/*.go hooks/node/py/weir/*.py cmd/weir-node/*.go
var runnerSources embed.FS

// initSources are the files weir-sandbox-init is built from: the module's
// dependencies (runc's libcontainer among them), package exec and the
// command.
//
//go:embed go.mod go.sum exec/*.go exec/cmd/weir-sandbox-init/*.go
var initSources embed.FS

var (
	sourcesOnce sync.Once
	sourcesSum  string

	initOnce sync.Once
	initSum  string
)

// InitSources is the fingerprint, as RunnerSources computes it, of the
// sources weir-sandbox-init is built from.
func InitSources() string {
	initOnce.Do(func() {
		var err error
		if initSum, err = fingerprint(initSources); err != nil {
			panic("weir: embedded init sources: " + err.Error())
		}
	})
	return initSum
}

// RunnerSources is the fingerprint of the sources weir-node is built
// from: the SHA-256, in hex, of the embedded files' paths and contents in
// path order (fs.WalkDir's lexical order), tests (*_test.go) left out. Two
// binaries built from the same tree, by go build or go run, in any
// folder, have the same fingerprint; a change to any of those files
// changes it.
func RunnerSources() string {
	sourcesOnce.Do(func() {
		var err error
		if sourcesSum, err = fingerprint(runnerSources); err != nil {
			panic("weir: embedded runner sources: " + err.Error())
		}
	})
	return sourcesSum
}

// fingerprint hashes the files of fsys but tests, each as "<path> NUL
// <length> NUL <content>" in path order, so that no two sets of files
// hash alike.
func fingerprint(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
