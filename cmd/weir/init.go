package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/weir-dev/weir/exec"
)

// init hands the process over to the sandbox entry points before main runs
// when the binary was re-executed as a container's init ("weir init") or as
// the in-sandbox seccomp shim; otherwise it returns at once.
func init() {
	exec.Init()
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// sandboxRun is `weir sandbox-run [flags] -- argv...`: the sandbox a
// pipeline node gets, for trying things by hand. The node's output streams
// to stdout; the result goes to stderr; the exit status is the node's.
func sandboxRun(args []string) error {
	fs := flag.NewFlagSet("sandbox-run", flag.ContinueOnError)
	d := exec.DefaultLimits()
	state := fs.String("state", "/run/weir/exec-debug", "sandbox state dir (private to this command)")
	runtime := fs.String("runtime", exec.HostRuntime, "runtime: host, or name=rootfs-dir")
	out := fs.String("out", "", "host dir that receives /out (must exist)")
	weir := fs.Bool("weir", false, "mount weir-node (next to weir, or on PATH) at "+exec.RunnerPath)
	wall := fs.Duration("wall", d.Wall, "wall time limit")
	mem := fs.Int64("memory", d.Memory, "memory limit, bytes")
	pids := fs.Int64("pids", d.Pids, "process limit")
	cpu := fs.Float64("cpu", d.CPU, "CPU limit, cores")
	outBytes := fs.Int64("output-bytes", d.OutputBytes, "/out quota, bytes")
	repeat := fs.Int("repeat", 1, "run this many times and print Run's p50/p99 (timing the sandbox)")
	var inputs, env multiFlag
	fs.Var(&inputs, "in", "name=host-path, mounted read-only at /in/<name> (repeatable)")
	fs.Var(&env, "env", "KEY=VALUE for the node (repeatable; default PATH=/usr/bin:/bin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: weir sandbox-run [flags] -- command [args...]")
	}
	cfg := exec.Config{StateDir: *state, Logger: offlineLogger()}
	if *weir {
		bin, err := findRunner()
		if err != nil {
			return err
		}
		cfg.WeirBinary = bin
	}
	spec := exec.Spec{
		ID: fmt.Sprintf("debug-%d", os.Getpid()), Args: fs.Args(), Env: env, Output: *out, Weir: *weir,
		Inputs: map[string]string{}, Stdout: os.Stdout,
		Limits: exec.Limits{Wall: *wall, Memory: *mem, Pids: *pids, CPU: *cpu, OutputBytes: *outBytes},
	}
	if name, dir, ok := strings.Cut(*runtime, "="); ok {
		cfg.Runtimes = map[string]string{name: dir}
		spec.Runtime = name
	}
	if len(spec.Env) == 0 {
		spec.Env = []string{"PATH=/usr/bin:/bin"}
	}
	for _, in := range inputs {
		name, path, ok := strings.Cut(in, "=")
		if !ok {
			return fmt.Errorf("-in %q: want name=path", in)
		}
		spec.Inputs[name] = path
	}
	sb, err := exec.New(cfg)
	if err != nil {
		return err
	}
	defer sb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var times []time.Duration
	for i := 1; i < *repeat; i++ {
		t := time.Now()
		if _, err := sb.Run(ctx, spec); err != nil {
			return err
		}
		times = append(times, time.Since(t))
	}
	t := time.Now()
	res, err := sb.Run(ctx, spec)
	if err != nil {
		return err
	}
	if times = append(times, time.Since(t)); len(times) > 1 {
		slices.Sort(times)
		fmt.Fprintf(os.Stderr, "weir sandbox-run: %d runs: p50 %s p99 %s\n", len(times),
			times[len(times)/2].Round(time.Microsecond), times[(len(times)*99+99)/100-1].Round(time.Microsecond))
	}
	fmt.Fprintf(os.Stderr, "weir sandbox-run: reason=%s exit=%d wall=%s cpu=%s peak_memory=%d written=%d overhead=%s\n",
		res.Reason, res.ExitCode, res.Wall.Round(time.Microsecond), res.CPU.Round(time.Microsecond),
		res.PeakMemory, res.BytesWritten, res.Overhead.Round(time.Microsecond))
	if res.Message != "" {
		fmt.Fprintf(os.Stderr, "weir sandbox-run: %s\n", res.Message)
	}
	if res.ExitCode != 0 {
		sb.Close()
		code := res.ExitCode
		if code < 0 {
			code = 125
		}
		os.Exit(code)
	}
	return nil
}
