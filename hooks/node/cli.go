package node

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// RowsPrefix starts the line Main prints per output table:
// "weir-rows <ns.table> <count>". The hook reads row counts from it.
const RowsPrefix = "weir-rows "

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// Main is "weir node <sql|expect|python|seed> --source FILE [--ns NS]
// [--in ns.t]... [--out ns.t]... [--threads N] [--memory-limit BYTES]
// [--gate]", run by the pipeline hook inside a
// sandbox with the weir binary mounted read-only. Inputs are
// /in/<ns.t>/*.parquet, outputs go to /out/<ns.t>.parquet, push parameters
// arrive as WEIR_PARAM_<NAME>. It prints "weir-rows <ns.t> <n>" per output
// and returns the exit status: 0 ok, 1 failed (the reason on one line of
// stderr), 2 usage.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintln(stderr, "usage: weir node <sql|expect|python|seed> --source FILE [--ns NS] [--in ns.t]... [--out ns.t]...")
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("node "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := fs.String("source", "", "the node's file")
	ns := fs.String("ns", "main", "namespace of unqualified tables")
	in, out := &stringList{}, &stringList{}
	fs.Var(in, "in", "an input table ns.t (repeatable)")
	fs.Var(out, "out", "an output table ns.t (repeatable)")
	dirIn := fs.String("dir-in", SandboxDirs.In, "inputs folder")
	dirOut := fs.String("dir-out", SandboxDirs.Out, "outputs folder")
	dirTmp := fs.String("dir-tmp", SandboxDirs.Tmp, "scratch folder")
	gate := fs.Bool("gate", false, `start DuckDB, then wait for a line "go" on stdin before reading any input`)
	threads := fs.Int("threads", 1, "DuckDB threads (the sandbox's CPU limit, rounded up)")
	memLimit := fs.Int64("memory-limit", 0, "DuckDB's memory limit in bytes (0: DuckDB's default)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *source == "" {
		fmt.Fprintln(stderr, "weir node: --source is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	j := &Job{
		Dirs:        Dirs{In: *dirIn, Out: *dirOut, Tmp: *dirTmp},
		Source:      *source,
		Namespace:   *ns,
		Inputs:      *in,
		Outputs:     *out,
		Params:      ParamsFromEnv(os.Environ()),
		Stdout:      stdout,
		Threads:     *threads,
		MemoryLimit: *memLimit,
		LeaveOpen:   true, // the process exits right after
	}
	if *gate {
		j.Gate = os.Stdin
	}
	counts := map[string]int64{}
	var err error
	switch kind {
	case "sql":
		var n int64
		if n, err = SQL(ctx, j); err == nil {
			counts[j.Outputs[0]] = n
		}
	case "seed":
		var n int64
		if n, err = Seed(ctx, j); err == nil {
			counts[j.Outputs[0]] = n
		}
	case "python":
		counts, err = Python(ctx, j)
	case "expect":
		var n int64
		n, err = Expectation(ctx, j)
		if errors.Is(err, ErrExpectation) {
			fmt.Fprintf(stdout, "expectation failed: %d failing rows\n", n)
			return 1
		}
	default:
		fmt.Fprintf(stderr, "weir node: unknown node kind %q (want sql, expect, python or seed)\n", kind)
		return 2
	}
	if err != nil {
		// One line, so the hook's refusal can quote it.
		msg := err.Error()
		if i := strings.Index(msg, "\nLINE "); i > 0 {
			msg = msg[:i] // DuckDB's excerpt would show our COPY wrapper
		}
		fmt.Fprintf(stderr, "weir node %s: %s\n", kind, strings.Join(strings.Fields(msg), " "))
		return 1
	}
	names := make([]string, 0, len(counts))
	for t := range counts {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		fmt.Fprintf(stdout, "%s%s %d\n", RowsPrefix, t, counts[t])
	}
	return 0
}
