package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/objects"
)

// runFlags are weir serve's configuration of the run queue (hooks/sched):
// how many runs at once, how many may wait, in what order, and the node
// pool the running nodes share.
type runFlags struct {
	runs, queue  int
	policy       string
	poolCPU      float64
	poolMemoryMB int64
	nodeCPU      float64
	nodeMemoryMB int64
	history      int
	mergeTrain   int
}

func (r *runFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&r.runs, "runs", 0, "run queue: most pipeline runs (pushes that run nodes) admitted at once; more wait in the queue (0: twice the cores, at least 2, no more than the node pool's memory holds of --node-default-memory-mb)")
	fs.IntVar(&r.queue, "run-queue", sched.DefaultMaxQueue, "run queue: most pushes waiting for a run slot or for a run of their branch; past it a push is refused at once with 'server busy' (0: no queue, refuse any push that cannot run at once)")
	fs.StringVar(&r.policy, "run-policy", sched.PolicyNames()[0], "run queue: the order waiting runs start in; "+sched.PolicyHelp())
	fs.Float64Var(&r.poolCPU, "node-pool-cpus", 0, "node pool: cores the running nodes of all runs share; a node holds its weir.toml cpus (or --node-default-cpus) while it runs (0: every core)")
	fs.Int64Var(&r.poolMemoryMB, "node-pool-memory-mb", 0, "node pool: memory in MiB the running nodes of all runs share; a node holds its weir.toml memory_mb (or --node-default-memory-mb) while it runs (0: the machine's memory less 1 GiB)")
	fs.Float64Var(&r.nodeCPU, "node-default-cpus", sched.DefaultNodeCPU, "node pool: cores a node that declares no cpus in weir.toml holds")
	fs.Int64Var(&r.nodeMemoryMB, "node-default-memory-mb", sched.DefaultNodeMemory>>20, "node pool: MiB a node that declares no memory_mb in weir.toml holds")
	fs.IntVar(&r.history, "runs-history", sched.DefaultHistory, "how many ended runs 'weir runs <repo>' remembers (over all repos)")
	fs.IntVar(&r.mergeTrain, "merge-train", 16, "merge queue: most merge requests into one branch (git push origin HEAD:refs/merge/<b>) that wait together and are merged and run once, as a train; a train whose run fails merges them one by one (below 2: every merge request runs alone)")
}

// config is the scheduler's Config from the flags.
func (r *runFlags) config() (sched.Config, error) {
	switch {
	case r.runs < 0:
		return sched.Config{}, fmt.Errorf("--runs %d: want 0 (the default) or more", r.runs)
	case r.queue < 0:
		return sched.Config{}, fmt.Errorf("--run-queue %d: want 0 (no queue) or more", r.queue)
	case r.poolCPU < 0 || r.poolMemoryMB < 0 || r.nodeCPU < 0 || r.nodeMemoryMB < 0:
		return sched.Config{}, fmt.Errorf("node pool sizes must not be negative")
	case r.poolMemoryMB > 1<<42 || r.nodeMemoryMB > 1<<42:
		return sched.Config{}, fmt.Errorf("node pool memory out of range")
	}
	cfg := sched.Config{
		MaxRuns:     r.runs,
		MaxQueue:    r.queue,
		CPU:         r.poolCPU,
		Memory:      r.poolMemoryMB << 20,
		NodeDefault: sched.Demand{CPU: r.nodeCPU, Memory: r.nodeMemoryMB << 20},
		Policy:      r.policy,
		History:     r.history,
	}
	if r.queue == 0 {
		cfg.MaxQueue = -1 // sched: negative is no queue, zero its default
	}
	return cfg, nil
}

// newScheduler builds the server's one run queue and logs its sizes
// (those taken from the machine included).
func newScheduler(rf runFlags, log *slog.Logger) (*sched.Scheduler, error) {
	cfg, err := rf.config()
	if err != nil {
		return nil, err
	}
	s, err := sched.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("run queue: %w", err)
	}
	c := s.Config()
	log.Info("run queue", "runs", c.MaxRuns, "queue", c.MaxQueue, "policy", c.Policy,
		"pool_cpus", c.CPU, "pool_memory_mb", c.Memory>>20,
		"node_default_cpus", c.NodeDefault.CPU, "node_default_memory_mb", c.NodeDefault.Memory>>20,
		"keep_alive", c.KeepAlive, "history", c.History)
	return s, nil
}

// sshRuns is "weir runs REPO" over SSH: the repo's runs the scheduler
// holds (queued, running) and the last that ended, newest first.
func sshRuns(s *sched.Scheduler, req *gitserver.SSHRequest) int {
	if len(req.Args) != 2 {
		fmt.Fprintln(req.Stderr, "usage: weir runs REPO")
		return 2
	}
	repo, err := objects.ParseRepoName(strings.TrimSuffix(req.Args[1], ".git"))
	if err != nil || !req.Can(repo, access.PermRead) {
		fmt.Fprintf(req.Stderr, "weir runs: repo %q not found or not readable\n", req.Args[1])
		return 1
	}
	if err := sched.WriteRuns(req.Stdout, s.Runs(sched.Repo(repo))); err != nil {
		return 1
	}
	return 0
}

// runsCommand is sshRuns as an SSH command.
func runsCommand(s *sched.Scheduler) gitserver.SSHCommand {
	return func(_ context.Context, req *gitserver.SSHRequest) int { return sshRuns(s, req) }
}
