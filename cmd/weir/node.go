package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

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

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runNode is "weir node <sql|expect|python|seed> --source F [--ns NS]
// [--in ns.t]... [--out ns.t]...", run by the pipeline hook inside a
// sandbox with the binary mounted read-only. Inputs are /in/<ns.t>/*.parquet,
// outputs go to /out/<ns.t>.parquet, push parameters arrive as
// WEIR_PARAM_<NAME>. It prints "weir-rows <ns.t> <n>" per output.
func runNode(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: weir node <sql|expect|python|seed> --source FILE [--ns NS] [--in ns.t]... [--out ns.t]...")
	}
	kind := args[0]
	fs := flag.NewFlagSet("node "+kind, flag.ContinueOnError)
	source := fs.String("source", "", "the node's file")
	ns := fs.String("ns", "main", "namespace of unqualified tables")
	in, out := &stringList{}, &stringList{}
	fs.Var(in, "in", "an input table ns.t (repeatable)")
	fs.Var(out, "out", "an output table ns.t (repeatable)")
	dirIn := fs.String("dir-in", node.SandboxDirs.In, "inputs folder")
	dirOut := fs.String("dir-out", node.SandboxDirs.Out, "outputs folder")
	dirTmp := fs.String("dir-tmp", node.SandboxDirs.Tmp, "scratch folder")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *source == "" {
		return errors.New("--source is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	j := &node.Job{
		Dirs:      node.Dirs{In: *dirIn, Out: *dirOut, Tmp: *dirTmp},
		Source:    *source,
		Namespace: *ns,
		Inputs:    *in,
		Outputs:   *out,
		Params:    node.ParamsFromEnv(os.Environ()),
		Stdout:    os.Stdout,
	}
	counts := map[string]int64{}
	var err error
	switch kind {
	case "sql":
		var n int64
		n, err = node.SQL(ctx, j)
		if err == nil {
			counts[j.Outputs[0]] = n
		}
	case "seed":
		var n int64
		n, err = node.Seed(ctx, j)
		if err == nil {
			counts[j.Outputs[0]] = n
		}
	case "python":
		counts, err = node.Python(ctx, j)
	case "expect":
		var n int64
		n, err = node.Expectation(ctx, j)
		if errors.Is(err, node.ErrExpectation) {
			fmt.Printf("expectation failed: %d failing rows\n", n)
			os.Exit(1)
		}
	default:
		return fmt.Errorf("unknown node kind %q (want sql, expect, python or seed)", kind)
	}
	if err != nil {
		// One line, so the hook's refusal can quote it.
		fmt.Fprintf(os.Stderr, "weir node %s: %s\n", kind, strings.Join(strings.Fields(err.Error()), " "))
		os.Exit(1)
	}
	names := make([]string, 0, len(counts))
	for t := range counts {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		fmt.Printf("%s%s %d\n", hooks.RowsPrefix, t, counts[t])
	}
	return nil
}
