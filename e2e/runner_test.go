package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesStaleRunner: weir serve, and weir query, refuse to work
// with a weir-node that was not built from the same sources (here one
// that answers the handshake with another fingerprint, as a weir-node
// left from an older checkout would), and say how to build both. The
// weir-node built with weir passes the handshake: every other test here
// starts weir serve with it.
func TestServeRefusesStaleRunner(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "weir")
	src, err := os.Open(weirBin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	stale := "#!/bin/sh\necho 'weir-node contract 1 sources " + strings.Repeat("0", 64) + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "weir-node"), []byte(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0"},
		{"query", "--data", t.TempDir(), "--repo", "x", "SELECT 1"},
	} {
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		t.Logf("weir %s:\n%s", args[0], out)
		if err == nil || !strings.Contains(string(out), "weir-node does not match this weir") ||
			!strings.Contains(string(out), "built from other sources") || !strings.Contains(string(out), "go build -o bin/ ./cmd/weir ./cmd/weir-node") {
			t.Errorf("weir %s with a stale weir-node: %v\n%s", args[0], err, out)
		}
	}
}
