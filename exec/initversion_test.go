package exec

import (
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindInitBinary: weir-sandbox-init next to the server is used when it
// was built from the server's sources, refused with the way to rebuild it
// when it was not, and its absence is no error.
func TestFindInitBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "weir")
	if got, err := findInitBinary(exe); got != "" || err != nil {
		t.Fatalf("no init binary: %q, %v", got, err)
	}
	stale := filepath.Join(dir, "weir-sandbox-init")
	if err := os.WriteFile(stale, []byte("#!/bin/sh\necho weir-sandbox-init sources 0000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := findInitBinary(exe); !errors.Is(err, ErrStaleInit) || !strings.Contains(err.Error(), "go build -o bin/") {
		t.Fatalf("stale init binary: %v", err)
	}
	gobin, err := osexec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build weir-sandbox-init")
	}
	os.Remove(stale)
	if out, err := osexec.Command(gobin, "build", "-o", stale, "./cmd/weir-sandbox-init").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if got, err := findInitBinary(exe); got != stale || err != nil {
		t.Fatalf("init binary of this tree: %q, %v", got, err)
	}
}
