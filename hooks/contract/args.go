package contract

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
)

// Command is the runner's first argument: "<runner> node <kind> ...".
const Command = "node"

// Kinds of node the runner runs (the second argument).
const (
	KindSQL    = "sql"    // a SQL model: one SELECT, written to its one output
	KindExpect = "expect" // an expectation: a SELECT whose rows are failures
	KindPython = "python" // a Python model
	KindSeed   = "seed"   // a CSV seed turned into its one output
)

// CodeInput is the name of the input dir holding the node's source
// (/in/_code/<file> in a sandbox).
const CodeInput = "_code"

// LibInput is the name of the input dir holding the repo's lib/ folder for
// Python models (/in/_lib/lib/<file> in a sandbox): the runner puts
// /in/_lib on the model's PYTHONPATH, so "from lib.fx import convert"
// works.
const LibInput = "_lib"

// ParamEnvPrefix prefixes the environment variables that carry push
// parameters: "git push -o param.day=2024-01-01" becomes WEIR_PARAM_day.
const ParamEnvPrefix = "WEIR_PARAM_"

// NoResult is Args.ResultFD when the runner reports no result (run by
// hand, or by a benchmark).
const NoResult = -1

// Args is the runner's command line.
type Args struct {
	Kind        string   // KindSQL, KindExpect, KindPython or KindSeed
	Source      string   // the node's file
	Namespace   string   // of unqualified tables ("" = "main")
	Inputs      []string // input tables, "ns.table"
	Outputs     []string // output tables, "ns.table"
	Threads     int      // DuckDB threads (0 = 1)
	MemoryLimit int64    // DuckDB's memory limit in bytes (0 = DuckDB's default)
	// Gate makes the runner start DuckDB, then wait for a line "go" on
	// stdin before it reads any input (exec.Spec.Gate).
	Gate bool
	// ResultFD is the descriptor the runner writes its Result on, and
	// keeps from the node's code; NoResult for none.
	ResultFD int
	// DirIn, DirOut and DirTmp replace /in, /out and /tmp outside a
	// sandbox; "" keeps the sandbox's.
	DirIn, DirOut, DirTmp string
	// File is the node's path in the repository (models/x.py), for
	// messages; "" names it by Source's base name.
	File string
	// Runtime is the name of the runtime the node runs in, for messages
	// and the node's environment (WEIR_RUNTIME); "" is "host".
	Runtime string
}

// ErrArgs is a command line the runner cannot run.
var ErrArgs = errors.New("contract: bad runner arguments")

// Argv is a's command line after the runner's own path, starting with
// Command.
func (a Args) Argv() []string {
	argv := []string{Command, a.Kind, "--source", a.Source}
	if a.Namespace != "" {
		argv = append(argv, "--ns", a.Namespace)
	}
	for _, t := range a.Inputs {
		argv = append(argv, "--in", t)
	}
	for _, t := range a.Outputs {
		argv = append(argv, "--out", t)
	}
	if a.Threads > 0 {
		argv = append(argv, "--threads", strconv.Itoa(a.Threads))
	}
	if a.MemoryLimit > 0 {
		argv = append(argv, "--memory-limit", strconv.FormatInt(a.MemoryLimit, 10))
	}
	if a.Gate {
		argv = append(argv, "--gate")
	}
	if a.ResultFD != NoResult {
		argv = append(argv, "--result-fd", strconv.Itoa(a.ResultFD))
	}
	for _, d := range []struct{ flag, dir string }{{"--dir-in", a.DirIn}, {"--dir-out", a.DirOut}, {"--dir-tmp", a.DirTmp}, {"--file", a.File}, {"--runtime", a.Runtime}} {
		if d.dir != "" {
			argv = append(argv, d.flag, d.dir)
		}
	}
	return argv
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// ParseArgs parses the runner's arguments after Command (what Argv
// returns, minus its first element).
func ParseArgs(args []string) (Args, error) {
	a := Args{ResultFD: NoResult}
	if len(args) < 1 {
		return a, fmt.Errorf("%w: no node kind (want %s, %s, %s or %s)", ErrArgs, KindSQL, KindExpect, KindPython, KindSeed)
	}
	a.Kind = args[0]
	switch a.Kind {
	case KindSQL, KindExpect, KindPython, KindSeed:
	default:
		return a, fmt.Errorf("%w: unknown node kind %q (want %s, %s, %s or %s)", ErrArgs, a.Kind, KindSQL, KindExpect, KindPython, KindSeed)
	}
	fs := flag.NewFlagSet(Command+" "+a.Kind, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.Source, "source", "", "the node's file")
	fs.StringVar(&a.Namespace, "ns", "", "namespace of unqualified tables")
	fs.Var((*stringList)(&a.Inputs), "in", "an input table ns.t (repeatable)")
	fs.Var((*stringList)(&a.Outputs), "out", "an output table ns.t (repeatable)")
	fs.IntVar(&a.Threads, "threads", 0, "DuckDB threads")
	fs.Int64Var(&a.MemoryLimit, "memory-limit", 0, "DuckDB's memory limit in bytes")
	fs.BoolVar(&a.Gate, "gate", false, `wait for a line "go" on stdin before reading any input`)
	fs.IntVar(&a.ResultFD, "result-fd", NoResult, "descriptor to write the result on")
	fs.StringVar(&a.DirIn, "dir-in", "", "inputs folder")
	fs.StringVar(&a.DirOut, "dir-out", "", "outputs folder")
	fs.StringVar(&a.DirTmp, "dir-tmp", "", "scratch folder")
	fs.StringVar(&a.File, "file", "", "the node's path in the repository, for messages")
	fs.StringVar(&a.Runtime, "runtime", "", "the runtime's name, for messages")
	if err := fs.Parse(args[1:]); err != nil {
		return a, fmt.Errorf("%w: %v", ErrArgs, err)
	}
	switch {
	case fs.NArg() > 0:
		return a, fmt.Errorf("%w: unexpected argument %q", ErrArgs, fs.Arg(0))
	case a.Source == "":
		return a, fmt.Errorf("%w: --source is required", ErrArgs)
	case a.Threads < 0 || a.MemoryLimit < 0:
		return a, fmt.Errorf("%w: negative --threads or --memory-limit", ErrArgs)
	case a.ResultFD != NoResult && a.ResultFD < 3:
		return a, fmt.Errorf("%w: --result-fd %d is stdin, stdout or stderr, which the node's code shares", ErrArgs, a.ResultFD)
	}
	return a, nil
}
