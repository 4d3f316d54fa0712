package main

import (
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/hooks/contract"
)

// fakeRunner writes an executable "weir-node" into a new folder that
// prints out and exits with code.
func fakeRunner(t *testing.T, out string, code int) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "weir-node")
	script := "#!/bin/sh\nprintf '%s' '" + strings.ReplaceAll(out, "'", `'\''`) + "'\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestCheckRunner: weir takes a weir-node only if its handshake is this
// weir's own (same contract, same sources); anything else is
// errRunnerMismatch, with the command that builds both.
func TestCheckRunner(t *testing.T) {
	own := runnerHandshake()
	other := own
	other.Sources = strings.Repeat("0", 64)
	newer := own
	newer.Contract++
	for _, tc := range []struct {
		name string
		out  string
		code int
		want string // "" for a match
	}{
		{"same build", string(own.Encode()), 0, ""},
		{"other sources", string(other.Encode()), 0, "built from other sources"},
		{"newer contract", string(newer.Encode()), 0, "speaks contract"},
		{"no handshake (an old weir-node)", "usage: weir-node node <sql|expect|python|seed> [flags]\n", 2, "exit status 2"},
		{"garbage", "weir-node contract 1\n", 0, "bad handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRunner(fakeRunner(t, tc.out, tc.code))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errRunnerMismatch) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "go build -o bin/ ./cmd/weir ./cmd/weir-node") {
				t.Fatalf("error %v, want errRunnerMismatch with %q and how to build", err, tc.want)
			}
		})
	}
}

// TestFindRunner: weir-node on PATH is found (and checked); without one
// the error says where weir looked and how to build it.
func TestFindRunner(t *testing.T) {
	if exe, err := os.Executable(); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(exe), "weir-node")); err == nil {
			t.Skip("a weir-node next to the test binary")
		}
	}
	good := fakeRunner(t, string(runnerHandshake().Encode()), 0)
	t.Setenv("PATH", filepath.Dir(good))
	if bin, err := findRunner(); err != nil || bin != good {
		t.Fatalf("findRunner() = %q, %v; want %q", bin, err, good)
	}
	stale := fakeRunner(t, string(contract.Handshake{Contract: contract.Version, Sources: strings.Repeat("1", 64)}.Encode()), 0)
	t.Setenv("PATH", filepath.Dir(stale))
	if _, err := findRunner(); !errors.Is(err, errRunnerMismatch) {
		t.Fatalf("a stale weir-node on PATH: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err := findRunner()
	if err == nil || errors.Is(err, errRunnerMismatch) || !strings.Contains(err.Error(), "nor on PATH") || !strings.Contains(err.Error(), "go build -o bin/ ./cmd/weir ./cmd/weir-node") {
		t.Fatalf("no weir-node: %v", err)
	}
}

// TestWeirLinksNoSQLEngine: the server binary links neither DuckDB nor
// the runner (hooks/node), so pushed SQL is never parsed or run in its
// process: weir-node does that.
func TestWeirLinksNoSQLEngine(t *testing.T) {
	goBin, err := osexec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the binary's packages")
	}
	out, err := osexec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "duckdb") || p == "github.com/weir-dev/weir/hooks/node" {
			t.Errorf("weir links %s", p)
		}
	}
}
