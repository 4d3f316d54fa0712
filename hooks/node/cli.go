package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/weir-dev/weir/hooks/contract"
)

// Main is "weir node <sql|expect|python|seed> --source FILE [flags]" (the
// command line of contract.Args), run by the pipeline hook inside a
// sandbox with the runner binary mounted read-only. Inputs are
// /in/<ns.t>/*.parquet, outputs go to /out/<ns.t>.parquet, push parameters
// arrive as WEIR_PARAM_<NAME>.
//
// With --result-fd, before any of the node's code runs, Main keeps that
// descriptor from it (close-on-exec, process not dumpable: see
// claimResult), and as its last act writes the contract.Result there.
// What it prints is for people: the node's own code prints there too. It
// returns the exit status: 0 ok, 1 failed (the reason on one line of
// stderr, and in the result), 2 usage.
func Main(args []string, stdout, stderr io.Writer) int {
	a, err := contract.ParseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "weir node: %v\nusage: weir node <sql|expect|python|seed> --source FILE [--ns NS] [--in ns.t]... [--out ns.t]...\n", err)
		return 2
	}
	var result *os.File
	if a.ResultFD != contract.NoResult {
		if result, err = claimResult(a.ResultFD); err != nil {
			fmt.Fprintf(stderr, "weir node: result descriptor %d: %v\n", a.ResultFD, err)
			return 2
		}
	}
	res, code := run(a, result != nil, stdout, stderr)
	if result != nil {
		b, err := res.Encode()
		if err == nil {
			// One write: the hook reads the result only once every
			// process of the sandbox has exited.
			_, err = result.Write(b)
		}
		if cerr := result.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(stderr, "weir node: writing the result: %v\n", err)
			return 1
		}
	}
	return code
}

// run runs the node a describes and returns its result and exit status.
// sandboxed says the runner is the sandbox's own process with a result to
// protect (see Job.KillStrays).
func run(a contract.Args, sandboxed bool, stdout, stderr io.Writer) (contract.Result, int) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	dirs := SandboxDirs
	if a.DirIn != "" {
		dirs.In = a.DirIn
	}
	if a.DirOut != "" {
		dirs.Out = a.DirOut
	}
	if a.DirTmp != "" {
		dirs.Tmp = a.DirTmp
	}
	ns := a.Namespace
	if ns == "" {
		ns = "main"
	}
	j := &Job{
		Dirs:        dirs,
		Source:      a.Source,
		Namespace:   ns,
		Inputs:      a.Inputs,
		Outputs:     a.Outputs,
		Params:      ParamsFromEnv(os.Environ()),
		File:        a.File,
		Runtime:     a.Runtime,
		Stdout:      stdout,
		Threads:     max(a.Threads, 1),
		MemoryLimit: a.MemoryLimit,
		LeaveOpen:   true, // the process exits right after
		// Only the sandbox's PID 1 kills the rest of its sandbox.
		KillStrays: sandboxed && os.Getpid() == 1,
	}
	if a.Gate {
		j.Gate = os.Stdin
	}
	var err error
	switch a.Kind {
	case contract.KindSQL:
		_, err = SQL(ctx, j)
	case contract.KindSeed:
		_, err = Seed(ctx, j)
	case contract.KindPython:
		_, err = Python(ctx, j)
	case contract.KindExpect:
		var n int64
		n, err = Expectation(ctx, j)
		if errors.Is(err, ErrExpectation) {
			fmt.Fprintf(stdout, "expectation failed: %d failing rows\n", n)
			return contract.ExpectationFailed(n), 1
		}
	}
	if err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "\nLINE "); i > 0 {
			msg = msg[:i] // DuckDB's excerpt would show our COPY wrapper
		}
		// One line, so the hook's refusal can quote it.
		line := contract.OneLine("weir node "+a.Kind+": "+msg, contract.MaxMessage)
		fmt.Fprintln(stderr, line)
		return contract.Failed(line), 1
	}
	return contract.OK(), 0
}
